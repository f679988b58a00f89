//! An independent WebRTC peer (webrtc-rs, not str0m) that joins through signaling,
//! publishes synthetic Opus and VP8, and counts the RTP it receives.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use kefu_proto::signaling::ServerMessage;
use kefu_signaling::rooms::token::Side;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::RTCIceCandidate;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::server::TestServer;
use crate::wait_until;

/// What one client received from the SFU.
#[derive(Debug, Default)]
pub struct Received {
    pub audio_packets: AtomicU64,
    pub video_packets: AtomicU64,
    /// Video RTP packets with the marker bit: one per frame.
    pub video_frames: AtomicU64,
}

/// A snapshot of [`Received`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub audio_packets: u64,
    pub video_packets: u64,
    pub video_frames: u64,
}

#[derive(Debug)]
pub struct RtcClient {
    pub pc: Arc<RTCPeerConnection>,
    pub received: Arc<Received>,
    /// Every message the server sent on this client's signaling channel.
    pub messages: Arc<Mutex<Vec<ServerMessage>>>,
    /// The code of every close frame the server sent (one per signaling connection).
    pub close_codes: Arc<Mutex<Vec<u16>>>,
    /// Messages for the signaling connection (candidates, `leave`, `restart`); kept
    /// across reconnects.
    outgoing: mpsc::UnboundedSender<String>,
    outgoing_rx: Arc<Mutex<mpsc::UnboundedReceiver<String>>>,
    /// The signaling pump first, then the publishers.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RtcClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RtcClient {
    /// Joins `room` as `name` and starts publishing once connected.
    pub async fn join(server: &TestServer, room: &str, name: &str, role: Side) -> Self {
        let token = server.token(room, name, role);
        Self::join_with_token(server, &token, name).await
    }

    /// Joins with a room token issued by the server (e.g. for a call).
    pub async fn join_with_token(server: &TestServer, token: &str, name: &str) -> Self {
        let pc = Arc::new(new_peer_connection().await);
        let received = Arc::new(Received::default());
        let messages = Arc::new(Mutex::new(Vec::new()));

        let audio = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                ..Default::default()
            },
            "audio".to_owned(),
            format!("{name}-stream"),
        ));
        let video = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                ..Default::default()
            },
            "video".to_owned(),
            format!("{name}-stream"),
        ));
        for track in [
            audio.clone() as Arc<dyn TrackLocal + Send + Sync>,
            video.clone() as Arc<dyn TrackLocal + Send + Sync>,
        ] {
            pc.add_track(track).await.expect("add track");
        }

        let counters = received.clone();
        pc.on_track(Box::new(move |track, _, _| {
            let counters = counters.clone();
            Box::pin(async move {
                tokio::spawn(async move {
                    let kind = track.kind();
                    while let Ok((packet, _)) = track.read_rtp().await {
                        match kind {
                            RTPCodecType::Audio => {
                                counters.audio_packets.fetch_add(1, Ordering::Relaxed);
                            }
                            RTPCodecType::Video => {
                                counters.video_packets.fetch_add(1, Ordering::Relaxed);
                                if packet.header.marker {
                                    counters.video_frames.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            _ => {}
                        }
                    }
                });
            })
        }));

        let (outgoing, outgoing_rx) = mpsc::unbounded_channel::<String>();
        let cand_tx = outgoing.clone();
        pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
            let cand_tx = cand_tx.clone();
            Box::pin(async move {
                if let Some(init) = c.and_then(|c| c.to_json().ok()) {
                    let msg = serde_json::json!({"type": "candidate", "candidate": init.candidate, "sdp_mid": "0"});
                    let _ = cand_tx.send(msg.to_string());
                }
            })
        }));
        let outgoing_rx = Arc::new(Mutex::new(outgoing_rx));
        let close_codes = Arc::new(Mutex::new(Vec::new()));
        let logs = Logs {
            messages: messages.clone(),
            close_codes: close_codes.clone(),
        };
        let pump = signaling_pump(server, token, &pc, &logs, &outgoing_rx).await;

        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer.clone())
            .await
            .expect("local description");
        let offer_msg = serde_json::json!({"type": "offer", "sdp": offer.sdp});
        let _ = outgoing.send(offer_msg.to_string());

        let audio_task = tokio::spawn(publish(audio, Duration::from_millis(20), |_| {
            vec![0xf8; 80]
        }));
        let video_task = tokio::spawn(publish(video, Duration::from_millis(33), vp8_frame));

        Self {
            pc,
            received,
            messages,
            close_codes,
            outgoing,
            outgoing_rx,
            tasks: vec![pump, audio_task, video_task],
        }
    }

    /// Hangs up as the page's button does: `leave`, then the connection closes.
    pub fn hang_up(&self) {
        let _ = self
            .outgoing
            .send(serde_json::json!({"type": "leave"}).to_string());
    }

    /// The network under the signaling connection goes away: it ends without a
    /// close frame (the peer connection stays).
    pub fn lose_signaling(&mut self) {
        self.tasks[0].abort();
    }

    /// Back on a new network: a new signaling connection joins with `token` and
    /// restarts ICE on the same peer connection.
    pub async fn reconnect(&mut self, server: &TestServer, token: &str) {
        self.tasks[0].abort();
        let logs = Logs {
            messages: self.messages.clone(),
            close_codes: self.close_codes.clone(),
        };
        let pump = signaling_pump(server, token, &self.pc, &logs, &self.outgoing_rx).await;
        self.tasks[0] = pump;
        let options = RTCOfferOptions {
            ice_restart: true,
            ..Default::default()
        };
        let offer = self.pc.create_offer(Some(options)).await.expect("offer");
        self.pc
            .set_local_description(offer.clone())
            .await
            .expect("local description");
        let restart = serde_json::json!({"type": "restart", "sdp": offer.sdp});
        let _ = self.outgoing.send(restart.to_string());
    }

    pub fn counts(&self) -> Counts {
        Counts {
            audio_packets: self.received.audio_packets.load(Ordering::Relaxed),
            video_packets: self.received.video_packets.load(Ordering::Relaxed),
            video_frames: self.received.video_frames.load(Ordering::Relaxed),
        }
    }

    /// Waits until this client received `audio` more audio packets and `frames` more
    /// video frames than now.
    pub async fn wait_for_more(&self, audio: u64, frames: u64, timeout: Duration) -> Counts {
        let start = self.counts();
        wait_until("more media", timeout, || async {
            let now = self.counts();
            (now.audio_packets >= start.audio_packets + audio
                && now.video_frames >= start.video_frames + frames)
                .then_some(now)
        })
        .await
    }
}

