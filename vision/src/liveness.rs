//! The liveness judge: an active challenge (turn the head the way the server asks, in
//! a random order) checked on a timed sequence of frames, with the same person in every
//! frame. Pure: frames arrive with the server's receive time and the judge never reads
//! a clock; embeddings are computed only when the judge asks for them.

use crate::embedding::Embedding;
use crate::geometry::{Landmarks, Pose};

/// One step of a challenge, in the person's own frame of reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The person turns to their own left: the nose moves to the right of an
    /// unmirrored camera picture (positive yaw).
    Left,
    Right,
}

impl Turn {
    fn sign(self) -> f32 {
        match self {
            Turn::Left => 1.0,
            Turn::Right => -1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Turn::Left => "turn_left",
            Turn::Right => "turn_right",
        }
    }
}

/// What the server asks, chosen at random by the caller after capture has started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub steps: Vec<Turn>,
    /// How long after the first frame with a face the first step is shown.
    pub reveal_after_ms: i64,
}

/// Thresholds and windows. `Policy::default()` is the calibrated operating point
/// (docs/verification.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Cosine similarity to the reference that counts as the same person.
    pub match_threshold: f32,
    /// |yaw| a frame must reach, in the asked direction, to answer a step.
    pub turn_yaw: f32,
    /// …and how far that must be from the person's own frontal yaw.
    pub min_swing: f32,
    /// …and how far the nose must stand out of the plane of the eyes and mouth
    /// corners, relative to the frontal frame ([`Landmarks::nose_parallax`]): a flat
    /// print turned or tilted moves its nose with that plane.
    pub min_parallax: f32,
    /// A step's answer must arrive within this long after the step was shown.
    pub step_window_ms: i64,
    /// Frames received sooner than this after a step was shown were captured before
    /// anyone could react to it; they neither answer nor fail the step.
    pub min_reaction_ms: i64,
    /// Give up when no face has been seen for this long from the start.
    pub face_timeout_ms: i64,
    /// A left and a right answer this similar once one is mirrored are one picture
    /// flipped, not two head turns.
    pub mirror_threshold: f32,
    /// A candidate turn whose face matches the frontal picture moved as a plane this
    /// well is a flat print, not a head ([`FaceSample::plane_match`]).
    pub max_plane_match: f32,
    /// Besides the answers, every n-th frame with a face is checked for identity.
    pub identity_every: u32,
    /// Below this yaw range and `width_ratio` change nothing moved: a still picture.
    pub still_yaw_range: f32,
    pub still_ratio_change: f32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            match_threshold: 0.363,
            turn_yaw: 0.08,
            min_swing: 0.07,
            min_parallax: 0.04,
            max_plane_match: 0.9,
            step_window_ms: 6_000,
            min_reaction_ms: 200,
            face_timeout_ms: 10_000,
            mirror_threshold: 0.93,
            identity_every: 8,
            still_yaw_range: 0.02,
            still_ratio_change: 0.03,
        }
    }
}

/// What one received frame showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameFaces {
    None,
    One(Pose),
    Several,
}

/// Gives what the judge needs of a frame beyond its pose, computed only when asked;
/// `None` when it cannot be computed.
pub trait FaceSample {
    /// The face's embedding.
    fn embedding(&mut self) -> Option<Embedding>;
    /// The embedding of the face flipped left to right.
    fn mirrored_embedding(&mut self) -> Option<Embedding>;
    /// This frame kept as the frontal reference.
    fn snapshot(&mut self) -> Option<Snapshot>;
    /// How well this frame's face is explained as the frontal frame moved as a flat
    /// picture: normalised correlation (−1…1) between this face and the frontal picture
    /// warped by the homography of the eyes and mouth corners.
    fn plane_match(&mut self, frontal: &Snapshot) -> Option<f32>;
}

/// A frontal frame kept for comparison: its landmarks and, from the engine, a small
/// grey copy of the picture (`None` in the judge's own tests).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub landmarks: Landmarks,
    pub picture: Option<crate::picture::GreySnapshot>,
}

