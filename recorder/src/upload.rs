//! Uploads a spool file as an S3 multipart upload while it grows.
//!
//! Only complete fragments are uploaded ([`crate::fmp4::durable_end`]); each part is
//! recorded in a small journal next to the spool, so a restart resumes where the
//! last acknowledged part ended. A store outage only delays: every call retries with
//! backoff, and gives up only once the recording has ended and `give_up` has passed.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::fmp4;
use crate::store::{ObjectStore, StoreError};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the transcoder says about the spool file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolState {
    /// Still being written; wake me when it grows.
    Growing,
    /// Closed and complete: upload the rest and finish.
    Closed,
    /// Abandoned (the transcode failed): stop, keep the journal for a retry.
    Abandoned,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Journal {
    /// The object the upload makes (older journals lack it).
    #[serde(default)]
    pub key: Option<String>,
    pub upload_id: Option<String>,
    pub parts: Vec<JournalPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JournalPart {
    pub number: i32,
    pub offset: u64,
    pub len: u64,
    pub etag: String,
}

impl Journal {
    pub fn load(path: &Path) -> Journal {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saves, or says why not: the journal only spares a restart from uploading again,
    /// so a full disk must not stop the upload itself.
    fn keep(&self, path: &Path) {
        if let Err(e) = self.save(path) {
            warn!(journal = %path.display(), "the upload journal could not be saved ({e}); a restart would upload this recording again");
        }
    }

    /// Written to a temporary file and renamed, so a crash leaves the old or the new one.
    fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    fn uploaded_end(&self) -> u64 {
        self.parts.last().map_or(0, |p| p.offset + p.len)
    }
}

/// One upload to run.
#[derive(Debug, Clone)]
pub struct UploadJob {
    pub key: String,
    pub content_type: String,
    pub spool: PathBuf,
    pub journal: PathBuf,
    /// Parts are at least this big, except the last (S3 requires 5 MiB).
    pub part_size: u64,
    /// After the recording ended, stop retrying after this long.
    pub give_up: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error("the recording was abandoned")]
    Abandoned,
    #[error("nothing was recorded")]
    Empty,
}

/// Counts retries for the metrics.
pub type RetryCounter = prometheus_client::metrics::counter::Counter;

/// What uploads report to the metrics.
#[derive(Debug, Clone, Default)]
pub struct UploadCounters {
    /// Store calls retried (the store unavailable).
    pub retries: RetryCounter,
    /// Bytes of parts the store acknowledged: once a recording is stored this equals
    /// its size unless a part was sent again (the fault suite checks it).
    pub uploaded_bytes: prometheus_client::metrics::counter::Counter,
}

/// Runs the upload to completion; returns the object's size.
pub async fn run(
    store: &ObjectStore,
    job: &UploadJob,
    mut progress: watch::Receiver<SpoolState>,
    counters: &UploadCounters,
) -> Result<u64, UploadError> {
    let retries = &counters.retries;
    let mut journal = Journal::load(&job.journal);
    let mut durable = journal.uploaded_end();
    let mut ended_at: Option<Instant> = None;
    loop {
        let state = *progress.borrow_and_update();
        if state == SpoolState::Abandoned {
            return Err(UploadError::Abandoned);
        }
        if state == SpoolState::Closed {
            ended_at.get_or_insert_with(Instant::now);
        }
        durable = scan(&job.spool, durable).await?;
        // Full parts first; after close, the rest as the last part.
        loop {
            let start = journal.uploaded_end();
            let available = durable.saturating_sub(start);
            let last = state == SpoolState::Closed;
            if available == 0 || (!last && available < job.part_size) {
                break;
            }
            let len = if last { available } else { job.part_size };
            upload_part(store, job, &mut journal, start, len, ended_at, counters).await?;
        }
        if state == SpoolState::Closed {
            if journal.parts.is_empty() {
                return Err(UploadError::Empty);
            }
            let parts: Vec<(i32, String)> = journal
                .parts
                .iter()
                .map(|p| (p.number, p.etag.clone()))
                .collect();
            let upload_id = journal.upload_id.clone().unwrap_or_default();
            retry("complete", ended_at, job.give_up, retries, || {
                store.complete_upload(&job.key, &upload_id, &parts)
            })
            .await?;
            let size = journal.uploaded_end();
            info!(key = %job.key, size, parts = parts.len(), "recording uploaded");
            let _ = std::fs::remove_file(&job.journal);
            return Ok(size);
        }
        if progress.changed().await.is_err() {
            // The transcoder is gone without closing the file: treat as abandoned.
            return Err(UploadError::Abandoned);
        }
    }
}

async fn upload_part(
    store: &ObjectStore,
    job: &UploadJob,
    journal: &mut Journal,
    offset: u64,
    len: u64,
    ended_at: Option<Instant>,
    counters: &UploadCounters,
) -> Result<(), UploadError> {
    let retries = &counters.retries;
    let bytes = read_range(&job.spool, offset, len).await?;
    let upload_id = match journal.upload_id.clone() {
        Some(id) => id,
        None => {
            let id = retry("create upload", ended_at, job.give_up, retries, || {
                store.create_upload(&job.key, &job.content_type)
            })
            .await?;
            journal.upload_id = Some(id.clone());
            journal.key = Some(job.key.clone());
            journal.keep(&job.journal);
            id
        }
    };
    let number = journal.parts.len() as i32 + 1;
    let result = retry("upload part", ended_at, job.give_up, retries, || {
        store.upload_part(&job.key, &upload_id, number, bytes.clone())
    })
    .await;
    match result {
        Ok(etag) => {
            counters.uploaded_bytes.inc_by(len);
            journal.parts.push(JournalPart {
                number,
                offset,
                len,
                etag,
            });
            journal.keep(&job.journal);
            Ok(())
        }
        // The store forgot the upload (aborted or expired): start a new one from
        // the first byte; the caller's loop picks up from the emptied journal.
        Err(e) if e.not_found => {
            warn!(key = %job.key, "upload vanished; uploading from the start again");
            *journal = Journal::default();
            journal.keep(&job.journal);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Retries `op` with exponential backoff. Before the recording ends it never gives
/// up (the store may come back); after, it stops `give_up` after the end.
async fn retry<T, F, Fut>(
    what: &'static str,
    ended_at: Option<Instant>,
    give_up: Duration,
    retries: &RetryCounter,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.not_found => return Err(e),
            Err(e) => {
                let expired = ended_at.is_some_and(|t| t.elapsed() >= give_up);
                if expired {
                    return Err(e);
                }
                retries.inc();
                warn!("store unavailable during {what} ({e}); retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn scan(path: &Path, from: u64) -> std::io::Result<u64> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            // The transcoder has not created it yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(from),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        fmp4::durable_end(&mut f, from, len)
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).await?;
    Ok(buf)
}
