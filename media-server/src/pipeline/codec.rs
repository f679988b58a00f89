//! FFmpeg decoders and encoders for the pipeline.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use super::{PipelineError, Planes};

/// Video codecs the SFU forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    H264,
}

/// FFmpeg's one-time setup, shared with the recorder (same library, same process).
pub(super) fn init() {
    kefu_recorder::transcode::init();
}

pub(super) struct Decoder {
    codec: VideoCodec,
    inner: ffmpeg::decoder::Video,
    frame: ffmpeg::frame::Video,
    /// For decoders that give something other than I420 (e.g. full-range yuvj420p).
    to_i420: Option<(scaling::Context, ffmpeg::frame::Video)>,
}

impl Decoder {
    pub fn new(codec: VideoCodec) -> Result<Self, ffmpeg::Error> {
        let id = match codec {
            VideoCodec::Vp8 => ffmpeg::codec::Id::VP8,
            VideoCodec::H264 => ffmpeg::codec::Id::H264,
        };
        let found = ffmpeg::decoder::find(id).ok_or(ffmpeg::Error::DecoderNotFound)?;
        let inner = ffmpeg::codec::context::Context::new_with_codec(found)
            .decoder()
            .video()?;
        Ok(Self {
            codec,
            inner,
            frame: ffmpeg::frame::Video::empty(),
            to_i420: None,
        })
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Decodes one frame's bytes into `planes`; returns how many pictures came out
    /// (each overwrote `planes`; real-time decoders give 0 or 1).
    pub fn decode(&mut self, data: &[u8], planes: &mut Planes) -> Result<usize, ffmpeg::Error> {
        self.inner.send_packet(&ffmpeg::Packet::copy(data))?;
        let mut n = 0;
        while self.inner.receive_frame(&mut self.frame).is_ok() {
            if self.frame.format() == Pixel::YUV420P {
                planes.fill_from(&self.frame);
            } else {
                let (w, h) = (self.frame.width(), self.frame.height());
                let fresh = self.to_i420.as_ref().is_none_or(|(s, _)| {
                    s.input().width != w
                        || s.input().height != h
                        || s.input().format != self.frame.format()
                });
                if fresh {
                    let ctx = scaling::Context::get(
                        self.frame.format(),
                        w,
                        h,
                        Pixel::YUV420P,
                        w,
                        h,
                        scaling::Flags::FAST_BILINEAR,
                    )?;
                    self.to_i420 = Some((ctx, ffmpeg::frame::Video::new(Pixel::YUV420P, w, h)));
                }
                if let Some((ctx, out)) = self.to_i420.as_mut() {
                    ctx.run(&self.frame, out)?;
                    planes.fill_from(out);
                }
            }
            n += 1;
        }
        Ok(n)
    }
}

pub(super) struct Encoder {
    codec: VideoCodec,
    size: (usize, usize),
    inner: ffmpeg::encoder::Video,
    frame: ffmpeg::frame::Video,
    first_rtp: Option<u64>,
    bitrate_bps: u32,
    retarget_to: Option<u32>,
}

impl Encoder {
    pub fn new(
        codec: VideoCodec,
        width: usize,
        height: usize,
        bitrate_bps: u32,
    ) -> Result<Self, PipelineError> {
        let inner = open(codec, width, height, bitrate_bps)?;
        Ok(Self {
            codec,
            size: (width, height),
            inner,
            frame: ffmpeg::frame::Video::new(Pixel::YUV420P, width as u32, height as u32),
            first_rtp: None,
            bitrate_bps,
            retarget_to: None,
        })
    }

    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// A new target bitrate, applied at the next keyframe (reopening the encoder).
    pub fn retarget(&mut self, bps: u32) {
        self.retarget_to = Some(bps);
    }

    /// Encodes one picture; returns (frame bytes, keyframe) for each packet out.
    pub fn encode(
        &mut self,
        planes: &Planes,
        rtp_time: u64,
        mut keyframe: bool,
    ) -> Result<Vec<(Vec<u8>, bool)>, PipelineError> {
        // A big change of rate is worth a reopen; the new encoder starts on a keyframe.
        if let Some(bps) = self.retarget_to.take()
            && (bps as f64 / self.bitrate_bps as f64 - 1.0).abs() > 0.2
        {
            self.inner = open(self.codec, self.size.0, self.size.1, bps)?;
            self.bitrate_bps = bps;
            keyframe = true;
        }
        let first = *self.first_rtp.get_or_insert(rtp_time);
        planes.copy_to(&mut self.frame);
        self.frame
            .set_pts(Some(rtp_time.wrapping_sub(first) as i64));
        self.frame.set_kind(if keyframe {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        self.inner
            .send_frame(&self.frame)
            .map_err(|e| PipelineError::Encoder(e.to_string()))?;
        let mut out = Vec::new();
        let mut packet = ffmpeg::Packet::empty();
        while self.inner.receive_packet(&mut packet).is_ok() {
            if let Some(data) = packet.data() {
                out.push((data.to_vec(), packet.is_key()));
            }
        }
        Ok(out)
    }
}

fn open(
    codec: VideoCodec,
    width: usize,
    height: usize,
    bitrate_bps: u32,
) -> Result<ffmpeg::encoder::Video, PipelineError> {
    let (name, label) = match codec {
        VideoCodec::Vp8 => ("libvpx", "VP8"),
        VideoCodec::H264 => ("libx264", "H.264"),
    };
    let found = ffmpeg::encoder::find_by_name(name).ok_or(PipelineError::NoEncoder(label))?;
    let err = |e: ffmpeg::Error| PipelineError::Encoder(format!("{label}: {e}"));
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(found)
        .encoder()
        .video()
        .map_err(err)?;
    enc.set_width(width as u32);
    enc.set_height(height as u32);
    enc.set_format(Pixel::YUV420P);
    // Timestamps are RTP time (90 kHz) since the first frame.
    enc.set_time_base((1, 90_000));
    enc.set_frame_rate(Some((30, 1)));
    enc.set_bit_rate(bitrate_bps as usize);
    enc.set_max_b_frames(0);
    // Keyframes come on request (PLI) or every 10 s as a safety net.
    enc.set_gop(300);
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("threads", "1");
    match codec {
        VideoCodec::Vp8 => {
            opts.set("deadline", "realtime");
            // 8: faster settings (12, 16) doubled throughput but their artefacts undid
            // the smoothing the customer sees (measured by the beauty e2e).
            opts.set("cpu-used", "8");
            opts.set("lag-in-frames", "0");
            opts.set("error-resilient", "1");
            opts.set("auto-alt-ref", "0");
        }
        VideoCodec::H264 => {
            opts.set("preset", "ultrafast");
            opts.set("tune", "zerolatency");
            opts.set("profile", "baseline");
            opts.set("forced-idr", "1");
            // SPS/PPS with every keyframe, so a subscriber can start at any of them.
            opts.set("x264-params", "repeat-headers=1:annexb=1");
        }
    }
    enc.open_with(opts).map_err(err)
}
