//! Open verification attempts: the challenge, the judge, where the frames come from
//! (the workbench's camera or the agent's phone through a single-use link), and the
//! end of each attempt — a verification record, maybe a lock, an event for the
//! workbench. Attempts live in this process's memory for under a minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use kefu_vision::{
    Challenge, DecodeError, Embedding, Failure, LivenessJudge, Policy, Progress, Turn,
};
use rand::Rng;
use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::locks;
use super::references::open_templates;
use super::worker::{FaceWorker, WorkerError};
use crate::accounts::secrets::DataKey;
use crate::accounts::{EnterpriseId, User, UserId};
use crate::store::{Store, StoreError};

/// An attempt ends at the latest this long after it opened.
pub const ATTEMPT_TTL_MS: i64 = 45_000;
/// A phone link must be opened within this long.
pub const PHONE_LINK_TTL_MS: i64 = 180_000;
/// Pages send a frame this often: often enough that a result shows well within a
/// second of the last turn, rarely enough that a check costs under 300 ms of CPU.
pub const FRAME_INTERVAL_MS: u32 = 300;

/// How an attempt ended, as the workbench learns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptResult {
    pub attempt_id: String,
    #[serde(skip)]
    pub agent_id: UserId,
    pub passed: bool,
    /// Dashboard reason of a failure.
    pub reason: Option<&'static str>,
    /// The engine's finer reason.
    pub detail: Option<&'static str>,
    /// Learnt from another node (which told the cluster already).
    #[serde(skip)]
    pub relayed: bool,
}

#[derive(Debug, Default)]
struct PhoneLink {
    /// A link was issued: the workbench stopped sending, the phone has not started.
    issued: bool,
    link_hash: Option<String>,
    link_expires_at: i64,
    claimed: bool,
    device_hash: Option<String>,
}

/// One open attempt.
#[derive(Debug)]
pub struct Attempt {
    pub id: String,
    pub agent_id: UserId,
    pub enterprise_id: EnterpriseId,
    pub created_at: i64,
    /// Unix ms after which the attempt is over (a phone hand-over extends it).
    expires_at: AtomicI64,
    /// The enrolled templates (a phone hand-over starts a fresh judge with them).
    templates: Vec<Embedding>,
    /// Taken out while a frame is at the engine; frames of one attempt run in order.
    judge: tokio::sync::Mutex<Option<Box<LivenessJudge>>>,
    frames: AtomicU32,
    result: Mutex<Option<AttemptResult>>,
    phone: Mutex<PhoneLink>,
}

impl Attempt {
    pub fn expires_at(&self) -> i64 {
        self.expires_at.load(Ordering::SeqCst)
    }

    /// Waiting for a phone that has not opened its link yet.
    fn waiting_for_phone(&self) -> bool {
        let phone = lock(&self.phone);
        phone.issued && !phone.claimed
    }

    pub fn result(&self) -> Option<AttemptResult> {
        lock(&self.result).clone()
    }

    fn channel(&self) -> &'static str {
        if lock(&self.phone).claimed {
            "phone"
        } else {
            "workbench"
        }
    }
}

