//! The spool file behind a pipe. The muxer writes into a pipe (`pipe:N`); one thread
//! drains it into a bounded queue, another appends the queue to the spool file. When
//! the disk is full (or the write fails otherwise) the bytes wait in memory and the
//! write is retried, so a full spool disk costs nothing while space comes back within
//! [`MEMORY_LIMIT`] of recording; past it the muxer blocks, the recorder's frame queue
//! drops (media lost, the file stays valid). Once the recording has ended, a disk that
//! stays full for [`FINAL_WAIT`] fails it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// Bytes of one recording held in memory while its spool cannot be written: about
/// four minutes of a 1 Mbit/s recording.
pub const MEMORY_LIMIT: usize = 32 << 20;
const CHUNK: usize = 64 << 10;
/// How often a failed write is tried again.
const RETRY: Duration = Duration::from_millis(250);
/// After the recording ended, how long a failing disk may still hold back its end.
pub const FINAL_WAIT: Duration = Duration::from_secs(120);

/// A spool file fed through a pipe; see the module docs.
#[derive(Debug)]
pub struct SpoolPipe {
    /// The muxer's end; `None` once closed.
    pipe: Option<std::io::PipeWriter>,
    ended: Arc<AtomicBool>,
    drain: Option<JoinHandle<std::io::Result<()>>>,
    append: Option<JoinHandle<std::io::Result<u64>>>,
}

impl SpoolPipe {
    /// Creates (or empties) the spool file at `path` and starts its two threads; a
    /// file that cannot be written fails `give_up` after [`SpoolPipe::close`].
    pub fn open(path: &Path, give_up: Duration) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        let (reader, writer) = std::io::pipe()?;
        let (tx, rx) = sync_channel(MEMORY_LIMIT / CHUNK);
        let ended = Arc::new(AtomicBool::new(false));
        let drain = std::thread::Builder::new()
            .name("rec-spool-in".into())
            .spawn(move || drain(reader, tx))?;
        let append = {
            let ended = Arc::clone(&ended);
            let path = path.to_owned();
            std::thread::Builder::new()
                .name("rec-spool-out".into())
                .spawn(move || append(file, &path, rx, &ended, give_up))?
        };
        Ok(Self {
            pipe: Some(writer),
            ended,
            drain: Some(drain),
            append: Some(append),
        })
    }

    /// The URL the muxer writes to (FFmpeg's pipe protocol does not close the fd: it
    /// stays ours, closed by [`SpoolPipe::close`]).
    pub fn url(&self) -> String {
        let fd = self.pipe.as_ref().map_or(-1, |p| p.as_raw_fd());
        format!("pipe:{fd}")
    }

    /// Call after the muxer is closed: ends the pipe and waits until every byte is in
    /// the file (or the disk stayed unwritable for [`FINAL_WAIT`]). Returns the size.
    pub fn close(mut self) -> std::io::Result<u64> {
        self.pipe = None;
        self.ended.store(true, Ordering::Relaxed);
        if let Some(drain) = self.drain.take() {
            drain
                .join()
                .map_err(|_| std::io::Error::other("the spool reader panicked"))??;
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
    /// Abandoned (the transcode failed): the threads end on their own, the writer at
    /// most [`FINAL_WAIT`] later.
    fn drop(&mut self) {
        self.pipe = None;
        self.ended.store(true, Ordering::Relaxed);
    }
}

/// Pipe → queue; blocks (and so blocks the muxer) while the queue is full.
fn drain(mut pipe: std::io::PipeReader, queue: SyncSender<Vec<u8>>) -> std::io::Result<()> {
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = match pipe.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        chunk.truncate(n);
        if queue.send(chunk).is_err() {
            // The writer gave up: nothing more can be kept.
            return Err(std::io::Error::other("the spool writer stopped"));
        }
    }
}

/// Queue → file, retrying a failed write until it succeeds (or the recording has
/// ended and `final_wait` passed).
fn append(
    mut file: impl Write,
    path: &Path,
    queue: Receiver<Vec<u8>>,
    ended: &AtomicBool,
    final_wait: Duration,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    let mut failing_since: Option<Instant> = None;
    for chunk in queue {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(n) if n > 0 => {
                    rest = &rest[n..];
                    written += n as u64;
                    if failing_since.take().is_some() {
                        info!(spool = %path.display(), "the spool is written again; nothing was lost");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                result => {
                    let since = *failing_since.get_or_insert_with(|| {
                        warn!(spool = %path.display(), "the spool cannot be written ({result:?}); holding the recording in memory");
                        Instant::now()
                    });
                    if ended.load(Ordering::Relaxed) && since.elapsed() >= final_wait {
                        return Err(std::io::Error::other(format!(
                            "cannot write the spool: {}",
                            match result {
                                Err(e) => e.to_string(),
                                Ok(_) => "no progress".into(),
                            }
                        )));
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }
    file.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_written_to_the_pipe_reach_the_file_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.mp4");
        let spool = SpoolPipe::open(&path, FINAL_WAIT).expect("open");
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

    #[test]
    fn a_full_disk_holds_the_bytes_until_space_returns_and_loses_none() {
        let (tx, rx) = sync_channel(8);
        for n in 0..5u8 {
            tx.send(vec![n; 1000]).expect("queued");
        }
        drop(tx);
        let mut disk = FlakyDisk {
            full_for: 3,
            at_most: 700,
            got: Vec::new(),
        };
        let ended = AtomicBool::new(false);
        let written =
            append(&mut disk, Path::new("t"), rx, &ended, Duration::ZERO).expect("written");
        assert_eq!(written, 5000);
        let want: Vec<u8> = (0..5u8).flat_map(|n| vec![n; 1000]).collect();
        assert_eq!(disk.got, want);
    }

    #[test]
    fn a_disk_that_stays_full_after_the_end_fails_the_recording() {
        let (tx, rx) = sync_channel(1);
        tx.send(vec![1; 10]).expect("queued");
        drop(tx);
        let disk = FlakyDisk {
            full_for: usize::MAX,
            at_most: 10,
            got: Vec::new(),
        };
        let ended = AtomicBool::new(true);
        let err = append(disk, Path::new("t"), rx, &ended, Duration::ZERO).expect_err("gives up");
        assert!(err.to_string().contains("cannot write the spool"), "{err}");
    }
}
