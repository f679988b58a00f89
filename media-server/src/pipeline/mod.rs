//! The agent-video pipeline: decode (VP8 or H.264) → beauty filter → encode (the codec
//! the customer negotiated), one frame at a time.
//!
//! [`BeautyPipeline`] is synchronous and clock-free: the caller hands it depacketized
//! frames and gets encoded frames back, with the RTP time of their input. It never
//! panics on bad input: a frame that does not decode is counted, later frames are
//! skipped up to the next keyframe, and the result says a keyframe should be asked
//! for. The worker thread and queue around it are the driver's business.

pub(crate) mod codec;
mod worker;

use std::sync::Arc;

use ffmpeg_next as ffmpeg;
use kefu_beauty::{BeautyFilter, BeautyParams, I420Ref};

use crate::config::{Vp8Encoding, Vp8Version};

pub use codec::VideoCodec;
use codec::{Decoder, Encoder};
pub use worker::{PipelineResult, PipelineWorker};

/// One depacketized video frame of the agent.
#[derive(Debug, Clone)]
pub struct InputFrame {
    pub codec: VideoCodec,
    /// RTP time, 90 kHz.
    pub rtp_time: u64,
    pub keyframe: bool,
    /// False when frames were lost just before this one.
    pub contiguous: bool,
    pub data: Arc<[u8]>,
}

/// One frame for the customer, in the customer's codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFrame {
    pub rtp_time: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// What one input produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processed {
    pub frames: Vec<OutputFrame>,
    /// The input could not be used: ask the agent's browser for a keyframe.
    pub need_keyframe: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no {0} encoder in this FFmpeg build")]
    NoEncoder(&'static str),
    #[error("encoder: {0}")]
    Encoder(String),
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub decoded: u64,
    pub encoded: u64,
    pub decode_errors: u64,
    pub skipped_waiting_for_keyframe: u64,
    /// Decoded but not filtered or encoded: the pipeline was behind.
    pub not_encoded: u64,
    /// Decoded pictures handed to content moderation.
    pub pictures_to_moderation: u64,
}

/// Decode → beauty → encode for one agent stream.
pub struct BeautyPipeline {
    output: VideoCodec,
    vp8: Vp8Encoding,
    params: BeautyParams,
    bitrate_bps: u32,
    decoder: Option<Decoder>,
    encoder: Option<Encoder>,
    filter: BeautyFilter,
    waiting_for_keyframe: bool,
    force_keyframe: bool,
    stats: PipelineStats,
    /// Content moderation of the agent's video, when nothing else decodes it.
    pictures: Option<Arc<dyn kefu_proto::PictureSink>>,
}

impl std::fmt::Debug for BeautyPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeautyPipeline")
            .field("output", &self.output)
            .field("stats", &self.stats)
            .finish()
    }
}

impl BeautyPipeline {
    pub fn new(output: VideoCodec, params: BeautyParams, bitrate_bps: u32) -> Self {
        codec::init();
        Self {
            output,
            vp8: Vp8Encoding::default(),
            params,
            bitrate_bps,
            decoder: None,
            encoder: None,
            filter: BeautyFilter::new(),
            waiting_for_keyframe: true,
            force_keyframe: false,
            stats: PipelineStats::default(),
            pictures: None,
        }
    }

    /// Which VP8 version the encoder writes when the output is VP8 (from the next
    /// encoder opened on).
    pub fn with_vp8_version(mut self, version: Vp8Version) -> Self {
        self.vp8.version = version;
        self
    }

