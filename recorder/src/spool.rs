//! The spool file behind a pipe. The muxer writes into a pipe (`pipe:N`); one thread
//! drains it into a queue, another appends the queue to the spool file. When the disk
//! is full (or the write fails otherwise) the bytes wait in memory and the write is
//! retried, so a full spool disk costs nothing if space comes back before
//! [`SpoolLimits::memory_bytes`] of recording have piled up. Past that, or when the
//! disk is still unwritable [`SpoolLimits::give_up`] after the recording ended, the
//! recording fails; the muxer is never blocked, so the recorder goes on taking frames
//! and the call's end is always handled.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// Bytes of one recording held in memory at most while its spool cannot be written:
/// about four minutes of a 1 Mbit/s recording.
pub const MEMORY_LIMIT: usize = 32 << 20;
/// After the recording ended, how long a failing disk may still hold back its end.
pub const FINAL_WAIT: Duration = Duration::from_secs(120);
const CHUNK: usize = 64 << 10;
/// How often a failed write is tried again.
const RETRY: Duration = Duration::from_millis(250);

/// How long and how much a spool that cannot be written may hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    pub memory_bytes: usize,
    pub give_up: Duration,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        Self {
            memory_bytes: MEMORY_LIMIT,
            give_up: FINAL_WAIT,
        }
    }
}

/// What the two threads and their owner share.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes read from the pipe and not yet in the file.
    pending: AtomicUsize,
    /// Set once the memory limit was passed: the rest is thrown away.
    overflowed: AtomicBool,
    /// The transcode failed: stop at once.
    abandoned: AtomicBool,
    /// When the recording ended (the muxer closed).
    ended_at: Mutex<Option<Instant>>,
}

impl Shared {
    fn ended_for(&self) -> Option<Duration> {
        // A poisoned lock only means a panicking thread held it; the value stays valid.
        let ended = *self.ended_at.lock().unwrap_or_else(|e| e.into_inner());
        ended.map(|t| t.elapsed())
    }
}

/// A spool file fed through a pipe; see the module docs.
#[derive(Debug)]
pub struct SpoolPipe {
    /// The muxer's end; `None` once closed.
    pipe: Option<std::io::PipeWriter>,
    shared: Arc<Shared>,
    drain: Option<JoinHandle<()>>,
    append: Option<JoinHandle<std::io::Result<u64>>>,
}

impl SpoolPipe {
    /// Creates (or empties) the spool file at `path` and starts its two threads.
    pub fn open(path: &Path, limits: SpoolLimits) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        let (reader, writer) = std::io::pipe()?;
        let (tx, rx) = channel();
        let shared = Arc::new(Shared::default());
        let drain = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("rec-spool-in".into())
                .spawn(move || drain(reader, tx, &shared, limits.memory_bytes))?
        };
        let append = {
            let shared = Arc::clone(&shared);
            let path = path.to_owned();
            std::thread::Builder::new()
                .name("rec-spool-out".into())
                .spawn(move || append(file, &path, rx, &shared, limits))?
        };
        Ok(Self {
            pipe: Some(writer),
            shared,
            drain: Some(drain),
            append: Some(append),
        })
    }

    /// The URL the muxer writes to. FFmpeg's pipe protocol never closes this fd (5.1
    /// uses it as is, later versions a duplicate): it stays ours, closed by
    /// [`SpoolPipe::close`] or on drop.
    pub fn url(&self) -> String {
        let fd = self.pipe.as_ref().map_or(-1, |p| p.as_raw_fd());
        format!("pipe:{fd}")
    }

    /// Call after the muxer is closed: ends the pipe and waits until every byte is in
    /// the file. Fails when the disk stayed unwritable past the limits.
    pub fn close(mut self) -> std::io::Result<u64> {
        *self
            .shared
            .ended_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.pipe = None;
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        match self.append.take() {
            Some(append) => append
                .join()
                .map_err(|_| std::io::Error::other("the spool writer panicked"))?,
            None => Ok(0),
        }
    }
}

impl Drop for SpoolPipe {
    /// Abandoned (the transcode failed, the muxer already closed): the writer stops at
    /// its next step, so nothing writes the file once the failure is reported.
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::Relaxed);
        self.pipe = None;
        if let Some(append) = self.append.take() {
            let _ = append.join();
        }
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

/// Pipe → queue, never blocking the muxer: past the memory limit the rest is dropped
/// (and the recording will fail).
fn drain(mut pipe: std::io::PipeReader, queue: Sender<Vec<u8>>, shared: &Shared, limit: usize) {
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!("the recording's pipe failed: {e}");
                shared.overflowed.store(true, Ordering::Relaxed);
                return;
            }
        };
        if shared.overflowed.load(Ordering::Relaxed) || shared.abandoned.load(Ordering::Relaxed) {
            continue;
        }
        if shared.pending.load(Ordering::Relaxed) + n > limit {
            warn!(
                limit,
                "the spool stayed unwritable with the memory limit reached: the recording fails"
            );
            shared.overflowed.store(true, Ordering::Relaxed);
            continue;
        }
        chunk.truncate(n);
        shared.pending.fetch_add(n, Ordering::Relaxed);
        if queue.send(chunk).is_err() {
            // The writer stopped (it gave up): read on so the muxer never blocks.
            shared.overflowed.store(true, Ordering::Relaxed);
        }
    }
}

