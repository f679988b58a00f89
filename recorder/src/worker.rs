//! The thread that runs one recording's [`Transcoder`]: frames in through a bounded
//! queue, "now" from the clock every tick, spool growth announced to the uploader.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::naming::RecordingKind;
use crate::transcode::{Settings, TranscodeError, Transcoder};
use crate::upload::SpoolState;
use kefu_proto::{PictureSink, TapFrame};
use std::sync::Arc;

/// How often the transcoder is advanced when no frame arrives.
const TICK: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub enum WorkerInput {
    Frame(TapFrame),
    /// The call ended at this instant: write everything up to it and close the file.
    Finish(Instant),
}

/// How a worker ended: the duration on success.
pub type WorkerResult = Result<i64, TranscodeError>;

pub struct Worker {
    pub kind: RecordingKind,
    pub settings: Settings,
    pub spool: PathBuf,
    /// How much and how long a spool that cannot be written may hold back.
    pub spool_limits: crate::spool::SpoolLimits,
    pub start: Instant,
    pub input: Receiver<WorkerInput>,
    pub progress: watch::Sender<SpoolState>,
    /// Content moderation of this call, if it is screened.
    pub pictures: Option<Arc<dyn PictureSink>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("spool", &self.spool)
            .finish()
    }
}

impl Worker {
    pub fn run(self) -> WorkerResult {
        // A panic on bad media must still tell moderation and the uploader.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.transcode()))
            .unwrap_or_else(|_| {
                warn!(spool = %self.spool.display(), "the transcoder panicked");
                Err(TranscodeError::Codec("the transcoder panicked".into()))
            });
        if result.is_err()
            && let Some(pictures) = &self.pictures
        {
            // No more pictures from here: moderation must not go blind with us.
            pictures.source_lost();
        }
        let state = if result.is_ok() {
            SpoolState::Closed
        } else {
            SpoolState::Abandoned
        };
        let _ = self.progress.send(state); // the uploader may already be gone
        result
    }

    fn transcode(&self) -> WorkerResult {
        let mut tc = Transcoder::create_spooled(
            &self.spool,
            self.kind,
            self.settings,
            self.start,
            self.spool_limits,
        )?;
        if let Some(sink) = &self.pictures {
            tc.set_picture_sink(Arc::clone(sink));
        }
        let mut last_len = 0;
        let mut last_tick = Instant::now();
        loop {
            match self.input.recv_timeout(TICK) {
                Ok(WorkerInput::Frame(f)) => tc.push(f),
                Ok(WorkerInput::Finish(end)) => {
                    let stats = tc.stats();
                    let duration = tc.finish(end)?;
                    info!(spool = %self.spool.display(), duration_ms = duration, ?stats, "recording closed");
                    return Ok(duration);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    warn!("recorder dropped a live recording; closing it now");
                    return tc.finish(Instant::now());
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                tc.advance(last_tick)?;
                let len = std::fs::metadata(&self.spool).map(|m| m.len()).unwrap_or(0);
                if len != last_len {
                    last_len = len;
                    let _ = self.progress.send(SpoolState::Growing);
                }
            }
        }
    }
}
