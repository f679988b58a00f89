//! The SFU's one UDP socket, made cheap per datagram.
//!
//! Every participant's media goes through this socket (≈ 14 000–35 000 datagrams/s on a
//! busy node), so system calls and wake-ups are what it costs:
//! - receiving reads up to [`quinn_udp::BATCH_SIZE`] datagrams per system call
//!   (`recvmmsg`), and the kernel may coalesce a burst from one peer into one buffer
//!   (UDP GRO), split here again by its stride;
//! - sending groups consecutive datagrams to one peer into one system call (UDP GSO)
//!   when they have the same size but for a smaller last one, which is what a video
//!   frame's RTP packets look like;
//! - the socket buffers are raised (`media.socket_buffer_bytes`), so a busy moment of
//!   the driver's thread is absorbed instead of dropped by the kernel.
//!
//! The socket does not decide anything; it counts what it did ([`UdpStats`]) for the
//! driver to publish.

use std::io::{self, ErrorKind, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

/// Default of `media.socket_buffer_bytes`: at 35 000 datagrams/s of ≈ 1 000 bytes,
/// about 0.1 s of traffic may wait while the driver's thread is busy (the kernel's
/// default, ≈ 208 KiB, holds a few milliseconds and dropped datagrams at ≈ 40 calls).
pub const DEFAULT_SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Largest datagram one receive slot holds without GRO; bigger ones are truncated by
/// the kernel and then fail to parse (WebRTC packets stay well under it).
const MAX_DATAGRAM: usize = 2000;
/// Largest buffer one GRO receive can fill: the kernel stops coalescing at 64 KiB
/// (`gro_max_size`'s default; a host that raises it for BIG TCP could hand more, and
/// the datagram cut off at the slot's end would count as malformed).
const MAX_GRO_BYTES: usize = 64 * 1024;
/// Largest payload of one GSO send: 65 535 bytes of IPv4 packet less its 20-byte header
/// and the 8-byte UDP header (the kernel refuses more with EMSGSIZE).
pub(crate) const MAX_GSO_BYTES: usize = 65_535 - 20 - 8;
/// Full batches read per wake-up at most, so that timers, commands and the core's
/// output are served between bursts.
const MAX_BATCHES_PER_WAKE: usize = 4;
/// Receive errors other than the expected ones are logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How [`MediaSocket::new`] sets the socket up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// SO_RCVBUF and SO_SNDBUF asked of the kernel; 0 keeps the system's defaults.
    pub buffer_bytes: usize,
    /// Whether runs of datagrams to one peer go out in one system call (UDP GSO),
    /// where the kernel supports it.
    pub gso: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            buffer_bytes: DEFAULT_SOCKET_BUFFER_BYTES,
            gso: true,
        }
    }
}

/// What the socket did since it was made; monotonic, published by the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed to the receive callback.
    pub datagrams_received: u64,
    /// Receive system calls (`recvmmsg`), including ones that found nothing.
    pub recv_calls: u64,
    /// Datagrams sent one per system call.
    pub plain_sends: u64,
    /// Segmented (GSO) send system calls that succeeded.
    pub gso_sends: u64,
    /// Datagrams those GSO sends carried.
    pub gso_datagrams: u64,
    /// Datagrams the socket could not send (buffer full or a send error): dropped.
    pub send_failures: u64,
}

/// The SFU's UDP socket: batched receive, segmented send, counters.
#[derive(Debug)]
pub struct MediaSocket {
    io: AsyncFd<UdpSocket>,
    state: UdpSocketState,
    /// `media.udp_gso`; the kernel's support is asked on each send (it may turn off).
    gso: bool,
    /// Receive buffers: one slot of `slot_bytes` per message of a batch.
    recv_buf: Box<[u8]>,
    slot_bytes: usize,
    meta: [RecvMeta; BATCH_SIZE],
    /// The datagrams waiting to go out in one GSO send, and their bytes back to back.
    run: Option<GsoRun>,
    scratch: Vec<u8>,
    stats: UdpStats,
    recv_errors: ErrorLog,
    gso_turned_off_logged: bool,
}

