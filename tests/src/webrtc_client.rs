//! An independent WebRTC peer (webrtc-rs, not str0m) that joins through signaling,
//! publishes synthetic Opus and VP8, and counts the RTP it receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use kefu_signaling::protocol::ServerMessage;
use kefu_signaling::token::Role;
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
    pub async fn join(server: &TestServer, room: &str, name: &str, role: Role) -> Self {
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

        let (cand_tx, mut cand_rx) = mpsc::unbounded_channel::<String>();
        pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
            let cand_tx = cand_tx.clone();
            Box::pin(async move {
                if let Some(init) = c.and_then(|c| c.to_json().ok()) {
                    let _ = cand_tx.send(init.candidate);
                }
            })
        }));

        let (ws, _) = connect_async(&server.ws_url)
            .await
            .expect("signaling connects");
        let (mut sink, mut stream) = ws.split();
        let join = serde_json::json!({"type": "join", "token": token});
        sink.send(Message::Text(join.to_string().into()))
            .await
            .expect("send join");

        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer.clone())
            .await
            .expect("local description");
        let offer_msg = serde_json::json!({"type": "offer", "sdp": offer.sdp});
        sink.send(Message::Text(offer_msg.to_string().into()))
            .await
            .expect("send offer");

        // Signaling pump: trickle our candidates out, apply the answer, log everything.
        let pump_pc = pc.clone();
        let log = messages.clone();
        let pump = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(candidate) = cand_rx.recv() => {
                        let msg = serde_json::json!({"type": "candidate", "candidate": candidate, "sdp_mid": "0"});
                        if sink.send(Message::Text(msg.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    frame = stream.next() => {
                        let Some(Ok(Message::Text(text))) = frame else {
                            if matches!(frame, Some(Ok(_))) { continue; }
                            return;
                        };
                        let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else { continue };
                        if let ServerMessage::Answer { sdp } = &msg {
                            let answer = RTCSessionDescription::answer(sdp.clone()).expect("answer SDP");
                            pump_pc.set_remote_description(answer).await.expect("remote description");
                        }
                        log.lock().await.push(msg);
                    }
                }
            }
        });

        let audio_task = tokio::spawn(publish(audio, Duration::from_millis(20), |_| {
            vec![0xf8; 80]
        }));
        let video_task = tokio::spawn(publish(video, Duration::from_millis(33), vp8_frame));

        Self {
            pc,
            received,
            messages,
            tasks: vec![pump, audio_task, video_task],
        }
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

async fn new_peer_connection() -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    let registry =
        register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let mut settings = SettingEngine::default();
    // Loopback only: tests never send to any other address.
    settings.set_include_loopback_candidate(true);
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
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
    let agent = RtcClient::join(server, "call", "agent-1", Role::Agent).await;
    let customer = RtcClient::join(server, "call", "customer-1", Role::Customer).await;
    for client in [&agent, &customer] {
        client.wait_for_more(20, 20, Duration::from_secs(15)).await;
    }
    (agent, customer)
}
