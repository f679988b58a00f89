//! Content moderation's cost per screened stream (run with `make bench`; results in
//! BENCHMARKS.md), from the process's CPU time, all parts measured in this run:
//! - decode: moderation's own decoder (`OwnDecoder`) on a 640×480 VP8 stream at
//!   30 fps (kefu_synthetic's moving ramp, a keyframe every second: harsher than a
//!   camera) — the cost a call pays only when nothing else decodes it;
//! - hand-over: copying a decoded picture to moderation (what the recorder, or the
//!   own decoder, does once per sample);
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

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const SECONDS: u32 = 20;
const FPS: f64 = 30.0;
const INFERENCES: usize = 30;

/// Counts decoded pictures; wants every one when `take_all`.
#[derive(Debug)]
struct Counting {
    take_all: bool,
    decoded: AtomicU64,
    offered: AtomicU64,
}

impl PictureSink for Counting {
    fn decoded(&self, _side: Side) -> bool {
        self.decoded.fetch_add(1, Ordering::Relaxed);
        self.take_all
    }
    fn offer(&self, picture: I420Picture) {
        std::hint::black_box(picture);
        self.offered.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    ffmpeg::init().expect("FFmpeg initialises");
    kefu_vision::set_single_threaded();
    let frames: Vec<TapFrame> = party_frames_sized(
        Side::Customer,
        440.0,
        SECONDS as f32,
        Some((SECONDS as f32, WIDTH, HEIGHT)),
        Instant::now(),
    )
    .expect("synthetic 640×480 VP8")
    .into_iter()
    .filter(|f| f.codec == Codec::Vp8)
    .collect();
    let n = frames.len() as f64;

    let decode_only = decode_cpu(&frames, false);
    let decode_and_copy = decode_cpu(&frames, true);
    let decode_ms = decode_only / n * 1000.0;
    let copy_ms = ((decode_and_copy - decode_only) / n * 1000.0).max(0.0);

    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut nsfw = OpenNsfw::load(&models).expect("models/open_nsfw.onnx (deploy/fetch-models.sh)");
    let picture = grey_picture();
    let cpu0 = cpu_seconds();
    for _ in 0..INFERENCES {
        let p = Picture::from_i420(picture.width, picture.height, &picture.data).expect("bgr");
        std::hint::black_box(nsfw.nsfw_score(&p).expect("score"));
    }
    let classify_ms = (cpu_seconds() - cpu0) / INFERENCES as f64 * 1000.0;

    let sample_ms = copy_ms + classify_ms;
    let share = |ms_per_second: f64| ms_per_second / 1000.0 * 100.0;
    let shared = |rate: f64| share(rate * sample_ms);
    let own = |rate: f64| share(FPS * decode_ms + rate * sample_ms);
    let naive = share(FPS * (decode_ms + sample_ms));
    println!(
        "moderation/640x480: decode {decode_ms:.2} ms/frame, hand-over {copy_ms:.3} ms/sample, convert+classify {classify_ms:.1} ms/sample"
    );
    println!(
        "moderation/per_stream shared decode: {:.2} % of a core steady (0.5 samples/s), {:.2} % in the warm-up (1/s)",
        shared(0.5),
        shared(1.0)
    );
    println!(
        "moderation/per_stream own decode (30 fps): {:.2} % steady, {:.2} % in the warm-up",
        own(0.5),
        own(1.0)
    );
    println!(
        "moderation/naive (classify every frame at 30 fps): {naive:.0} % of a core = {:.0}× the shared path's steady cost",
        naive / shared(0.5)
    );
    println!(
        "moderation/streams_per_core shared decode: {:.0} steady, {:.0} in the warm-up; own decode: {:.0} steady",
        100.0 / shared(0.5),
        100.0 / shared(1.0),
        100.0 / own(0.5)
    );
}

/// CPU seconds the own decoder spends on `frames` (handing every picture over when
/// `take_all`).
fn decode_cpu(frames: &[TapFrame], take_all: bool) -> f64 {
    let sink = Arc::new(Counting {
        take_all,
        decoded: AtomicU64::new(0),
        offered: AtomicU64::new(0),
    });
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
    if take_all {
        assert_eq!(sink.offered.load(Ordering::Relaxed), frames.len() as u64);
    }
    cpu
}

/// A 640×480 mid-grey picture with a gradient (the classifier's cost does not depend
/// on content).
fn grey_picture() -> I420Picture {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut data: Vec<u8> = (0..w * h).map(|i| (i % w * 255 / w) as u8).collect();
    data.resize(I420Picture::len_for(WIDTH, HEIGHT), 128);
    I420Picture {
        side: Side::Customer,
        source: kefu_proto::PictureSource::OwnDecoder,
        width: WIDTH,
        height: HEIGHT,
        data,
    }
}
