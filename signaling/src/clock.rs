//! The wall clock for drivers (HTTP handlers, sessions, the sweeper): they read it
//! here and pass it on, so domain logic takes time as an argument. (The media plane
//! and the recorder read their own monotonic clocks.)

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
