//! When to sample a party's video and what to do with the classifier's verdicts: pure,
//! clock-free (every call takes "now"), one [`StreamPolicy`] per screened video stream.
//!
//! - A picture after a pause of [`VIDEO_GAP`] (or the first) starts a *video run*: the
//!   camera came on. It is sampled at once, then every `warmup_interval_ms` for
//!   `warmup_ms`, then every `steady_interval_ms`.
//! - After a positive verdict the next sample comes [`CONFIRM_AFTER`] later, so
//!   `positives_to_blur` consecutive positives cost well under a sampling interval.
//! - `positives_to_blur` consecutive positives: blur (the other party sees no picture
//!   of this one). While blurred, sampling goes on; `positives_to_end` further
//!   consecutive positives end the call. A negative resets the current streak.
//! - The blur is lifted only after a new video run (the offender turned the camera
//!   off and on, which also restarts the warm-up sampling) *and* its first sample is
//!   negative: nothing offending is shown again on the strength of a camera cycle.
//!   Positives after a cycle count on towards the end, and the [`MAX_BLURS`]th blur
//!   of the same party ends the call, so cycling the camera cannot go on for ever.
//! - One sample in flight per stream: a sample that falls due while the previous one
//!   still waits for its verdict is skipped and reported (`behind`), so a classifier
//!   that cannot keep up shows as dropped samples, never as a growing queue.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Pictures of a stream further apart than this mean the video stopped in between
/// (a camera turned off sends nothing at all).
pub const VIDEO_GAP: Duration = Duration::from_millis(1500);
/// After a positive verdict, the next sample this soon.
pub const CONFIRM_AFTER: Duration = Duration::from_millis(250);
/// A sample whose verdict has not come back after this long is given up.
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(5);
/// The third time a party's picture has to be withheld, the call ends.
pub const MAX_BLURS: u32 = 3;

/// An enterprise's screening settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationSettings {
    pub enabled: bool,
    /// A sample scoring at least this is positive.
    pub threshold: f32,
    /// Consecutive positives before the picture is blurred for the other party.
    pub positives_to_blur: u32,
    /// Further consecutive positives, while blurred, before the call ends.
    pub positives_to_end: u32,
    /// Sampling interval right after video starts, for `warmup_ms`.
    pub warmup_interval_ms: u32,
    pub warmup_ms: u32,
    /// Sampling interval after the warm-up.
    pub steady_interval_ms: u32,
}

impl Default for ModerationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.8,
            positives_to_blur: 2,
            positives_to_end: 3,
            warmup_interval_ms: 1000,
            warmup_ms: 10_000,
            steady_interval_ms: 2000,
        }
    }
}

/// A setting out of its range: which one, and the range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be within {range}")]
pub struct SettingsError {
    pub field: &'static str,
    pub range: &'static str,
}

impl ModerationSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |field, range| Err(SettingsError { field, range });
        if !(self.threshold.is_finite() && (0.5..=0.99).contains(&self.threshold)) {
            return bad("threshold", "0.5–0.99");
        }
        if !(1..=10).contains(&self.positives_to_blur) {
            return bad("positives_to_blur", "1–10");
        }
        if !(1..=20).contains(&self.positives_to_end) {
            return bad("positives_to_end", "1–20");
        }
        if !(500..=10_000).contains(&self.warmup_interval_ms) {
            return bad("warmup_interval_ms", "500–10000");
        }
        if self.warmup_ms > 120_000 {
            return bad("warmup_ms", "0–120000");
        }
        // Commercial services sample every 5–300 s; more than a minute apart would
        // leave most of a short call unscreened.
        if !(self.warmup_interval_ms..=60_000).contains(&self.steady_interval_ms) {
            return bad("steady_interval_ms", "warmup_interval_ms–60000");
        }
        Ok(())
    }
}

/// What a verdict calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Replace this party's picture for the other party.
    Blur,
    /// The camera was cycled and the new picture is clean: show it again.
    Lift,
    /// End the call (reason `moderation`); the picture stays withheld until then.
    EndCall,
}

/// What to do with a picture just decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OnPicture {
    /// Hand this picture to the classifier.
    pub sample: bool,
    /// A sample fell due while the previous one still awaits its verdict: skipped
    /// (the classifier is behind).
    pub behind: bool,
}

