//! FFmpeg decoders and encoders for the pipeline.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use kefu_beauty::I420Ref;

use super::PipelineError;
use crate::config::Vp8Encoding;

pub use kefu_proto::VideoCodec;

/// FFmpeg's one-time setup. The recorder does the same in the same process; both are
/// idempotent (FFmpeg's own init is, and the log level is one global).
pub(super) fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::error!("FFmpeg failed to initialise: {e}");
        }
        // FFmpeg logs to stderr, outside tracing; decode errors are counted instead.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

pub(crate) struct Decoder {
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

    /// Hands the decoder one frame's bytes; its pictures come from [`Self::next_picture`].
    pub fn send(&mut self, data: &[u8]) -> Result<(), ffmpeg::Error> {
        self.inner.send_packet(&ffmpeg::Packet::copy(data))
    }

    /// The next decoded picture as I420 (converted when the decoder gives another
    /// format, e.g. full-range yuvj420p), or `None` when there is none (real-time
    /// decoders give 0 or 1 per frame). It borrows the decoder's own picture, which
    /// the decoder predicts later frames from: read it, never write it.
    pub fn next_picture(&mut self) -> Result<Option<I420Ref<'_>>, ffmpeg::Error> {
        if self.inner.receive_frame(&mut self.frame).is_err() {
            return Ok(None);
        }
        if self.frame.format() == Pixel::YUV420P {
            return Ok(Some(view(&self.frame)));
        }
        let (w, h) = (self.frame.width(), self.frame.height());
        let fresh = self.to_i420.as_ref().is_none_or(|(s, _)| {
            s.input().width != w || s.input().height != h || s.input().format != self.frame.format()
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
        match self.to_i420.as_mut() {
            Some((ctx, out)) => {
                ctx.run(&self.frame, out)?;
                Ok(Some(view(out)))
            }
            None => Ok(None),
        }
    }
}

/// An I420 frame's planes (sizes rounded down to even, as I420 wants them).
pub(super) fn view(frame: &ffmpeg::frame::Video) -> I420Ref<'_> {
    I420Ref {
        width: frame.width() as usize & !1,
        height: frame.height() as usize & !1,
        y: frame.data(0),
        y_stride: frame.stride(0),
        u: frame.data(1),
        u_stride: frame.stride(1),
        v: frame.data(2),
        v_stride: frame.stride(2),
    }
}

pub(super) struct Encoder {
    codec: VideoCodec,
    size: (usize, usize),
    inner: ffmpeg::encoder::Video,
    frame: ffmpeg::frame::Video,
    first_rtp: Option<u64>,
    bitrate_bps: u32,
    vp8: Vp8Encoding,
    /// A VP8 rate waiting for [`VP8_REOPEN_UP_AFTER`] frames since the last open.
    wanted_bps: Option<u32>,
    frames_since_open: u32,
}

/// VP8 follows a lower estimate below this share of its rate at once...
const VP8_REOPEN_DOWN: f64 = 0.7;
/// ...and a higher one above this share...
const VP8_REOPEN_UP: f64 = 1.5;
/// ...once this many frames (5 s at 30 fps) came from the current encoder.
const VP8_REOPEN_UP_AFTER: u32 = 150;

impl Encoder {
    pub fn new(
        codec: VideoCodec,
        (width, height): (usize, usize),
        bitrate_bps: u32,
        vp8: Vp8Encoding,
    ) -> Result<Self, PipelineError> {
        let inner = open(codec, (width, height), bitrate_bps, vp8)?;
        Ok(Self {
            codec,
            size: (width, height),
            inner,
            frame: ffmpeg::frame::Video::new(Pixel::YUV420P, width as u32, height as u32),
            first_rtp: None,
            bitrate_bps,
            vp8,
            wanted_bps: None,
            frames_since_open: 0,
        })
    }

    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// The picture [`Self::encode`] encodes next: fill its planes first.
    pub fn picture_mut(&mut self) -> &mut ffmpeg::frame::Video {
        &mut self.frame
    }

