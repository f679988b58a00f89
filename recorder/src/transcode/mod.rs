//! Live transcoding of one call into its final file, fragment by fragment.
//!
//! Synchronous and clock-free: the worker thread feeds it frames and "now", and it
//! writes a fragmented MP4 (H.264 + AAC) or M4A (AAC) to the spool path. Frames wait
//! in a small per-stream jitter buffer ordered by their timeline position, so late and
//! reordered frames still land in the right place; output runs a fixed latency behind.

mod audio;
mod video;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use ffmpeg_next as ffmpeg;

use crate::clock::Timeline;
use crate::naming::RecordingKind;
use crate::spool::{SpoolLimits, SpoolPipe};
use audio::AudioMixer;
use kefu_proto::{Codec, TapFrame};
use video::VideoComposer;

/// How long a frame may wait for late company before it is decoded.
const JITTER_US: i64 = 300_000;
/// Output runs this far behind "now", after the jitter buffer.
const OUTPUT_DELAY_US: i64 = 400_000;
/// Frames per stream the jitter buffer holds at most (a stuck clock cannot grow it).
const MAX_BUFFERED: usize = 512;

/// Output picture and encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// x264 constant rate factor (lower is better and bigger).
    pub crf: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 15,
            crf: 28,
        }
    }
}

/// Why a transcode stopped. The split decides what users see: `Write` is "recording
/// failed" (the spool could not be written: disk full, permissions), `Codec` is
/// "transcoding failed".
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("{0}")]
    Write(String),
    #[error("{0}")]
    Codec(String),
}

/// Counters of what was skipped rather than recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeStats {
    pub decode_errors: u64,
    pub late_frames: u64,
    pub late_samples: u64,
    pub overflow_frames: u64,
}

struct Buffered {
    at_us: i64,
    frame: TapFrame,
}

/// One recording's transcoder.
pub struct Transcoder {
    timeline: Timeline,
    /// Jitter buffers per party and stream (audio, video), ordered by `at_us`.
    buffers: [[VecDeque<Buffered>; 2]; 2],
    /// Per stream: everything before this was decoded; older arrivals are late.
    released_until: i64,
    video: Option<VideoComposer>,
    audio: AudioMixer,
    octx: ffmpeg::format::context::Output,
    /// Where `octx` writes; after it (fields drop in order: the muxer closes first).
    spool: Option<SpoolPipe>,
    /// (stream index, encoder time base) for audio and video.
    audio_stream: (usize, ffmpeg::Rational),
    video_stream: Option<(usize, ffmpeg::Rational)>,
    stats: TranscodeStats,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("stats", &self.stats)
            .finish()
    }
}

/// Where encoded packets go: `(packet, is_video)`.
pub(crate) type PacketSink<'a> = dyn FnMut(ffmpeg::Packet, bool) -> Result<(), TranscodeError> + 'a;

/// Hands every packet `encoder` has ready to `out`.
pub(crate) fn drain_encoder(
    encoder: &mut ffmpeg::encoder::Encoder,
    is_video: bool,
    out: &mut PacketSink<'_>,
) -> Result<(), TranscodeError> {
    let mut packet = ffmpeg::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        out(
            std::mem::replace(&mut packet, ffmpeg::Packet::empty()),
            is_video,
        )?;
    }
    Ok(())
}

/// Initialises FFmpeg once per process.
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::error!("FFmpeg failed to initialise: {e}");
        }
        // FFmpeg logs to stderr, outside tracing; decode errors are counted instead.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

impl Transcoder {
    /// Opens the spool file and writes the container header.
    pub fn create(
        path: &Path,
        kind: RecordingKind,
        settings: Settings,
        start: Instant,
    ) -> Result<Self, TranscodeError> {
        Self::create_spooled(path, kind, settings, start, SpoolLimits::default())
    }

    /// [`Transcoder::create`] with how much and how long a spool that cannot be
    /// written may hold back (crate::spool).
    pub fn create_spooled(
        path: &Path,
        kind: RecordingKind,
        settings: Settings,
        start: Instant,
        limits: SpoolLimits,
    ) -> Result<Self, TranscodeError> {
        init();
        let format = match kind {
            RecordingKind::Video => "mp4",
            RecordingKind::Voice => "ipod",
        };
        let spool = SpoolPipe::open(path, limits)
            .map_err(|e| TranscodeError::Write(format!("cannot create {}: {e}", path.display())))?;
        let mut octx = ffmpeg::format::output_as(&spool.url(), format)
            .map_err(|e| TranscodeError::Write(format!("cannot open the spool pipe: {e}")))?;
        let global_header = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);

