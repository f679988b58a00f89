//! Names users see and keys the store sees.
//!
//! The display name ("2026-11-25 14:30:05 视频通话记录.mp4") is metadata and the
//! download name; object keys are built from ids only, so no user text reaches a key.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Video or voice: decides the container and the display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingKind {
    Video,
    Voice,
}

impl RecordingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingKind::Video => "video",
            RecordingKind::Voice => "voice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "video" => Some(RecordingKind::Video),
            "voice" => Some(RecordingKind::Voice),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            RecordingKind::Video => "mp4",
            RecordingKind::Voice => "m4a",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            RecordingKind::Video => "video/mp4",
            RecordingKind::Voice => "audio/mp4",
        }
    }

    fn label(self) -> &'static str {
        match self {
            RecordingKind::Video => "视频通话记录",
            RecordingKind::Voice => "语音通话记录",
        }
    }
}

/// Parses an IANA zone name; unknown names fall back to Asia/Shanghai (the default).
pub fn time_zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::Asia::Shanghai)
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// "2026-11-25 14:30:05 视频通话记录.mp4", the start time in the enterprise's zone.
pub fn display_name(kind: RecordingKind, started_at_ms: i64, tz: Tz) -> String {
    let local = utc(started_at_ms).with_timezone(&tz);
    format!(
        "{} {}.{}",
        local.format("%Y-%m-%d %H:%M:%S"),
        kind.label(),
        kind.extension()
    )
}

/// `enterprise/<id>/recordings/<yyyy>/<mm>/<dd>/<recording-id>.<ext>` (UTC date).
///
/// The call id is not in the key (the catalogue links recording and call): the
/// embedded store (s3s-fs) encodes each key into a file name, and with two UUIDs more
/// the name passed the file system's 255-byte limit.
pub fn object_key(
    enterprise_id: &str,
    recording_id: &str,
    kind: RecordingKind,
    started_at_ms: i64,
) -> String {
    let day = utc(started_at_ms).format("%Y/%m/%d");
    format!(
        "enterprise/{}/recordings/{day}/{}.{}",
        key_segment(enterprise_id),
        key_segment(recording_id),
        kind.extension()
    )
}

/// Ids are ours, but a key segment is still restricted to a safe alphabet.
fn key_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A duration as `hh:mm:ss` (hours keep counting past 99).
pub fn format_hms(duration_ms: i64) -> String {
    let secs = duration_ms.max(0) / 1000;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A `Content-Disposition` value carrying `name`: an ASCII fallback plus the exact
/// name in RFC 5987 encoding (`filename*=UTF-8''…`).
pub fn content_disposition(disposition: &str, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        rfc5987(name)
    )
}

fn rfc5987(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25 06:30:05 UTC = 14:30:05 in Shanghai.
    const START: i64 = 1_795_588_205_000;

    #[test]
    fn display_name_uses_the_enterprise_zone() {
        let sh = time_zone("Asia/Shanghai");
        assert_eq!(
            display_name(RecordingKind::Video, START, sh),
            "2026-11-25 14:30:05 视频通话记录.mp4"
        );
        assert_eq!(
            display_name(RecordingKind::Voice, START, time_zone("UTC")),
            "2026-11-25 06:30:05 语音通话记录.m4a"
        );
        assert_eq!(time_zone("Not/AZone"), sh);
    }

    #[test]
    fn keys_hold_ids_only() {
        let key = object_key("ent/../x", "rec 1", RecordingKind::Video, START);
        assert_eq!(key, "enterprise/ent____x/recordings/2026/11/25/rec_1.mp4");
    }

    #[test]
    fn hms() {
        assert_eq!(format_hms(0), "00:00:00");
        assert_eq!(format_hms(20_499), "00:00:20");
        assert_eq!(format_hms(3_723_000), "01:02:03");
        assert_eq!(format_hms(-5), "00:00:00");
    }

    #[test]
    fn disposition_is_rfc5987() {
        let v = content_disposition("attachment", "2026-11-25 14:30:05 视频通话记录.mp4");
        assert_eq!(
            v,
            "attachment; filename=\"2026-11-25 14:30:05 ______.mp4\"; \
             filename*=UTF-8''2026-11-25%2014%3A30%3A05%20%E8%A7%86%E9%A2%91%E9%80%9A%E8%AF%9D%E8%AE%B0%E5%BD%95.mp4"
        );
    }
}
