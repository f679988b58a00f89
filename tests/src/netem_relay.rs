//! A user-space network impairment relay for tests (the kernel here has no `netem`).
//!
//! Peers send UDP to the relay's address (the SFU advertises it); each peer address
//! gets its own upstream socket, so the SFU still sees one source per peer. Packets in
//! both directions pass a [`str0m_netem::Netem`] per flow: loss, one-way delay, jitter
//! and a rate-limited link with a tail-drop queue. Tests change the impairment while
//! the call runs, cut a flow off (`block`), or move it to a new upstream socket
//! (`rebind`: the SFU sees the peer's address change, as after a Wi-Fi → 4G switch).
//!
//! Control is a line protocol (see [`Command::parse`]) so the browser tests can drive
//! the `kefu-netem-relay` binary over stdin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use str0m_netem::{Bitrate, DataSize, Input, Netem, NetemConfig, Output, Probability, RandomLoss};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Largest datagram relayed (WebRTC stays under ~1500 bytes).
const MAX_DATAGRAM: usize = 2048;

/// How one direction of a flow is impaired. All zero: a clean link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Impairment {
    /// One-way delay added to every packet, each direction.
    pub delay_ms: u64,
    /// Random variation of that delay, ±.
    pub jitter_ms: u64,
    /// Probability each packet is lost, each direction (0.0–1.0).
    pub loss: f32,
    /// Link rate in kbit/s, each direction; 0 means unlimited.
    pub kbps: u64,
    /// Queue in front of the rate-limited link, in milliseconds at that rate.
    pub queue_ms: u64,
}

impl Impairment {
    fn netem(&self, seed: u64) -> NetemConfig {
        let mut config = NetemConfig::new()
            .latency(Duration::from_millis(self.delay_ms))
            .jitter(Duration::from_millis(self.jitter_ms))
            .seed(seed);
        if self.loss > 0.0 {
            config = config.loss(RandomLoss::new(Probability::new(self.loss)));
        }
        if self.kbps > 0 {
            let queue_ms = if self.queue_ms == 0 {
                200
            } else {
                self.queue_ms
            };
            // Netem counts packets waiting out their delay as queued too.
            let in_flight_ms = queue_ms + self.delay_ms + self.jitter_ms;
            let buffer = (self.kbps * in_flight_ms / 8).max(MAX_DATAGRAM as u64);
            config = config.link(Bitrate::kbps(self.kbps), DataSize::bytes(buffer as i64));
        }
        config
    }

    /// `delay_ms=50 loss=0.05 kbps=300 …`; keys not given stay zero.
    pub fn parse(words: &[&str]) -> Result<Self, String> {
        let mut imp = Impairment::default();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {word:?}"))?;
            let int = || value.parse::<u64>().map_err(|e| format!("{key}: {e}"));
            match key {
                "delay_ms" => imp.delay_ms = int()?,
                "jitter_ms" => imp.jitter_ms = int()?,
                "kbps" => imp.kbps = int()?,
                "queue_ms" => imp.queue_ms = int()?,
                "loss" => {
                    let loss = value.parse::<f32>().map_err(|e| format!("loss: {e}"))?;
                    if !(0.0..=1.0).contains(&loss) {
                        return Err(format!("loss must be within 0–1, got {loss}"));
                    }
                    imp.loss = loss;
                }
                _ => return Err(format!("unknown key {key:?}")),
            }
        }
        Ok(imp)
    }
}

/// Which flows a command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every flow, and every flow that starts later.
    All,
    /// The flow of the peer sending from this UDP port, or whose upstream socket has
    /// it (what the SFU, and a browser's peer-reflexive candidate, see).
    Port(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `set all|PORT key=value…`
    Set(Target, Impairment),
    /// `block all|PORT`: drop everything both ways (the network is gone).
    Block(Target),
    /// `rebind all|PORT`: unblock, and reach the upstream from a new socket.
    Rebind(Target),
    /// `upstream ADDR`: where to relay to (packets before it is known are dropped).
    Upstream(SocketAddr),
    /// `stats`: one JSON line of per-flow counters.
    Stats,
}

