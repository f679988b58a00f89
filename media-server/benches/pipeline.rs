//! Agent-video pipeline benchmark (run with `make bench`; results in BENCHMARKS.md):
//! decode → beauty (natural) → encode of a 720p30 VP8 stream, frames per core (from
//! the process's CPU time) and the per-frame latency distribution. Two inputs, encoded once before timing:
//! - `camera`: what a browser sends of an agent: a real face photo (test-data/
//!   astronaut.png, from Debian's python3-skimage) swaying gently with sensor noise,
//!   libvpx realtime at 2.5 Mbps, one keyframe at the start;
//! - `ramp`: kefu_synthetic's moving ramp with a keyframe every second (a
//!   harsher case: every keyframe changes every block the encoder sees).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use kefu_beauty::Preset;
use kefu_media_server::Vp8Version;
use kefu_media_server::pipeline::{BeautyPipeline, InputFrame, VideoCodec};
use kefu_proto::{Codec, Side};
use kefu_synthetic::{party_frames_sized, process_cpu_seconds as cpu_seconds};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const SECONDS: u32 = 20;

fn main() {
    // The filter runs on the pipeline's own thread; OpenCV must not fan out further.
    kefu_beauty::set_single_threaded();
    ffmpeg::init().expect("FFmpeg initialises");
    // `cargo bench … -- <text>` runs the benchmarks whose names contain the text.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let inputs: [(&str, MakeInput); 2] = [("camera", camera_frames), ("ramp", ramp_frames)];
    for (input, make_frames) in inputs {
        let mut frames = None;
        // VP8 out as configured by default (version 0), and as `media.beauty_vp8 =
        // "simple"` makes it (version 1), on the camera input.
        let outputs = [
            ("vp8", VideoCodec::Vp8, Vp8Version::Normal),
            ("vp8_version1", VideoCodec::Vp8, Vp8Version::Simple),
            ("h264", VideoCodec::H264, Vp8Version::Normal),
        ];
        for (label, output, version) in outputs {
            let name = format!("pipeline/720p30_{input}_vp8_to_{label}");
            if name.contains(&filter) && (input == "camera" || version == Vp8Version::Normal) {
                run(
                    &name,
                    frames.get_or_insert_with(make_frames),
                    output,
                    version,
                );
            }
        }
    }
}

/// Encodes one input stream (before timing starts).
type MakeInput = fn() -> Vec<InputFrame>;

fn run(name: &str, frames: &[InputFrame], output: VideoCodec, version: Vp8Version) {
    let mut pipeline =
        BeautyPipeline::new(output, Preset::Natural.params(), 1_500_000).with_vp8_version(version);
    let mut latencies: Vec<Duration> = Vec::with_capacity(frames.len());
    let cpu0 = cpu_seconds();
    for f in frames {
        let t = Instant::now();
        let out = pipeline.process(f).expect("process");
        assert!(!out.frames.is_empty(), "every frame comes out");
        latencies.push(t.elapsed());
    }
    let cpu = cpu_seconds() - cpu0;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    // Per core from CPU time: the VP8 encoder runs two threads.
    let fps_per_core = frames.len() as f64 / cpu;
    println!(
        "{name}: {fps_per_core:.0} fps per core = {:.1} streams per core; added latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        fps_per_core / 30.0,
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
}

fn ramp_frames() -> Vec<InputFrame> {
    party_frames_sized(
        Side::Agent,
        440.0,
        SECONDS as f32,
        Some((SECONDS as f32, WIDTH, HEIGHT)),
        Instant::now(),
    )
    .expect("synthetic 720p VP8")
    .into_iter()
    .filter(|f| f.codec == Codec::Vp8)
    .map(|f| InputFrame {
        codec: VideoCodec::Vp8,
        rtp_time: f.rtp_time,
        keyframe: f.keyframe,
        contiguous: true,
        data: f.data,
    })
    .collect()
}

/// The face photo, 16 px wider than the frame so it can sway, as I420.
fn photo() -> ffmpeg::frame::Video {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-data/astronaut.png");
    assert!(
        path.exists(),
        "{} missing: run deploy/fetch-test-data.sh (make bench does)",
        path.display()
    );
    let mut input = ffmpeg::format::input(&path).expect("open the photo");
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .expect("a picture");
    let index = stream.index();
    let mut decoder = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().video())
        .expect("png decoder");
    let mut rgb = ffmpeg::frame::Video::empty();
    for (s, packet) in input.packets() {
        if s.index() == index {
            decoder.send_packet(&packet).expect("png packet");
            if decoder.receive_frame(&mut rgb).is_ok() {
                break;
            }
        }
    }
    let mut out = ffmpeg::frame::Video::empty();
    ffmpeg::software::scaling::Context::get(
        rgb.format(),
        rgb.width(),
        rgb.height(),
        ffmpeg::format::Pixel::YUV420P,
        WIDTH + 16,
        HEIGHT,
        ffmpeg::software::scaling::Flags::BICUBIC,
    )
    .and_then(|mut s| s.run(&rgb, &mut out))
    .expect("scale the photo");
    out
}

fn camera_frames() -> Vec<InputFrame> {
    let photo = photo();
    let codec = ffmpeg::encoder::find_by_name("libvpx").expect("libvpx");
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .expect("encoder context");
    enc.set_width(WIDTH);
    enc.set_height(HEIGHT);
    enc.set_format(ffmpeg::format::Pixel::YUV420P);
    enc.set_time_base((1, 30));
    enc.set_bit_rate(2_500_000);
    enc.set_gop(100_000);
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("deadline", "realtime");
    opts.set("cpu-used", "-6");
    opts.set("lag-in-frames", "0");
    let mut enc = enc.open_with(opts).expect("libvpx opens");
    let mut pic = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, WIDTH, HEIGHT);
    let mut noise: u32 = 0x9e37_79b9;
    let mut frames = Vec::new();
    let mut packet = ffmpeg::Packet::empty();
    for n in 0..(SECONDS * 30) {
        // A slow sway of ±8 px (a person talking) and ±3 of sensor noise on luma.
        let shift = (8.0 + 8.0 * (f64::from(n) / 30.0 * 1.3).sin()).round() as usize;
        for plane in 0..3 {
            let (w, h) = if plane == 0 {
                (WIDTH as usize, HEIGHT as usize)
            } else {
                (WIDTH as usize / 2, HEIGHT as usize / 2)
            };
            let off = if plane == 0 { shift } else { shift / 2 };
            let (src_stride, dst_stride) = (photo.stride(plane), pic.stride(plane));
            let src = photo.data(plane);
            let dst = pic.data_mut(plane);
            for row in 0..h {
                let line = &src[row * src_stride + off..][..w];
                let out = &mut dst[row * dst_stride..][..w];
                for (o, &v) in out.iter_mut().zip(line) {
                    if plane == 0 {
                        noise ^= noise << 13;
                        noise ^= noise >> 17;
                        noise ^= noise << 5;
                        *o = (i32::from(v) + (noise % 7) as i32 - 3).clamp(0, 255) as u8;
                    } else {
                        *o = v;
                    }
                }
            }
        }
        pic.set_pts(Some(i64::from(n)));
        enc.send_frame(&pic).expect("encode");
        while enc.receive_packet(&mut packet).is_ok() {
            let pts = packet.pts().unwrap_or(0) as u64;
            frames.push(InputFrame {
                codec: VideoCodec::Vp8,
                rtp_time: 5000 + pts * 3000,
                keyframe: packet.is_key(),
                contiguous: true,
                data: packet.data().unwrap_or(&[]).into(),
            });
        }
    }
    frames
}
