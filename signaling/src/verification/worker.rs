//! The face engine runs on its own thread, off the async runtime, behind a bounded
//! queue: a full queue answers "busy" at once instead of piling work up. The liveness
//! judge of an attempt travels with each frame and comes back with the answer.

use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use kefu_vision::{
    DecodeError, Embedding, EnrollError, FaceEngine, FaceVision, LivenessJudge, Progress,
};
use tokio::sync::oneshot;
use tracing::{error, info};

/// Jobs waiting at most; beyond that requests get 503 `face_engine_busy`.
const QUEUE: usize = 16;

/// Why the engine could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    #[error("face verification is not available on this server: {0}")]
    Unavailable(String),
    #[error("the face engine is busy")]
    Busy,
    #[error("face engine failure: {0}")]
    Failed(String),
}

type EnrollReply = Result<Result<Embedding, EnrollError>, WorkerError>;

/// A frame's answer: the judge back, and where the attempt stands.
#[derive(Debug)]
pub struct FrameDone {
    pub judge: Box<LivenessJudge>,
    pub progress: Result<Result<Progress, DecodeError>, WorkerError>,
}

enum Job {
    Enroll {
        photo: Vec<u8>,
        reply: oneshot::Sender<EnrollReply>,
    },
    Frame {
        frame: Vec<u8>,
        now_ms: i64,
        judge: Box<LivenessJudge>,
        reply: oneshot::Sender<FrameDone>,
    },
}

/// Handle on the engine thread (cheap to clone).
#[derive(Clone, Debug)]
pub struct FaceWorker {
    jobs: Result<SyncSender<Job>, String>,
}

impl FaceWorker {
    /// Loads the models from `models_dir` and starts the thread; a missing or broken
    /// model leaves verification unavailable (with the reason), not the server down.
    pub fn start(models_dir: &Path) -> Self {
        let engine = match FaceEngine::load(models_dir) {
            Ok(e) => e,
            Err(e) => {
                error!(
                    "face verification unavailable: {e} (the models come from deploy/fetch-models.sh)"
                );
                return Self::unavailable(&e.to_string());
            }
        };
        Self::with_engine(Box::new(engine))
    }

    pub fn with_engine(mut engine: Box<dyn FaceVision>) -> Self {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("face-engine".into())
            .spawn(move || {
                kefu_vision::set_single_threaded();
                while let Ok(job) = rx.recv() {
                    // A panic loses that job (its caller sees the engine fail), not
                    // the engine thread.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(engine.as_mut(), job);
                    }));
                    if outcome.is_err() {
                        error!("the face engine panicked on a job; it goes on with the next");
                    }
                }
            });
        match spawned {
            Ok(_) => {
                info!("face engine ready");
                Self { jobs: Ok(tx) }
            }
            Err(e) => Self::unavailable(&format!("cannot start the engine thread: {e}")),
        }
    }

    pub fn unavailable(reason: &str) -> Self {
        Self {
            jobs: Err(reason.to_owned()),
        }
    }

    /// `Ok` when the models are loaded; otherwise why not.
    pub fn ready(&self) -> Result<(), WorkerError> {
        self.sender().map(|_| ())
    }

    fn sender(&self) -> Result<&SyncSender<Job>, WorkerError> {
        self.jobs
            .as_ref()
            .map_err(|r| WorkerError::Unavailable(r.clone()))
    }

    /// A reference photo → its template or why it is not usable.
    pub async fn enroll(&self, photo: Vec<u8>) -> EnrollReply {
        let (reply, answer) = oneshot::channel();
        match self.sender()?.try_send(Job::Enroll { photo, reply }) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(WorkerError::Failed("engine thread stopped".into()))),
            Err(TrySendError::Full(_)) => Err(WorkerError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(WorkerError::Failed("engine thread stopped".into()))
            }
        }
    }

    /// One challenge frame received at `now_ms`, judged by `judge`.
    pub async fn frame(&self, frame: Vec<u8>, now_ms: i64, judge: Box<LivenessJudge>) -> FrameDone {
        let sender = match self.sender() {
            Ok(s) => s,
            Err(e) => {
                return FrameDone {
                    judge,
                    progress: Err(e),
                };
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = Job::Frame {
            frame,
            now_ms,
            judge,
            reply,
        };
        let busy = match sender.try_send(job) {
            Ok(()) => {
                return answer.await.unwrap_or_else(|_| FrameDone {
                    // The thread died holding the judge; the attempt cannot go on.
                    judge: spent_judge(now_ms),
                    progress: Err(WorkerError::Failed("engine thread stopped".into())),
                });
            }
            Err(TrySendError::Full(job)) => (job, WorkerError::Busy),
            Err(TrySendError::Disconnected(job)) => {
                (job, WorkerError::Failed("engine thread stopped".into()))
            }
        };
        let judge = match busy.0 {
            Job::Frame { judge, .. } => judge,
            Job::Enroll { .. } => spent_judge(now_ms),
        };
        FrameDone {
            judge,
            progress: Err(busy.1),
        }
    }
}

/// Stands in for a judge lost with its job: the attempt is over, failed.
fn spent_judge(now_ms: i64) -> Box<LivenessJudge> {
    let mut judge = LivenessJudge::new(
        kefu_vision::Challenge {
            steps: Vec::new(),
            reveal_after_ms: 0,
        },
        kefu_vision::Policy::default(),
        Vec::new(),
        now_ms,
    );
    judge.abort(kefu_vision::Failure::TooLate);
    Box::new(judge)
}

fn run(engine: &mut dyn FaceVision, job: Job) {
    match job {
        Job::Enroll { photo, reply } => {
            let result = engine
                .enroll(&photo)
                .map_err(|e| WorkerError::Failed(e.to_string()));
            let _ = reply.send(result);
        }
        Job::Frame {
            frame,
            now_ms,
            mut judge,
            reply,
        } => {
            let progress = match engine.analyze(&frame) {
                Ok(Ok(mut analyzed)) => {
                    let faces = analyzed.faces;
                    let p = judge.observe(now_ms, faces, &mut analyzed);
                    match analyzed.error.take() {
                        Some(e) => Err(WorkerError::Failed(e.to_string())),
                        None => Ok(Ok(p)),
                    }
                }
                Ok(Err(bad)) => Ok(Err(bad)),
                Err(e) => Err(WorkerError::Failed(e.to_string())),
            };
            let _ = reply.send(FrameDone { judge, progress });
        }
    }
}