impl Command {
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let target = |w: Option<&&str>| match w {
            Some(&"all") => Ok(Target::All),
            Some(port) => port
                .parse()
                .map(Target::Port)
                .map_err(|_| format!("expected all or a port, got {port:?}")),
            None => Err("missing target: all or a port".to_owned()),
        };
        match words.first() {
            Some(&"set") => Ok(Command::Set(
                target(words.get(1))?,
                Impairment::parse(words.get(2..).unwrap_or_default())?,
            )),
            Some(&"block") => Ok(Command::Block(target(words.get(1))?)),
            Some(&"rebind") => Ok(Command::Rebind(target(words.get(1))?)),
            Some(&"upstream") => words
                .get(1)
                .and_then(|a| a.parse().ok())
                .map(Command::Upstream)
                .ok_or_else(|| format!("expected upstream IP:PORT, got {line:?}")),
            Some(&"stats") => Ok(Command::Stats),
            _ => Err(format!("unknown command {line:?}")),
        }
    }
}

/// Counters of one flow.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowStats {
    pub peer_port: u16,
    pub upstream_port: u16,
    /// Datagrams from the peer, and how many of them reached the upstream.
    pub up_in: u64,
    pub up_out: u64,
    /// Datagrams from the upstream, and how many of them reached the peer.
    pub down_in: u64,
    pub down_out: u64,
    pub blocked: bool,
    pub rebinds: u64,
    pub impairment: Impairment,
}

/// Controls a running relay; dropping every handle stops it.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    pub addr: SocketAddr,
    commands: mpsc::Sender<(Command, oneshot::Sender<Result<String, String>>)>,
}

impl RelayHandle {
    /// Applies `command`; answers `ok`, or the stats JSON for [`Command::Stats`].
    pub async fn send(&self, command: Command) -> Result<String, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((command, reply))
            .await
            .map_err(|_| "relay stopped".to_owned())?;
        answer.await.map_err(|_| "relay stopped".to_owned())?
    }
}

/// Keeps the first datagrams of each kind (STUN, DTLS, RTP/RTCP, other) in each
/// direction as files: seeds for the fuzz targets, from real browsers.
#[derive(Debug)]
pub struct Capture {
    dir: std::path::PathBuf,
    per_kind: usize,
    counts: HashMap<String, usize>,
}

impl Capture {
    pub fn new(dir: impl Into<std::path::PathBuf>, per_kind: usize) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            per_kind,
            counts: HashMap::new(),
        })
    }

    fn keep(&mut self, direction: &str, data: &[u8]) {
        // RFC 7983 demultiplexing by the first byte.
        let kind = match data.first() {
            Some(0..=3) => "stun",
            Some(20..=63) => "dtls",
            Some(128..=191) => "rtp",
            _ => "other",
        };
        let key = format!("{direction}-{kind}");
        let n = self.counts.entry(key.clone()).or_default();
        if *n < self.per_kind {
            *n += 1;
            let _ = std::fs::write(self.dir.join(format!("{key}-{n:02}")), data);
        }
    }
}

/// Starts a relay on 127.0.0.1 (free port) in front of `upstream` (or one named later
/// with [`Command::Upstream`]).
pub async fn start(upstream: Option<SocketAddr>) -> std::io::Result<RelayHandle> {
    start_capturing(upstream, None).await
}

/// [`start`], keeping samples of what passes in `capture`.
pub async fn start_capturing(
    upstream: Option<SocketAddr>,
    capture: Option<Capture>,
) -> std::io::Result<RelayHandle> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = socket.local_addr()?;
    let (commands, commands_rx) = mpsc::channel(16);
    let (from_upstream, from_upstream_rx) = mpsc::channel(1024);
    let relay = Relay {
        socket: Arc::new(socket),
        upstream,
        flows: HashMap::new(),
        default: Impairment::default(),
        commands: commands_rx,
        from_upstream,
        from_upstream_rx,
        next_seed: 1,
        capture,
    };
    tokio::spawn(relay.run());
    Ok(RelayHandle { addr, commands })
}

