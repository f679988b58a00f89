//! Both voices on one track: each party's Opus is decoded and added into a shared mix
//! buffer at the sample position its timeline says; finished stretches are encoded
//! to AAC in 1024-sample frames. Gaps become silence, so the audio track always
//! spans the whole call.

use std::collections::VecDeque;

use ffmpeg::ChannelLayout;
use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleType;
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::video::codec_err;
use super::{PacketSink, TranscodeError};
use kefu_proto::Side;

pub(crate) const SAMPLE_RATE: i64 = 48_000;
/// Packets this close to where the previous one ended are butted against it, so the
/// rounding of timeline positions never leaves clicks between packets.
const CONTINUITY_SAMPLES: i64 = 960;

pub(crate) struct AudioMixer {
    decoders: [Option<ffmpeg::decoder::Audio>; 2],
    decoded: frame::Audio,
    /// Per party: where its next packet would start if nothing was lost.
    next_pos: [Option<i64>; 2],
    /// Mixed samples from `base` on, not yet encoded.
    mix: VecDeque<f32>,
    base: i64,
    scratch: Vec<f32>,
    pub(crate) encoder: ffmpeg::encoder::Audio,
    frame: frame::Audio,
    frame_size: usize,
    pub(crate) decode_errors: u64,
    pub(crate) late_samples: u64,
}

impl AudioMixer {
    pub(crate) fn new(global_header: bool) -> Result<Self, TranscodeError> {
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC)
            .ok_or_else(|| TranscodeError::Codec("no AAC encoder".into()))?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(codec_err("AAC encoder"))?;
        enc.set_rate(SAMPLE_RATE as i32);
        enc.set_channel_layout(ChannelLayout::MONO);
        enc.set_format(Sample::F32(SampleType::Planar));
        enc.set_bit_rate(64_000);
        enc.set_time_base((1, SAMPLE_RATE as i32));
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc.open().map_err(codec_err("AAC encoder"))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let mut frame = frame::Audio::new(
            Sample::F32(SampleType::Planar),
            frame_size,
            ChannelLayout::MONO,
        );
        frame.set_rate(SAMPLE_RATE as u32);
        Ok(Self {
            decoders: [None, None],
            decoded: frame::Audio::empty(),
            next_pos: [None; 2],
            mix: VecDeque::new(),
            base: 0,
            scratch: Vec::new(),
            encoder,
            frame,
            frame_size,
            decode_errors: 0,
            late_samples: 0,
        })
    }

    /// Decodes one Opus packet of `party` that starts at `at_us`.
    pub(crate) fn decode(&mut self, party: Side, data: &[u8], at_us: i64) {
        let i = party.index();
        if self.decoders[i].is_none() {
            match open_opus() {
                Ok(d) => self.decoders[i] = Some(d),
                Err(e) => {
                    tracing::warn!("cannot open an Opus decoder: {e}");
                    self.decode_errors += 1;
                    return;
                }
            }
        }
        let Some(decoder) = self.decoders[i].as_mut() else {
            return;
        };
        if decoder.send_packet(&ffmpeg::Packet::copy(data)).is_err() {
            self.decode_errors += 1;
            return;
        }
        let mut pos = at_us * SAMPLE_RATE / 1_000_000;
        if let Some(next) = self.next_pos[i]
            && (pos - next).abs() <= CONTINUITY_SAMPLES
        {
            pos = next;
        }
        while decoder.receive_frame(&mut self.decoded).is_ok() {
            self.scratch.clear();
            if !to_mono(&self.decoded, &mut self.scratch) {
                self.decode_errors += 1;
                continue;
            }
            let n = self.scratch.len() as i64;
            add_into(
                &mut self.mix,
                self.base,
                pos,
                &self.scratch,
                &mut self.late_samples,
            );
            pos += n;
        }
        self.next_pos[i] = Some(pos);
    }

    /// Timestamp (µs) up to which audio has been encoded.
    pub(crate) fn encoded_until_us(&self) -> i64 {
        self.base * 1_000_000 / SAMPLE_RATE
    }

    /// Encodes one frame of the mix (silence where nobody spoke).
    pub(crate) fn encode_next(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        let n = self.frame_size;
        {
            let bytes = self.frame.data_mut(0);
            for (k, chunk) in bytes.chunks_exact_mut(4).take(n).enumerate() {
                let v = self.mix.get(k).copied().unwrap_or(0.0).clamp(-1.0, 1.0);
                chunk.copy_from_slice(&v.to_ne_bytes());
            }
        }
        let drained = n.min(self.mix.len());
        self.mix.drain(..drained);
        self.frame.set_pts(Some(self.base));
        self.base += n as i64;
        self.encoder
            .send_frame(&self.frame)
            .map_err(codec_err("AAC encoder"))?;
        self.drain(out)
    }

    /// Samples per encoded frame, in µs.
    pub(crate) fn frame_us(&self) -> i64 {
        self.frame_size as i64 * 1_000_000 / SAMPLE_RATE
    }

    pub(crate) fn flush(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        self.encoder.send_eof().map_err(codec_err("AAC encoder"))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        super::drain_encoder(&mut self.encoder, false, out)
    }
}

