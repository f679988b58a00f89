//! Call recordings from signaling's side: when to start and stop the recorder, the
//! catalogue rows and their states, and the embedded object store.
//!
//! A recording starts when a call reaches `connected` (both media up) and the
//! enterprise records calls; it moves to `processing` at hang-up, then `ready` or
//! `failed` when the recorder reports. Rows are the source of truth across restarts:
//! whatever a crash left `recording` or `processing` is recovered at start.

pub mod http;
mod model;
mod storage;
pub mod store;

use std::sync::Arc;
use std::time::Instant;

use kefu_recorder::{Recorder, RecorderError, RecordingEvent, RecordingJob, naming};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::calls::Call;
use crate::store::{Store, StoreError};
pub use model::{Recording, RecordingFilter, RecordingState};
pub use storage::{StorageRuntime, start_storage};

/// Signaling's handle on the recorder.
#[derive(Debug, Clone)]
pub struct Recordings {
    pub recorder: Arc<Recorder>,
    /// Keeps the embedded store running as long as signaling runs.
    pub storage: Arc<StorageRuntime>,
}

fn job(r: &Recording) -> RecordingJob {
    RecordingJob {
        id: r.id.clone(),
        kind: r.kind,
        key: r.object_key.clone(),
    }
}

impl Recordings {
    /// Creates the catalogue row of a call's recording; returns the job for the media
    /// router to start (on whichever node holds the call's media), or `None` when the
    /// enterprise does not record calls or the call is recorded already.
    pub async fn create_for(
        &self,
        store: &Store,
        call: &Call,
        now_ms: i64,
    ) -> Result<Option<RecordingJob>, StoreError> {
        let Some(enterprise) = store.enterprise(&call.enterprise_id).await? else {
            return Ok(None);
        };
        if !enterprise.recording_enabled {
            info!(call = %call.id, "enterprise records no calls");
            return Ok(None);
        }
        if store.live_recording_of(&call.id).await?.is_some() {
            return Ok(None);
        }
        let tz = naming::time_zone(&enterprise.time_zone);
        let kind = match call.kind {
            crate::calls::machine::CallKind::Video => kefu_recorder::RecordingKind::Video,
            crate::calls::machine::CallKind::Voice => kefu_recorder::RecordingKind::Voice,
        };
        let started_at = call.connected_at.unwrap_or(now_ms);
        let id = uuid::Uuid::new_v4().to_string();
        let rec = Recording {
            object_key: naming::object_key(call.enterprise_id.as_str(), &id, kind, started_at),
            display_name: naming::display_name(kind, started_at, tz),
            id,
            enterprise_id: call.enterprise_id.clone(),
            call_id: call.id.clone(),
            agent_id: call.agent_id.clone(),
            customer_id: call.customer_id.clone(),
            kind,
            state: RecordingState::Recording,
            failure_kind: None,
            failure_reason: None,
            started_at,
            ended_at: None,
            duration_ms: None,
            size_bytes: None,
        };
        store.insert_recording(&rec, now_ms).await?;
        Ok(Some(job(&rec)))
    }

    /// The media router could not start the recording: the row says why.
    pub async fn start_failed(
        &self,
        store: &Store,
        id: &str,
        error: &RecorderError,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        warn!(recording = %id, "recording could not start: {error}");
        store
            .mark_recording_failed(
                id,
                kefu_recorder::FailureKind::Recording,
                &error.to_string(),
                now_ms,
            )
            .await
    }

    /// The call ended: its live recording (if any) moves to processing; returns its id
    /// for the media router to finish (the upload of the tail follows).
    pub async fn finish_for(
        &self,
        store: &Store,
        call: &crate::accounts::CallId,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let Some(rec) = store.live_recording_of(call).await? else {
            return Ok(None);
        };
        store.mark_recording_processing(&rec.id, now_ms).await?;
        Ok(Some(rec.id))
    }

