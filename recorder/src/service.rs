//! The recorder service signaling drives: `start` when a call connects, `finish` when
//! it ends, `recover` for recordings a crash interrupted. It never touches the
//! database: outcomes leave as [`RecordingEvent`]s for signaling to persist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::naming::RecordingKind;
use crate::store::ObjectStore;
use crate::transcode::{Settings, TranscodeError};
use crate::upload::{self, Journal, SpoolState, UploadError, UploadJob};
use crate::worker::{Worker, WorkerInput};
use crate::{fmp4, transcode};
use kefu_proto::TapFrame;

/// Recorder settings (`[recording]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    /// Local spool; empty means `<data_dir>/spool`.
    pub spool_dir: PathBuf,
    pub video: Settings,
    /// Multipart part size (S3's minimum is 5 MiB).
    pub part_size_bytes: u64,
    /// Frames queued per recording before the tap drops them.
    pub tap_queue: usize,
    /// After a call ended, how long uploads keep retrying before the recording fails.
    pub upload_give_up_secs: u64,
    /// After a call ended, how long a spool disk that cannot be written (full) may hold
    /// back the recording's end before it fails; until then it waits in memory.
    pub spool_full_give_up_secs: u64,
    /// Bytes of one recording held in memory at most while its spool cannot be
    /// written; past them the recording fails (crate::spool).
    pub spool_memory_bytes: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            spool_dir: PathBuf::new(),
            video: Settings::default(),
            part_size_bytes: 5 * 1024 * 1024,
            tap_queue: 1024,
            upload_give_up_secs: 3600,
            spool_full_give_up_secs: crate::spool::FINAL_WAIT.as_secs(),
            spool_memory_bytes: crate::spool::MEMORY_LIMIT,
        }
    }
}

/// Which step failed: what users see as "recording failed", "transcoding failed",
/// "upload failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Recording,
    Transcoding,
    Upload,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Recording => "recording",
            FailureKind::Transcoding => "transcoding",
            FailureKind::Upload => "upload",
        }
    }
}

/// What happened to a recording, for signaling to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingEvent {
    Ready {
        id: String,
        size_bytes: u64,
        duration_ms: i64,
    },
    Failed {
        id: String,
        kind: FailureKind,
        reason: String,
    },
}

/// One recording to make: ids only, no user text.
#[derive(Debug, Clone)]
pub struct RecordingJob {
    pub id: String,
    pub kind: RecordingKind,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recording {0} is already running")]
    AlreadyRunning(String),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error("nothing left to retry: the spool file is gone")]
    NoSpool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: FailureKind,
}

/// The recorder's Prometheus series.
#[derive(Debug, Clone, Default)]
pub struct RecorderMetrics {
    active: Gauge,
    failures: Family<FailureLabels, Counter>,
    uploads: upload::UploadCounters,
    tap_dropped: Counter,
    ready: Counter,
}

impl RecorderMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "kefu_recordings_active",
            "Recordings being captured now",
            self.active.clone(),
        );
        registry.register(
            "kefu_recording_failures",
            "Recordings that failed, by step (recording, transcoding, upload); alert on any",
            self.failures.clone(),
        );
        registry.register(
            "kefu_recording_upload_retries",
            "Store calls retried (store unavailable)",
            self.uploads.retries.clone(),
        );
        registry.register(
            "kefu_recording_uploaded_bytes",
            "Bytes of recording parts the store acknowledged (a part sent twice counts twice)",
            self.uploads.uploaded_bytes.clone(),
        );
        registry.register(
            "kefu_recording_tap_dropped",
            "Frames the recorder queue could not take",
            self.tap_dropped.clone(),
        );
        registry.register(
            "kefu_recordings_ready",
            "Recordings stored and playable",
            self.ready.clone(),
        );
    }
}

/// Where the SFU writes a recording's frames. Never blocks: a full queue drops.
#[derive(Debug, Clone)]
pub struct TapSink {
    tx: SyncSender<WorkerInput>,
    dropped: Counter,
    /// Set by the first `finish`: later ones (a sweep finding the call over while
    /// the file is still being closed or uploaded) have nothing to do.
    finish_asked: Arc<AtomicBool>,
}