impl MediaSocket {
    /// Takes over a bound socket: non-blocking, buffers sized, registered with the
    /// current tokio runtime (so this must run inside one, or inside its `enter()`).
    pub fn new(socket: UdpSocket, options: SocketOptions) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        if options.buffer_bytes > 0 {
            size_buffers(&socket, options.buffer_bytes);
        }
        // Also turns UDP GRO on where the kernel has it.
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        let gso = options.gso && state.max_gso_segments() > 1;
        info!(
            path = if gso { "gso" } else { "plain" },
            configured = options.gso,
            max_gso_segments = state.max_gso_segments(),
            gro_segments = state.gro_segments(),
            "media socket send path"
        );
        // Without GRO a slot holds one datagram; with it, what one GRO receive can fill.
        let slot_bytes = (MAX_DATAGRAM * state.gro_segments()).min(MAX_GRO_BYTES);
        let io = register_readable(socket)?;
        Ok(Self {
            io,
            state,
            gso: options.gso,
            recv_buf: vec![0; slot_bytes * BATCH_SIZE].into_boxed_slice(),
            slot_bytes,
            meta: [RecvMeta::default(); BATCH_SIZE],
            run: None,
            scratch: Vec::new(),
            stats: UdpStats::default(),
            recv_errors: ErrorLog::default(),
            gso_turned_off_logged: false,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The counters so far.
    pub fn stats(&self) -> &UdpStats {
        &self.stats
    }

    /// Whether sends are grouped now (configured, and supported by the kernel).
    pub fn gso_enabled(&self) -> bool {
        self.gso && self.state.max_gso_segments() > 1
    }

    /// Waits until datagrams are queued, then reads them in batches and calls
    /// `on_datagram` with each one's source and bytes; returns how many there were.
    ///
    /// Cancel-safe: the only await is the wait for readability, before anything is
    /// read. Errors are not fatal: ICMP port-unreachable from a vanished peer is
    /// ignored, others are logged (at most every [`ERROR_LOG_INTERVAL`]).
    pub async fn recv_batch(&mut self, mut on_datagram: impl FnMut(SocketAddr, &[u8])) -> usize {
        let Self {
            io,
            state,
            recv_buf,
            slot_bytes,
            meta,
            stats,
            recv_errors,
            ..
        } = self;
        let mut guard = match io.readable().await {
            Ok(guard) => guard,
            Err(e) => {
                // Only when the runtime's reactor is gone: nothing will be readable again.
                warn!("media socket cannot wait for datagrams: {e}");
                return std::future::pending().await;
            }
        };
        let mut delivered = 0;
        for _ in 0..MAX_BATCHES_PER_WAKE {
            stats.recv_calls += 1;
            let received = {
                let mut slots = io_slices(recv_buf, *slot_bytes);
                state.recv(UdpSockRef::from(guard.get_inner()), &mut slots, meta)
            };
            match received {
                Ok(messages) => {
                    for (m, slot) in meta.iter().zip(recv_buf.chunks(*slot_bytes)).take(messages) {
                        let filled = &slot[..m.len.min(slot.len())];
                        for datagram in datagrams(filled, m.stride) {
                            on_datagram(m.addr, datagram);
                            delivered += 1;
                        }
                    }
                    if messages < BATCH_SIZE {
                        // A short batch means the kernel hit an empty queue (recvmmsg on a
                        // non-blocking socket stops at EAGAIN once it has something), so
                        // readiness is cleared now rather than by one more call that
                        // would only return EAGAIN. No wake-up is lost: tokio clears only
                        // the readiness of the event this guard was made from (its
                        // tick); a datagram arriving after recvmmsg returned comes with
                        // a new epoll event and a new tick, which this does not clear.
                        guard.clear_ready();
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                // ICMP port unreachable from a vanished peer surfaces here on Linux; the
                // error is consumed, what is queued behind it is read on.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                // Readiness stays, so the next wake-up tries again (as tokio's own
                // receive does); the log is rate-limited in case it keeps failing.
                Err(e) => {
                    recv_errors.log(&e);
                    break;
                }
            }
        }
        stats.datagrams_received += delivered as u64;
        delivered
    }

    /// Sends one datagram now, after anything queued (order is kept). Returns the
    /// datagrams dropped (0 or more: the queued ones may fail too).
    #[must_use = "dropped datagrams are counted by the caller"]
    pub fn send(&mut self, destination: SocketAddr, contents: &[u8]) -> usize {
        self.flush() + self.send_plain(destination, contents)
    }

    /// Queues a datagram for a GSO send with the ones before it (to the same peer, of
    /// the same size), sending the queued run first when it cannot join; without GSO
    /// it is sent at once. Call [`Self::flush`] when no more datagrams follow for now.
    /// Returns the datagrams dropped by any send this made.
    #[must_use = "dropped datagrams are counted by the caller"]
    pub fn queue(&mut self, destination: SocketAddr, contents: &[u8]) -> usize {
        if !self.gso_enabled() {
            return self.flush() + self.send_plain(destination, contents);
        }
        let max_segments = self.state.max_gso_segments();
        let mut dropped = 0;
        match &mut self.run {
            Some(run) if run.admits(destination, contents.len(), max_segments) => {
                run.push(contents.len());
            }
            _ => {
                dropped = self.flush();
                self.run = Some(GsoRun::start(destination, contents.len()));
            }
        }
        self.scratch.extend_from_slice(contents);
        dropped
    }

    /// Sends the queued run: one datagram plainly, more in one GSO send. Returns the
    /// datagrams dropped.
    #[must_use = "dropped datagrams are counted by the caller"]
    pub fn flush(&mut self) -> usize {
        let Some(run) = self.run.take() else {
            return 0;
        };
        // Taken out so the send helpers may borrow `self`; put back to keep its capacity.
        let mut contents = std::mem::take(&mut self.scratch);
        let dropped = if run.count == 1 {
            self.send_plain(run.destination, &contents)
        } else {
            self.send_gso(run, &contents)
        };
        contents.clear();
        self.scratch = contents;
        dropped
    }

    fn send_plain(&mut self, destination: SocketAddr, contents: &[u8]) -> usize {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        };
        match self.try_send(&transmit) {
            Ok(()) => {
                self.stats.plain_sends += 1;
                0
            }
            Err(e) => {
                // No address: a peer's IP is personal data and stays out of the logs.
                debug!("media send failed: {e}");
                self.stats.send_failures += 1;
                1
            }
        }
    }

    /// One system call for the whole run; when the kernel refuses it for anything but
    /// a full buffer, its datagrams go one by one (quinn-udp has then turned GSO off
    /// itself if the refusal was the device's: EIO or EINVAL).
    fn send_gso(&mut self, run: GsoRun, contents: &[u8]) -> usize {
        let transmit = Transmit {
            destination: run.destination,
            ecn: None,
            contents,
            segment_size: Some(run.segment),
            src_ip: None,
        };
        match self.try_send(&transmit) {
            Ok(()) => {
                self.stats.gso_sends += 1;
                self.stats.gso_datagrams += run.count as u64;
                0
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                debug!("media send failed: {e}");
                self.stats.send_failures += run.count as u64;
                run.count
            }
            Err(e) => {
                debug!("GSO send failed ({e}); one by one");
                self.log_gso_turned_off(&e);
                // A run of two or more has a segment of at least one byte (`admits`),
                // so `chunks` gets no zero.
                contents
                    .chunks(run.segment)
                    .map(|datagram| self.send_plain(run.destination, datagram))
                    .sum()
            }
        }
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state
            .try_send(UdpSockRef::from(self.io.get_ref()), transmit)
    }

    fn log_gso_turned_off(&mut self, error: &io::Error) {
        if self.gso && !self.gso_enabled() && !self.gso_turned_off_logged {
            self.gso_turned_off_logged = true;
            warn!(
                "the kernel refused a GSO send ({error}); media datagrams go one by one from now on"
            );
        }
    }
}

/// Datagrams queued for one GSO send: to one destination, each `segment` bytes but
/// the last, which may be shorter (and then ends the run: the kernel splits a GSO
/// buffer every `segment` bytes, so only the last piece may be short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GsoRun {
    destination: SocketAddr,
    segment: usize,
    count: usize,
    bytes: usize,
}

impl GsoRun {
    fn start(destination: SocketAddr, len: usize) -> Self {
        Self {
            destination,
            segment: len,
            count: 1,
            bytes: len,
        }
    }

    /// The whole grouping rule: whether a datagram of `len` bytes to `destination`
    /// may follow this run's datagrams in the same send.
    fn admits(&self, destination: SocketAddr, len: usize, max_segments: usize) -> bool {
        let last_was_full = self.bytes == self.count * self.segment;
        destination == self.destination
            && len > 0 // an empty datagram has no segment to be
            && len <= self.segment
            && last_was_full
            && self.count < max_segments
            && self.bytes + len <= MAX_GSO_BYTES
    }

    fn push(&mut self, len: usize) {
        self.count += 1;
        self.bytes += len;
    }
}

/// The datagrams in one filled receive slot: GRO puts several from one source back to
/// back, each `stride` bytes but the last. An empty datagram is one too.
fn datagrams(filled: &[u8], stride: usize) -> impl Iterator<Item = &[u8]> {
    // A stride of 0 would make `chunks` panic; quinn-udp reports the length as the
    // stride without GRO, so 0 only comes with an empty datagram.
    let stride = if stride == 0 {
        filled.len().max(1)
    } else {
        stride
    };
    filled
        .chunks(stride)
        .chain(filled.is_empty().then_some(filled))
}

/// Registers the socket with the current runtime for readability only: sends never
/// wait (a full buffer drops the datagram), and registering for writability too (as
/// `tokio::net::UdpSocket` does) lets the kernel's send completions wake the thread
/// for nothing.
///
/// Tokio deprecates the safe constructor because an `AsRawFd` that closes or swaps
/// its descriptor while registered would break I/O safety; its replacement is an
/// `unsafe fn` with that contract, and this workspace forbids `unsafe`. The contract
/// holds here: a `std::net::UdpSocket` owns its descriptor, always returns the same
/// one, and closes it only when dropped, which `AsyncFd` does after deregistering it.
#[allow(deprecated)]
fn register_readable(socket: UdpSocket) -> io::Result<AsyncFd<UdpSocket>> {
    AsyncFd::with_interest(socket, Interest::READABLE)
}

/// One `IoSliceMut` per receive slot of `buf`.
fn io_slices(buf: &mut [u8], slot_bytes: usize) -> [IoSliceMut<'_>; BATCH_SIZE] {
    let mut slots = buf.chunks_mut(slot_bytes);
    // `buf` holds BATCH_SIZE slots; the default (empty) slice is never used.
    std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or_default()))
}