    /// A new target bitrate. H.264 takes it from the next frame on, without a
    /// keyframe (FFmpeg's x264 wrapper reconfigures the rate control when the
    /// context's rates change; x264 allows that with VBV on, see [`open`]).
    /// FFmpeg's libvpx wrapper reads the rate only when it opens, and a reopened
    /// encoder starts on a keyframe, so VP8 follows big moves only: down at once (the
    /// path is congested; one keyframe costs less than sending too much for seconds),
    /// up once the encoder has run for 5 s.
    pub fn retarget(&mut self, bps: u32) {
        match self.codec {
            VideoCodec::H264 => {
                self.inner.set_bit_rate(bps as usize);
                self.inner.set_max_bit_rate(bps as usize);
                self.bitrate_bps = bps;
            }
            VideoCodec::Vp8 => {
                let ratio = f64::from(bps) / f64::from(self.bitrate_bps);
                self.wanted_bps =
                    (!(VP8_REOPEN_DOWN..=VP8_REOPEN_UP).contains(&ratio)).then_some(bps);
            }
        }
    }

    /// Encodes the picture in [`Self::picture_mut`]; returns (frame bytes, keyframe) for
    /// each packet out.
    pub fn encode(
        &mut self,
        rtp_time: u64,
        mut keyframe: bool,
    ) -> Result<Vec<(Vec<u8>, bool)>, PipelineError> {
        if let Some(bps) = self.wanted_bps
            && (bps < self.bitrate_bps || self.frames_since_open >= VP8_REOPEN_UP_AFTER)
        {
            self.inner = open(self.codec, self.size, bps, self.vp8)?;
            self.bitrate_bps = bps;
            self.wanted_bps = None;
            self.frames_since_open = 0;
            // Timestamps continue from the first frame of the stream.
            keyframe = true;
        }
        self.frames_since_open = self.frames_since_open.saturating_add(1);
        let first = *self.first_rtp.get_or_insert(rtp_time);
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
    (width, height): (usize, usize),
    bitrate_bps: u32,
    vp8: Vp8Encoding,
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
    match codec {
        VideoCodec::Vp8 => {
            // One thread by default (media.beauty_vp8_threads): two save a quarter of
            // the latency on an idle machine, but their row threads spin-wait on each
            // other, and under load that spinning is most of the pipeline's CPU
            // (BENCHMARKS.md, load and soak).
            opts.set("threads", &vp8.threads.max(1).to_string());
            opts.set("deadline", "realtime");
            // Negative = a fixed speed. A positive cpu-used lets libvpx spend up to
            // (16 − n)/16 of the frame interval and slow down when it has time, which
            // a server running many streams must not do. -10 and -12 (faster) let
            // artefacts undo the smoothing the customer sees (beauty e2e); numbers in
            // BENCHMARKS.md.
            opts.set("cpu-used", "-8");
            // The bitstream version (media.beauty_vp8): 0 unless configured; 1 costs
            // ≈ 20 % less encoder CPU at the same PSNR on a face (BENCHMARKS.md).
            opts.set("profile", &vp8.version.number().to_string());
            opts.set("lag-in-frames", "0");
            opts.set("error-resilient", "1");
            opts.set("auto-alt-ref", "0");
        }
        VideoCodec::H264 => {
            opts.set("threads", "1");
            opts.set("preset", "ultrafast");
            opts.set("tune", "zerolatency");
            opts.set("profile", "baseline");
            opts.set("forced-idr", "1");
            // VBV on (a 0.5 s buffer): real-time rate limits, and without it x264
            // ignores a new bit rate on reconfiguration.
            opts.set("maxrate", &bitrate_bps.to_string());
            opts.set("bufsize", &(bitrate_bps / 2).to_string());
            // SPS/PPS with every keyframe, so a subscriber can start at any of them.
            opts.set("x264-params", "repeat-headers=1:annexb=1");
        }
    }
    enc.open_with(opts).map_err(err)
}
