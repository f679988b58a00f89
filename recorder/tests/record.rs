//! The recorder end to end in one process: real VP8 and Opus frames (encoded here with
//! libvpx and libopus) go in as taps, a fragmented MP4 comes out of a real S3 server
//! (the embedded s3s-fs, through aws-sdk-s3), and is decoded back and measured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use kefu_recorder::embedded::EmbeddedS3;
use kefu_recorder::{
    ObjectStore, Recorder, RecorderConfig, RecorderMetrics, RecordingEvent, RecordingJob,
    RecordingKind, Side, StorageConfig,
};
use kefu_synthetic::party_frames;
use tokio::sync::mpsc;

const KEY: &str = "test-access";
const SECRET: &str = "test-secret-key-0123456789";

struct Rig {
    _dir: tempfile::TempDir,
    s3_root: std::path::PathBuf,
    s3: Option<EmbeddedS3>,
    port: u16,
    store: ObjectStore,
    recorder: Arc<Recorder>,
    events: mpsc::UnboundedReceiver<RecordingEvent>,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let s3_root = dir.path().join("s3");
    let s3 = EmbeddedS3::start(&s3_root, 0, KEY, SECRET)
        .await
        .expect("embedded S3");
    let cfg = StorageConfig {
        endpoint: s3.endpoint(),
        access_key: KEY.into(),
        secret_key: SECRET.into(),
        ..StorageConfig::default()
    };
    let store = ObjectStore::new(&cfg);
    store.ensure_bucket().await.expect("bucket");
    let rcfg = RecorderConfig {
        spool_dir: dir.path().join("spool"),
        // A full spool disk waits this long after the end (the product: 2 minutes).
        spool_full_give_up_secs: 1,
        ..RecorderConfig::default()
    };
    let (recorder, events) =
        Recorder::new(rcfg, store.clone(), RecorderMetrics::default()).expect("recorder");
    Rig {
        port: s3.addr.port(),
        s3_root,
        s3: Some(s3),
        _dir: dir,
        store,
        recorder,
        events,
    }
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<RecordingEvent>) -> RecordingEvent {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("a recording event within 60 s")
        .expect("events channel open")
}

async fn download(store: &ObjectStore, key: &str, to: &Path) -> u64 {
    let read = store.read(key, None).await.expect("object readable");
    let bytes = read.body.collect().await.expect("body").into_bytes();
    std::fs::write(to, &bytes).expect("write copy");
    bytes.len() as u64
}

/// What a file holds, decoded with FFmpeg.
struct Probe {
    format: String,
    codecs: Vec<ffmpeg::codec::Id>,
    duration_s: f64,
    video_frames: usize,
    video_errors: usize,
    audio: Vec<f32>,
}