/// One party's video stream under screening.
#[derive(Debug, Clone)]
pub struct StreamPolicy {
    settings: ModerationSettings,
    run_started: Option<Instant>,
    last_picture: Option<Instant>,
    next_sample: Option<Instant>,
    /// When the sample awaiting its verdict was taken.
    in_flight: Option<Instant>,
    /// Scores of the current streak of positives (before and after the blur).
    streak: Vec<f32>,
    blurred: bool,
    /// Blurred, and a new video run began: lift at its first negative sample.
    clearing: bool,
    /// Consecutive positives since the blur (kept across camera cycles).
    since_blur: u32,
    /// Times this party's picture was withheld.
    blurs: u32,
    ended: bool,
}

impl StreamPolicy {
    pub fn new(settings: ModerationSettings) -> Self {
        Self {
            settings,
            run_started: None,
            last_picture: None,
            next_sample: None,
            in_flight: None,
            streak: Vec::new(),
            blurred: false,
            clearing: false,
            since_blur: 0,
            blurs: 0,
            ended: false,
        }
    }

    pub fn is_blurred(&self) -> bool {
        self.blurred
    }

    /// The scores of the current run of positives, oldest first.
    pub fn streak_scores(&self) -> &[f32] {
        &self.streak
    }

    /// A picture of this stream was decoded at `now`.
    pub fn picture(&mut self, now: Instant) -> OnPicture {
        let mut out = OnPicture::default();
        if !self.settings.enabled || self.ended {
            return out;
        }
        let gap = self
            .last_picture
            .is_none_or(|last| now.saturating_duration_since(last) >= VIDEO_GAP);
        self.last_picture = Some(now);
        if gap {
            self.run_started = Some(now);
            self.next_sample = Some(now);
            self.streak.clear();
            // A verdict still due belongs to the old run: it will be ignored.
            self.in_flight = None;
            self.clearing = self.blurred;
        }
        if self
            .in_flight
            .is_some_and(|at| now.saturating_duration_since(at) >= VERDICT_TIMEOUT)
        {
            self.in_flight = None;
        }
        if self.next_sample.is_some_and(|t| now >= t) {
            self.next_sample = Some(now + self.interval_at(now));
            if self.in_flight.is_some() {
                out.behind = true;
            } else {
                self.in_flight = Some(now);
                out.sample = true;
            }
        }
        out
    }

    /// The sample taken at `taken` (`None`: the one awaited now) was not classified
    /// (the worker was busy, or the picture could not be handed over): no verdict
    /// will come; sampling goes on at the next due time.
    pub fn sample_dropped(&mut self, taken: Option<Instant>) {
        if taken.is_none_or(|t| self.in_flight == Some(t)) {
            self.in_flight = None;
        }
    }

    /// When the sample awaiting its verdict was taken.
    pub fn in_flight_since(&self) -> Option<Instant> {
        self.in_flight
    }

    /// The classifier's score for the sample taken at `taken`.
    pub fn verdict(&mut self, score: f32, now: Instant, taken: Instant) -> Action {
        if self.in_flight != Some(taken) {
            return Action::Nothing; // not the sample awaited (an earlier run's, or given up)
        }
        self.in_flight = None;
        if !self.settings.enabled || self.ended || !score.is_finite() {
            // Not a number is no evidence of anything, either way.
            return Action::Nothing;
        }
        if score < self.settings.threshold {
            self.streak.clear();
            self.since_blur = 0;
            if self.blurred && self.clearing {
                self.blurred = false;
                self.clearing = false;
                return Action::Lift;
            }
            return Action::Nothing;
        }
        self.streak.push(score);
        let confirm = now + CONFIRM_AFTER;
        if self.next_sample.is_none_or(|t| t > confirm) {
            self.next_sample = Some(confirm);
        }
        if self.blurred {
            self.clearing = false;
            self.since_blur += 1;
            if self.since_blur >= self.settings.positives_to_end {
                self.ended = true;
                return Action::EndCall;
            }
            return Action::Nothing;
        }
        if self.streak.len() < self.settings.positives_to_blur as usize {
            return Action::Nothing;
        }
        self.blurred = true;
        self.blurs += 1;
        if self.blurs >= MAX_BLURS {
            self.ended = true;
            return Action::EndCall;
        }
        Action::Blur
    }

    fn interval_at(&self, now: Instant) -> Duration {
        let warm = Duration::from_millis(self.settings.warmup_ms.into());
        let in_warmup = self
            .run_started
            .is_some_and(|start| now.saturating_duration_since(start) < warm);
        let ms = if in_warmup {
            self.settings.warmup_interval_ms
        } else {
            self.settings.steady_interval_ms
        };
        Duration::from_millis(ms.into())
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
