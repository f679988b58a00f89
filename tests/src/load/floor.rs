//! The kernel's floor: what forwarding costs when the forwarder does nothing but
//! receive and send — no ICE, no SRTP, no RTP, no pacing. Fed at the packet rate and
//! size an SFU run measured, on the same loopback path, it says how much of an SFU's
//! CPU per packet is the kernel's UDP path on this machine (on loopback the sender also
//! pays for delivering into the receiver's socket), and so the most any SFU could
//! forward per busy core here. Three relays:
//! - [`Relay::PerPacket`]: one `recv_from` + `send_to` per packet (the goal's yardstick);
//! - [`Relay::Batched`]: `poll`, then up to [`BATCH`] packets per `recvmmsg` +
//!   `sendmmsg` (what saving system calls alone buys);
//! - [`Relay::Gso`]: receives like `Batched` (`recvmmsg`, so the two differ only in how
//!   they send) and sends each run of equal-sized packets it read as one `sendmsg`
//!   with UDP GSO (`UDP_SEGMENT`, through quinn-udp, as kefu's socket does): the kernel
//!   walks the routing and socket path once per run instead of once per packet. Where
//!   quinn-udp finds no GSO, its report says so instead of failing.
//!
//! The feeder sends the way video reaches an SFU: bursts of `burst` packets back to
//! back (one video frame's packets), one burst every `burst / pps` seconds, the same
//! for all three relays so they stay comparable; `burst` is the mean packets per video
//! frame of the SFU runs ([`DEFAULT_BURST`] when unknown). Evenly spaced single packets
//! would leave GSO nothing to group and favour no relay a real SFU could be.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{
    MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt, sockopt,
};
use quinn_udp::{Transmit, UdpSocketState};
use serde::Serialize;

use super::process::cpu_split_from_stat;

/// Packets per system call in the batched and GSO relays' receive (and the batched
/// relay's send).
pub const BATCH: usize = 32;

/// Packets per feeder burst when the SFU runs do not say how many a video frame has.
pub const DEFAULT_BURST: usize = 4;

/// The most UDP payload one IPv4 datagram carries (65 535 less the IP and UDP
/// headers): the kernel refuses a GSO send whose segments add up to more.
pub const GSO_MAX_BYTES: usize = 65_507;

const BUF_BYTES: usize = 2048;

/// How the relay calls the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    /// A blocking `recv_from` and a `send_to` per packet.
    PerPacket,
    /// `poll`, then `recvmmsg` and `sendmmsg` of up to [`BATCH`] packets.
    Batched,
    /// `poll`, `recvmmsg` of up to [`BATCH`], then one UDP GSO `sendmsg` per run of
    /// equal-sized packets.
    Gso,
}

impl Relay {
    /// Its name in the report's tables.
    pub fn label(self) -> String {
        match self {
            Relay::PerPacket => "recv_from + send_to".to_string(),
            Relay::Batched => format!("recvmmsg + sendmmsg (≤ {BATCH})"),
            Relay::Gso => format!("recvmmsg (≤ {BATCH}) + UDP GSO sendmsg"),
        }
    }
}

/// What the feeder offers: `pps` packets of `packet_bytes` a second, in bursts of
/// `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FloorLoad {
    pub pps: f64,
    pub packet_bytes: usize,
    pub burst: usize,
}

impl FloorLoad {
    fn check(&self) -> anyhow::Result<()> {
        let FloorLoad {
            pps,
            packet_bytes,
            burst,
        } = *self;
        if !(pps.is_finite() && pps >= 1.0) || packet_bytes == 0 || packet_bytes > 1400 {
            bail!("floor: {pps} packets/s of {packet_bytes} bytes is not a load");
        }
        if burst == 0 || burst > BATCH {
            bail!("floor: bursts of {burst} packets (1 to {BATCH})");
        }
        Ok(())
    }