struct Flow {
    /// Identifies the current upstream socket; datagrams from an older one are dropped.
    generation: u64,
    upstream: Arc<UdpSocket>,
    reader: tokio::task::JoinHandle<()>,
    up: Netem<Vec<u8>>,
    down: Netem<Vec<u8>>,
    stats: FlowStats,
}

impl Flow {
    fn matches(&self, target: Target) -> bool {
        match target {
            Target::All => true,
            Target::Port(port) => self.stats.peer_port == port || self.stats.upstream_port == port,
        }
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Relay {
    socket: Arc<UdpSocket>,
    upstream: Option<SocketAddr>,
    flows: HashMap<SocketAddr, Flow>,
    default: Impairment,
    commands: mpsc::Receiver<(Command, oneshot::Sender<Result<String, String>>)>,
    from_upstream: mpsc::Sender<(SocketAddr, u64, Vec<u8>)>,
    from_upstream_rx: mpsc::Receiver<(SocketAddr, u64, Vec<u8>)>,
    next_seed: u64,
    capture: Option<Capture>,
}

impl Relay {
    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let wake = self.next_wake();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some((cmd, reply)) => {
                        let _ = reply.send(self.apply(cmd).await);
                    }
                    None => return,
                },
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, peer)) = received {
                        self.on_peer_datagram(peer, buf[..n].to_vec()).await;
                    }
                }
                Some((peer, generation, data)) = self.from_upstream_rx.recv() => {
                    self.on_upstream_datagram(peer, generation, data);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            self.flush().await;
        }
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(1);
        self.flows
            .values()
            .flat_map(|f| [f.up.poll_timeout(), f.down.poll_timeout()])
            .min()
            .map_or(far, |t| t.min(far))
    }

    async fn on_peer_datagram(&mut self, peer: SocketAddr, data: Vec<u8>) {
        if !self.flows.contains_key(&peer) {
            match self.new_flow(peer).await {
                Ok(flow) => {
                    self.flows.insert(peer, flow);
                }
                Err(e) => {
                    eprintln!("netem relay: no upstream socket for {peer}: {e}");
                    return;
                }
            }
        }
        if let Some(capture) = &mut self.capture {
            capture.keep("to-sfu", &data);
        }
        if let Some(flow) = self.flows.get_mut(&peer) {
            flow.stats.up_in += 1;
            if !flow.stats.blocked {
                flow.up.handle_input(Input::Packet(Instant::now(), data));
            }
        }
    }

    fn on_upstream_datagram(&mut self, peer: SocketAddr, generation: u64, data: Vec<u8>) {
        if let Some(capture) = &mut self.capture {
            capture.keep("from-sfu", &data);
        }
        if let Some(flow) = self.flows.get_mut(&peer)
            && flow.generation == generation
        {
            flow.stats.down_in += 1;
            if !flow.stats.blocked {
                flow.down.handle_input(Input::Packet(Instant::now(), data));
            }
        }
    }

    async fn new_flow(&mut self, peer: SocketAddr) -> std::io::Result<Flow> {
        let seed = self.next_seed;
        self.next_seed += 2;
        let (upstream, reader) = self.open_upstream(peer, 0).await?;
        let upstream_port = upstream.local_addr()?.port();
        Ok(Flow {
            generation: 0,
            upstream,
            reader,
            up: Netem::new(self.default.netem(seed)),
            down: Netem::new(self.default.netem(seed + 1)),
            stats: FlowStats {
                peer_port: peer.port(),
                upstream_port,
                impairment: self.default,
                ..FlowStats::default()
            },
        })
    }

    async fn open_upstream(
        &self,
        peer: SocketAddr,
        generation: u64,
    ) -> std::io::Result<(Arc<UdpSocket>, tokio::task::JoinHandle<()>)> {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let reader_socket = socket.clone();
        let tx = self.from_upstream.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, _)) = reader_socket.recv_from(&mut buf).await {
                if tx
                    .send((peer, generation, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok((socket, reader))
    }

    async fn flush(&mut self) {
        let now = Instant::now();
        for (peer, flow) in &mut self.flows {
            flow.up.handle_input(Input::Timeout(now));
            while let Some(out) = flow.up.poll_output() {
                let Output::Packet(data) = out else { break };
                let Some(upstream) = self.upstream else {
                    continue;
                };
                if flow.upstream.send_to(&data, upstream).await.is_ok() {
                    flow.stats.up_out += 1;
                }
            }
            flow.down.handle_input(Input::Timeout(now));
            while let Some(out) = flow.down.poll_output() {
                let Output::Packet(data) = out else { break };
                if self.socket.send_to(&data, *peer).await.is_ok() {
                    flow.stats.down_out += 1;
                }
            }
        }
    }

    async fn apply(&mut self, cmd: Command) -> Result<String, String> {
        match cmd {
            Command::Set(target, imp) => {
                if target == Target::All {
                    self.default = imp;
                }
                let mut seed = self.next_seed;
                for flow in self.flows_of(target)? {
                    flow.up.set_config(imp.netem(seed));
                    flow.down.set_config(imp.netem(seed + 1));
                    flow.stats.impairment = imp;
                    seed += 2;
                }
                self.next_seed = seed;
            }
            Command::Block(target) => {
                for flow in self.flows_of(target)? {
                    flow.stats.blocked = true;
                }
            }
            Command::Rebind(target) => {
                let peers: Vec<SocketAddr> = self
                    .flows
                    .iter()
                    .filter(|(_, f)| f.matches(target))
                    .map(|(peer, _)| *peer)
                    .collect();
                if peers.is_empty() {
                    return Err(format!("no flow matches {target:?}"));
                }
                for peer in peers {
                    let generation = self.flows[&peer].generation + 1;
                    let (upstream, reader) = self
                        .open_upstream(peer, generation)
                        .await
                        .map_err(|e| format!("new upstream socket: {e}"))?;
                    let upstream_port = upstream.local_addr().map_or(0, |a| a.port());
                    if let Some(flow) = self.flows.get_mut(&peer) {
                        flow.stats.upstream_port = upstream_port;
                        flow.reader.abort();
                        flow.generation = generation;
                        flow.upstream = upstream;
                        flow.reader = reader;
                        flow.stats.blocked = false;
                        flow.stats.rebinds += 1;
                    }
                }
            }
            Command::Upstream(addr) => self.upstream = Some(addr),
            Command::Stats => {
                let stats: Vec<&FlowStats> = self.flows.values().map(|f| &f.stats).collect();
                return serde_json::to_string(&stats).map_err(|e| e.to_string());
            }
        }
        Ok("ok".to_owned())
    }

    fn flows_of(&mut self, target: Target) -> Result<Vec<&mut Flow>, String> {
        let flows: Vec<&mut Flow> = self
            .flows
            .values_mut()
            .filter(|f| f.matches(target))
            .collect();
        if flows.is_empty() && target != Target::All {
            return Err(format!("no flow matches {target:?}"));
        }
        Ok(flows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_refuses_nonsense() {
        assert_eq!(
            Command::parse("set 5000 delay_ms=50 loss=0.05").expect("valid"),
            Command::Set(
                Target::Port(5000),
                Impairment {
                    delay_ms: 50,
                    loss: 0.05,
                    ..Impairment::default()
                }
            )
        );
        assert_eq!(
            Command::parse("rebind all").expect("valid"),
            Command::Rebind(Target::All)
        );
        assert!(Command::parse("set all loss=1.5").is_err());
        assert!(Command::parse("set all speed=9").is_err());
        assert!(Command::parse("block").is_err());
        assert!(Command::parse("dance").is_err());
    }
}