fn open_opus() -> Result<ffmpeg::decoder::Audio, ffmpeg::Error> {
    let codec =
        ffmpeg::decoder::find(ffmpeg::codec::Id::OPUS).ok_or(ffmpeg::Error::DecoderNotFound)?;
    ffmpeg::codec::context::Context::new_with_codec(codec)
        .decoder()
        .audio()
}

/// Averages a decoded frame's channels into `out`. False for formats we do not read.
fn to_mono(f: &frame::Audio, out: &mut Vec<f32>) -> bool {
    let samples = f.samples();
    let channels = usize::from(f.channels().max(1));
    let read_f32 = |b: &[u8]| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    let read_i16 = |b: &[u8]| f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32768.0;
    out.resize(samples, 0.0);
    match f.format() {
        Sample::F32(SampleType::Planar) | Sample::I16(SampleType::Planar) => {
            let width = if matches!(f.format(), Sample::F32(_)) {
                4
            } else {
                2
            };
            for c in 0..channels.min(f.planes()) {
                for (k, b) in f.data(c).chunks_exact(width).take(samples).enumerate() {
                    out[k] += if width == 4 { read_f32(b) } else { read_i16(b) } / channels as f32;
                }
            }
        }
        Sample::F32(SampleType::Packed) | Sample::I16(SampleType::Packed) => {
            let width = if matches!(f.format(), Sample::F32(_)) {
                4
            } else {
                2
            };
            for (k, b) in f
                .data(0)
                .chunks_exact(width)
                .take(samples * channels)
                .enumerate()
            {
                out[k / channels] +=
                    if width == 4 { read_f32(b) } else { read_i16(b) } / channels as f32;
            }
        }
        _ => return false,
    }
    true
}

/// Adds `samples` starting at absolute position `pos` into the mix that starts at `base`.
/// Samples before `base` were already encoded: they are late and counted, not mixed.
fn add_into(mix: &mut VecDeque<f32>, base: i64, pos: i64, samples: &[f32], late: &mut u64) {
    let skip = (base - pos).max(0) as usize;
    *late += skip.min(samples.len()) as u64;
    let Some(rest) = samples.get(skip..) else {
        return;
    };
    let start = (pos + skip as i64 - base) as usize;
    if mix.len() < start + rest.len() {
        mix.resize(start + rest.len(), 0.0);
    }
    for (k, v) in rest.iter().enumerate() {
        mix[start + k] += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_add_up_and_late_samples_are_counted() {
        let mut mix = VecDeque::new();
        let mut late = 0;
        add_into(&mut mix, 100, 100, &[0.25; 4], &mut late);
        add_into(&mut mix, 100, 102, &[0.5; 4], &mut late);
        assert_eq!(
            mix.iter().copied().collect::<Vec<_>>(),
            vec![0.25, 0.25, 0.75, 0.75, 0.5, 0.5]
        );
        add_into(&mut mix, 100, 97, &[1.0; 4], &mut late);
        assert_eq!(late, 3);
        assert_eq!(mix[0], 1.25);
        // A gap is silence.
        add_into(&mut mix, 100, 110, &[1.0], &mut late);
        assert_eq!(mix[9], 0.0);
        assert_eq!(mix[10], 1.0);
    }
}
