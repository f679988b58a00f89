//! The thin tokio driver: one UDP socket, the [`Sfu`] core, a command channel.
//!
//! Everything that decides is in the core; this file only moves bytes, reads the
//! clock and answers commands.
//!
//! Per wake-up on datagrams: one `recvmmsg` per batch of up to 32 (more while
//! batches come back full, at most four), none to find the queue empty (a short batch
//! says so); then the core's datagrams go out grouped, one `sendmsg` per run to a
//! peer (UDP GSO). Metrics are published once a second, and at once after a command
//! or a participant event, so what signaling changes is visible without delay.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::Protocol;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::config::{MediaConfig, Vp8Encoding};
use crate::core::{BeautyOutput, Sfu, SfuEvent, SfuOutput, TapParty};
use crate::error::{CandidateError, JoinError, MediaError};
use crate::metrics::SfuMetrics;
use crate::moderation::{RoomScreen, as_picture_sink};
use crate::pipeline::{PipelineResult, PipelineWorker};
use crate::tcp::{self, TcpEvent};
use crate::udp::MediaSocket;
use kefu_proto::{FrameSink, ParticipantId, RoomId};

/// Commands waiting for the driver. Signaling sends few; a full queue means the media
/// loop is stuck, and callers get `Unavailable` rather than piling up.
const COMMAND_QUEUE: usize = 256;
/// Events buffered per participant before they are dropped (signaling reads them promptly).
const EVENT_QUEUE: usize = 32;
/// How often the core's and the socket's counters are published as metrics.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        offer: String,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<String, JoinError>>,
    },
    Restart {
        participant: ParticipantId,
        offer: String,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<String, JoinError>>,
    },
    Candidate {
        participant: ParticipantId,
        candidate: String,
        reply: oneshot::Sender<Result<(), CandidateError>>,
    },
    Leave {
        participant: ParticipantId,
    },
    Tap {
        room: RoomId,
        parties: Vec<TapParty>,
        sink: Arc<dyn FrameSink>,
    },
    Untap {
        room: RoomId,
    },
    Beauty {
        room: RoomId,
        agent: ParticipantId,
        params: Option<kefu_beauty::BeautyParams>,
        output: BeautyOutput,
    },
    StopBeauty {
        room: RoomId,
    },
    Blank {
        participant: ParticipantId,
        on: bool,
    },
    Screen {
        room: RoomId,
        screen: Option<Arc<RoomScreen>>,
    },
}

/// The controller's handle to a running media server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    bound_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { participant, .. } => write!(f, "Join({participant})"),
            Command::Restart { participant, .. } => write!(f, "Restart({participant})"),
            Command::Candidate { participant, .. } => write!(f, "Candidate({participant})"),
            Command::Leave { participant } => write!(f, "Leave({participant})"),
            Command::Tap { room, .. } => write!(f, "Tap({room})"),
            Command::Untap { room } => write!(f, "Untap({room})"),
            Command::Beauty { room, .. } => write!(f, "Beauty({room})"),
            Command::StopBeauty { room } => write!(f, "StopBeauty({room})"),
            Command::Blank { participant, on } => write!(f, "Blank({participant}, {on})"),
            Command::Screen { room, .. } => write!(f, "Screen({room})"),
        }
    }
}