        let video = match kind {
            RecordingKind::Video => Some(VideoComposer::new(settings, global_header)?),
            RecordingKind::Voice => None,
        };
        let audio = AudioMixer::new(global_header)?;

        let mut video_stream = None;
        if let Some(v) = &video {
            let mut st = octx
                .add_stream(ffmpeg::encoder::find_by_name("libx264"))
                .map_err(video::codec_err("video stream"))?;
            st.set_parameters(&v.encoder);
            st.set_time_base((1, settings.fps as i32));
            video_stream = Some((st.index(), ffmpeg::Rational::new(1, settings.fps as i32)));
        }
        let mut st = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::AAC))
            .map_err(video::codec_err("audio stream"))?;
        st.set_parameters(&audio.encoder);
        st.set_time_base((1, audio::SAMPLE_RATE as i32));
        let audio_stream = (
            st.index(),
            ffmpeg::Rational::new(1, audio::SAMPLE_RATE as i32),
        );

        let mut opts = ffmpeg::Dictionary::new();
        // Fragmented: a moof+mdat pair per keyframe (video) or per second (voice), each
        // flushed to disk as it completes. The file is playable up to its last fragment.
        match kind {
            RecordingKind::Video => {
                opts.set("movflags", "frag_keyframe+empty_moov+default_base_moof")
            }
            RecordingKind::Voice => {
                opts.set("movflags", "empty_moov+default_base_moof");
                opts.set("frag_duration", "1000000");
            }
        }
        opts.set("flush_packets", "1");
        octx.write_header_with(opts)
            .map_err(|e| TranscodeError::Write(format!("cannot write the header: {e}")))?;

        Ok(Self {
            timeline: Timeline::new(start),
            buffers: Default::default(),
            released_until: i64::MIN,
            video,
            audio,
            octx,
            spool: Some(spool),
            audio_stream,
            video_stream,
            stats: TranscodeStats::default(),
        })
    }

    /// Hands decoded pictures to content moderation when it asks for them.
    pub fn set_picture_sink(&mut self, sink: std::sync::Arc<dyn kefu_proto::PictureSink>) {
        if let Some(v) = self.video.as_mut() {
            v.pictures = Some(sink);
        }
    }

    pub fn stats(&self) -> TranscodeStats {
        let mut s = self.stats;
        s.decode_errors +=
            self.audio.decode_errors + self.video.as_ref().map_or(0, |v| v.decode_errors);
        s.late_samples = self.audio.late_samples;
        s
    }

    /// Takes a tapped frame into the jitter buffer.
    pub fn push(&mut self, frame: TapFrame) {
        let at_us = self.timeline.place(&frame);
        if at_us < self.released_until || at_us < 0 && !frame.codec.is_video() {
            self.stats.late_frames += 1;
            return;
        }
        if frame.codec.is_video() && self.video.is_none() {
            return; // a voice call records no picture, whatever arrives
        }
        let queue = &mut self.buffers[frame.side.index()][usize::from(frame.codec.is_video())];
        if queue.len() >= MAX_BUFFERED {
            queue.pop_front();
            self.stats.overflow_frames += 1;
        }
        let idx = queue
            .iter()
            .rposition(|b| b.at_us <= at_us)
            .map_or(0, |i| i + 1);
        queue.insert(idx, Buffered { at_us, frame });
    }

    /// Decodes what left the jitter buffer and writes output up to `now` minus the delay.
    pub fn advance(&mut self, now: Instant) -> Result<(), TranscodeError> {
        let now_us = self.timeline.micros_at(now);
        self.release(now_us - JITTER_US);
        self.produce(now_us - OUTPUT_DELAY_US)
    }

    /// Writes everything up to `end`, flushes the encoders and closes the file.
    /// Returns the recording's duration in milliseconds.
    pub fn finish(mut self, end: Instant) -> Result<i64, TranscodeError> {
        let end_us = self.timeline.micros_at(end).max(0);
        self.release(end_us);
        self.produce(end_us)?;
        let (audio_stream, video_stream) = (self.audio_stream, self.video_stream);
        let octx = &mut self.octx;
        let mut out = |p: ffmpeg::Packet, is_video: bool| {
            write_packet(octx, audio_stream, video_stream, p, is_video)
        };
        if let Some(v) = self.video.as_mut() {
            v.flush(&mut out)?;
        }
        self.audio.flush(&mut out)?;
        self.octx
            .write_trailer()
            .map_err(|e| TranscodeError::Write(format!("cannot finish the file: {e}")))?;
        // The muxer closes first, then every byte it wrote reaches the file.
        let spool = self.spool.take();
        drop(self);
        if let Some(spool) = spool {
            spool
                .close()
                .map_err(|e| TranscodeError::Write(e.to_string()))?;
        }
        Ok(end_us / 1000)
    }

    fn release(&mut self, until_us: i64) {
        for party in kefu_proto::Side::ALL {
            for stream in 0..2 {
                while let Some(b) = self.buffers[party.index()][stream].front() {
                    if b.at_us > until_us {
                        break;
                    }
                    let Some(b) = self.buffers[party.index()][stream].pop_front() else {
                        break;
                    };
                    let f = &b.frame;
                    match (f.codec, self.video.as_mut()) {
                        (Codec::Opus, _) => self.audio.decode(party, &f.data, b.at_us),
                        (codec, Some(v)) => {
                            v.decode(party, codec, &f.data, f.keyframe, f.contiguous, b.at_us)
                        }
                        (_, None) => {}
                    }
                }
            }
        }
        self.released_until = self.released_until.max(until_us);
    }

    fn produce(&mut self, until_us: i64) -> Result<(), TranscodeError> {
        let (audio_stream, video_stream) = (self.audio_stream, self.video_stream);
        let octx = &mut self.octx;
        let mut out = |p: ffmpeg::Packet, is_video: bool| {
            write_packet(octx, audio_stream, video_stream, p, is_video)
        };
        // Interleave: always extend whichever track is behind.
        loop {
            let audio_next = self.audio.encoded_until_us();
            let audio_due = audio_next + self.audio.frame_us() <= until_us;
            let video_next = self.video.as_ref().map(|v| v.next_frame_us());
            let video_due = video_next.is_some_and(|t| t < until_us);
            match (audio_due, video_due, video_next) {
                (true, true, Some(v)) if v < audio_next => {}
                (true, _, _) => {
                    self.audio.encode_next(&mut out)?;
                    continue;
                }
                (false, true, _) => {}
                (false, false, _) => return Ok(()),
            }
            if let Some(v) = self.video.as_mut() {
                v.encode_next(&mut out)?;
            }
        }
    }
}