/// Opens a signaling connection, sends `join`, and pumps messages both ways: what is
/// queued in `outgoing` goes out; an answer is applied to `pc`; everything received is
/// logged in `messages`.
/// Where a signaling connection writes what the server said.
struct Logs {
    messages: Arc<Mutex<Vec<ServerMessage>>>,
    close_codes: Arc<Mutex<Vec<u16>>>,
}

async fn signaling_pump(
    server: &TestServer,
    token: &str,
    pc: &Arc<RTCPeerConnection>,
    logs: &Logs,
    outgoing: &Arc<Mutex<mpsc::UnboundedReceiver<String>>>,
) -> JoinHandle<()> {
    let (ws, _) = connect_async(&server.ws_url)
        .await
        .expect("signaling connects");
    let (mut sink, mut stream) = ws.split();
    let join = serde_json::json!({"type": "join", "token": token});
    sink.send(Message::Text(join.to_string().into()))
        .await
        .expect("send join");
    let pc = pc.clone();
    let log = logs.messages.clone();
    let close_codes = logs.close_codes.clone();
    let outgoing = outgoing.clone();
    tokio::spawn(async move {
        let mut outgoing = outgoing.lock().await;
        loop {
            tokio::select! {
                Some(text) = outgoing.recv() => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                frame = stream.next() => {
                    if let Some(Ok(Message::Close(Some(close)))) = &frame {
                        close_codes.lock().await.push(close.code.into());
                    }
                    let Some(Ok(Message::Text(text))) = frame else {
                        if matches!(frame, Some(Ok(_))) { continue; }
                        return;
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else { continue };
                    if let ServerMessage::Answer { sdp } = &msg {
                        let answer = RTCSessionDescription::answer(sdp.clone()).expect("answer SDP");
                        pc.set_remote_description(answer).await.expect("remote description");
                    }
                    log.lock().await.push(msg);
                }
            }
        }
    })
}

/// Writes a sample every `period` (only once connected; earlier writes are dropped
/// by webrtc-rs anyway).
async fn publish(track: Arc<TrackLocalStaticSample>, period: Duration, make: fn(u64) -> Vec<u8>) {
    let mut tick = tokio::time::interval(period);
    for n in 0u64.. {
        tick.tick().await;
        let sample = Sample {
            data: Bytes::from(make(n)),
            timestamp: SystemTime::now(),
            duration: period,
            ..Default::default()
        };
        let _ = track.write_sample(&sample).await;
    }
}

/// A VP8-shaped frame of ~2.5 kB (two or three packets); a keyframe every 30 frames.
fn vp8_frame(n: u64) -> Vec<u8> {
    let keyframe = n.is_multiple_of(30);
    let mut frame = vec![if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00];
    frame.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    frame.resize(2500, (n % 251) as u8);
    frame
}

/// The SDP offer of a fresh peer connection (audio + video, its own DTLS certificate),
/// for signaling tests that need a real offer but no media.
pub async fn sample_offer() -> String {
    let pc = new_peer_connection().await;
    for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
        pc.add_transceiver_from_kind(kind, None)
            .await
            .expect("transceiver");
    }
    let offer = pc.create_offer(None).await.expect("offer");
    let _ = pc.close().await;
    offer.sdp
}

async fn new_peer_connection() -> RTCPeerConnection {
    new_peer_connection_on(None).await
}

/// A peer connection that gathers loopback candidates, plus `extra` when given (the
/// load benchmark's private interface inside its network namespace).
pub async fn new_peer_connection_on(extra: Option<IpAddr>) -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    let registry =
        register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let mut settings = SettingEngine::default();
    // Loopback only: tests never send to any other address.
    settings.set_include_loopback_candidate(true);
    settings.set_ip_filter(Box::new(move |ip| ip.is_loopback() || Some(ip) == extra));
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    api.new_peer_connection(RTCConfiguration::default())
        .await
        .expect("peer connection")
}

/// An agent and a customer in room `call`, both already receiving each other's media.
pub async fn running_call(server: &TestServer) -> (RtcClient, RtcClient) {
    let agent = RtcClient::join(server, "call", "agent-1", Side::Agent).await;
    let customer = RtcClient::join(server, "call", "customer-1", Side::Customer).await;
    for client in [&agent, &customer] {
        client.wait_for_more(20, 20, Duration::from_secs(15)).await;
    }
    (agent, customer)
}
