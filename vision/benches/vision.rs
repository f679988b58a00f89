//! The face engine on one core, with the real models and test photos:
//!
//! - `frame/*`: the per-frame costs (decode + YuNet at 320, one SFace embedding, one
//!   plane match);
//! - `verification/kefu`: one genuine attempt as the server judges it (13 JPEG frames
//!   at the pages' 300 ms cadence, through a `LivenessJudge`), beside
//!   `verification/naive_baseline`: the same frames each decoded, detected at 640 and
//!   embedded;
//! - `enroll/photo`: a full-size reference photo enrolled.
//!
//! Before the groups it prints the process RSS around `FaceEngine::load` and where one
//! verification's time goes. Run with `cargo bench -p kefu-vision --bench vision`; the
//! models and photos come from deploy/fetch-models.sh.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use kefu_vision::engine::{FRAME_LIMITS, PHOTO_LIMITS};
use kefu_vision::{
    AnalyzedFrame, Challenge, Embedding, FaceEngine, FaceSample, FaceVision, LivenessJudge,
    Picture, Policy, Progress, Snapshot, Turn,
};
use opencv::core::{self, Mat, Rect, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load_engine() -> FaceEngine {
    FaceEngine::load(&repo().join("models")).unwrap_or_else(|e| {
        panic!("{e}: the models come from deploy/fetch-models.sh (make test runs it)")
    })
}

fn photo_bytes(name: &str) -> Vec<u8> {
    let path = repo().join("test-data/faces").join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (deploy/fetch-models.sh)", path.display()))
}

/// What a webcam sends: a 640×480 picture with the face filling about 40 % of its
/// width (the photo cropped around the face, letterboxed to 4:3), as JPEG.
fn frame_jpeg(engine: &mut FaceEngine, name: &str) -> Vec<u8> {
    let pic = Picture::decode(&photo_bytes(name), PHOTO_LIMITS).expect("test photo decodes");
    let face = engine
        .detect(&pic, 1280)
        .expect("engine works")
        .first()
        .copied()
        .unwrap_or_else(|| panic!("{name} has a face"));
    let (w, h) = (pic.width() as i32, pic.height() as i32);
    let cw = ((face.width / 0.4) as i32).min(w);
    let ch = (cw * 3 / 4).min(h);
    let x = ((face.x + face.width / 2.0) as i32 - cw / 2).clamp(0, w - cw);
    let y = ((face.y + face.height / 2.0) as i32 - ch / 2).clamp(0, h - ch);
    let crop = Mat::roi(pic.bgr(), Rect::new(x, y, cw, ch))
        .expect("crop")
        .try_clone()
        .expect("clone");
    jpeg(&letterbox(&crop, 640, 480))
}

fn letterbox(m: &Mat, w: i32, h: i32) -> Mat {
    let k = (f64::from(w) / f64::from(m.cols())).min(f64::from(h) / f64::from(m.rows()));
    let mut s = Mat::default();
    imgproc::resize(m, &mut s, Size::new(0, 0), k, k, imgproc::INTER_AREA).expect("resize");
    let mut out =
        Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(0.0)).expect("canvas");
    let (sw, sh) = (s.cols().min(w), s.rows().min(h));
    let mut roi =
        Mat::roi_mut(&mut out, Rect::new((w - sw) / 2, (h - sh) / 2, sw, sh)).expect("roi");
    Mat::roi(&s, Rect::new(0, 0, sw, sh))
        .expect("roi")
        .copy_to(&mut roi)
        .expect("copy");
    out
}

fn jpeg(m: &Mat) -> Vec<u8> {
    let mut buf = core::Vector::<u8>::new();
    opencv::imgcodecs::imencode(".jpg", m, &mut buf, &core::Vector::new()).expect("encode");
    buf.to_vec()
}

/// VmRSS of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The three camera frames of a genuine attempt.
struct Frames {
    front: Vec<u8>,
    /// obama3: turned to his own left.
    left: Vec<u8>,
    /// obama2: turned to his own right.
    right: Vec<u8>,
}

/// A genuine attempt at the pages' cadence, 13 frames 300 ms apart (t = 100…3700 ms):
/// three frontal frames (the first face at 100 puts the reveal at 700, so the Left step
/// shows with the frame at 700), four frontal frames, the Left turn at 2200 (1.5 s
/// after it was shown), four frontal frames, the Right turn at 3700 (1.5 s after).
fn sequence(f: &Frames) -> Vec<(i64, &[u8])> {
    (0..13)
        .map(|i| {
            let bytes = match i {
                7 => &f.left,
                12 => &f.right,
                _ => &f.front,
            };
            (100 + 300 * i, bytes.as_slice())
        })
        .collect()
}