impl MediaHandle {
    /// The UDP address peers send media to (the advertised host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The UDP address the SFU's socket is bound to (differs from
    /// [`Self::local_addr`] behind a port-forwarding NAT).
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound_addr
    }

    /// The advertised ICE-TCP address, when `media.ice_tcp` is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Adds a participant; returns the SDP answer and a stream of its media events.
    pub async fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> Result<(String, mpsc::Receiver<SfuEvent>), JoinError> {
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Join {
            room,
            participant,
            offer,
            events,
            reply,
        };
        self.commands
            .try_send(cmd)
            .map_err(|_| JoinError::Unavailable)?;
        let answer = answer.await.map_err(|_| JoinError::Unavailable)??;
        Ok((answer, events_rx))
    }

    /// An ICE restart: a new offer from `participant`'s existing peer connection
    /// (its network changed). Returns the SDP answer; the participant's media events
    /// go to the new stream from now on (the signaling connection may be new too).
    pub async fn restart(
        &self,
        participant: ParticipantId,
        offer: String,
    ) -> Result<(String, mpsc::Receiver<SfuEvent>), JoinError> {
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command::Restart {
                participant,
                offer,
                events,
                reply,
            })
            .map_err(|_| JoinError::Unavailable)?;
        let answer = answer.await.map_err(|_| JoinError::Unavailable)??;
        Ok((answer, events_rx))
    }

    pub async fn add_remote_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> Result<(), CandidateError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .try_send(Command::Candidate {
                participant,
                candidate,
                reply,
            })
            .map_err(|_| CandidateError::Unavailable)?;
        done.await.map_err(|_| CandidateError::Unavailable)?
    }

    /// Hands `room`'s published frames to a recorder from now on.
    pub fn tap(&self, room: RoomId, parties: Vec<TapParty>, sink: Arc<dyn FrameSink>) {
        if let Err(e) = self.commands.try_send(Command::Tap {
            room,
            parties,
            sink,
        }) {
            warn!("tap not delivered to the media server: {e}");
        }
    }

    /// Stops handing `room`'s frames to its recorder.
    pub fn untap(&self, room: RoomId) {
        if let Err(e) = self.commands.try_send(Command::Untap { room }) {
            warn!("untap not delivered to the media server: {e}");
        }
    }

    /// Filters `agent`'s video towards the other member of `room` with `params`
    /// (again with new settings: they apply from the next frame), or forwards it
    /// untouched with `None`.
    pub fn set_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: Option<kefu_beauty::BeautyParams>,
    ) {
        if let Err(e) = self.commands.try_send(Command::Beauty {
            room,
            agent,
            params,
            output: BeautyOutput::Peer,
        }) {
            warn!("beauty setting not delivered to the media server: {e}");
        }
    }

    /// The settings dialog's preview: `agent`, alone in `room`, gets its own video back
    /// through the pipeline with `params` (all zero still goes through decode and
    /// encode, as a customer would get it from a real pipeline). Call again to change
    /// the parameters; [`Self::stop_beauty`] ends it.
    pub fn preview_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: kefu_beauty::BeautyParams,
    ) {
        if let Err(e) = self.commands.try_send(Command::Beauty {
            room,
            agent,
            params: Some(params),
            output: BeautyOutput::Loopback,
        }) {
            warn!("beauty preview not delivered to the media server: {e}");
        }
    }

    /// Stops `room`'s pipeline (the call ended), whoever is still there.
    pub fn stop_beauty(&self, room: RoomId) {
        if let Err(e) = self.commands.try_send(Command::StopBeauty { room }) {
            warn!("beauty stop not delivered to the media server: {e}");
        }
    }

    /// Withholds (`on`) or restores `participant`'s video for the other party of its
    /// room: content moderation's blur. The others get black frames meanwhile.
    pub fn set_blanked(&self, participant: ParticipantId, on: bool) {
        if let Err(e) = self.commands.try_send(Command::Blank { participant, on }) {
            warn!("moderation blank not delivered to the media server: {e}");
        }
    }

    /// The screen of a call that moderation decodes itself (recording off): the
    /// room's beauty pipeline, while there is one, hands it the agent's pictures, so
    /// that stream is not decoded twice. `None` forgets it.
    pub fn set_screen(&self, room: RoomId, screen: Option<Arc<RoomScreen>>) {
        if let Err(e) = self.commands.try_send(Command::Screen { room, screen }) {
            warn!("moderation screen not delivered to the media server: {e}");
        }
    }

    /// Removes a participant. Best effort: a stopped server has nobody to remove.
    pub fn leave(&self, participant: ParticipantId) {
        if let Err(e) = self.commands.try_send(Command::Leave { participant }) {
            warn!("leave not delivered to the media server: {e}");
        }
    }
}