/// Why an attempt failed, finely; [`Failure::category`] is what dashboards group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NoFace,
    SeveralFaces,
    DifferentPerson,
    IdentityChanged,
    /// Nothing moved: a still picture.
    NoMotion,
    /// The face moved, but like a flat picture: its nose never turned.
    PlanarMotion,
    /// The two turns are one picture and its mirror image.
    Mirrored,
    /// A clear turn the other way than asked.
    WrongDirection,
    /// The asked turn came after its window, or never.
    TooLate,
}

/// The reasons the operations dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCategory {
    NoFace,
    DifferentPerson,
    LivenessNotShown,
    TimedOut,
}

impl Failure {
    pub fn category(self) -> FailureCategory {
        match self {
            Failure::NoFace | Failure::SeveralFaces => FailureCategory::NoFace,
            Failure::DifferentPerson | Failure::IdentityChanged => FailureCategory::DifferentPerson,
            Failure::NoMotion
            | Failure::PlanarMotion
            | Failure::Mirrored
            | Failure::WrongDirection => FailureCategory::LivenessNotShown,
            Failure::TooLate => FailureCategory::TimedOut,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::NoFace => "no_face",
            Failure::SeveralFaces => "several_faces",
            Failure::DifferentPerson => "different_person",
            Failure::IdentityChanged => "identity_changed",
            Failure::NoMotion => "no_motion",
            Failure::PlanarMotion => "planar_motion",
            Failure::Mirrored => "mirrored",
            Failure::WrongDirection => "wrong_direction",
            Failure::TooLate => "too_late",
        }
    }
}

impl FailureCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCategory::NoFace => "no_face",
            FailureCategory::DifferentPerson => "different_person",
            FailureCategory::LivenessNotShown => "liveness_not_shown",
            FailureCategory::TimedOut => "timed_out",
        }
    }
}

/// What the person should do now, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Look at the camera (no face yet, or before the challenge is shown).
    LookAtCamera,
    /// Step `index` of `total`: turn this way. `since_ms`: when it was first shown.
    Step {
        index: usize,
        total: usize,
        turn: Turn,
        since_ms: i64,
    },
    Passed,
    Failed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Waiting for the first face.
    WaitingForFace,
    /// A face seen; the first step is shown at `reveal_at`.
    Capturing {
        reveal_at: i64,
    },
    Step {
        index: usize,
        since: i64,
    },
    Done(Option<Failure>),
}

#[derive(Debug)]
struct Answer {
    turn: Turn,
    embedding: Embedding,
    /// Computed for the first answer only: later answers of the other direction are
    /// compared with it.
    mirrored: Option<Embedding>,
}

/// Judges one attempt, frame by frame.
#[derive(Debug)]
pub struct LivenessJudge {
    challenge: Challenge,
    policy: Policy,
    references: Vec<Embedding>,
    opened_at: i64,
    /// The first frame's receive time: the face timeout counts from it (a camera
    /// permission prompt before it is no failure).
    first_frame_at: Option<i64>,
    stage: Stage,
    /// The frames before the first step: the person's own frontal pose.
    frontal: Vec<Pose>,
    /// The latest frontal frame; answers are compared with it.
    frontal_snapshot: Option<Snapshot>,
    /// Candidate turns refused because they moved like a flat picture.
    planar_turns: u32,
    poses: Vec<Pose>,
    answers: Vec<Answer>,
    faces_seen: u32,
}

impl LivenessJudge {
    /// `references`: the enrolled templates. `started_at_ms`: when the attempt opened.
    pub fn new(
        challenge: Challenge,
        policy: Policy,
        references: Vec<Embedding>,
        started_at_ms: i64,
    ) -> Self {
        Self {
            challenge,
            policy,
            references,
            opened_at: started_at_ms,
            first_frame_at: None,
            stage: Stage::WaitingForFace,
            frontal: Vec::new(),
            frontal_snapshot: None,
            planar_turns: 0,
            poses: Vec::new(),
            answers: Vec::new(),
            faces_seen: 0,
        }
    }

    /// When the attempt opened.
    pub fn opened_at(&self) -> i64 {
        self.opened_at
    }

    /// Ends the attempt now with `failure` (its judging was lost).
    pub fn abort(&mut self, failure: Failure) {
        self.stage = Stage::Done(Some(failure));
    }