fn challenge() -> Challenge {
    Challenge {
        steps: vec![Turn::Left, Turn::Right],
        reveal_after_ms: 600,
    }
}

/// One verification as the server runs it: every frame decoded and analysed, the judge
/// asking for embeddings and plane matches only when it needs them.
fn verify(engine: &mut FaceEngine, reference: &Embedding, frames: &[(i64, &[u8])]) -> Progress {
    let mut judge = LivenessJudge::new(challenge(), Policy::default(), vec![reference.clone()], 0);
    let mut last = judge.progress();
    for &(t, bytes) in frames {
        let mut frame = engine
            .analyze(bytes)
            .expect("engine works")
            .expect("frame decodes");
        let faces = frame.faces;
        last = judge.observe(t, faces, &mut frame);
        if let Some(e) = frame.error.take() {
            panic!("engine error: {e}");
        }
        if matches!(last, Progress::Passed | Progress::Failed(_)) {
            break;
        }
    }
    last
}

/// The naive way: every frame decoded, detected at full size and embedded.
fn naive(engine: &mut FaceEngine, frames: &[(i64, &[u8])]) -> usize {
    let mut embedded = 0;
    for &(_, bytes) in frames {
        let picture = Picture::decode(bytes, FRAME_LIMITS).expect("frame decodes");
        let faces = engine.detect(&picture, 640).expect("engine works");
        if let Some(face) = faces.first() {
            black_box(engine.embed(&picture, face, false).expect("engine works"));
            embedded += 1;
        }
    }
    embedded
}

/// What the judge asked of the frames in one verification, and how long it took.
#[derive(Debug, Default)]
struct Asked {
    embeddings: u32,
    mirrored: u32,
    snapshots: u32,
    plane_matches: u32,
    embed_time: Duration,
    snapshot_time: Duration,
    plane_time: Duration,
}

/// Delegates to an analysed frame, counting and timing each call.
struct Counting<'f, 'a> {
    frame: &'f mut AnalyzedFrame<'a>,
    asked: &'f mut Asked,
}

impl FaceSample for Counting<'_, '_> {
    fn embedding(&mut self) -> Option<Embedding> {
        let t = Instant::now();
        let e = self.frame.embedding();
        self.asked.embed_time += t.elapsed();
        self.asked.embeddings += 1;
        e
    }

    fn mirrored_embedding(&mut self) -> Option<Embedding> {
        let t = Instant::now();
        let e = self.frame.mirrored_embedding();
        self.asked.embed_time += t.elapsed();
        self.asked.mirrored += 1;
        e
    }

    fn snapshot(&mut self) -> Option<Snapshot> {
        let t = Instant::now();
        let s = self.frame.snapshot();
        self.asked.snapshot_time += t.elapsed();
        self.asked.snapshots += 1;
        s
    }

    fn plane_match(&mut self, frontal: &Snapshot) -> Option<f32> {
        let t = Instant::now();
        let m = self.frame.plane_match(frontal);
        self.asked.plane_time += t.elapsed();
        self.asked.plane_matches += 1;
        m
    }
}

/// One verification, timed part by part (printed before the criterion groups).
fn explain_verification(engine: &mut FaceEngine, reference: &Embedding, frames: &[(i64, &[u8])]) {
    let mut judge = LivenessJudge::new(challenge(), Policy::default(), vec![reference.clone()], 0);
    let mut asked = Asked::default();
    let mut analyze_time = Duration::ZERO;
    let mut observed = 0;
    let mut last = judge.progress();
    let start = Instant::now();
    for &(t, bytes) in frames {
        let a = Instant::now();
        let mut frame = engine
            .analyze(bytes)
            .expect("engine works")
            .expect("frame decodes");
        analyze_time += a.elapsed();
        let faces = frame.faces;
        last = judge.observe(
            t,
            faces,
            &mut Counting {
                frame: &mut frame,
                asked: &mut asked,
            },
        );
        observed += 1;
        if matches!(last, Progress::Passed | Progress::Failed(_)) {
            break;
        }
    }
    let total = start.elapsed();
    assert_eq!(last, Progress::Passed, "a genuine attempt passes");
    let rest = total - analyze_time - asked.embed_time - asked.snapshot_time - asked.plane_time;
    eprintln!(
        "one verification: {observed} frames, {total:.1?} in all: decode+detect {analyze_time:.1?} \
         ({:.2?}/frame); {} embeddings + {} mirrored {:.1?}; {} plane matches {:.1?}; \
         {} snapshots {:.1?}; the rest {rest:.1?}",
        analyze_time / observed,
        asked.embeddings,
        asked.mirrored,
        asked.embed_time,
        asked.plane_matches,
        asked.plane_time,
        asked.snapshots,
        asked.snapshot_time,
    );
}