/// A running media server: its handle and the thread driving it.
#[derive(Debug)]
pub struct MediaServer {
    pub handle: MediaHandle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MediaServer {
    /// Binds the UDP socket and starts the driver on a thread of its own (a
    /// single-threaded runtime: every datagram is handled where it was read, without
    /// waking other workers). It stops on [`MediaServer::stop`], when dropped, or when
    /// every [`MediaHandle`] is dropped.
    pub async fn start(config: &MediaConfig, metrics: SfuMetrics) -> Result<Self, MediaError> {
        let bind = config.bind_addr();
        let socket = std::net::UdpSocket::bind(bind)
            .map_err(|source| MediaError::Bind { addr: bind, source })?;
        let bound = socket
            .local_addr()
            .map_err(|source| MediaError::Bind { addr: bind, source })?;
        let advertised = SocketAddr::new(
            config.resolve_advertised_ip(),
            config.advertise_port.unwrap_or(bound.port()),
        );
        if advertised.ip().is_unspecified() {
            return Err(MediaError::Address(format!(
                "{advertised} cannot be advertised to peers; set media.advertise_ip"
            )));
        }
        info!(%bound, %advertised, "media server listening (UDP)");
        let mut sfu = Sfu::new(advertised, Instant::now());
        sfu.set_blank_frames(
            tokio::task::spawn_blocking(crate::pipeline::black_keyframes)
                .await
                .unwrap_or_default(),
        );
        let (tcp_addr, tcp_events) = if config.ice_tcp {
            let listener = bind_tcp(bound, config.port == 0).await?;
            let tcp_port = listener
                .local_addr()
                .map_err(|source| MediaError::BindTcp {
                    addr: bound,
                    source,
                })?
                .port();
            let at = SocketAddr::new(bound.ip(), tcp_port);
            let tcp_addr = SocketAddr::new(advertised.ip(), tcp_port);
            info!(%at, advertised = %tcp_addr, "media server listening (ICE-TCP)");
            sfu.enable_tcp(tcp_addr);
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(tcp::accept_loop(listener, tx));
            (Some(tcp_addr), Some(rx))
        } else {
            (None, None)
        };

        let beauty_vp8 = Vp8Encoding {
            version: config.beauty_vp8,
            threads: config.beauty_vp8_threads.max(1),
        };
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (pipeline_tx, pipeline_rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(MediaError::Runtime)?;
        // Registered with the driver's runtime (entered only for that), so a socket
        // that cannot be set up fails the start rather than the thread.
        let socket = {
            let _driver_runtime = runtime.enter();
            MediaSocket::new(socket, config.socket_options())
        }
        .map_err(|source| MediaError::Bind {
            addr: bound,
            source,
        })?;
        let thread = std::thread::Builder::new()
            .name("kefu-sfu".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let driver = Driver {
                        socket,
                        tcp_events,
                        tcp_writers: HashMap::new(),
                        sfu,
                        commands: commands_rx,
                        subscribers: HashMap::new(),
                        taps: HashMap::new(),
                        pipelines: HashMap::new(),
                        screens: HashMap::new(),
                        beauty_vp8,
                        pipeline_tx,
                        pipeline_rx,
                        metrics,
                        publish_now: false,
                    };
                    driver.run(stopped).await;
                })
            })
            .map_err(MediaError::Runtime)?;
        Ok(Self {
            handle: MediaHandle {
                commands,
                local_addr: advertised,
                bound_addr: bound,
                tcp_addr,
            },
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the driver and waits for its thread (peer connections end with it).
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join(); // a panic there was already reported
        }
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        // Without waiting: a drop may happen on an async worker.
        self.stop.take();
    }
}

struct Driver {
    socket: MediaSocket,
    /// ICE-TCP connections' frames (`None`: TCP is off) and their writers by peer.
    tcp_events: Option<mpsc::Receiver<TcpEvent>>,
    tcp_writers: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    sfu: Sfu,
    commands: mpsc::Receiver<Command>,
    subscribers: HashMap<ParticipantId, mpsc::Sender<SfuEvent>>,
    taps: HashMap<RoomId, Arc<dyn FrameSink>>,
    pipelines: HashMap<RoomId, PipelineWorker>,
    /// Screens of rooms moderation decodes itself, for their pipelines to feed.
    screens: HashMap<RoomId, Arc<RoomScreen>>,
    beauty_vp8: Vp8Encoding,
    pipeline_tx: mpsc::UnboundedSender<PipelineResult>,
    pipeline_rx: mpsc::UnboundedReceiver<PipelineResult>,
    metrics: SfuMetrics,
    /// A command or a participant event changed what the metrics show: publish them
    /// at the end of this flush rather than on the next tick.
    publish_now: bool,
}

