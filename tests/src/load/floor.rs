//! The kernel's floor: what forwarding costs when the forwarder does nothing but
//! receive and send — no ICE, no SRTP, no RTP, no pacing. Fed at the packet rate and
//! size an SFU run measured, on the same loopback path, it says how much of an SFU's
//! CPU per packet is the kernel's UDP path on this machine (on loopback the sender also
//! pays for delivering into the receiver's socket), and so the most any SFU could
//! forward per busy core here. Two relays: one `recv_from` + `send_to` per packet, and
//! one that batches up to [`BATCH`] packets per `recvmmsg` + `sendmmsg` after a `poll`
//! (what an SFU could do to save system calls).

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use serde::Serialize;

use super::process::cpu_split_from_stat;

/// Packets per system call in the batched relay.
pub const BATCH: usize = 32;

/// How the relay calls the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    /// A blocking `recv_from` and a `send_to` per packet.
    PerPacket,
    /// `poll`, then `recvmmsg` and `sendmmsg` of up to [`BATCH`] packets.
    Batched,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorReport {
    pub relay: Relay,
    pub offered_pps: f64,
    pub packet_bytes: usize,
    pub relayed: u64,
    pub received: u64,
    pub window_secs: f64,
    /// The relay thread's CPU over the window, in cores.
    pub cores: f64,
    pub packets_per_busy_core: f64,
    pub user_us_per_packet: f64,
    pub kernel_us_per_packet: f64,
    /// False when the relay used under [`MIN_MEASURABLE_CPU_SECS`] (the kernel counts
    /// thread time in 10 ms ticks): the per-packet figures then mean nothing.
    pub measurable: bool,
}

/// Five clock ticks.
pub const MIN_MEASURABLE_CPU_SECS: f64 = 0.05;

/// Sends `pps` packets of `packet_bytes` a second for `window` through a relay thread
/// to a sink thread, all on 127.0.0.1, and measures the relay thread.
pub fn measure(
    relay_kind: Relay,
    pps: f64,
    packet_bytes: usize,
    window: Duration,
) -> anyhow::Result<FloorReport> {
    if !(pps.is_finite() && pps >= 1.0) || packet_bytes == 0 || packet_bytes > 1400 {
        bail!("floor: {pps} packets/s of {packet_bytes} bytes is not a load");
    }
    let relay = UdpSocket::bind("127.0.0.1:0")?;
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    let (relay_addr, sink_addr) = (relay.local_addr()?, sink.local_addr()?);
    // The threads end when nothing arrives for this long after the sender stops.
    let idle = Duration::from_millis(300);
    relay.set_read_timeout(Some(idle))?;
    sink.set_read_timeout(Some(idle))?;
    let sink_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        while sink.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    let relay_thread = spawn_relay(relay_kind, relay, sink_addr, idle)?;

    let payload = vec![0x5au8; packet_bytes];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < window {
        let due = (started.elapsed().as_secs_f64() * pps) as u64;
        while sent < due {
            sender.send_to(&payload, relay_addr)?;
            sent += 1;
        }
        // Small bursts, as a frame's packets and many publishers' audio arrive.
        std::thread::sleep(Duration::from_micros(500));
    }
    let relayed = relay_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the relay thread panicked"))??;
    let received = sink_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the sink thread panicked"))?;
    let (count, user, kernel, secs) = relayed;
    let cores = (user + kernel) / secs.max(1e-6);
    let per_packet = |s: f64| s * 1e6 / count.max(1) as f64;
    Ok(FloorReport {
        relay: relay_kind,
        offered_pps: pps,
        packet_bytes,
        relayed: count,
        received,
        window_secs: secs,
        cores,
        packets_per_busy_core: count as f64 / (user + kernel).max(1e-6),
        user_us_per_packet: per_packet(user),
        kernel_us_per_packet: per_packet(kernel),
        measurable: user + kernel >= MIN_MEASURABLE_CPU_SECS,
    })
}

/// (packets relayed, user s, kernel s, wall s from the first packet to the last).
type RelayResult = anyhow::Result<(u64, f64, f64, f64)>;

fn spawn_relay(
    kind: Relay,
    relay: UdpSocket,
    sink: SocketAddr,
    idle: Duration,
) -> anyhow::Result<JoinHandle<RelayResult>> {
    Ok(std::thread::Builder::new()
        .name("floor-relay".into())
        .spawn(move || {
            let mut buf = [0u8; 2048];
            let (len, _) = relay
                .recv_from(&mut buf)
                .context("no packet reached the relay")?;
            let (user0, kernel0) = thread_cpu()?;
            let first = Instant::now();
            relay.send_to(&buf[..len], sink)?;
            let (count, last) = match kind {
                Relay::PerPacket => relay_each(&relay, sink, &mut buf)?,
                Relay::Batched => relay_batched(&relay, sink, idle)?,
            };
            let (user1, kernel1) = thread_cpu()?;
            Ok((
                count + 1,
                user1 - user0,
                kernel1 - kernel0,
                last.unwrap_or(first).duration_since(first).as_secs_f64(),
            ))
        })?)
}

/// Relays until nothing arrives for the socket's read timeout; (packets, last one's
/// time).
fn relay_each(
    relay: &UdpSocket,
    sink: SocketAddr,
    buf: &mut [u8],
) -> anyhow::Result<(u64, Option<Instant>)> {
    let (mut count, mut last) = (0, None);
    while let Ok((len, _)) = relay.recv_from(buf) {
        relay.send_to(&buf[..len], sink)?;
        count += 1;
        last = Some(Instant::now());
    }
    Ok((count, last))
}

fn relay_batched(
    relay: &UdpSocket,
    sink: SocketAddr,
    idle: Duration,
) -> anyhow::Result<(u64, Option<Instant>)> {
    let fd = relay.as_raw_fd();
    let SocketAddr::V4(sink) = sink else {
        bail!("the floor runs on 127.0.0.1");
    };
    let sink = SockaddrStorage::from(sink);
    let idle_ms = i32::try_from(idle.as_millis()).unwrap_or(i32::MAX);
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut received = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut sending = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let (mut count, mut last) = (0, None);
    loop {
        let lengths: Vec<usize> = {
            let slices: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(
                fd,
                &mut received,
                slices.iter(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(messages) => messages.map(|m| m.bytes).collect(),
                Err(nix::errno::Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                    if poll(&mut fds, idle_ms)? == 0 {
                        return Ok((count, last));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let slices: Vec<[IoSlice<'_>; 1]> = lengths
            .iter()
            .zip(&bufs)
            .map(|(&len, b)| [IoSlice::new(&b[..len])])
            .collect();
        let to = vec![Some(sink); lengths.len()];
        sendmmsg(fd, &mut sending, &slices, &to, [], MsgFlags::empty())?;
        count += lengths.len() as u64;
        last = Some(Instant::now());
    }
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
        }
    }

    #[test]
    fn a_load_that_is_not_one_is_refused() {
        let second = Duration::from_secs(1);
        assert!(measure(Relay::PerPacket, 0.0, 800, second).is_err());
        assert!(measure(Relay::PerPacket, f64::NAN, 800, second).is_err());
        assert!(measure(Relay::Batched, 100.0, 0, second).is_err());
        assert!(measure(Relay::Batched, 100.0, 9000, second).is_err());
    }
}
