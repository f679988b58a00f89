//! Content moderation's cost per screened stream (run with `make bench`; results in
//! BENCHMARKS.md), from the process's CPU time, all parts measured in this run:
//! - decode: moderation's own decoder (`OwnDecoder`) on VP8 streams of 640×480 and
//!   1280×720 (kefu_synthetic's moving ramp, a keyframe every second: harsher than a
//!   camera), counted at 30 fps — the cost a call pays only when nothing else decodes
//!   it;
//! - hand-over: copying a decoded picture to moderation, row by row out of strided
//!   planes (what the recorder, the pipeline or the own decoder does once per sample);
//! - classify: I420 → BGR and one open_nsfw inference (`models/open_nsfw.onnx`).
//!
//! Per stream at default sampling: 1 sample/s in the warm-up, 0.5/s after. The
//! baseline it is held against is the naive design: classify every frame (30/s).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use kefu_media_server::moderation::OwnDecoder;
use kefu_proto::{Codec, FrameSink, I420Picture, PictureSink, RoomId, Side, TapFrame};
use kefu_synthetic::{party_frames_sized, process_cpu_seconds as cpu_seconds};
use kefu_vision::{NudityClassifier, OpenNsfw, Picture};

const SECONDS: u32 = 20;
const FPS: f64 = 30.0;
const INFERENCES: usize = 30;

/// Counts decoded pictures and wants none: the decode alone.
#[derive(Debug, Default)]
struct Counting {
    decoded: AtomicU64,
}

impl PictureSink for Counting {
    fn decoded(&self, _side: Side) -> bool {
        self.decoded.fetch_add(1, Ordering::Relaxed);
        false
    }
    fn offer(&self, picture: I420Picture) {
        std::hint::black_box(picture);
    }
}

fn main() {
    ffmpeg::init().expect("FFmpeg initialises");
    kefu_vision::set_single_threaded();
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut nsfw = OpenNsfw::load(&models).expect("models/open_nsfw.onnx (deploy/fetch-models.sh)");
    for (label, width, height) in [("640x480", 640, 480), ("1280x720", 1280, 720)] {
        let frames: Vec<TapFrame> = party_frames_sized(
            Side::Customer,
            440.0,
            SECONDS as f32,
            Some((SECONDS as f32, width, height)),
            Instant::now(),
        )
        .expect("synthetic VP8")
        .into_iter()
        .filter(|f| f.codec == Codec::Vp8)
        .collect();
        let decode_ms = decode_cpu(&frames) / frames.len() as f64 * 1000.0;
        let handover_ms = handover_ms(width, height);
        let picture = gradient_picture(width, height);
        let cpu0 = cpu_seconds();
        for _ in 0..INFERENCES {
            let p = Picture::from_i420(picture.width, picture.height, &picture.data).expect("bgr");
            std::hint::black_box(nsfw.nsfw_score(&p).expect("score"));
        }
        let classify_ms = (cpu_seconds() - cpu0) / INFERENCES as f64 * 1000.0;

        let sample_ms = handover_ms + classify_ms;
        let share = |ms_per_second: f64| ms_per_second / 1000.0 * 100.0;
        let shared = |rate: f64| share(rate * sample_ms);
        let own = |rate: f64| share(FPS * decode_ms + rate * sample_ms);
        let naive = share(FPS * (decode_ms + sample_ms));
        println!(
            "moderation/{label}: decode {decode_ms:.2} ms/frame, hand-over {handover_ms:.3} ms/sample, convert+classify {classify_ms:.1} ms/sample"
        );
        println!(
            "moderation/{label}/shared decode: {:.2} % of a core per stream steady (0.5 samples/s), {:.2} % in the warm-up (1/s); {:.0} streams per core steady",
            shared(0.5),
            shared(1.0),
            100.0 / shared(0.5)
        );
        println!(
            "moderation/{label}/own decode at 30 fps: {:.2} % steady, {:.2} % in the warm-up; {:.0} streams per core steady",
            own(0.5),
            own(1.0),
            100.0 / own(0.5)
        );
        println!(
            "moderation/{label}/naive (decode and classify every frame): {naive:.0} % of a core = {:.0}× the shared path",
            naive / shared(0.5)
        );
    }
}

/// Wall time of handing one decoded picture over: its planes copied row by row out
/// of a strided buffer, as the recorder and the own decoder do.
fn handover_ms(width: u32, height: u32) -> f64 {
    let (w, h) = (width as usize, height as usize);
    let stride = w + 32;
    let source = vec![128u8; stride * h * 2];
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut data = Vec::with_capacity(I420Picture::len_for(width, height));
        for (offset, width, rows) in [
            (0, w, h),
            (stride * h, w / 2, h / 2),
            (stride * h * 3 / 2, w / 2, h / 2),
        ] {
            for row in 0..rows {
                data.extend_from_slice(&source[offset + row * stride..][..width]);
            }
        }
        std::hint::black_box(data);
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds)
}

/// CPU seconds the own decoder spends on `frames`.
fn decode_cpu(frames: &[TapFrame]) -> f64 {
    let sink = Arc::new(Counting::default());
    let decoder = OwnDecoder::spawn(&RoomId::new("bench"), sink.clone()).expect("thread");
    let cpu0 = cpu_seconds();
    for f in frames {
        while !decoder.try_send(f.clone()) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.decoded.load(Ordering::Relaxed) < frames.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu = cpu_seconds() - cpu0;
    assert_eq!(
        sink.decoded.load(Ordering::Relaxed),
        frames.len() as u64,
        "every frame decoded"
    );
    cpu
}

/// A picture with a gradient (the classifier's cost does not depend on content).
fn gradient_picture(width: u32, height: u32) -> I420Picture {
    let (w, h) = (width as usize, height as usize);
    let mut data: Vec<u8> = (0..w * h).map(|i| (i % w * 255 / w) as u8).collect();
    data.resize(I420Picture::len_for(width, height), 128);
    I420Picture {
        side: Side::Customer,
        source: kefu_proto::PictureSource::OwnDecoder,
        width,
        height,
        data,
    }
}