/// Raises SO_RCVBUF and SO_SNDBUF to `requested` bytes and says what the kernel gave.
fn size_buffers(socket: &UdpSocket, requested: usize) {
    let sock = socket2::SockRef::from(socket);
    // The kernel takes an int; a larger ask would wrap.
    let ask = requested.min(i32::MAX as usize);
    if let Err(e) = sock.set_recv_buffer_size(ask) {
        warn!("cannot set the media socket's receive buffer: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(ask) {
        warn!("cannot set the media socket's send buffer: {e}");
    }
    let recv = sock.recv_buffer_size().unwrap_or(0);
    let send = sock.send_buffer_size().unwrap_or(0);
    info!(requested, recv, send, "media socket buffers (bytes)");
    let capped = capped_sysctls(requested, recv, send);
    if !capped.is_empty() {
        warn!(
            requested,
            recv,
            send,
            "the kernel capped the media socket's buffers below media.socket_buffer_bytes; \
             datagrams may be dropped in bursts: raise {} to at least {requested}",
            capped.join(" and ")
        );
    }
}

/// The sysctls that capped the buffers well below `requested`. Linux doubles what it
/// is asked (for its own bookkeeping) and reads that back, capped at twice
/// `net.core.rmem_max`/`wmem_max`: a read-back below the ask means the cap let through
/// less than half of it.
fn capped_sysctls(requested: usize, recv: usize, send: usize) -> Vec<&'static str> {
    [("net.core.rmem_max", recv), ("net.core.wmem_max", send)]
        .into_iter()
        .filter(|&(_, effective)| effective < requested)
        .map(|(sysctl, _)| sysctl)
        .collect()
}