    /// Where the attempt stands, without a new frame.
    pub fn progress(&self) -> Progress {
        match self.stage {
            Stage::WaitingForFace | Stage::Capturing { .. } => Progress::LookAtCamera,
            Stage::Step { index, since } => Progress::Step {
                index,
                total: self.challenge.steps.len(),
                turn: self.challenge.steps[index],
                since_ms: since,
            },
            Stage::Done(None) => Progress::Passed,
            Stage::Done(Some(f)) => Progress::Failed(f),
        }
    }

    /// Ends the attempt when a deadline has passed with no frame arriving.
    pub fn tick(&mut self, now_ms: i64) -> Progress {
        if let Some(failure) = self.overdue(now_ms) {
            self.stage = Stage::Done(Some(failure));
        }
        self.progress()
    }

    /// One frame, received at `now_ms` (frames arrive in receive order).
    pub fn observe(
        &mut self,
        now_ms: i64,
        faces: FrameFaces,
        sample: &mut dyn FaceSample,
    ) -> Progress {
        if matches!(self.stage, Stage::Done(_)) {
            return self.progress();
        }
        self.first_frame_at.get_or_insert(now_ms);
        let pose = match faces {
            FrameFaces::None => return self.tick(now_ms),
            FrameFaces::Several => return self.finish(Some(Failure::SeveralFaces)),
            FrameFaces::One(pose) => pose,
        };
        self.poses.push(pose);
        if let Some(failure) = self.overdue(now_ms) {
            return self.finish(Some(failure));
        }
        self.faces_seen += 1;
        if let Some(failure) = self.check_identity(sample) {
            return self.finish(Some(failure));
        }
        match self.stage {
            Stage::WaitingForFace => {
                self.frontal.push(pose);
                self.frontal_snapshot = sample.snapshot();
                self.stage = Stage::Capturing {
                    reveal_at: now_ms + self.challenge.reveal_after_ms,
                };
            }
            Stage::Capturing { reveal_at } => {
                if now_ms >= reveal_at {
                    self.stage = self.first_step(now_ms);
                } else {
                    self.frontal.push(pose);
                    self.frontal_snapshot = sample.snapshot();
                }
            }
            Stage::Step { index, since } => {
                if now_ms - since >= self.policy.min_reaction_ms
                    && let Some(outcome) = self.answer(index, pose, now_ms, sample)
                {
                    return outcome;
                }
            }
            Stage::Done(_) => {}
        }
        self.progress()
    }

    fn first_step(&self, now_ms: i64) -> Stage {
        if self.challenge.steps.is_empty() {
            return Stage::Done(None);
        }
        Stage::Step {
            index: 0,
            since: now_ms,
        }
    }

    /// The frame during step `index`: an answer, a wrong turn, or nothing yet.
    fn answer(
        &mut self,
        index: usize,
        pose: Pose,
        now_ms: i64,
        sample: &mut dyn FaceSample,
    ) -> Option<Progress> {
        let turn = self.challenge.steps[index];
        let asked = self.is_turn(&pose, turn);
        let opposite = self.is_turn(&pose, opposite_of(turn));
        if (asked || opposite) && self.moved_as_plane(sample) {
            self.planar_turns += 1;
            return None;
        }
        if asked {
            let embedding = sample.embedding()?;
            let mirrored = if self.answers.is_empty() {
                Some(sample.mirrored_embedding()?)
            } else {
                None
            };
            if embedding.best_match(&self.references) < self.policy.match_threshold {
                return Some(self.finish(Some(Failure::IdentityChanged)));
            }
            self.answers.push(Answer {
                turn,
                embedding,
                mirrored,
            });
            if index + 1 == self.challenge.steps.len() {
                let failure = self.mirrored_answers().then_some(Failure::Mirrored);
                return Some(self.finish(failure));
            }
            self.stage = Stage::Step {
                index: index + 1,
                since: now_ms,
            };
            return Some(self.progress());
        }
        // Still turned from the previous, opposite step: not an answer yet, not wrong.
        let lingering = index > 0 && self.challenge.steps[index - 1] != turn;
        if opposite && !lingering {
            return Some(self.finish(Some(Failure::WrongDirection)));
        }
        None
    }