fn bench(c: &mut Criterion) {
    kefu_vision::set_single_threaded();
    let before = rss_kib();
    let mut engine = load_engine();
    let after = rss_kib();
    eprintln!(
        "RSS: {:.1} MiB before FaceEngine::load, {:.1} MiB after (+{:.1} MiB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    );

    let reference = engine
        .enroll(&photo_bytes("obama.jpg"))
        .expect("engine works")
        .expect("obama.jpg enrols");
    let frames = Frames {
        front: frame_jpeg(&mut engine, "obama.jpg"),
        left: frame_jpeg(&mut engine, "obama3.jpg"),
        right: frame_jpeg(&mut engine, "obama2.jpg"),
    };
    let seq = sequence(&frames);
    assert_eq!(
        verify(&mut engine, &reference, &seq),
        Progress::Passed,
        "a genuine attempt passes"
    );
    let naive_start = Instant::now();
    assert_eq!(
        naive(&mut engine, &seq),
        seq.len(),
        "every frame has a face"
    );
    eprintln!(
        "one naive pass over the same frames: {:.1?}",
        naive_start.elapsed()
    );
    eprintln!(
        "RSS after a verification and a naive pass: {:.1} MiB",
        rss_kib() as f64 / 1024.0
    );
    // Warm now (the models' first runs are behind us).
    explain_verification(&mut engine, &reference, &seq);

    let mut group = c.benchmark_group("frame");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("decode_detect", |b| {
        b.iter(|| {
            let frame = engine
                .analyze(black_box(&frames.front))
                .expect("engine works")
                .expect("frame decodes");
            black_box(frame.faces)
        })
    });
    // The first embedding of a frame (its alignment included); the analysis before it
    // is left out of the time.
    group.bench_function("embed", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let mut frame = engine
                    .analyze(&frames.front)
                    .expect("engine works")
                    .expect("frame decodes");
                let t = Instant::now();
                let e = frame.embedding();
                spent += t.elapsed();
                assert!(e.is_some(), "the frame has a face");
            }
            spent
        })
    });
    let frontal = engine
        .analyze(&frames.front)
        .expect("engine works")
        .expect("frame decodes")
        .snapshot()
        .expect("frontal snapshot");
    {
        let mut turned = engine
            .analyze(&frames.left)
            .expect("engine works")
            .expect("frame decodes");
        assert!(turned.plane_match(&frontal).is_some(), "plane match");
        group.bench_function("plane_match", |b| {
            b.iter(|| black_box(turned.plane_match(black_box(&frontal))))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verification");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let mut last = None;
    group.bench_function("kefu", |b| {
        b.iter(|| last = Some(verify(&mut engine, &reference, black_box(&seq))))
    });
    assert_eq!(last, Some(Progress::Passed), "a genuine attempt passes");
    group.bench_function("naive_baseline", |b| {
        b.iter(|| naive(&mut engine, black_box(&seq)))
    });
    group.finish();

    let photo = photo_bytes("obama.jpg");
    let mut group = c.benchmark_group("enroll");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("photo", |b| {
        b.iter(|| {
            engine
                .enroll(black_box(&photo))
                .expect("engine works")
                .expect("obama.jpg enrols")
        })
    });
    group.finish();

    // Content moderation: one open_nsfw inference on a 640×480 camera frame (decoded
    // once outside the timing), beside decoding that frame — the per-sample cost and
    // the cheapest thing moderation could do instead.
    let mut nsfw = kefu_vision::OpenNsfw::load(&repo().join("models")).expect("open_nsfw");
    let frame_bytes = frame_jpeg(&mut engine, "obama.jpg");
    let picture = kefu_vision::Picture::decode(&frame_bytes, kefu_vision::engine::FRAME_LIMITS)
        .expect("decodes");
    let mut group = c.benchmark_group("moderation");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("nsfw_inference", |b| {
        b.iter(|| {
            use kefu_vision::NudityClassifier;
            nsfw.nsfw_score(black_box(&picture)).expect("scores")
        })
    });
    group.bench_function("jpeg_decode_baseline", |b| {
        b.iter(|| {
            kefu_vision::Picture::decode(black_box(&frame_bytes), kefu_vision::engine::FRAME_LIMITS)
                .expect("decodes")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