fn probe(path: &Path) -> Probe {
    let mut ictx = ffmpeg::format::input(path).expect("open recording");
    let format = ictx.format().name().to_owned();
    let duration_s = ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
    let mut decoders: Vec<(usize, ffmpeg::decoder::Opened)> = Vec::new();
    let mut codecs = Vec::new();
    for s in ictx.streams() {
        let ctx = ffmpeg::codec::context::Context::from_parameters(s.parameters()).expect("params");
        codecs.push(ctx.id());
        let codec = ffmpeg::decoder::find(ctx.id()).expect("a decoder for each stream");
        decoders.push((s.index(), ctx.decoder().open_as(codec).expect("decoder")));
    }
    let (mut video_frames, mut video_errors, mut audio) = (0, 0, Vec::new());
    let mut vframe = ffmpeg::frame::Video::empty();
    let mut aframe = ffmpeg::frame::Audio::empty();
    for (stream, packet) in ictx.packets() {
        let Some((_, dec)) = decoders.iter_mut().find(|(i, _)| *i == stream.index()) else {
            continue;
        };
        if dec.send_packet(&packet).is_err() {
            video_errors += 1;
            continue;
        }
        if dec.medium() == ffmpeg::media::Type::Video {
            while dec.receive_frame(&mut vframe).is_ok() {
                video_frames += 1;
            }
        } else {
            while dec.receive_frame(&mut aframe).is_ok() {
                let n = aframe.samples();
                for b in aframe.data(0).chunks_exact(4).take(n) {
                    audio.push(f32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                }
            }
        }
    }
    Probe {
        format,
        codecs,
        duration_s,
        video_frames,
        video_errors,
        audio,
    }
}

/// Goertzel power of `hz` in `samples` at 48 kHz.
fn tone_power(samples: &[f32], hz: f32) -> f32 {
    let w = std::f32::consts::TAU * hz / 48_000.0;
    let (mut s1, mut s2) = (0f32, 0f32);
    for &x in samples {
        let s = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len().max(1) as f32
}

fn job(kind: RecordingKind) -> RecordingJob {
    // Full-length ids, as in production: keys must fit the embedded store's file names.
    let enterprise = "0b7c3f52-94a1-4f5e-9d8a-2f6c1e9a7b30";
    let id = format!("7f3e2a10-5b6c-4d8e-9f01-{:012}", std::process::id());
    RecordingJob {
        key: kefu_recorder::naming::object_key(enterprise, &id, kind, 1_795_588_205_000),
        id,
        kind,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_call_becomes_a_fragmented_mp4_with_both_voices() {
    let mut rig = rig().await;
    let start = Instant::now();
    let job = job(RecordingKind::Video);
    let sink = rig.recorder.start(job.clone(), start, None).expect("start");
    let mut frames =
        party_frames(Side::Agent, 440.0, 4.0, Some(4.0), start).expect("synthetic media");
    // The customer's camera is on for the first two seconds only.
    frames.extend(
        party_frames(Side::Customer, 880.0, 4.0, Some(2.0), start).expect("synthetic media"),
    );
    for f in frames {
        assert!(sink.try_send(f), "the tap queue takes a 4 s call");
    }
    rig.recorder.finish(&job.id, start + Duration::from_secs(4));
    let event = next_event(&mut rig.events).await;
    let RecordingEvent::Ready {
        id,
        size_bytes,
        duration_ms,
    } = event
    else {
        panic!("not ready: {event:?}")
    };
    assert_eq!(id, job.id);
    assert_eq!(duration_ms, 4000);

    let copy = rig._dir.path().join("copy.mp4");
    assert_eq!(download(&rig.store, &job.key, &copy).await, size_bytes);
    let p = probe(&copy);
    assert!(p.format.contains("mp4"), "format {}", p.format);
    assert_eq!(
        p.codecs,
        vec![ffmpeg::codec::Id::H264, ffmpeg::codec::Id::AAC]
    );
    assert!(
        (p.duration_s - 4.0).abs() <= 0.2,
        "duration {}",
        p.duration_s
    );
    assert_eq!(p.video_errors, 0);
    assert!(
        (58..=62).contains(&p.video_frames),
        "15 fps × 4 s, got {}",
        p.video_frames
    );
    let (a, b, off) = (
        tone_power(&p.audio, 440.0),
        tone_power(&p.audio, 880.0),
        tone_power(&p.audio, 660.0),
    );
    assert!(
        a > 50.0 * off && b > 50.0 * off,
        "440 Hz {a}, 880 Hz {b}, 660 Hz {off}"
    );
    // Fragmented: the file holds moof boxes.
    let bytes = std::fs::read(&copy).expect("copy");
    assert!(bytes.windows(4).any(|w| w == b"moof"), "fragmented MP4");
    assert!(
        !rig.recorder.spool_path(&job.id, job.kind).exists(),
        "spool removed once stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_call_becomes_an_m4a_without_video() {
    let mut rig = rig().await;
    let start = Instant::now();
    let job = job(RecordingKind::Voice);
    let sink = rig.recorder.start(job.clone(), start, None).expect("start");
    // Video arriving in a voice call is ignored.
    let mut frames =
        party_frames(Side::Agent, 440.0, 3.0, Some(1.0), start).expect("synthetic media");
    frames.extend(party_frames(Side::Customer, 880.0, 3.0, None, start).expect("synthetic media"));
    for f in frames {
        sink.try_send(f);
    }
    rig.recorder.finish(&job.id, start + Duration::from_secs(3));
    let event = next_event(&mut rig.events).await;
    let RecordingEvent::Ready { duration_ms, .. } = event else {
        panic!("not ready: {event:?}")
    };
    assert_eq!(duration_ms, 3000);
    let copy = rig._dir.path().join("copy.m4a");
    download(&rig.store, &job.key, &copy).await;
    let p = probe(&copy);
    assert_eq!(p.codecs, vec![ffmpeg::codec::Id::AAC], "audio only");
    assert!(
        (p.duration_s - 3.0).abs() <= 0.2,
        "duration {}",
        p.duration_s
    );
    assert!(tone_power(&p.audio, 440.0) > 50.0 * tone_power(&p.audio, 660.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_delays_the_upload_and_loses_nothing() {
    let mut rig = rig().await;
    // The store goes down before the call starts.
    drop(rig.s3.take());
    let start = Instant::now();
    let job = job(RecordingKind::Voice);
    let sink = rig.recorder.start(job.clone(), start, None).expect("start");
    for f in party_frames(Side::Agent, 440.0, 2.0, None, start).expect("synthetic media") {
        sink.try_send(f);
    }
    rig.recorder.finish(&job.id, start + Duration::from_secs(2));
    // Nothing can finish while it is down.
    let early = tokio::time::timeout(Duration::from_secs(2), rig.events.recv()).await;
    assert!(
        early.is_err(),
        "nothing may finish while the store is down: {early:?}"
    );
    // Back on the same port.
    rig.s3 = Some(
        EmbeddedS3::start(&rig.s3_root, rig.port, KEY, SECRET)
            .await
            .expect("restart"),
    );
    let event = next_event(&mut rig.events).await;
    let RecordingEvent::Ready {
        duration_ms,
        size_bytes,
        ..
    } = event
    else {
        panic!("not ready: {event:?}")
    };
    assert_eq!(duration_ms, 2000);
    assert_eq!(
        rig.store.size(&job.key).await.expect("head"),
        Some(size_bytes)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_recording_is_cut_at_its_last_fragment_and_recovered() {
    let mut rig = rig().await;
    let start = Instant::now();
    let job = job(RecordingKind::Video);
    let spool = rig.recorder.spool_path(&job.id, job.kind);
    {
        let mut tc = kefu_recorder::transcode::Transcoder::create(
            &spool,
            job.kind,
            Default::default(),
            start,
        )
        .expect("transcoder");
        for f in party_frames(Side::Agent, 440.0, 5.0, Some(5.0), start).expect("synthetic media") {
            tc.push(f);
        }
        // Runs to 5 s (minus its output delay), then the process "dies": no trailer.
        tc.advance(start + Duration::from_secs(5)).expect("advance");
        std::mem::forget(tc);
    }
    // And the last write was torn.
    let mut bytes = std::fs::read(&spool).expect("spool");
    bytes.extend_from_slice(&[0, 0, 0x10, 0, b'm', b'o', b'o', b'f', 1, 2, 3]);
    std::fs::write(&spool, bytes).expect("tear");

    rig.recorder.recover(job.clone()).expect("recover");
    let event = next_event(&mut rig.events).await;
    let RecordingEvent::Ready { duration_ms, .. } = event else {
        panic!("not ready: {event:?}")
    };
    // 5 s captured; at most the output delay and the open fragment (≤ 2 s) are lost.
    assert!(
        (3000..=5000).contains(&duration_ms),
        "recovered {duration_ms} ms"
    );
    let copy = rig._dir.path().join("copy.mp4");
    download(&rig.store, &job.key, &copy).await;
    let p = probe(&copy);
    assert_eq!(p.video_errors, 0);
    assert!((p.duration_s * 1000.0 - duration_ms as f64).abs() <= 200.0);
}

/// The same recording against a real external S3 server (Ceph radosgw, started by
/// `deploy/with-radosgw.sh`, which `make test` uses). Under CI it must run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_lands_in_an_external_s3_server() {
    let (Ok(endpoint), Ok(access), Ok(secret)) = (
        std::env::var("TEST_S3_ENDPOINT"),
        std::env::var("TEST_S3_ACCESS_KEY"),
        std::env::var("TEST_S3_SECRET_KEY"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must test against radosgw: run under deploy/with-radosgw.sh"
        );
        eprintln!("TEST_S3_ENDPOINT not set: external S3 test not run");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = StorageConfig {
        embedded: false,
        endpoint,
        access_key: access,
        secret_key: secret,
        bucket: format!("kefu-test-{}", std::process::id()),
        ..StorageConfig::default()
    };
    let store = ObjectStore::new(&cfg);
    store.ensure_bucket().await.expect("bucket on radosgw");
    let rcfg = RecorderConfig {
        spool_dir: dir.path().join("spool"),
        ..RecorderConfig::default()
    };
    let (recorder, mut events) =
        Recorder::new(rcfg, store.clone(), RecorderMetrics::default()).expect("recorder");
    let start = Instant::now();
    let job = job(RecordingKind::Video);
    let sink = recorder.start(job.clone(), start, None).expect("start");
    let mut frames =
        party_frames(Side::Agent, 440.0, 3.0, Some(3.0), start).expect("synthetic media");
    frames.extend(party_frames(Side::Customer, 880.0, 3.0, None, start).expect("synthetic media"));
    for f in frames {
        sink.try_send(f);
    }
    recorder.finish(&job.id, start + Duration::from_secs(3));
    let event = next_event(&mut events).await;
    let RecordingEvent::Ready {
        size_bytes,
        duration_ms,
        ..
    } = event
    else {
        panic!("not ready: {event:?}")
    };
    assert_eq!(duration_ms, 3000);
    let copy = dir.path().join("copy.mp4");
    assert_eq!(download(&store, &job.key, &copy).await, size_bytes);
    let p = probe(&copy);
    assert_eq!(
        p.codecs,
        vec![ffmpeg::codec::Id::H264, ffmpeg::codec::Id::AAC]
    );
    assert!((p.duration_s - 3.0).abs() <= 0.2);
    let range = store
        .read(&job.key, Some("bytes=0-99"))
        .await
        .expect("range read");
    assert_eq!(range.content_length, 100);
    assert_eq!(range.total_size, Some(size_bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_recording_with_its_reason() {
    let mut rig = rig().await;
    let job = job(RecordingKind::Voice);
    // Every write to the spool hits a full device, also after the end: once the
    // give-up passed, the recording fails with the reason.
    std::os::unix::fs::symlink("/dev/full", rig.recorder.spool_path(&job.id, job.kind))
        .expect("symlink");
    let start = Instant::now();
    let sink = rig.recorder.start(job.clone(), start, None).expect("start");
    for f in party_frames(Side::Agent, 440.0, 1.0, None, start).expect("synthetic media") {
        sink.try_send(f);
    }
    rig.recorder.finish(&job.id, start + Duration::from_secs(1));
    let event = next_event(&mut rig.events).await;
    let RecordingEvent::Failed { kind, reason, .. } = event else {
        panic!("not failed: {event:?}")
    };
    assert_eq!(kind, kefu_recorder::FailureKind::Recording);
    assert!(reason.contains("No space left"), "reason: {reason}");
    assert_eq!(
        rig.store.size(&job.key).await.expect("head"),
        None,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_recordings_spool_is_discarded_and_its_upload_aborted() {
    let rig = rig().await;
    let job = job(RecordingKind::Video);
    // What a failed upload leaves: the spool, and a journal naming an open upload.
    let spool = rig.recorder.spool_path(&job.id, job.kind);
    std::fs::write(&spool, b"fragments").expect("spool");
    let upload = rig
        .store
        .create_upload(&job.key, "video/mp4")
        .await
        .expect("upload");
    let journal = spool.with_file_name(format!("{}.upload.json", job.id));
    let body = serde_json::json!({"key": job.key, "upload_id": upload, "parts": []});
    std::fs::write(&journal, body.to_string()).expect("journal");

    let spooled = rig.recorder.spooled();
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    assert_eq!(spooled[0].0, job.id);
    rig.recorder.discard(&job.id).await;
    assert!(!spool.exists() && !journal.exists(), "the files went");
    assert!(rig.recorder.spooled().is_empty());
    let part = rig
        .store
        .upload_part(&job.key, &upload, 1, vec![0; 16])
        .await;
    assert!(part.is_err(), "the upload was aborted: {part:?}");
}
