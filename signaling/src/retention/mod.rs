//! Retention: each enterprise says how long it keeps recordings, face-verification
//! records, moderation incidents (with their evidence pictures) and enrolled face
//! references; a daily job deletes what is older, from the database and the object
//! store. Nothing is kept "just in case": unset means kept until deleted by hand.

pub mod http;
pub mod job;
pub mod store;

use serde::{Deserialize, Serialize};

pub use job::{Swept, enforce};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The longest retention an enterprise may set (ten years).
pub const MAX_DAYS: u32 = 3650;

/// How long an enterprise keeps each kind of personal data, in days; `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Recordings (database row and file), counted from the call's start.
    pub recordings_days: Option<u32>,
    /// Face-verification records, counted from the check.
    pub verification_days: Option<u32>,
    /// Moderation incidents and their evidence pictures, counted from the incident.
    pub moderation_days: Option<u32>,
    /// Enrolled face references (templates and kept photos), counted from the
    /// enrolment: the agent enrols again before the next check.
    pub face_reference_days: Option<u32>,
}

impl RetentionSettings {
    /// The first field out of range, with why.
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        [
            ("recordings_days", self.recordings_days),
            ("verification_days", self.verification_days),
            ("moderation_days", self.moderation_days),
            ("face_reference_days", self.face_reference_days),
        ]
        .into_iter()
        .find_map(|(name, days)| match days {
            Some(d) if !(1..=MAX_DAYS).contains(&d) => Some((
                name,
                format!("must be between 1 and {MAX_DAYS} days, or null"),
            )),
            _ => None,
        })
    }

    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// What is older than this instant goes, for a retention of `days` at `now_ms`.
pub fn cutoff(now_ms: i64, days: Option<u32>) -> Option<i64> {
    days.map(|d| now_ms.saturating_sub(i64::from(d) * DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_that_many_days_before_now_and_none_keeps_everything() {
        let now = 400 * DAY_MS;
        assert_eq!(cutoff(now, Some(30)), Some(370 * DAY_MS));
        assert_eq!(cutoff(now, None), None);
    }

    #[test]
    fn settings_out_of_range_name_their_field() {
        let ok = RetentionSettings {
            recordings_days: Some(1),
            verification_days: Some(MAX_DAYS),
            moderation_days: None,
            face_reference_days: Some(365),
        };
        assert_eq!(ok.invalid_field(), None);
        let zero = RetentionSettings {
            moderation_days: Some(0),
            ..ok
        };
        assert_eq!(zero.invalid_field().map(|f| f.0), Some("moderation_days"));
        let long = RetentionSettings {
            face_reference_days: Some(MAX_DAYS + 1),
            ..ok
        };
        assert_eq!(
            long.invalid_field().map(|f| f.0),
            Some("face_reference_days")
        );
        assert!(RetentionSettings::default().is_unset());
    }
}
