//! Agent-video pipeline benchmark (run with `make bench`; results in BENCHMARKS.md):
//! decode → beauty (natural) → encode of a 720p30 VP8 stream on one thread, with
//! the per-frame latency distribution. Input: libvpx-encoded synthetic 720p video
//! (kefu_recorder::synthetic), encoded once before timing.

use std::time::{Duration, Instant};

use kefu_beauty::Preset;
use kefu_media_server::pipeline::{BeautyPipeline, InputFrame, VideoCodec};
use kefu_recorder::synthetic::party_frames_sized;
use kefu_recorder::{Codec, Party};

fn main() {
    opencv_single_thread();
    let start = Instant::now();
    let frames: Vec<InputFrame> =
        party_frames_sized(Party::Agent, 440.0, 10.0, Some((10.0, 1280, 720)), start)
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
            .collect();
    for (label, output) in [("vp8", VideoCodec::Vp8), ("h264", VideoCodec::H264)] {
        let mut pipeline = BeautyPipeline::new(output, Preset::Natural.params(), 1_500_000);
        let mut latencies: Vec<Duration> = Vec::with_capacity(frames.len());
        let began = Instant::now();
        for f in &frames {
            let t = Instant::now();
            let out = pipeline.process(f).expect("process");
            assert!(!out.frames.is_empty(), "every frame comes out");
            latencies.push(t.elapsed());
        }
        let total = began.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
        };
        let fps = frames.len() as f64 / total;
        println!(
            "pipeline/720p30_vp8_to_{label}: {fps:.0} fps on one thread = {:.1} streams per core; added latency p50 {:.1} ms, p99 {:.1} ms",
            fps / 30.0,
            pct(0.5),
            pct(0.99)
        );
    }
}

fn opencv_single_thread() {
    // The filter runs on the pipeline's own thread; OpenCV must not fan out further.
    kefu_beauty::set_single_threaded();
}