/// Why a frame was not judged.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of this attempt is being judged; send the next after its answer")]
    InFlight,
    #[error("not a JPEG or PNG picture")]
    NotAnImage,
    #[error("the picture is too large")]
    TooLarge,
    #[error(transparent)]
    Engine(#[from] WorkerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an attempt may not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no face reference is enrolled for this agent")]
    NotEnrolled,
    #[error("the enrolled reference cannot be read")]
    ReferenceUnreadable,
    #[error("verification is locked after repeated failures")]
    Locked,
    #[error("retry in {retry_after_ms} ms")]
    BackOff { retry_after_ms: i64 },
    #[error(transparent)]
    Engine(#[from] WorkerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The open attempts of this process, and the engine they use.
#[derive(Debug, Clone)]
pub struct Attempts {
    pub worker: FaceWorker,
    open: Arc<Mutex<HashMap<String, Arc<Attempt>>>>,
    results: broadcast::Sender<AttemptResult>,
    store: Store,
    data_key: DataKey,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these small maps leaves consistent data behind.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A random challenge: both turns in a random order, shown after a random delay.
pub fn random_challenge() -> Challenge {
    let mut rng = rand::rng();
    let steps = if rng.random_bool(0.5) {
        vec![Turn::Left, Turn::Right]
    } else {
        vec![Turn::Right, Turn::Left]
    };
    Challenge {
        steps,
        reveal_after_ms: rng.random_range(400..1200),
    }
}

pub fn token_digest(token: &str) -> String {
    crate::accounts::session::token_hash(token)
}

fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Attempts {
    pub fn new(worker: FaceWorker, store: Store, data_key: DataKey) -> Self {
        Self {
            worker,
            open: Arc::default(),
            results: broadcast::channel(256).0,
            store,
            data_key,
        }
    }

    /// Ends of attempts, for the workbench's event channel.
    pub fn subscribe(&self) -> broadcast::Receiver<AttemptResult> {
        self.results.subscribe()
    }

    /// The end of an attempt another node held, for this node's event channels (the
    /// agent's workbench may listen here). `detail` is the engine's reason of a failure.
    pub fn relay_in(
        &self,
        attempt_id: String,
        agent_id: UserId,
        passed: bool,
        detail: Option<&str>,
    ) {
        let failure = (!passed).then(|| {
            detail
                .and_then(failure_from_str)
                .unwrap_or(Failure::TooLate)
        });
        let _ = self.results.send(AttemptResult {
            attempt_id,
            agent_id,
            passed,
            reason: failure.map(|f| f.category().as_str()),
            detail: failure.map(Failure::as_str),
            relayed: true,
        });
    }

    /// Opens an attempt for `agent` (closing any other of theirs).
    pub async fn start(&self, agent: &User, now_ms: i64) -> Result<Arc<Attempt>, StartError> {
        self.worker.ready()?;
        // The agent's earlier attempts end first: abandoning one may record the failure
        // that locks or backs off this one. As a task of its own, so that a client going
        // away mid-request cannot leave a record half written.
        let replaced: Vec<Arc<Attempt>> = {
            let mut open = lock(&self.open);
            open.retain(|_, a| a.expires_at() > now_ms);
            let mine: Vec<String> = open
                .values()
                .filter(|a| a.agent_id == agent.id)
                .map(|a| a.id.clone())
                .collect();
            mine.iter().filter_map(|id| open.remove(id)).collect()
        };
        if !replaced.is_empty() {
            let this = self.clone();
            let _ = tokio::spawn(async move {
                for old in replaced {
                    this.abandon(&old, now_ms).await;
                }
            })
            .await;
        }
        let facts = locks::facts(&self.store, &agent.id, now_ms).await?;
        match locks::may_attempt(facts, now_ms) {
            Err(locks::Refusal::Locked) => return Err(StartError::Locked),
            Err(locks::Refusal::BackOff { retry_after_ms }) => {
                return Err(StartError::BackOff { retry_after_ms });
            }
            Ok(()) => {}
        }
        let reference = self
            .store
            .face_reference(&agent.id)
            .await?
            .ok_or(StartError::NotEnrolled)?;
        let templates = open_templates(&self.data_key, &reference.templates_enc)
            .ok_or(StartError::ReferenceUnreadable)?;
        let judge = fresh_judge(&templates, now_ms);
        let attempt = Arc::new(Attempt {
            id: uuid::Uuid::new_v4().to_string(),
            agent_id: agent.id.clone(),
            enterprise_id: agent.enterprise_id.clone(),
            created_at: now_ms,
            expires_at: AtomicI64::new(now_ms + ATTEMPT_TTL_MS),
            templates,
            judge: tokio::sync::Mutex::new(Some(Box::new(judge))),
            frames: AtomicU32::new(0),
            result: Mutex::new(None),
            phone: Mutex::default(),
        });
        lock(&self.open).insert(attempt.id.clone(), attempt.clone());
        self.expire_later(attempt.clone());
        Ok(attempt)
    }

    /// The agent's own open attempt `id`.
    pub fn get(&self, agent: &UserId, id: &str) -> Option<Arc<Attempt>> {
        lock(&self.open)
            .get(id)
            .filter(|a| &a.agent_id == agent)
            .cloned()
    }

    /// A single-use phone link for the attempt; the raw token is returned once. The
    /// attempt now waits for the phone: its deadlines restart when the link is opened.
    /// One link per attempt: issuing another would restart the challenge at will.
    pub async fn phone_link(
        &self,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<(String, i64), PhoneLinkError> {
        let token = random_token();
        let expires_at = now_ms + PHONE_LINK_TTL_MS;
        {
            let mut phone = lock(&attempt.phone);
            if attempt.result().is_some() {
                return Err(PhoneLinkError::Finished);
            }
            if phone.issued {
                return Err(PhoneLinkError::Issued);
            }
            phone.issued = true;
            phone.link_hash = Some(token_digest(&token));
            phone.link_expires_at = expires_at;
            phone.claimed = false;
            phone.device_hash = None;
        }
        attempt
            .expires_at
            .fetch_max(expires_at + ATTEMPT_TTL_MS, Ordering::SeqCst);
        Ok((token, expires_at))
    }

    /// Opens a phone link: once, before it expires. Returns the attempt and the
    /// device token the phone sends its frames with.
    pub async fn claim_phone_link(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<(Arc<Attempt>, String), ClaimError> {
        let digest = token_digest(token);
        let attempt = lock(&self.open)
            .values()
            .find(|a| lock(&a.phone).link_hash.as_deref() == Some(digest.as_str()))
            .cloned()
            .ok_or(ClaimError::Unknown)?;
        // No frame is judged while the phone takes over.
        let mut slot = attempt.judge.lock().await;
        let device = {
            let mut phone = lock(&attempt.phone);
            if phone.claimed {
                return Err(ClaimError::Used);
            }
            if now_ms > phone.link_expires_at || attempt.result().is_some() {
                return Err(ClaimError::Expired);
            }
            let device = random_token();
            phone.claimed = true;
            phone.device_hash = Some(token_digest(&device));
            device
        };
        // The challenge starts over on the phone, with its own deadlines.
        *slot = Some(Box::new(fresh_judge(&attempt.templates, now_ms)));
        drop(slot);
        attempt
            .expires_at
            .fetch_max(now_ms + ATTEMPT_TTL_MS, Ordering::SeqCst);
        Ok((attempt, device))
    }

    /// The agent a phone link belongs to (without using it up).
    pub fn link_owner(&self, token: &str) -> Option<UserId> {
        let digest = token_digest(token);
        lock(&self.open)
            .values()
            .find(|a| lock(&a.phone).link_hash.as_deref() == Some(digest.as_str()))
            .map(|a| a.agent_id.clone())
    }

    /// Whether this process holds the attempt `key` names (other nodes forward its
    /// requests here: `http::forward`).
    pub fn holds(&self, key: &crate::cluster::forward::HeldKey) -> bool {
        use crate::cluster::forward::HeldKey;
        match key {
            HeldKey::Attempt(id) => lock(&self.open).contains_key(id.as_str()),
            HeldKey::Link(token) => self.link_owner(token).is_some(),
            HeldKey::Device(token) => self.by_device(token).is_some(),
        }
    }

    /// The attempt a phone's device token belongs to.
    pub fn by_device(&self, device_token: &str) -> Option<Arc<Attempt>> {
        let digest = token_digest(device_token);
        lock(&self.open)
            .values()
            .find(|a| lock(&a.phone).device_hash.as_deref() == Some(digest.as_str()))
            .cloned()
    }

    /// Judges one frame received now. One frame of an attempt at a time (the pages wait
    /// for each answer); another arriving meanwhile is refused, not queued. The work runs
    /// as a task of its own, so a client going away mid-frame loses neither the judge
    /// nor the record.
    pub async fn submit(
        &self,
        attempt: &Arc<Attempt>,
        frame: Vec<u8>,
        now_ms: i64,
    ) -> Result<Progress, FrameError> {
        let this = self.clone();
        let attempt = attempt.clone();
        tokio::spawn(async move { this.judge_frame(&attempt, frame, now_ms).await })
            .await
            .map_err(|e| FrameError::Engine(WorkerError::Failed(format!("frame task: {e}"))))?
    }

    async fn judge_frame(
        &self,
        attempt: &Arc<Attempt>,
        frame: Vec<u8>,
        now_ms: i64,
    ) -> Result<Progress, FrameError> {
        let Ok(mut slot) = attempt.judge.try_lock() else {
            return Err(FrameError::InFlight);
        };
        let Some(judge) = slot.take() else {
            return Ok(progress_of(attempt.result().as_ref()));
        };
        if now_ms > attempt.expires_at() {
            let mut judge = judge;
            let p = judge.tick(now_ms);
            *slot = Some(judge);
            drop(slot);
            return self.conclude(attempt, p, now_ms, true).await;
        }
        attempt.frames.fetch_add(1, Ordering::Relaxed);
        let done = self.worker.frame(frame, now_ms, judge).await;
        *slot = Some(done.judge);
        drop(slot);
        let progress = match done.progress? {
            Ok(p) => p,
            Err(DecodeError::NotAnImage) => return Err(FrameError::NotAnImage),
            Err(DecodeError::TooLarge) => return Err(FrameError::TooLarge),
        };
        self.conclude(attempt, progress, now_ms, false).await
    }

    /// Where the attempt stands now (deadlines checked), as a task of its own.
    pub async fn status(
        &self,
        attempt: &Arc<Attempt>,
        now_ms: i64,
    ) -> Result<Progress, FrameError> {
        let this = self.clone();
        let attempt = attempt.clone();
        tokio::spawn(async move { this.tick(&attempt, now_ms).await })
            .await
            .map_err(|e| FrameError::Engine(WorkerError::Failed(format!("status task: {e}"))))?
    }

    async fn tick(&self, attempt: &Arc<Attempt>, now_ms: i64) -> Result<Progress, FrameError> {
        let mut slot = attempt.judge.lock().await;
        let Some(judge) = slot.as_mut() else {
            return Ok(progress_of(attempt.result().as_ref()));
        };
        let overdue = now_ms > attempt.expires_at();
        // While the phone has not opened its link, the challenge's clocks do not run.
        let p = if attempt.waiting_for_phone() && !overdue {
            judge.progress()
        } else {
            judge.tick(now_ms)
        };
        drop(slot);
        self.conclude(attempt, p, now_ms, overdue).await
    }

    /// Records the end of an attempt once, when `progress` is final (or `overdue`).
    async fn conclude(
        &self,
        attempt: &Arc<Attempt>,
        progress: Progress,
        now_ms: i64,
        overdue: bool,
    ) -> Result<Progress, FrameError> {
        let failure = match progress {
            Progress::Passed => None,
            Progress::Failed(f) => Some(f),
            _ if overdue => Some(Failure::TooLate),
            other => return Ok(other),
        };
        {
            let mut result = lock(&attempt.result);
            if let Some(r) = result.as_ref() {
                return Ok(progress_of(Some(r)));
            }
            *result = Some(AttemptResult {
                attempt_id: attempt.id.clone(),
                agent_id: attempt.agent_id.clone(),
                passed: failure.is_none(),
                reason: failure.map(|f| f.category().as_str()),
                detail: failure.map(Failure::as_str),
                relayed: false,
            });
        }
        // The attempt stays readable (its result) until it expires.
        self.record(attempt, failure, now_ms).await?;
        Ok(match failure {
            None => Progress::Passed,
            Some(f) => Progress::Failed(f),
        })
    }

    async fn record(
        &self,
        attempt: &Attempt,
        failure: Option<Failure>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let agent = self
            .store
            .user(&attempt.agent_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the attempt's agent is gone".into()))?;
        super::record_check(&self.store, &agent, failure, attempt.channel(), now_ms).await?;
        if failure.is_some() {
            let facts = locks::facts(&self.store, &agent.id, now_ms).await?;
            if !facts.locked && locks::locks_now(facts.recent_failures) {
                self.store.lock_verification(&agent.id, now_ms).await?;
                info!(agent = %agent.id, "face verification locked after repeated failures");
            }
        }
        if let Some(result) = attempt.result() {
            let _ = self.results.send(result);
        }
        Ok(())
    }

    /// An attempt replaced or left: a failure (timed out) if frames were judged. One
    /// that never got a frame ends too (the page learns it) but is no attempt at a
    /// check: nothing is recorded.
    async fn abandon(&self, attempt: &Arc<Attempt>, now_ms: i64) {
        if attempt.result().is_some() {
            return;
        }
        if attempt.frames.load(Ordering::Relaxed) == 0 {
            let result = AttemptResult {
                attempt_id: attempt.id.clone(),
                agent_id: attempt.agent_id.clone(),
                passed: false,
                reason: Some(Failure::TooLate.category().as_str()),
                detail: Some(Failure::TooLate.as_str()),
                relayed: false,
            };
            let fresh = {
                let mut slot = lock(&attempt.result);
                let fresh = slot.is_none();
                slot.get_or_insert(result.clone());
                fresh
            };
            if fresh {
                let _ = self.results.send(result);
            }
            return;
        }
        if let Err(e) = self
            .conclude(attempt, Progress::LookAtCamera, now_ms, true)
            .await
        {
            warn!("cannot record an abandoned verification attempt: {e}");
        }
    }

    /// Ends the attempt at its deadline (which a phone hand-over may move) if nothing
    /// else did; forgets it a minute later.
    fn expire_later(&self, attempt: Arc<Attempt>) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let left = attempt.expires_at() - crate::clock::now_ms();
                if left < 0 {
                    break;
                }
                let wait = u64::try_from(left).unwrap_or(0) + 50;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            if attempt.result().is_none() {
                this.abandon(&attempt, crate::clock::now_ms()).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            lock(&this.open).remove(&attempt.id);
        });
    }
}

fn fresh_judge(templates: &[Embedding], now_ms: i64) -> LivenessJudge {
    LivenessJudge::new(
        random_challenge(),
        Policy::default(),
        templates.to_vec(),
        now_ms,
    )
}

/// Why no phone link was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneLinkError {
    #[error("this attempt has a phone link already")]
    Issued,
    #[error("this attempt has ended")]
    Finished,
}

/// Why a phone link was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("unknown link")]
    Unknown,
    #[error("this link was used already")]
    Used,
    #[error("this link has expired")]
    Expired,
}

fn progress_of(result: Option<&AttemptResult>) -> Progress {
    match result {
        Some(r) if r.passed => Progress::Passed,
        Some(r) => Progress::Failed(
            r.detail
                .and_then(failure_from_str)
                .unwrap_or(Failure::TooLate),
        ),
        None => Progress::LookAtCamera,
    }
}

fn failure_from_str(s: &str) -> Option<Failure> {
    [
        Failure::NoFace,
        Failure::SeveralFaces,
        Failure::DifferentPerson,
        Failure::IdentityChanged,
        Failure::NoMotion,
        Failure::PlanarMotion,
        Failure::Mirrored,
        Failure::WrongDirection,
        Failure::TooLate,
    ]
    .into_iter()
    .find(|f| f.as_str() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_ask_both_turns_in_either_order_after_a_random_delay() {
        let mut orders = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = random_challenge();
            assert_eq!(c.steps.len(), 2);
            assert_ne!(c.steps[0], c.steps[1]);
            assert!((400..1200).contains(&c.reveal_after_ms));
            orders.insert(c.steps[0] == Turn::Left);
        }
        assert_eq!(orders.len(), 2, "both orders occur");
    }

    #[test]
    fn failure_names_round_trip() {
        for f in [Failure::NoFace, Failure::Mirrored, Failure::TooLate] {
            assert_eq!(failure_from_str(f.as_str()), Some(f));
        }
        assert_eq!(failure_from_str("nonsense"), None);
    }
}
