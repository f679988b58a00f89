//! Facts about this process that several crates read.

/// This process's CPU time (user + system, every thread) from /proc/self/stat, in
/// seconds: what benchmarks divide work by, and what a node reports as its load.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first,
    // utime and stime the 12th and 13th, in clock ticks (100 Hz on Linux).
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