    /// When burst `index` (from 0) is due, after the feeder's start.
    pub fn burst_at(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 * self.burst as f64 / self.pps)
    }

    /// How many bursts are due `elapsed` after the start (burst 0 at once).
    pub fn bursts_due(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.pps / self.burst as f64) as u64 + 1
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub relay: Relay,
    pub offered_pps: f64,
    pub packet_bytes: usize,
    /// Packets per feeder burst.
    pub burst: usize,
    pub relayed: u64,
    pub received: u64,
    /// System calls that sent them: packets ÷ sends is what a batch or GSO run held.
    pub sends: u64,
    pub window_secs: f64,
    /// The relay thread's CPU over the window, in cores.
    pub cores: f64,
    pub packets_per_busy_core: f64,
    pub user_us_per_packet: f64,
    pub kernel_us_per_packet: f64,
    /// False when the relay used under [`MIN_MEASURABLE_CPU_SECS`] (the kernel counts
    /// thread time in 10 ms ticks): the per-packet figures then mean nothing.
    pub measurable: bool,
    /// Why this relay could not run here (no UDP GSO, or its measurement failed).
    pub unavailable: Option<String>,
}

impl FloorReport {
    /// A relay that did not run, with why.
    pub fn unavailable(relay: Relay, load: FloorLoad, why: impl Into<String>) -> Self {
        Self {
            relay,
            offered_pps: load.pps,
            packet_bytes: load.packet_bytes,
            burst: load.burst,
            relayed: 0,
            received: 0,
            sends: 0,
            window_secs: 0.0,
            cores: 0.0,
            packets_per_busy_core: 0.0,
            user_us_per_packet: 0.0,
            kernel_us_per_packet: 0.0,
            measurable: false,
            unavailable: Some(why.into()),
        }
    }

    /// Whether its per-packet figures can be divided by.
    pub fn usable(&self) -> bool {
        self.unavailable.is_none() && self.measurable
    }
}

/// Five clock ticks.
pub const MIN_MEASURABLE_CPU_SECS: f64 = 0.05;

/// [`measure_load`] with bursts of [`DEFAULT_BURST`].
pub fn measure(
    relay_kind: Relay,
    pps: f64,
    packet_bytes: usize,
    window: Duration,
) -> anyhow::Result<FloorReport> {
    let load = FloorLoad {
        pps,
        packet_bytes,
        burst: DEFAULT_BURST,
    };
    measure_load(relay_kind, load, window)
}

/// Sends `load` for `window` through a relay thread to a sink thread, all on
/// 127.0.0.1, and measures the relay thread.
pub fn measure_load(
    relay_kind: Relay,
    load: FloorLoad,
    window: Duration,
) -> anyhow::Result<FloorReport> {
    load.check()?;
    let relay = UdpSocket::bind("127.0.0.1:0")?;
    let gso = match relay_kind {
        Relay::Gso => {
            let state = gso_state(&relay)?;
            if state.max_gso_segments() <= 1 {
                let why = "quinn-udp finds no UDP GSO here (max_gso_segments 1)";
                return Ok(FloorReport::unavailable(relay_kind, load, why));
            }
            Some(state)
        }
        _ => None,
    };
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    let (relay_addr, sink_addr) = (relay.local_addr()?, sink.local_addr()?);
    // The threads end when nothing arrives for this long after the sender stops.
    let idle = Duration::from_millis(300);
    relay.set_read_timeout(Some(idle))?;
    sink.set_read_timeout(Some(idle))?;
    let sink_thread = std::thread::spawn(move || count_arrivals(&sink));
    let relay_thread = spawn_relay(relay_kind, relay, gso, sink_addr, idle)?;
    feed(&sender, relay_addr, load, window)?;
    let relayed = relay_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the relay thread panicked"))??;
    let received = sink_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the sink thread panicked"))?;
    Ok(report(relay_kind, load, &relayed, received))
}

/// UDP GSO's state for `relay` (quinn-udp probes the kernel).
fn gso_state(relay: &UdpSocket) -> anyhow::Result<UdpSocketState> {
    let state = UdpSocketState::new(relay.into()).context("quinn-udp's socket setup")?;
    // quinn-udp makes the socket non-blocking; the relay waits for its first packet
    // with a blocking read (and its timeout), and a full send buffer should make a
    // send wait, not fail.
    relay.set_nonblocking(false)?;
    // It also turns on GRO, which would hand the relay coalesced datagrams it reads
    // without the control message that says where they split.
    setsockopt(relay.as_raw_fd(), sockopt::UdpGroSegment, &false)?;
    Ok(state)
}