    /// How the VP8 encoder runs (version and threads), from the next one opened on.
    pub fn with_vp8(mut self, vp8: Vp8Encoding) -> Self {
        self.vp8 = vp8;
        self
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Hands the agent's decoded pictures to moderation when it asks (`None`: stop).
    pub fn set_picture_sink(&mut self, sink: Option<Arc<dyn kefu_proto::PictureSink>>) {
        self.pictures = sink;
    }

    /// New settings apply from the next frame on.
    pub fn set_params(&mut self, params: BeautyParams) {
        self.params = params;
    }

    /// Follows the bandwidth estimate towards the customer.
    pub fn set_bitrate(&mut self, bps: u32) {
        if bps != self.bitrate_bps {
            self.bitrate_bps = bps;
            if let Some(e) = self.encoder.as_mut() {
                e.retarget(bps);
            }
        }
    }

    /// The customer asked for a keyframe (PLI/FIR): our encoder makes the next one.
    pub fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    pub fn process(&mut self, input: &InputFrame) -> Result<Processed, PipelineError> {
        self.process_with(input, true)
    }

    /// Frames were lost before reaching the decoder (a full queue): the next frames
    /// reference pictures it never saw, so wait for a keyframe.
    pub fn resync(&mut self) {
        self.waiting_for_keyframe = true;
    }

    /// Decodes `input`; filters and encodes it only with `encode` (a pipeline that is
    /// behind still decodes every frame, so references stay intact, but only encodes
    /// the newest).
    pub fn process_with(
        &mut self,
        input: &InputFrame,
        encode: bool,
    ) -> Result<Processed, PipelineError> {
        let mut out = Processed::default();
        if !input.contiguous {
            self.waiting_for_keyframe = true;
        }
        if self.waiting_for_keyframe && !input.keyframe {
            self.stats.skipped_waiting_for_keyframe += 1;
            out.need_keyframe = true;
            return Ok(out);
        }
        if self
            .decoder
            .as_ref()
            .is_none_or(|d| d.codec() != input.codec)
        {
            match Decoder::new(input.codec) {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    tracing::warn!("no decoder for {:?}: {e}", input.codec);
                    self.stats.decode_errors += 1;
                    return Ok(out);
                }
            }
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(out);
        };
        self.waiting_for_keyframe = false;
        if let Err(e) = decoder.send(&input.data) {
            tracing::debug!("agent video frame did not decode: {e}");
            self.stats.decode_errors += 1;
            self.waiting_for_keyframe = true;
            out.need_keyframe = true;
            return Ok(out);
        }
        // The decoder's picture is read by the filter, which writes straight into the
        // encoder's frame: no copies of the pipeline's own.
        loop {
            let picture = match decoder.next_picture() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                // As before the decoder handed out views: a picture that cannot be
                // made I420 counts as a decode error, and the stream waits for a
                // keyframe.
                Err(e) => {
                    tracing::debug!("decoded picture not converted to I420: {e}");
                    self.stats.decode_errors += 1;
                    self.waiting_for_keyframe = true;
                    out.need_keyframe = true;
                    return Ok(out);
                }
            };
            self.stats.decoded += 1;
            if let Some(sink) = &self.pictures
                && sink.decoded(kefu_proto::Side::Agent)
            {
                let agent = kefu_proto::Side::Agent;
                match crate::moderation::packed_i420(
                    &picture,
                    agent,
                    kefu_proto::PictureSource::Pipeline,
                ) {
                    Some(p) => {
                        sink.offer(p);
                        self.stats.pictures_to_moderation += 1;
                    }
                    None => sink.skipped(agent),
                }
            }
            if !encode {
                self.stats.not_encoded += 1;
                continue;
            }
            let (w, h) = (picture.width, picture.height);
            if self.encoder.as_ref().is_none_or(|e| e.size() != (w, h)) {
                self.encoder = Some(Encoder::new(
                    self.output,
                    (w, h),
                    self.bitrate_bps,
                    self.vp8,
                )?);
                self.force_keyframe = true;
            }
            let Some(encoder) = self.encoder.as_mut() else {
                continue;
            };
            let target = encoder.picture_mut();
            if let Err(e) = filter_into(&mut self.filter, &self.params, &picture, target) {
                // A filter failure must not cost the call its picture: send it unfiltered.
                tracing::warn!("beauty filter failed, frame sent as is: {e}");
                copy_into(&picture, target);
            }
            let key = std::mem::take(&mut self.force_keyframe);
            for (data, keyframe) in encoder.encode(input.rtp_time, key)? {
                self.stats.encoded += 1;
                out.frames.push(OutputFrame {
                    rtp_time: input.rtp_time,
                    keyframe,
                    data,
                });
            }
        }
        Ok(out)
    }
}

/// One black keyframe per codec (320×240), for the SFU to send in place of video that
/// moderation withholds. A codec whose encoder is missing gets none (logged).
pub fn black_keyframes() -> crate::core::BlankFrames {
    codec::init();
    let black = |codec: VideoCodec| -> Result<Option<Arc<[u8]>>, PipelineError> {
        let mut encoder = Encoder::new(codec, (320, 240), 200_000, Vp8Encoding::default())?;
        let picture = encoder.picture_mut();
        for (plane, value) in [(0, 16u8), (1, 128), (2, 128)] {
            picture.data_mut(plane).fill(value);
        }
        Ok(encoder
            .encode(0, true)?
            .into_iter()
            .find(|(_, key)| *key)
            .map(|(data, _)| Arc::from(data)))
    };
    let mut frames = crate::core::BlankFrames::default();
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
        match black(codec) {
            Ok(Some(frame)) => match codec {
                VideoCodec::Vp8 => frames.vp8 = Some(frame),
                VideoCodec::H264 => frames.h264 = Some(frame),
            },
            Ok(None) => tracing::warn!("the {codec:?} encoder gave no black keyframe"),
            Err(e) => tracing::warn!("no black {codec:?} keyframe: {e}"),
        }
    }
    frames
}

/// The filtered picture into the encoder's frame (of the picture's size), plane by plane.
fn filter_into(
    filter: &mut BeautyFilter,
    params: &BeautyParams,
    picture: &I420Ref<'_>,
    target: &mut ffmpeg::frame::Video,
) -> Result<(), kefu_beauty::FilterError> {
    filter.load(picture, params)?;
    let stride = |plane| target.stride(plane);
    let (sy, su, sv) = (stride(0), stride(1), stride(2));
    filter.write_y(target.data_mut(0), sy)?;
    filter.write_u(target.data_mut(1), su)?;
    filter.write_v(target.data_mut(2), sv)
}

/// The picture into the encoder's frame as it is.
fn copy_into(picture: &I420Ref<'_>, target: &mut ffmpeg::frame::Video) {
    let (w, h) = (picture.width, picture.height);
    for (plane, src, src_stride, width, rows) in [
        (0, picture.y, picture.y_stride, w, h),
        (1, picture.u, picture.u_stride, w / 2, h / 2),
        (2, picture.v, picture.v_stride, w / 2, h / 2),
    ] {
        let stride = target.stride(plane);
        let dst = target.data_mut(plane);
        for row in 0..rows {
            if let (Some(d), Some(s)) = (
                dst.get_mut(row * stride..row * stride + width),
                src.get(row * src_stride..row * src_stride + width),
            ) {
                d.copy_from_slice(s);
            }
        }
    }
}

#[cfg(test)]
mod tests;
