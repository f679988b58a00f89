//! A fixed-window attempt limiter keyed by string (login name, client address).
//! Pure: the caller passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `limit` attempts per key in each `window`.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    /// Keys tracked at most; beyond it, expired windows are swept first.
    max_keys: usize,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    last_sweep: Mutex<Option<Instant>>,
}

/// The key every client shares once the limiter is full.
const OVERFLOW: &str = "\u{0}overflow";

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            max_keys: 100_000,
            windows: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
        }
    }

    /// Counts an attempt; `false` when the key is over its limit in this window.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = key;
        if windows.len() >= self.max_keys && !windows.contains_key(key) {
            // Full: expired windows go, at most once a window (a sweep per request
            // would let a flood of fresh keys hold the lock for ever). Keys that still
            // do not fit share one allowance: a flood from many addresses is limited
            // as one client, and the map stays bounded.
            let window = self.window;
            let due = self
                .last_sweep
                .lock()
                .map(|mut last| {
                    let due = last.is_none_or(|t| now.saturating_duration_since(t) >= window);
                    if due {
                        *last = Some(now);
                    }
                    due
                })
                .unwrap_or(true);
            if due {
                windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            }
            if windows.len() >= self.max_keys {
                key = OVERFLOW;
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_limiter_stays_bounded_and_new_keys_share_one_allowance() {
        let mut limiter = RateLimiter::new(2, Duration::from_secs(60));
        limiter.max_keys = 3;
        let t0 = Instant::now();
        for key in ["a", "b", "c"] {
            assert!(limiter.allow(key, t0));
        }
        // Fresh keys past the cap share one window of 2.
        assert!(limiter.allow("d", t0));
        assert!(limiter.allow("e", t0));
        assert!(!limiter.allow("f", t0), "the overflow allowance is spent");
        assert!(limiter.allow("a", t0), "known keys keep their own");
        let held = limiter.windows.lock().expect("lock").len();
        assert!(held <= 4, "bounded: {held} keys");
        // A window later the old keys are swept and new ones fit again.
        let later = t0 + Duration::from_secs(61);
        assert!(limiter.allow("g", later));
        assert!(limiter.allow("g", later));
        assert!(!limiter.allow("g", later), "g has a window of its own");
    }

    #[test]
    fn limits_per_key_and_resets_each_window() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allow("alice", t0));
        }
        assert!(!limiter.allow("alice", t0 + Duration::from_secs(59)));
        assert!(limiter.allow("bob", t0), "other keys are independent");
        assert!(
            limiter.allow("alice", t0 + Duration::from_secs(60)),
            "new window"
        );
    }
}