    /// Closes recordings still capturing whose call ended without passing through
    /// the hang-up path here: a session that vanished, an operator's change, or a call
    /// another node ended while this media node could not be told (a node judged
    /// lost that was not: the row already says processing, the capture goes on).
    /// Run by the sweeper.
    pub async fn reconcile(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        for id in self.recorder.capturing_ids() {
            let Some(rec) = store.recording(&id).await? else {
                continue;
            };
            let ended = match store.call(&rec.call_id).await? {
                Some(call) => call.state.is_final(),
                None => true,
            };
            if !ended {
                continue;
            }
            info!(recording = %id, "call ended elsewhere; closing its recording");
            if rec.state == RecordingState::Recording {
                self.finish_for(store, &rec.call_id, now_ms).await?;
            }
            self.recorder.finish(&id, Instant::now());
        }
        Ok(())
    }

    /// Deletes spool files (and aborts unfinished uploads) of recordings the catalogue
    /// no longer has: a failed recording's spool, kept for an admin's retry, once
    /// retention deleted the recording. Files younger than `min_age` are left alone (a
    /// recording being set up). Returns how many recordings' files went.
    pub async fn sweep_orphan_spools(
        &self,
        store: &Store,
        min_age: std::time::Duration,
    ) -> Result<usize, StoreError> {
        let mut discarded = 0;
        for (id, age) in self.recorder.spooled() {
            if age < min_age || store.recording(&id).await?.is_some() {
                continue;
            }
            self.recorder.discard(&id).await;
            discarded += 1;
        }
        if discarded > 0 {
            info!(
                recordings = discarded,
                "spool files of deleted recordings removed"
            );
        }
        Ok(discarded)
    }

    /// Finalizes what an earlier process left behind.
    pub async fn recover_all(&self, store: &Store, now_ms: i64) -> Result<usize, StoreError> {
        self.recover_where(store, now_ms, |_| true).await
    }

    /// [`Recordings::recover_all`] for the unfinished recordings `mine` picks (a media
    /// node of a cluster takes back only those of the calls it held).
    pub async fn recover_where(
        &self,
        store: &Store,
        now_ms: i64,
        mine: impl Fn(&Recording) -> bool,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for rec in store
            .unfinished_recordings()
            .await?
            .into_iter()
            .filter(|r| mine(r))
        {
            if self.recorder.is_active(&rec.id) {
                continue;
            }
            store.mark_recording_processing(&rec.id, now_ms).await?;
            match self.recorder.recover(job(&rec)) {
                Ok(()) => n += 1,
                Err(e) => {
                    store
                        .mark_recording_failed(
                            &rec.id,
                            kefu_recorder::FailureKind::Recording,
                            &e.to_string(),
                            now_ms,
                        )
                        .await?
                }
            }
        }
        Ok(n)
    }

    /// An admin's retry of a failed recording: finalize and upload what the spool holds.
    pub async fn retry(
        &self,
        store: &Store,
        rec: &Recording,
        now_ms: i64,
    ) -> Result<(), RetryError> {
        if rec.state != RecordingState::Failed {
            return Err(RetryError::NotFailed);
        }
        self.recorder
            .recover(job(rec))
            .map_err(RetryError::Recorder)?;
        store
            .mark_recording_processing(&rec.id, now_ms)
            .await
            .map_err(RetryError::Store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("only a failed recording can be retried")]
    NotFailed,
    #[error("{0}")]
    Recorder(RecorderError),
    #[error(transparent)]
    Store(StoreError),
}

/// Persists what the recorder reports, for as long as the process runs.
pub async fn persist_events(store: Store, mut events: mpsc::UnboundedReceiver<RecordingEvent>) {
    while let Some(event) = events.recv().await {
        let now = crate::clock::now_ms();
        let result = match &event {
            RecordingEvent::Ready {
                id,
                size_bytes,
                duration_ms,
            } => {
                info!(recording = %id, duration_ms, size_bytes, "recording ready");
                store
                    .mark_recording_ready(id, *duration_ms, *size_bytes as i64, now)
                    .await
            }
            RecordingEvent::Failed { id, kind, reason } => {
                store.mark_recording_failed(id, *kind, reason, now).await
            }
        };
        if let Err(e) = result {
            warn!("cannot persist {event:?}: {e}");
        }
    }
}
