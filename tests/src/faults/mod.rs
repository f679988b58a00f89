//! The fault suite's harness (`make test-faults`, tests/tests/faults.rs): engines a
//! test can stop and start, a call's recording read back as a player would, and the
//! figures each fault leaves (calls dropped, recordings lost, media lost around the
//! fault, time to recover), appended as JSON lines to `TEST_FAULT_FIGURES` and
//! tabulated by tests/faults-table.mjs for docs/reliability.md.

pub mod engines;
pub mod recording;

use serde::Serialize;

/// What one fault did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub fault: String,
    pub calls: usize,
    pub calls_dropped: usize,
    pub recordings: usize,
    pub recordings_lost: usize,
    /// The most media missing from one recording: the call's connected time less the
    /// recording's duration, or its longest hole, whichever is larger (seconds).
    pub media_lost_secs: f64,
    /// From the end of the fault until the product works again (seconds).
    pub recover_secs: f64,
    /// Anything else the fault measures (spool use, bytes sent twice, …).
    pub note: String,
}

impl Figures {
    /// Prints the figures and appends them to `TEST_FAULT_FIGURES` when set.
    pub fn record(&self) {
        // Invariant: a struct of strings and numbers always serializes.
        let line = serde_json::to_string(self).expect("figures serialize");
        println!("fault figures: {line}");
        if let Some(path) = std::env::var_os("TEST_FAULT_FIGURES") {
            use std::io::Write;
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = written {
                eprintln!("cannot append to {}: {e}", path.to_string_lossy());
            }
        }
    }
}

/// Bytes under `dir`, recursively (a spool's disk use).
pub fn disk_use(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_use(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
