//! Synthetic but real media for tests and benchmarks: a tone encoded with libopus and
//! a moving picture encoded with libvpx, as the taps a call would produce.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;

use kefu_proto::{Codec, Side, TapFrame};

/// Encoder setup failed (a missing codec in this FFmpeg build).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyntheticError(String);

/// Encodes `secs` of a tone (Opus, 20 ms packets) and, when `video_until` is set, a
/// moving 320×240 test picture (VP8, 30 fps) for that many seconds, as taps from `start`.
pub fn party_frames(
    party: Side,
    tone_hz: f32,
    secs: f32,
    video_until: Option<f32>,
    start: Instant,
) -> Result<Vec<TapFrame>, SyntheticError> {
    party_frames_sized(
        party,
        tone_hz,
        secs,
        video_until.map(|s| (s, 320, 240)),
        start,
    )
}

/// [`party_frames`] with the picture's length and size: `video` is (seconds, width, height).
pub fn party_frames_sized(
    party: Side,
    tone_hz: f32,
    secs: f32,
    video: Option<(f32, u32, u32)>,
    start: Instant,
) -> Result<Vec<TapFrame>, SyntheticError> {
    ffmpeg::init().map_err(err)?;
    let mut out = Vec::new();
    // Opus.
    let codec = ffmpeg::encoder::find_by_name("libopus")
        .ok_or_else(|| SyntheticError("libopus missing".into()))?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(err)?;
    enc.set_rate(48_000);
    enc.set_channel_layout(ffmpeg::ChannelLayout::MONO);
    enc.set_format(ffmpeg::format::Sample::I16(
        ffmpeg::format::sample::Type::Packed,
    ));
    enc.set_bit_rate(48_000);
    enc.set_time_base((1, 48_000));
    let mut enc = enc.open().map_err(err)?;
    let mut frame = ffmpeg::frame::Audio::new(
        ffmpeg::format::Sample::I16(ffmpeg::format::sample::Type::Packed),
        960,
        ffmpeg::ChannelLayout::MONO,
    );
    frame.set_rate(48_000);
    let packets = (secs * 50.0) as i64;
    let mut pkt = ffmpeg::Packet::empty();
    for n in 0..packets {
        for (k, b) in frame.data_mut(0).chunks_exact_mut(2).take(960).enumerate() {
            let t = (n * 960 + k as i64) as f32 / 48_000.0;
            let v = (t * tone_hz * std::f32::consts::TAU).sin() * 0.4 * 32767.0;
            b.copy_from_slice(&(v as i16).to_ne_bytes());
        }
        frame.set_pts(Some(n * 960));
        enc.send_frame(&frame).map_err(err)?;
        while enc.receive_packet(&mut pkt).is_ok() {
            // Packet k carries 20 ms from k × 960 (libopus's own pts start negative).
            let k = out.len() as u64;
            out.push(tap(
                party,
                Codec::Opus,
                1000 + k * 960,
                48_000,
                start,
                k as f64 * 0.02,
                true,
                pkt.data().unwrap_or(&[]),
            ));
        }
    }
    // VP8.
    if let Some((until, width, height)) = video {
        let codec = ffmpeg::encoder::find_by_name("libvpx")
            .ok_or_else(|| SyntheticError("libvpx missing".into()))?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(err)?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(ffmpeg::format::Pixel::YUV420P);
        enc.set_time_base((1, 30));
        enc.set_bit_rate((width * height * 3) as usize);
        enc.set_gop(30);
        let mut opts = ffmpeg::Dictionary::new();
        opts.set("deadline", "realtime");
        opts.set("cpu-used", "8");
        let mut enc = enc.open_with(opts).map_err(err)?;
        let mut pic = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, width, height);
        for n in 0..(until * 30.0) as i64 {
            let stride = pic.stride(0);
            for (i, px) in pic.data_mut(0).iter_mut().enumerate() {
                *px = ((i % stride) as i64 + n * 4) as u8;
            }
            pic.set_pts(Some(n));
            enc.send_frame(&pic).map_err(err)?;
            while enc.receive_packet(&mut pkt).is_ok() {
                let pts = pkt.pts().unwrap_or(0);
                let mut f = tap(
                    party,
                    Codec::Vp8,
                    5000 + pts as u64 * 3000,
                    90_000,
                    start,
                    pts as f64 / 30.0,
                    pkt.is_key(),
                    pkt.data().unwrap_or(&[]),
                );
                f.keyframe = pkt.is_key();
                out.push(f);
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)] // one call site, every field named there
fn tap(
    party: Side,
    codec: Codec,
    rtp: u64,
    rate: u32,
    start: Instant,
    at: f64,
    key: bool,
    data: &[u8],
) -> TapFrame {
    TapFrame {
        side: party,
        codec,
        rtp_time: rtp,
        clock_rate: rate,
        // 30 ms of network delay.
        arrival: start + Duration::from_secs_f64(at + 0.03),
        sender_clock: None,
        contiguous: true,
        keyframe: key,
        data: Arc::from(data),
    }
}

fn err(e: ffmpeg::Error) -> SyntheticError {
    SyntheticError(e.to_string())
}

/// This process's CPU time, in seconds: what benchmarks divide work by.
pub use kefu_proto::process::cpu_seconds as process_cpu_seconds;
