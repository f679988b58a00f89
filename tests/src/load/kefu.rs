//! kefu under load: the `kefu` binary in its own process, one room per call, each
//! party joining through signaling with a room token, as the pages do.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use kefu_proto::signaling::ServerMessage;
use kefu_signaling::rooms::token::{Side, TokenKeys, unix_now};
use tokio::sync::mpsc;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use webrtc::ice_transport::ice_candidate::RTCIceCandidate;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use super::media::{Tally, VideoProfile};
use super::peer::Peer;
use super::process::{ServerProcess, free_port};

/// The token secret of the throwaway server (it lives only for the run).
const TOKEN_SECRET: &str = "kefu-load-benchmark-token-secret-0123456789";

#[derive(Debug)]
pub struct KefuTarget {
    pub process: ServerProcess,
    ws_url: String,
    tokens: TokenKeys,
}

impl KefuTarget {
    /// Starts `bin serve` with rooms `load-0..calls`, everything under `dir`.
    pub async fn start(bin: &Path, dir: &Path, calls: usize) -> anyhow::Result<Self> {
        let port = free_port()?;
        let rooms: Vec<String> = (0..calls).map(room).collect();
        let config = format!(
            "data_dir = {data:?}\n\
             [server]\nbind = \"127.0.0.1:{port}\"\n\
             [media]\nport = 0\nadvertise_ip = \"127.0.0.1\"\nice_tcp = false\n\
             [auth]\ntoken_secret = {TOKEN_SECRET:?}\ntoken_ttl_secs = 3600\n\
             [signaling]\nrooms = {rooms:?}\n\
             [log]\nfilter = \"warn\"\n\
             [verification]\nmodels_dir = {models:?}\n\
             [moderation]\nmodels_dir = {models:?}\n",
            data = dir.join("kefu-data"),
            // The models deploy/fetch-models.sh put in the repository: screening
            // needs open_nsfw to start at all.
            models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        );
        let config_path = dir.join("kefu.toml");
        std::fs::write(&config_path, config)?;
        let mut command = Command::new(bin);
        command.arg("serve").env("KEFU_CONFIG", &config_path);
        let ready = format!("http://127.0.0.1:{port}/healthz");
        let process = ServerProcess::spawn_ready("kefu", command, dir, &ready).await?;
        Ok(Self {
            process,
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            tokens: TokenKeys::new(TOKEN_SECRET.as_bytes(), 3600),
        })
    }

    async fn join(&self, peer: &mut Peer, token: &str) -> anyhow::Result<()> {
        join_room(&self.ws_url, peer, token).await
    }
}

/// Queues `join` with `token`, then the offer, on `outgoing`; the peer's candidates
/// trickle after them.
pub async fn queue_join_and_offer(
    peer: &Peer,
    token: &str,
    outgoing: &mpsc::UnboundedSender<String>,
) -> anyhow::Result<()> {
    let _ = outgoing.send(serde_json::json!({"type": "join", "token": token}).to_string());
    let candidates = outgoing.clone();
    peer.pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
        if let Some(init) = c.and_then(|c| c.to_json().ok()) {
            let msg = serde_json::json!({"type": "candidate", "candidate": init.candidate, "sdp_mid": "0"});
            let _ = candidates.send(msg.to_string());
        }
        Box::pin(async {})
    }));
    // The offer is queued before gathering starts, so no candidate overtakes it.
    let offer = peer.pc.create_offer(None).await?;
    let _ = outgoing.send(serde_json::json!({"type": "offer", "sdp": offer.sdp}).to_string());
    peer.pc.set_local_description(offer).await?;
    Ok(())
}

/// Joins the room of `token` through the signaling WebSocket at `ws_url` (any node of
/// a cluster: a call's room token works on each), sends the offer and trickles
/// candidates; the answer is applied when it comes. The signaling task lives as long
/// as the peer.
pub async fn join_room(ws_url: &str, peer: &mut Peer, token: &str) -> anyhow::Result<()> {
    let (ws, _) = connect_async(ws_url).await.context("signaling connects")?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    queue_join_and_offer(peer, token, &tx).await?;

    let (answered_tx, mut answered) = mpsc::channel::<Result<(), String>>(1);
    let pc = peer.pc.clone();
    peer.keep(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(text) = rx.recv() => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                frame = stream.next() => {
                    let Some(Ok(frame)) = frame else { return };
                    let Message::Text(text) = frame else { continue };
                    let outcome = match serde_json::from_str::<ServerMessage>(&text) {
                        Ok(ServerMessage::Answer { sdp }) => {
                            let applied = match RTCSessionDescription::answer(sdp) {
                                Ok(answer) => pc.set_remote_description(answer).await,
                                Err(e) => Err(e),
                            };
                            applied.map_err(|e| format!("answer refused: {e}"))
                        }
                        Ok(ServerMessage::Error { code, message, .. }) => {
                            Err(format!("{code:?}: {message}"))
                        }
                        _ => continue,
                    };
                    let _ = answered_tx.try_send(outcome);
                }
            }
        }
    }));
    match tokio::time::timeout(Duration::from_secs(20), answered.recv()).await {
        Ok(Some(Ok(()))) => Ok(()),
        Ok(Some(Err(e))) => bail!("kefu refused the join: {e}"),
        Ok(None) => bail!("signaling closed before an answer"),
        Err(_) => bail!("no answer within 20 s"),
    }
}

impl super::SfuUnderLoad for KefuTarget {
    /// An agent and a customer in call `index`'s room, each publishing and receiving
    /// the other.
    async fn add_call(
        &self,
        index: usize,
        video: VideoProfile,
        phase: Duration,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<Vec<Peer>> {
        let room = room(index);
        let mut peers = Vec::new();
        for (name, role) in [("agent", Side::Agent), ("customer", Side::Customer)] {
            let token = self.tokens.issue(&room, name, role, unix_now());
            let mut peer = Peer::new(None, tally).await;
            peer.publish(&format!("{room}-{name}"), video, phase, tally)
                .await?;
            self.join(&mut peer, &token).await?;
            peers.push(peer);
        }
        Ok(peers)
    }

    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

fn room(index: usize) -> String {
    format!("load-{index}")
}