impl Driver {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        // One timer, moved rather than made anew on every wake-up.
        let sleep = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(sleep);
        let mut metrics_tick = tokio::time::interval(METRICS_INTERVAL);
        metrics_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let deadline = self.flush();
            if sleep.deadline() != deadline.into() {
                sleep.as_mut().reset(deadline.into());
            }
            tokio::select! {
                _ = &mut stopped => break,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => break, // every handle dropped: shut down
                },
                // Cancel-safe: it reads only once the socket is readable, then to the end.
                _ = self.socket.recv_batch(|source, datagram| {
                    self.sfu.handle_datagram(Instant::now(), source, datagram);
                }) => {}
                Some(result) = self.pipeline_rx.recv() => self.on_pipeline_result(result),
                Some(event) = next_tcp_event(&mut self.tcp_events) => self.on_tcp_event(event),
                _ = metrics_tick.tick() => self.publish_metrics(),
                _ = &mut sleep => {}
            }
            self.sfu.handle_timeout(Instant::now());
        }
        info!("media server stopped");
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        // Rooms, participants, restarts and pipelines change here: signaling (and the
        // tests) read them right after.
        self.publish_now = true;
        match cmd {
            Command::Join {
                room,
                participant,
                offer,
                events,
                reply,
            } => {
                let result = self.sfu.join(now, room, participant.clone(), &offer);
                if result.is_ok() {
                    self.subscribers.insert(participant, events);
                }
                let _ = reply.send(result); // the caller may have given up
            }
            Command::Restart {
                participant,
                offer,
                events,
                reply,
            } => {
                let result = self.sfu.restart(now, &participant, &offer);
                if result.is_ok() {
                    self.subscribers.insert(participant, events);
                }
                let _ = reply.send(result); // the caller may have given up
            }
            Command::Candidate {
                participant,
                candidate,
                reply,
            } => {
                let _ = reply.send(self.sfu.add_remote_candidate(&participant, &candidate));
            }
            Command::Leave { participant } => {
                self.sfu.leave(&participant);
                self.subscribers.remove(&participant);
            }
            Command::Tap {
                room,
                parties,
                sink,
            } => {
                self.sfu.tap(now, room.clone(), parties);
                self.taps.insert(room, sink);
            }
            Command::Untap { room } => {
                self.sfu.untap(&room);
                self.taps.remove(&room);
            }
            Command::Blank { participant, on } => self.sfu.set_blanked(now, &participant, on),
            Command::Screen { room, screen } => {
                match screen {
                    Some(screen) => self.screens.insert(room.clone(), screen),
                    None => self.screens.remove(&room),
                };
                self.share_pipeline_pictures(&room);
            }
            Command::Beauty {
                room,
                agent,
                params,
                output,
            } => match params {
                Some(params) => {
                    if let Some(worker) = self.pipelines.get(&room) {
                        worker.set_params(params);
                        return;
                    }
                    match PipelineWorker::spawn(
                        room.clone(),
                        params,
                        self.beauty_vp8,
                        self.pipeline_tx.clone(),
                    ) {
                        Ok(worker) => {
                            self.pipelines.insert(room.clone(), worker);
                            self.share_pipeline_pictures(&room);
                            self.sfu.route_beauty(now, room, agent, Some(output));
                        }
                        Err(e) => {
                            warn!(%room, "no beauty pipeline (thread): {e}; forwarding as is")
                        }
                    }
                }
                None => {
                    self.pipelines.remove(&room);
                    self.share_pipeline_pictures(&room);
                    self.sfu.route_beauty(now, room, agent, None);
                }
            },
            Command::StopBeauty { room } => {
                // Dropping the worker ends its thread.
                self.pipelines.remove(&room);
                self.share_pipeline_pictures(&room);
                self.sfu.clear_beauty(&room);
            }
        }
    }

    /// While `room` has both a pipeline and a screen of its own decoding, the
    /// pipeline (which decodes the agent's video anyway) hands the agent's pictures
    /// to the screen, and moderation's own decoder leaves that stream alone.
    fn share_pipeline_pictures(&self, room: &RoomId) {
        let screen = self.screens.get(room);
        let worker = self.pipelines.get(room);
        if let Some(screen) = screen {
            screen.set_agent_by_pipeline(worker.is_some());
        }
        if let Some(worker) = worker {
            worker.set_picture_sink(screen.map(as_picture_sink));
        }
    }

    /// Sends what the core wants sent, routes its events; returns when to wake next.
    ///
    /// UDP datagrams are queued on the socket, which sends runs to one peer in one
    /// system call; the queue is sent before any other output (and at the end), so
    /// nothing waits behind it.
    fn flush(&mut self) -> Instant {
        let deadline = loop {
            let output = self.sfu.poll_output();
            if !matches!(&output, SfuOutput::Transmit(t) if t.proto != Protocol::Tcp) {
                let dropped = self.socket.flush();
                self.count_send_failures(dropped);
            }
            match output {
                SfuOutput::Transmit(t) if t.proto == Protocol::Tcp => {
                    let sent = self
                        .tcp_writers
                        .get(&t.destination)
                        .is_some_and(|w| w.try_send(t.contents.to_vec()).is_ok());
                    if !sent {
                        self.sfu.count_send_failure();
                    }
                }
                SfuOutput::Transmit(t) => {
                    let dropped = self.socket.queue(t.destination, &t.contents);
                    self.count_send_failures(dropped);
                }
                SfuOutput::Event(event) => self.route_event(event),
                SfuOutput::Beautify {
                    room,
                    frame,
                    output,
                } => {
                    let taken = self
                        .pipelines
                        .get(&room)
                        .is_some_and(|w| w.offer(frame, output));
                    if !taken {
                        self.metrics.pipeline_dropped.inc();
                    }
                }
                SfuOutput::PipelineKeyframe { room } => {
                    if let Some(w) = self.pipelines.get(&room) {
                        w.request_keyframe();
                    }
                }
                SfuOutput::PipelineBitrate { room, bps } => {
                    debug!(%room, bps, "beauty encoder follows the bandwidth estimate");
                    if let Some(w) = self.pipelines.get(&room) {
                        w.set_bitrate(bps);
                    }
                }
                SfuOutput::Tap { room, frame } => {
                    // A full recorder queue drops the frame (counted by the recorder).
                    if let Some(sink) = self.taps.get(&room) {
                        sink.try_send(frame);
                    }
                }
                SfuOutput::Timeout(t) => break t,
            }
        };
        if std::mem::take(&mut self.publish_now) {
            self.publish_metrics();
        }
        deadline
    }

    /// The core counts what the socket dropped (its `socket_send` drop reason).
    fn count_send_failures(&mut self, dropped: usize) {
        for _ in 0..dropped {
            self.sfu.count_send_failure();
        }
    }

    /// Publishes the core's and the socket's counters (a mutex and a copy each: once a
    /// second, not per wake-up).
    fn publish_metrics(&mut self) {
        self.metrics.publish(self.sfu.stats());
        self.metrics.publish_udp(self.socket.stats());
        self.metrics
            .pipelines
            .set(i64::try_from(self.pipelines.len()).unwrap_or(i64::MAX));
    }

    fn on_tcp_event(&mut self, event: TcpEvent) {
        match event {
            TcpEvent::Opened { peer, writer } => {
                self.tcp_writers.insert(peer, writer);
            }
            TcpEvent::Frame { peer, data } => {
                self.sfu.handle_tcp_frame(Instant::now(), peer, &data);
            }
            TcpEvent::Closed { peer } => {
                self.tcp_writers.remove(&peer);
            }
        }
    }

    fn on_pipeline_result(&mut self, result: PipelineResult) {
        let now = Instant::now();
        self.metrics
            .pipeline_latency
            .observe(result.latency.as_secs_f64());
        for frame in result.processed.frames {
            self.sfu
                .write_processed(now, &result.room, result.output, frame);
        }
        if result.processed.need_keyframe {
            self.sfu.request_agent_keyframe(now, &result.room);
        }
    }

    fn route_event(&mut self, event: SfuEvent) {
        let participant = match &event {
            SfuEvent::Connected { participant } | SfuEvent::Disconnected { participant, .. } => {
                participant.clone()
            }
        };
        let gone = matches!(event, SfuEvent::Disconnected { .. });
        // A participant dropped by the core itself (its path stayed lost) changes the
        // counts without a command.
        self.publish_now = true;
        if let Some(tx) = self.subscribers.get(&participant) {
            let _ = tx.try_send(event); // a full or closed queue means nobody listens
        }
        if gone {
            self.subscribers.remove(&participant);
        }
    }
}

/// The next ICE-TCP event; pends forever when TCP is off.
async fn next_tcp_event(events: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The ICE-TCP listener on the UDP socket's port number. With a port picked by the
/// system (`media.port = 0`) that number may be taken for TCP: then any free one.
async fn bind_tcp(udp: SocketAddr, any_port: bool) -> Result<TcpListener, MediaError> {
    match TcpListener::bind(udp).await {
        Ok(listener) => Ok(listener),
        Err(e) if any_port && e.kind() == ErrorKind::AddrInUse => {
            let any = SocketAddr::new(udp.ip(), 0);
            TcpListener::bind(any)
                .await
                .map_err(|source| MediaError::BindTcp { addr: any, source })
        }
        Err(source) => Err(MediaError::BindTcp { addr: udp, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ice_tcp_takes_another_port_only_when_the_port_was_picked_for_us() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("address");
        let other = bind_tcp(addr, true).await.expect("any free port");
        assert_ne!(other.local_addr().expect("address").port(), addr.port());
        assert!(matches!(
            bind_tcp(addr, false).await,
            Err(MediaError::BindTcp { .. })
        ));
    }
}