impl TapSink {
    /// Queues a frame; false when it was dropped (queue full or recording over).
    pub fn try_send(&self, frame: TapFrame) -> bool {
        // Closing: a frame after the end is not a loss (a capture closed by the
        // sweeper is still tapped until its participants leave).
        if self.finish_asked.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(WorkerInput::Frame(frame)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.inc();
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

impl kefu_proto::FrameSink for TapSink {
    fn try_send(&self, frame: TapFrame) -> bool {
        TapSink::try_send(self, frame)
    }
}

/// The recorder of this process.
#[derive(Debug)]
pub struct Recorder {
    cfg: RecorderConfig,
    store: ObjectStore,
    events: mpsc::UnboundedSender<RecordingEvent>,
    active: Mutex<HashMap<String, TapSink>>,
    metrics: RecorderMetrics,
}

impl Recorder {
    /// `cfg.spool_dir` must be set (signaling resolves it under the data folder).
    pub fn new(
        cfg: RecorderConfig,
        store: ObjectStore,
        metrics: RecorderMetrics,
    ) -> std::io::Result<(Arc<Self>, mpsc::UnboundedReceiver<RecordingEvent>)> {
        std::fs::create_dir_all(&cfg.spool_dir)?;
        transcode::init();
        let (events, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            cfg,
            store,
            events,
            active: Mutex::new(HashMap::new()),
            metrics,
        });
        Ok((recorder, rx))
    }

    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    pub fn spool_path(&self, id: &str, kind: RecordingKind) -> PathBuf {
        self.cfg
            .spool_dir
            .join(format!("{}.{}", safe(id), kind.extension()))
    }

    /// Recording ids that have files in the spool (spool, journal) and are not being
    /// recorded now, each with the age of its newest file.
    pub fn spooled(&self) -> Vec<(String, Duration)> {
        let mut ids: HashMap<String, Duration> = HashMap::new();
        let Ok(entries) = std::fs::read_dir(&self.cfg.spool_dir) else {
            return Vec::new();
        };
        let active = self.active_ids();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((id, _)) = name.split_once('.') else {
                continue;
            };
            if active.iter().any(|a| safe(a) == id) {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            let newest = ids.entry(id.to_owned()).or_insert(age);
            *newest = (*newest).min(age);
        }
        ids.into_iter().collect()
    }

    /// Deletes a recording's spool files and aborts its unfinished upload (the
    /// recording is gone from the catalogue: retention, or never there).
    pub async fn discard(&self, id: &str) {
        let journal = Journal::load(&self.journal_path(id));
        if let (Some(key), Some(upload)) = (journal.key, journal.upload_id)
            && let Err(e) = self.store.abort_upload(&key, &upload).await
        {
            warn!(recording = %id, "an unfinished upload could not be aborted: {e}");
        }
        for kind in [RecordingKind::Video, RecordingKind::Voice] {
            let _ = std::fs::remove_file(self.spool_path(id, kind));
        }
        let journal = self.journal_path(id);
        let _ = std::fs::remove_file(journal.with_extension("tmp"));
        let _ = std::fs::remove_file(journal);
    }

    fn journal_path(&self, id: &str) -> PathBuf {
        self.cfg.spool_dir.join(format!("{}.upload.json", safe(id)))
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, TapSink>> {
        // A panic while holding this lock leaves a plain map behind: still consistent.
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_active(&self, id: &str) -> bool {
        self.active().contains_key(id)
    }

    /// Ids of the recordings not yet stored: capturing, being closed or uploading.
    pub fn active_ids(&self) -> Vec<String> {
        self.active().keys().cloned().collect()
    }

    /// Ids of the recordings still capturing: no `finish` asked yet.
    pub fn capturing_ids(&self) -> Vec<String> {
        self.active()
            .iter()
            .filter(|(_, sink)| !sink.finish_asked.load(Ordering::SeqCst))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Starts recording; the returned sink is what the SFU taps into. `pictures`:
    /// content moderation of the call, handed the decoded pictures it asks for.
    pub fn start(
        self: &Arc<Self>,
        job: RecordingJob,
        start: Instant,
        pictures: Option<Arc<dyn kefu_proto::PictureSink>>,
    ) -> Result<TapSink, RecorderError> {
        let mut active = self.active();
        if active.contains_key(&job.id) {
            return Err(RecorderError::AlreadyRunning(job.id));
        }
        let spool = self.spool_path(&job.id, job.kind);
        let _ = std::fs::remove_file(self.journal_path(&job.id));
        let (tx, input) = sync_channel(self.cfg.tap_queue.max(16));
        let (progress_tx, progress) = watch::channel(SpoolState::Growing);
        let worker = Worker {
            kind: job.kind,
            settings: self.cfg.video,
            spool: spool.clone(),
            spool_limits: crate::spool::SpoolLimits {
                memory_bytes: self.cfg.spool_memory_bytes,
                give_up: Duration::from_secs(self.cfg.spool_full_give_up_secs),
            },
            start,
            input,
            progress: progress_tx,
            pictures,
        };
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("rec-{}", short(&job.id)))
            .spawn(move || {
                let _ = done_tx.send(worker.run());
            })?;
        let sink = TapSink {
            tx,
            dropped: self.metrics.tap_dropped.clone(),
            finish_asked: Arc::new(AtomicBool::new(false)),
        };
        active.insert(job.id.clone(), sink.clone());
        drop(active);
        self.metrics.active.inc();
        info!(recording = %job.id, kind = job.kind.as_str(), "recording started");

        let me = Arc::clone(self);
        tokio::spawn(async move {
            let upload = me.upload(&job, progress);
            let (worker, upload) = tokio::join!(done, upload);
            me.active().remove(&job.id);
            me.metrics.active.dec();
            let worker = worker.unwrap_or_else(|_| {
                Err(TranscodeError::Codec("the transcoder thread died".into()))
            });
            me.report(&job, worker, upload);
        });
        Ok(sink)
    }

    /// The call ended at `end`: close the recording (upload of the tail follows).
    pub fn finish(&self, id: &str, end: Instant) {
        let Some(sink) = self.active().get(id).cloned() else {
            return;
        };
        if sink.finish_asked.swap(true, Ordering::SeqCst) {
            return;
        }
        // Blocking send: the finish must not be lost to a full queue; the worker drains fast.
        let tx = sink.tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(WorkerInput::Finish(end));
        });
    }

    /// Finalizes a recording a crash (or a failed step) left in the spool: cuts the
    /// file at its last complete fragment, measures it and uploads what is missing.
    pub fn recover(self: &Arc<Self>, job: RecordingJob) -> Result<(), RecorderError> {
        let spool = self.spool_path(&job.id, job.kind);
        if !spool.exists() {
            return Err(RecorderError::NoSpool);
        }
        if self.is_active(&job.id) {
            return Err(RecorderError::AlreadyRunning(job.id));
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let path = spool.clone();
            let finalized = tokio::task::spawn_blocking(move || finalize_spool(&path)).await;
            let worker = match finalized {
                Ok(Ok(duration)) => Ok(duration),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(TranscodeError::Codec(format!("recovery task: {e}"))),
            };
            let (_tx, progress) = watch::channel(if worker.is_ok() {
                SpoolState::Closed
            } else {
                SpoolState::Abandoned
            });
            let upload = me.upload(&job, progress).await;
            me.report(&job, worker, upload);
        });
        Ok(())
    }

    async fn upload(
        &self,
        job: &RecordingJob,
        progress: watch::Receiver<SpoolState>,
    ) -> Result<u64, UploadError> {
        let up = UploadJob {
            key: job.key.clone(),
            content_type: job.kind.content_type().into(),
            spool: self.spool_path(&job.id, job.kind),
            journal: self.journal_path(&job.id),
            part_size: self.cfg.part_size_bytes.max(1),
            give_up: Duration::from_secs(self.cfg.upload_give_up_secs),
        };
        upload::run(&self.store, &up, progress, &self.metrics.uploads).await
    }

    fn report(
        &self,
        job: &RecordingJob,
        worker: Result<i64, TranscodeError>,
        upload: Result<u64, UploadError>,
    ) {
        let event = match (worker, upload) {
            (Ok(duration_ms), Ok(size_bytes)) => {
                self.metrics.ready.inc();
                let _ = std::fs::remove_file(self.spool_path(&job.id, job.kind));
                RecordingEvent::Ready {
                    id: job.id.clone(),
                    size_bytes,
                    duration_ms,
                }
            }
            (Err(TranscodeError::Write(reason)), _) => failed(job, FailureKind::Recording, reason),
            (Err(TranscodeError::Codec(reason)), _) => {
                failed(job, FailureKind::Transcoding, reason)
            }
            (Ok(_), Err(UploadError::Empty)) => {
                failed(job, FailureKind::Recording, "nothing was captured".into())
            }
            (Ok(_), Err(e)) => failed(job, FailureKind::Upload, e.to_string()),
        };
        if let RecordingEvent::Failed { kind, reason, .. } = &event {
            self.metrics
                .failures
                .get_or_create(&FailureLabels { kind: *kind })
                .inc();
            error!(recording = %job.id, kind = kind.as_str(), %reason, "recording failed");
        }
        if self.events.send(event).is_err() {
            warn!(recording = %job.id, "nobody listens to recording events");
        }
    }
}

fn failed(job: &RecordingJob, kind: FailureKind, reason: String) -> RecordingEvent {
    RecordingEvent::Failed {
        id: job.id.clone(),
        kind,
        reason,
    }
}

/// Cuts a spool file after its last complete fragment and returns the media duration.
pub fn finalize_spool(path: &Path) -> Result<i64, TranscodeError> {
    let write = |e: std::io::Error| TranscodeError::Write(format!("spool {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(write)?;
    let len = f.metadata().map_err(write)?.len();
    let end = fmp4::durable_end(&mut f, 0, len).map_err(write)?;
    if end < len {
        info!(spool = %path.display(), cut = len - end, "torn tail cut after a crash");
        f.set_len(end).map_err(write)?;
    }
    drop(f);
    if end == 0 {
        return Err(TranscodeError::Write(
            "nothing was captured before the interruption".into(),
        ));
    }
    transcode::probe_duration_ms(path)
}

fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