fn write_packet(
    octx: &mut ffmpeg::format::context::Output,
    audio: (usize, ffmpeg::Rational),
    video: Option<(usize, ffmpeg::Rational)>,
    mut packet: ffmpeg::Packet,
    is_video: bool,
) -> Result<(), TranscodeError> {
    let (index, from) = if is_video {
        video.ok_or_else(|| TranscodeError::Codec("video packet in a voice recording".into()))?
    } else {
        audio
    };
    let to = octx.stream(index).map(|s| s.time_base()).unwrap_or(from);
    packet.set_stream(index);
    packet.rescale_ts(from, to);
    packet
        .write_interleaved(octx)
        .map_err(|e| TranscodeError::Write(format!("cannot write the spool: {e}")))
}

/// The duration of a (possibly cut) recording file, from its last packet.
pub fn probe_duration_ms(path: &Path) -> Result<i64, TranscodeError> {
    init();
    let mut ictx = ffmpeg::format::input(path)
        .map_err(|e| TranscodeError::Codec(format!("cannot read {}: {e}", path.display())))?;
    let bases: Vec<ffmpeg::Rational> = ictx.streams().map(|s| s.time_base()).collect();
    let mut end_ms = 0i64;
    for (stream, packet) in ictx.packets() {
        let Some(tb) = bases.get(stream.index()).copied() else {
            continue;
        };
        let Some(pts) = packet.pts() else { continue };
        let end = pts + packet.duration();
        let ms = end * 1000 * i64::from(tb.numerator()) / i64::from(tb.denominator().max(1));
        end_ms = end_ms.max(ms);
    }
    Ok(end_ms)
}