/// Rate-limits a log line that could otherwise repeat for every wake-up.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn log(&mut self, error: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < ERROR_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        warn!(
            suppressed = self.suppressed,
            "media socket receive failed: {error}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// How `admits` groups a sequence of (destination, length): the count of each run.
    fn runs(datagrams: &[(SocketAddr, usize)], max_segments: usize) -> Vec<usize> {
        let mut counts = Vec::new();
        let mut run: Option<GsoRun> = None;
        for &(destination, len) in datagrams {
            match &mut run {
                Some(r) if r.admits(destination, len, max_segments) => r.push(len),
                _ => {
                    counts.extend(run.map(|r| r.count));
                    run = Some(GsoRun::start(destination, len));
                }
            }
        }
        counts.extend(run.map(|r| r.count));
        counts
    }

    #[test]
    fn same_sizes_to_one_peer_make_one_run() {
        assert_eq!(runs(&[(peer(1), 1100); 6], 64), vec![6]);
    }

    #[test]
    fn a_smaller_datagram_ends_the_run_it_joins() {
        let a = peer(1);
        let sizes = [(a, 1100), (a, 1100), (a, 700), (a, 1100), (a, 1100)];
        assert_eq!(runs(&sizes, 64), vec![3, 2]);
        // Nothing joins after the shorter one, not even its own size.
        assert_eq!(runs(&[(a, 1100), (a, 700), (a, 700)], 64), vec![2, 1]);
    }

    #[test]
    fn a_larger_datagram_starts_a_new_run() {
        let a = peer(1);
        assert_eq!(
            runs(&[(a, 700), (a, 700), (a, 1100), (a, 1100)], 64),
            vec![2, 2]
        );
    }

    #[test]
    fn another_destination_starts_a_new_run() {
        let (a, b) = (peer(1), peer(2));
        let sizes = [(a, 1100), (a, 1100), (b, 1100), (a, 1100)];
        assert_eq!(runs(&sizes, 64), vec![2, 1, 1]);
    }

    #[test]
    fn a_run_stops_at_the_segment_limit() {
        assert_eq!(runs(&[(peer(1), 100); 10], 4), vec![4, 4, 2]);
        // Without GSO (a limit of 1) every datagram is its own send.
        assert_eq!(runs(&[(peer(1), 100); 3], 1), vec![1, 1, 1]);
    }

    #[test]
    fn a_run_stops_below_the_largest_gso_payload() {
        // 54 × 1200 = 64 800 fits; a 55th would make 66 000.
        let counts = runs(&[(peer(1), 1200); 60], 64);
        assert_eq!(counts, vec![54, 6]);
        const { assert!(54 * 1200 <= MAX_GSO_BYTES && 55 * 1200 > MAX_GSO_BYTES) };
    }

    #[test]
    fn empty_datagrams_are_never_grouped() {
        let a = peer(1);
        assert_eq!(
            runs(&[(a, 0), (a, 0), (a, 100), (a, 0)], 64),
            vec![1, 1, 1, 1]
        );
    }

    #[test]
    fn a_gro_buffer_splits_by_stride_with_a_shorter_last() {
        let buf: Vec<u8> = (0..25).collect();
        let parts: Vec<&[u8]> = datagrams(&buf, 10).collect();
        assert_eq!(parts, vec![&buf[..10], &buf[10..20], &buf[20..]]);
        assert_eq!(datagrams(&buf, 25).count(), 1);
        // A zero stride (never reported with data) must not panic.
        assert_eq!(datagrams(&buf, 0).collect::<Vec<_>>(), vec![&buf[..]]);
        assert_eq!(datagrams(&[], 0).collect::<Vec<_>>(), vec![&[] as &[u8]]);
    }

    #[test]
    fn only_buffers_capped_below_the_ask_are_reported() {
        let mib = 1024 * 1024;
        assert!(capped_sysctls(4 * mib, 8 * mib, 8 * mib).is_empty());
        assert_eq!(
            capped_sysctls(4 * mib, 416 * 1024, 8 * mib),
            vec!["net.core.rmem_max"]
        );
        assert_eq!(capped_sysctls(4 * mib, 0, 0).len(), 2);
    }

    // Socket tests: on 127.0.0.1 (run inside deploy/netns-run.sh in CI).

    fn media_socket(gso: bool) -> MediaSocket {
        let std = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        MediaSocket::new(
            std,
            SocketOptions {
                gso,
                ..SocketOptions::default()
            },
        )
        .expect("media socket")
    }

    fn std_receiver() -> UdpSocket {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        rx
    }

    /// Five full datagrams and a shorter last, each with its index in every byte.
    fn frame_datagrams() -> Vec<Vec<u8>> {
        (0..6u8)
            .map(|i| vec![i; if i == 5 { 700 } else { 1100 }])
            .collect()
    }

    fn send_run_and_receive(gso: bool) -> (Vec<Vec<u8>>, UdpStats, bool) {
        let mut tx = media_socket(gso);
        let rx = std_receiver();
        let to = rx.local_addr().expect("address");
        let mut dropped = 0;
        for datagram in frame_datagrams() {
            dropped += tx.queue(to, &datagram);
        }
        dropped += tx.flush();
        assert_eq!(dropped, 0);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..6 {
            let (n, from) = rx.recv_from(&mut buf).expect("a datagram");
            assert_eq!(from, tx.local_addr().expect("address"));
            got.push(buf[..n].to_vec());
        }
        (got, *tx.stats(), tx.gso_enabled())
    }

    #[tokio::test]
    async fn a_run_arrives_as_the_same_datagrams_with_gso() {
        let (got, stats, gso) = send_run_and_receive(true);
        assert_eq!(got, frame_datagrams());
        if gso {
            assert_eq!((stats.gso_sends, stats.gso_datagrams), (1, 6), "{stats:?}");
            assert_eq!(stats.plain_sends, 0);
        } else {
            eprintln!("UDP GSO is not available here: the plain path was tested");
            assert_eq!(stats.plain_sends, 6);
        }
    }

    #[tokio::test]
    async fn a_run_arrives_as_the_same_datagrams_without_gso() {
        let (got, stats, gso) = send_run_and_receive(false);
        assert!(!gso);
        assert_eq!(got, frame_datagrams());
        assert_eq!((stats.plain_sends, stats.gso_sends), (6, 0), "{stats:?}");
    }

    /// Fifty datagrams of 1000 bytes, numbered in their first two bytes.
    fn numbered(n: u16) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut d = vec![0xAB; 1000];
                d[..2].copy_from_slice(&i.to_be_bytes());
                d
            })
            .collect()
    }

    async fn receive(rx: &mut MediaSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), async {
            while got.len() < count {
                rx.recv_batch(|from, d| got.push((from, d.to_vec()))).await;
            }
        })
        .await
        .expect("all datagrams within 5 s");
        got
    }

    #[tokio::test]
    async fn fifty_plain_datagrams_are_all_received() {
        let mut rx = media_socket(true);
        let to = rx.local_addr().expect("address");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let sent = numbered(50);
        for d in &sent {
            tx.send_to(d, to).expect("send");
        }
        let got = receive(&mut rx, 50).await;
        let from = tx.local_addr().expect("address");
        assert!(got.iter().all(|(source, _)| *source == from));
        let bytes: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        assert_eq!(bytes, sent);
        assert_eq!(rx.stats().datagrams_received, 50);
        // 50 queued datagrams: two recvmmsg calls (32 + 18), not one per datagram.
        assert!(rx.stats().recv_calls <= 3, "{:?}", rx.stats());
    }

    #[tokio::test]
    async fn datagrams_coalesced_by_gro_are_split_again() {
        let mut rx = media_socket(true);
        let to = rx.local_addr().expect("address");
        let mut tx = media_socket(true);
        let sent = numbered(50);
        let mut dropped = 0;
        for d in &sent {
            dropped += tx.queue(to, d);
        }
        dropped += tx.flush();
        assert_eq!(dropped, 0);
        let got = receive(&mut rx, 50).await;
        let from = tx.local_addr().expect("address");
        assert!(got.iter().all(|(source, _)| *source == from));
        let bytes: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        assert_eq!(bytes, sent);
        if tx.gso_enabled() {
            assert_eq!(tx.stats().gso_sends, 1, "{:?}", tx.stats());
            if rx.state.gro_segments() > 1 {
                // All 50 came in one buffer (32 slots would need two calls otherwise).
                assert_eq!(rx.stats().recv_calls, 1, "{:?}", rx.stats());
            }
        }
    }

    #[tokio::test]
    async fn a_drained_socket_waits_without_another_call_and_wakes_for_the_next_datagram() {
        let mut rx = media_socket(true);
        let to = rx.local_addr().expect("address");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.send_to(b"one", to).expect("send");
        assert_eq!(receive(&mut rx, 1).await.len(), 1);
        // The short batch cleared readiness: no EAGAIN call was spent on it.
        assert_eq!(rx.stats().recv_calls, 1);
        let idle = tokio::time::timeout(Duration::from_millis(100), rx.recv_batch(|_, _| {})).await;
        assert!(idle.is_err(), "nothing was sent, so nothing is received");
        assert_eq!(rx.stats().recv_calls, 1, "waiting costs no system call");
        tx.send_to(b"two", to).expect("send");
        let got = receive(&mut rx, 1).await;
        assert_eq!(got[0].1, b"two");
    }

    #[tokio::test]
    async fn a_refused_run_is_retried_one_by_one_and_what_fails_is_counted() {
        let mut tx = media_socket(true);
        // An IPv6 peer for an IPv4 socket: the kernel refuses the run (not WouldBlock),
        // then each of its datagrams.
        let to = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9));
        let dropped =
            tx.queue(to, &[1; 100]) + tx.queue(to, &[2; 100]) + tx.queue(to, &[3; 50]) + tx.flush();
        assert_eq!(dropped, 3);
        let stats = *tx.stats();
        assert_eq!(stats.send_failures, 3, "{stats:?}");
        assert_eq!(stats.plain_sends + stats.gso_sends, 0, "{stats:?}");
    }

    #[tokio::test]
    async fn send_keeps_order_after_queued_datagrams() {
        let mut tx = media_socket(true);
        let rx = std_receiver();
        let to = rx.local_addr().expect("address");
        let dropped = tx.queue(to, &[1; 500]) + tx.queue(to, &[2; 500]) + tx.send(to, &[3; 10]);
        assert_eq!(dropped, 0);
        let mut buf = [0u8; 1024];
        for want in [1u8, 2, 3] {
            let (n, _) = rx.recv_from(&mut buf).expect("a datagram");
            assert!(
                n > 0 && buf[..n].iter().all(|&b| b == want),
                "datagram {want}"
            );
        }
    }
}