/// Datagrams arriving at `sink` until it stays idle for its read timeout.
fn count_arrivals(sink: &UdpSocket) -> u64 {
    let mut buf = [0u8; BUF_BYTES];
    let mut n = 0u64;
    while sink.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// Sends `load` to `to` for `window`: burst after burst on the schedule of
/// [`FloorLoad::burst_at`], catching up at once when a sleep overran.
fn feed(
    sender: &UdpSocket,
    to: SocketAddr,
    load: FloorLoad,
    window: Duration,
) -> anyhow::Result<()> {
    let payload = vec![0x5au8; load.packet_bytes];
    let started = Instant::now();
    let mut bursts = 0u64;
    while started.elapsed() < window {
        let due = load.bursts_due(started.elapsed());
        for _ in bursts..due {
            for _ in 0..load.burst {
                sender.send_to(&payload, to)?;
            }
        }
        bursts = bursts.max(due);
        if let Some(wait) = load.burst_at(bursts).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

fn report(relay: Relay, load: FloorLoad, outcome: &RelayOutcome, received: u64) -> FloorReport {
    let RelayOutcome {
        packets,
        sends,
        user,
        kernel,
        secs,
    } = *outcome;
    let per_packet = |s: f64| s * 1e6 / packets.max(1) as f64;
    FloorReport {
        relay,
        offered_pps: load.pps,
        packet_bytes: load.packet_bytes,
        burst: load.burst,
        relayed: packets,
        received,
        sends,
        window_secs: secs,
        cores: (user + kernel) / secs.max(1e-6),
        packets_per_busy_core: packets as f64 / (user + kernel).max(1e-6),
        user_us_per_packet: per_packet(user),
        kernel_us_per_packet: per_packet(kernel),
        measurable: user + kernel >= MIN_MEASURABLE_CPU_SECS,
        unavailable: None,
    }
}

/// What a relay loop did: packets relayed, send calls, the last packet's time.
#[derive(Debug, Default)]
struct RelayTally {
    packets: u64,
    sends: u64,
    last: Option<Instant>,
}

impl RelayTally {
    fn sent(&mut self, packets: usize) {
        self.packets += packets as u64;
        self.sends += 1;
        self.last = Some(Instant::now());
    }
}

/// A relay thread's result: packets, send calls, its user and kernel CPU seconds, wall
/// seconds from the first packet to the last.
#[derive(Debug, Clone, Copy)]
struct RelayOutcome {
    packets: u64,
    sends: u64,
    user: f64,
    kernel: f64,
    secs: f64,
}

fn spawn_relay(
    kind: Relay,
    relay: UdpSocket,
    gso: Option<UdpSocketState>,
    sink: SocketAddr,
    idle: Duration,
) -> anyhow::Result<JoinHandle<anyhow::Result<RelayOutcome>>> {
    Ok(std::thread::Builder::new()
        .name("floor-relay".into())
        .spawn(move || {
            let mut buf = [0u8; BUF_BYTES];
            let (len, _) = relay
                .recv_from(&mut buf)
                .context("no packet reached the relay")?;
            // The clock starts at the first packet: the wait for it is no work.
            let (user0, kernel0) = thread_cpu()?;
            let first = Instant::now();
            relay.send_to(&buf[..len], sink)?;
            let tally = match (kind, &gso) {
                (Relay::PerPacket, _) => relay_each(&relay, sink, &mut buf)?,
                (Relay::Batched, _) => relay_batched(&relay, sink, idle)?,
                (Relay::Gso, Some(state)) => relay_gso(&relay, state, sink, idle)?,
                (Relay::Gso, None) => bail!("the GSO relay needs quinn-udp's state"),
            };
            let (user1, kernel1) = thread_cpu()?;
            Ok(RelayOutcome {
                packets: tally.packets + 1,
                sends: tally.sends + 1,
                user: user1 - user0,
                kernel: kernel1 - kernel0,
                secs: tally
                    .last
                    .unwrap_or(first)
                    .duration_since(first)
                    .as_secs_f64(),
            })
        })?)
}

/// Relays until nothing arrives for the socket's read timeout.
fn relay_each(relay: &UdpSocket, sink: SocketAddr, buf: &mut [u8]) -> anyhow::Result<RelayTally> {
    let mut tally = RelayTally::default();
    while let Ok((len, _)) = relay.recv_from(buf) {
        relay.send_to(&buf[..len], sink)?;
        tally.sent(1);
    }
    Ok(tally)
}

/// Waits up to `idle` for packets, then reads what is queued, up to `bufs.len()`:
/// their lengths, or `None` when nothing came.
fn receive_batch(
    fd: RawFd,
    headers: &mut MultiHeaders<SockaddrStorage>,
    bufs: &mut [[u8; BUF_BYTES]],
    idle: Duration,
) -> anyhow::Result<Option<Vec<usize>>> {
    let idle_ms = i32::try_from(idle.as_millis()).unwrap_or(i32::MAX);
    loop {
        let slices: Vec<[IoSliceMut<'_>; 1]> = bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        match recvmmsg(fd, headers, slices.iter(), MsgFlags::MSG_DONTWAIT, None) {
            Ok(messages) => return Ok(Some(messages.map(|m| m.bytes).collect())),
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                if poll(&mut fds, idle_ms)? == 0 {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn relay_batched(
    relay: &UdpSocket,
    sink: SocketAddr,
    idle: Duration,
) -> anyhow::Result<RelayTally> {
    let fd = relay.as_raw_fd();
    let SocketAddr::V4(sink) = sink else {
        bail!("the floor runs on 127.0.0.1");
    };
    let sink = SockaddrStorage::from(sink);
    let mut bufs = vec![[0u8; BUF_BYTES]; BATCH];
    let mut received = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut sending = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tally = RelayTally::default();
    while let Some(lengths) = receive_batch(fd, &mut received, &mut bufs, idle)? {
        let slices: Vec<[IoSlice<'_>; 1]> = lengths
            .iter()
            .zip(&bufs)
            .map(|(&len, b)| [IoSlice::new(&b[..len])])
            .collect();
        let to = vec![Some(sink); lengths.len()];
        sendmmsg(fd, &mut sending, &slices, &to, [], MsgFlags::empty())?;
        tally.sent(lengths.len());
    }
    Ok(tally)
}

fn relay_gso(
    relay: &UdpSocket,
    state: &UdpSocketState,
    sink: SocketAddr,
    idle: Duration,
) -> anyhow::Result<RelayTally> {
    let fd = relay.as_raw_fd();
    let mut bufs = vec![[0u8; BUF_BYTES]; BATCH];
    let mut received = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    // GSO sends one buffer cut into equal segments, so a run's packets are copied
    // together (≈ 800 bytes each: noise beside the system call).
    let mut contents = Vec::with_capacity(BATCH * BUF_BYTES);
    let mut tally = RelayTally::default();
    while let Some(lengths) = receive_batch(fd, &mut received, &mut bufs, idle)? {
        for run in gso_runs(&lengths, state.max_gso_segments()) {
            contents.clear();
            for (buf, &len) in bufs[run.clone()].iter().zip(&lengths[run.clone()]) {
                contents.extend_from_slice(&buf[..len]);
            }
            let segment = (run.len() > 1).then_some(lengths[run.start]);
            send_segments(relay, state, sink, &contents, segment)?;
            tally.sent(run.len());
        }
    }
    Ok(tally)
}

/// One `sendmsg` of `contents`, cut by the kernel into `segment`-byte datagrams.
fn send_segments(
    socket: &UdpSocket,
    state: &UdpSocketState,
    to: SocketAddr,
    contents: &[u8],
    segment: Option<usize>,
) -> anyhow::Result<()> {
    let transmit = Transmit {
        destination: to,
        ecn: None,
        contents,
        segment_size: segment,
        src_ip: None,
    };
    // `try_send`: quinn-udp's `send` logs and swallows errors, which would count lost
    // packets as relayed.
    state
        .try_send(socket.into(), &transmit)
        .context("UDP GSO send")
}

/// Splits packets of `lengths` into what GSO sends as one: runs of consecutive equal
/// sizes, at most `max_segments` and [`GSO_MAX_BYTES`] each.
pub fn gso_runs(lengths: &[usize], max_segments: usize) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, &len) in lengths.iter().enumerate() {
        match runs.last_mut() {
            Some(run)
                if lengths[run.start] == len
                    && run.len() < max_segments
                    && (run.len() + 1) * len <= GSO_MAX_BYTES =>
            {
                run.end = i + 1;
            }
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

/// UDP GSO's segment limit on this machine as quinn-udp sees it; 1 means none.
pub fn gso_segments() -> anyhow::Result<usize> {
    let probe = UdpSocket::bind("127.0.0.1:0")?;
    Ok(UdpSocketState::new((&probe).into())?.max_gso_segments())
}

/// This thread's (user, kernel) CPU seconds.
fn thread_cpu() -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    cpu_split_from_stat(&stat).context("unreadable /proc/thread-self/stat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_forwards_what_it_is_offered_and_its_cpu_is_measured() {
        for relay in [Relay::PerPacket, Relay::Batched] {
            let report = measure(relay, 2000.0, 800, Duration::from_millis(1500)).expect("floor");
            // ≈ 3000 offered; the first burst and timer slack move it a little.
            assert!(report.relayed >= 2500, "{report:?}");
            assert_eq!(report.received, report.relayed, "{report:?}");
            assert!(report.window_secs > 1.0, "{report:?}");
            assert!(report.cores >= 0.0 && report.cores < 2.0, "{report:?}");
            assert!(
                report.sends >= 1 && report.sends <= report.relayed,
                "{report:?}"
            );
            assert!(report.unavailable.is_none(), "{report:?}");
        }
    }

    #[test]
    fn the_gso_relay_relays_everything_or_says_gso_is_missing() {
        let report = measure(Relay::Gso, 2000.0, 800, Duration::from_secs(1)).expect("floor");
        if gso_segments().expect("probe") <= 1 {
            assert!(report.unavailable.is_some(), "{report:?}");
            return;
        }
        assert!(report.unavailable.is_none(), "{report:?}");
        // ≈ 2000 offered in bursts of 4.
        assert!(report.relayed >= 1600, "{report:?}");
        assert_eq!(report.received, report.relayed, "{report:?}");
        assert!(report.sends <= report.relayed, "{report:?}");
    }

    #[test]
    fn one_gso_send_arrives_as_one_datagram_per_segment() {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let state = gso_state(&sender).expect("quinn-udp");
        if state.max_gso_segments() <= 1 {
            return;
        }
        let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sink.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let to = sink.local_addr().expect("addr");
        send_segments(&sender, &state, to, &[7u8; 4 * 800], Some(800)).expect("send");
        let mut buf = [0u8; BUF_BYTES];
        let sizes: Vec<usize> = std::iter::from_fn(|| sink.recv(&mut buf).ok()).collect();
        assert_eq!(sizes, vec![800; 4]);
    }

    #[test]
    fn bursts_follow_the_frame_schedule() {
        let load = FloorLoad {
            pps: 1000.0,
            packet_bytes: 800,
            burst: 4,
        };
        // 4 packets every 4 ms: 250 bursts a second, the first at once.
        assert_eq!(load.burst_at(0), Duration::ZERO);
        assert_eq!(load.burst_at(250), Duration::from_secs(1));
        assert_eq!(load.bursts_due(Duration::ZERO), 1);
        assert_eq!(load.bursts_due(Duration::from_micros(3999)), 1);
        assert_eq!(load.bursts_due(Duration::from_millis(4)), 2);
        assert_eq!(load.bursts_due(Duration::from_secs(1)), 251);
    }

    #[test]
    fn gso_runs_group_equal_sizes_within_the_limits() {
        assert_eq!(gso_runs(&[], 64), Vec::<Range<usize>>::new());
        assert_eq!(gso_runs(&[800; 5], 64), vec![0..5]);
        assert_eq!(gso_runs(&[800; 5], 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(
            gso_runs(&[800, 800, 80, 800, 800], 64),
            vec![0..2, 2..3, 3..5]
        );
        // 1400-byte segments: 46 fit in one IPv4 datagram.
        let runs = gso_runs(&[1400; 50], 64);
        assert_eq!(runs, vec![0..46, 46..50]);
        assert_eq!(gso_runs(&[800; 3], 1), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn a_load_that_is_not_one_is_refused() {
        let second = Duration::from_secs(1);
        assert!(measure(Relay::PerPacket, 0.0, 800, second).is_err());
        assert!(measure(Relay::PerPacket, f64::NAN, 800, second).is_err());
        assert!(measure(Relay::Batched, 100.0, 0, second).is_err());
        assert!(measure(Relay::Batched, 100.0, 9000, second).is_err());
        let no_burst = FloorLoad {
            pps: 100.0,
            packet_bytes: 800,
            burst: 0,
        };
        assert!(measure_load(Relay::Gso, no_burst, second).is_err());
    }
}
