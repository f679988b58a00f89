//! Recorder benchmarks (run with `make bench`; results in BENCHMARKS.md).
//!
//! 1. CPU per 720p30 video call: the transcoder alone (decode both parties, compose,
//!    x264, AAC mix, fMP4 mux) on one thread, fed pre-encoded media in virtual time.
//! 2. Hang-up → stored: a 1-minute and a 30-minute call are transcoded in virtual time
//!    while the real uploader sends parts to the embedded S3 store; the clock runs
//!    from "hang-up" (finish) to the completed multipart upload.
//! 3. Memory per active recording: resident-set growth while one recording runs.
//!
//! Media is synthetic but real: libvpx VP8 and libopus, looped (the loop starts on a
//! keyframe, so the decoder sees a valid stream).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kefu_recorder::embedded::EmbeddedS3;
use kefu_recorder::transcode::{Settings, Transcoder};
use kefu_recorder::upload::{self, SpoolState, UploadJob};
use kefu_recorder::{ObjectStore, RecordingKind, Side, StorageConfig, TapFrame, naming};
use kefu_synthetic::party_frames_sized;

const LOOP_SECS: f32 = 10.0;

/// Ten seconds of a 720p30 agent and a 640×360 customer, both talking.
fn source(start: Instant) -> Vec<TapFrame> {
    let mut frames = party_frames_sized(
        Side::Agent,
        440.0,
        LOOP_SECS,
        Some((LOOP_SECS, 1280, 720)),
        start,
    )
    .expect("agent media");
    frames.extend(
        party_frames_sized(
            Side::Customer,
            880.0,
            LOOP_SECS,
            Some((LOOP_SECS, 640, 360)),
            start,
        )
        .expect("customer media"),
    );
    frames.sort_by_key(|f| f.arrival);
    frames
}

/// The loop repeated to `secs`, shifted in time and RTP clock.
fn looped(base: &[TapFrame], start: Instant, secs: u64) -> impl Iterator<Item = TapFrame> + '_ {
    let loops = secs.div_ceil(LOOP_SECS as u64);
    (0..loops).flat_map(move |n| {
        base.iter().filter_map(move |f| {
            let shift = Duration::from_secs_f32(LOOP_SECS * n as f32);
            let arrival = f.arrival + shift;
            if arrival > start + Duration::from_secs(secs) {
                return None;
            }
            let mut g = f.clone();
            g.arrival = arrival;
            g.rtp_time += (u64::from(g.clock_rate) as f32 * LOOP_SECS * n as f32) as u64;
            Some(g)
        })
    })
}

/// CPU time this thread has used (utime + stime from /proc, in seconds).
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command: state is 0, utime is 11, stime is 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Feeds `secs` of the call through a transcoder in virtual time, advancing every
/// 100 ms of media; calls `tick` after each advance. Returns the transcoder unfinished.
fn transcode(
    path: &std::path::Path,
    base: &[TapFrame],
    start: Instant,
    secs: u64,
    mut tick: impl FnMut(),
) -> Transcoder {
    let mut tc = Transcoder::create(path, RecordingKind::Video, Settings::default(), start)
        .expect("transcoder");
    let mut next_advance = start + Duration::from_millis(100);
    for f in looped(base, start, secs) {
        while f.arrival >= next_advance {
            tc.advance(next_advance).expect("advance");
            next_advance += Duration::from_millis(100);
            tick();
        }
        tc.push(f);
    }
    tc
}

fn cpu_per_call(base: &[TapFrame], start: Instant, dir: &std::path::Path) {
    let secs = 60;
    let before = thread_cpu();
    let wall = Instant::now();
    let tc = transcode(&dir.join("cpu.mp4"), base, start, secs, || {});
    tc.finish(start + Duration::from_secs(secs))
        .expect("finish");
    let cpu = thread_cpu() - before;
    println!(
        "recorder/cpu_per_720p30_call: {:.3} cores ({cpu:.1} s CPU for {secs} s of call; {:.1}× real time on one thread)",
        cpu / secs as f64,
        secs as f64 / wall.elapsed().as_secs_f64()
    );
}

async fn hangup_to_stored(
    base: Arc<Vec<TapFrame>>,
    start: Instant,
    dir: &std::path::Path,
    store: &ObjectStore,
    secs: u64,
) -> Duration {
    let spool = dir.join(format!("call-{secs}.mp4"));
    let _ = std::fs::remove_file(&spool);
    let id = format!("bench-{secs}-{}", std::process::id());
    let job = UploadJob {
        key: naming::object_key("bench", &id, RecordingKind::Video, 0),
        content_type: "video/mp4".into(),
        spool: spool.clone(),
        journal: dir.join(format!("{id}.upload.json")),
        part_size: 5 * 1024 * 1024,
        give_up: Duration::from_secs(60),
    };
    let (tx, rx) = tokio::sync::watch::channel(SpoolState::Growing);
    let counters = upload::UploadCounters::default();
    let store2 = store.clone();
    let uploader = tokio::spawn(async move { upload::run(&store2, &job, rx, &counters).await });
    let worker = std::thread::spawn(move || {
        let tc = transcode(&spool, &base, start, secs, || {
            let _ = tx.send(SpoolState::Growing);
        });
        let hung_up = Instant::now();
        tc.finish(start + Duration::from_secs(secs))
            .expect("finish");
        let _ = tx.send(SpoolState::Closed);
        hung_up
    });
    let size = uploader.await.expect("uploader task").expect("upload");
    let stored = Instant::now();
    let hung_up = worker.join().expect("worker");
    let took = stored - hung_up;
    println!(
        "recorder/hangup_to_stored_{secs}s_call: {:.0} ms ({:.1} MB object)",
        took.as_secs_f64() * 1000.0,
        size as f64 / 1e6
    );
    took
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    let base = Arc::new(source(start));
    cpu_per_call(&base, start, dir.path());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s3 = EmbeddedS3::start(&dir.path().join("s3"), 0, "bench", "bench-secret-0123456789").await.expect("s3");
        let cfg = StorageConfig {
            endpoint: s3.endpoint(),
            access_key: "bench".into(),
            secret_key: "bench-secret-0123456789".into(),
            ..StorageConfig::default()
        };
        let store = ObjectStore::new(&cfg);
        store.ensure_bucket().await.expect("bucket");
        let rss_before = rss_kib();
        let mut one_minute = Vec::new();
        for _ in 0..5 {
            one_minute.push(hangup_to_stored(base.clone(), start, dir.path(), &store, 60).await);
        }
        let rss_during = rss_kib();
        one_minute.sort();
        println!(
            "recorder/hangup_to_stored_60s_call: max of 5 = {:.0} ms",
            one_minute.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
        hangup_to_stored(base.clone(), start, dir.path(), &store, 1800).await;
        println!(
            "recorder/memory_per_recording: ≤ {:.1} MiB (resident-set growth over five sequential 1-minute recordings, allocator caches included; RSS {} → {} KiB)",
            rss_during.saturating_sub(rss_before) as f64 / 1024.0,
            rss_before,
            rss_during
        );
    });
}