    /// Identity: the first face against the reference, then every n-th frame.
    fn check_identity(&mut self, sample: &mut dyn FaceSample) -> Option<Failure> {
        let first = self.faces_seen == 1;
        let every = self.policy.identity_every.max(1);
        if !first && !self.faces_seen.is_multiple_of(every) {
            return None;
        }
        let embedding = sample.embedding()?;
        if embedding.best_match(&self.references) >= self.policy.match_threshold {
            None
        } else if first {
            Some(Failure::DifferentPerson)
        } else {
            Some(Failure::IdentityChanged)
        }
    }

    fn mirrored_answers(&self) -> bool {
        let t = self.policy.mirror_threshold;
        self.answers.iter().any(|a| {
            a.mirrored.as_ref().is_some_and(|m| {
                self.answers
                    .iter()
                    .any(|b| a.turn != b.turn && m.cosine(&b.embedding) >= t)
            })
        })
    }

    fn frontal_yaw(&self) -> f32 {
        let yaws: Vec<f32> = self.frontal.iter().map(|p| p.yaw).collect();
        median(&yaws).unwrap_or(0.0)
    }

    fn moved_as_plane(&self, sample: &mut dyn FaceSample) -> bool {
        let Some(frontal) = &self.frontal_snapshot else {
            return false;
        };
        sample
            .plane_match(frontal)
            .is_some_and(|m| m >= self.policy.max_plane_match)
    }

    /// A head turned `turn`: far enough, away from its frontal pose, and not as a
    /// flat picture would.
    fn is_turn(&self, pose: &Pose, turn: Turn) -> bool {
        let toward = pose.yaw * turn.sign();
        let swing = toward - self.frontal_yaw() * turn.sign();
        let parallax = self
            .frontal_snapshot
            .as_ref()
            .and_then(|f| pose.landmarks.nose_parallax(&f.landmarks))
            .map_or(0.0, |p| p * turn.sign());
        toward >= self.policy.turn_yaw
            && swing >= self.policy.min_swing
            && parallax >= self.policy.min_parallax
    }

    /// The failure a passed deadline means, if one has passed.
    fn overdue(&self, now_ms: i64) -> Option<Failure> {
        match self.stage {
            Stage::WaitingForFace
                if self
                    .first_frame_at
                    .is_some_and(|t| now_ms - t > self.policy.face_timeout_ms) =>
            {
                Some(Failure::NoFace)
            }
            Stage::Step { since, .. } if now_ms - since > self.policy.step_window_ms => {
                Some(self.why_no_answer())
            }
            _ => None,
        }
    }

    /// A step went unanswered: was there a head turn at all (late), motion that is not
    /// a head turn (a flat picture moved about), or no motion (a still picture)?
    fn why_no_answer(&self) -> Failure {
        if self.planar_turns > 0 {
            return Failure::PlanarMotion;
        }
        let turned = self
            .poses
            .iter()
            .any(|p| self.is_turn(p, Turn::Left) || self.is_turn(p, Turn::Right));
        if turned {
            return Failure::TooLate;
        }
        let range = |f: fn(&Pose) -> f32| {
            let vals = self.poses.iter().map(f);
            let (lo, hi) = vals.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if hi >= lo { hi - lo } else { 0.0 }
        };
        let ratios: Vec<f32> = self.poses.iter().map(|p| p.width_ratio).collect();
        let ratio_change = range(|p| p.width_ratio) / median(&ratios).unwrap_or(1.0).max(1e-3);
        if range(|p| p.yaw) < self.policy.still_yaw_range
            && ratio_change < self.policy.still_ratio_change
        {
            Failure::NoMotion
        } else {
            Failure::PlanarMotion
        }
    }

    fn finish(&mut self, failure: Option<Failure>) -> Progress {
        self.stage = Stage::Done(failure);
        self.progress()
    }
}

fn opposite_of(turn: Turn) -> Turn {
    match turn {
        Turn::Left => Turn::Right,
        Turn::Right => Turn::Left,
    }
}

fn median(values: &[f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests;