/// Queue → file, retrying a failed write until it succeeds; gives up when the memory
/// limit was passed, when the transcode was abandoned, or `limits.give_up` after the
/// recording ended.
fn append(
    mut file: impl Write,
    path: &Path,
    queue: Receiver<Vec<u8>>,
    shared: &Shared,
    limits: SpoolLimits,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    let mut failing: Option<std::io::Error> = None;
    let give_up = |why: &Option<std::io::Error>| {
        let why = why.as_ref().map_or("no progress".into(), |e| e.to_string());
        std::io::Error::other(format!("cannot write the spool: {why}"))
    };
    for chunk in queue {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if shared.abandoned.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("the recording was abandoned"));
            }
            // Past the memory limit, give up once a write has failed (with its reason).
            if failing.is_some() && shared.overflowed.load(Ordering::Relaxed) {
                return Err(give_up(&failing));
            }
            match file.write(rest) {
                Ok(n) if n > 0 => {
                    rest = &rest[n..];
                    written += n as u64;
                    shared.pending.fetch_sub(n, Ordering::Relaxed);
                    if failing.take().is_some() {
                        info!(spool = %path.display(), "the spool is written again; nothing was lost");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                result => {
                    if failing.is_none() {
                        warn!(spool = %path.display(), "the spool cannot be written ({result:?}); holding the recording in memory");
                    }
                    failing = Some(
                        result
                            .err()
                            .unwrap_or_else(|| std::io::ErrorKind::WriteZero.into()),
                    );
                    if shared.ended_for().is_some_and(|d| d >= limits.give_up) {
                        return Err(give_up(&failing));
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }
    if shared.overflowed.load(Ordering::Relaxed) {
        return Err(give_up(&failing));
    }
    file.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn bytes_written_to_the_pipe_reach_the_file_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.mp4");
        let spool = SpoolPipe::open(&path, SpoolLimits::default()).expect("open");
        let mut pipe = spool
            .pipe
            .as_ref()
            .expect("open pipe")
            .try_clone()
            .expect("dup");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        pipe.write_all(&data).expect("write");
        drop(pipe);
        assert_eq!(spool.close().expect("closed"), data.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }

    /// A disk that is full for its first `full_for` writes, then takes at most
    /// `at_most` bytes per write.
    struct FlakyDisk {
        full_for: usize,
        at_most: usize,
        got: Vec<u8>,
    }

    impl Write for FlakyDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.full_for > 0 {
                self.full_for -= 1;
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.at_most);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn queued(chunks: &[Vec<u8>], shared: &Shared) -> Receiver<Vec<u8>> {
        let (tx, rx) = channel();
        for c in chunks {
            shared.pending.fetch_add(c.len(), Ordering::Relaxed);
            tx.send(c.clone()).expect("queued");
        }
        rx
    }

    const QUICK: SpoolLimits = SpoolLimits {
        memory_bytes: 1 << 20,
        give_up: Duration::ZERO,
    };

    #[test]
    fn a_full_disk_holds_the_bytes_until_space_returns_and_loses_none() {
        let shared = Shared::default();
        let chunks: Vec<Vec<u8>> = (0..5u8).map(|n| vec![n; 1000]).collect();
        let rx = queued(&chunks, &shared);
        let mut disk = FlakyDisk {
            full_for: 3,
            at_most: 700,
            got: Vec::new(),
        };
        let written = append(&mut disk, Path::new("t"), rx, &shared, QUICK).expect("written");
        assert_eq!(written, 5000);
        assert_eq!(disk.got, chunks.concat());
        assert_eq!(shared.pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_disk_still_full_after_the_end_fails_the_recording() {
        let shared = Shared::default();
        *shared.ended_at.lock().expect("lock") = Some(Instant::now());
        let rx = queued(&[vec![1; 10]], &shared);
        let disk = FlakyDisk {
            full_for: usize::MAX,
            at_most: 10,
            got: Vec::new(),
        };
        let err = append(disk, Path::new("t"), rx, &shared, QUICK).expect_err("gives up");
        assert!(err.to_string().contains("cannot write the spool"), "{err}");
    }

    #[test]
    fn past_the_memory_limit_the_muxer_is_not_blocked_and_the_recording_fails() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("full.mp4");
        // /dev/full: every write fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
        let limits = SpoolLimits {
            memory_bytes: 100_000,
            give_up: Duration::from_secs(3600),
        };
        let spool = SpoolPipe::open(&path, limits).expect("open");
        let mut pipe = spool
            .pipe
            .as_ref()
            .expect("open pipe")
            .try_clone()
            .expect("dup");
        // Ten times the limit goes through without blocking: the rest is dropped.
        pipe.write_all(&vec![7u8; 1_000_000]).expect("never blocks");
        drop(pipe);
        let started = Instant::now();
        let err = spool.close().expect_err("the recording fails");
        assert!(err.to_string().contains("No space left"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it did not wait for the give-up"
        );
    }
}
