//! A party's signaling connection for the soak: it joins as the load generator's
//! `join_room` does (offer, trickled candidates, the answer applied), and also keeps
//! a way to hang up as the page's button does (`leave`) and notes why the call ended
//! for this party if the server ends it (a dropped call during the hold).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::load::peer::Peer;
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use kefu_proto::signaling::{ModerationState, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

/// How long a join may take before it counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// One party's signaling connection; the task behind it lives as long as the peer.
#[derive(Debug, Clone)]
pub struct Link {
    outgoing: mpsc::UnboundedSender<String>,
    ended: Arc<Mutex<Option<String>>>,
    withheld: Arc<Mutex<u32>>,
}

impl Link {
    /// Hangs up: `leave`, then the server closes the connection.
    pub fn hang_up(&self) {
        let _ = self
            .outgoing
            .send(serde_json::json!({"type": "leave"}).to_string());
    }

    /// Why the server ended this party's part of the call, if it did.
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Times moderation withheld a party's video in this call.
    pub fn withheld(&self) -> u32 {
        *self.withheld.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Joins the room of `token` at `ws_url` with `peer` and waits for the answer.
pub async fn join(ws_url: &str, peer: &mut Peer, token: &str) -> anyhow::Result<Link> {
    let (ws, _) = connect_async(ws_url).await.context("signaling connects")?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    crate::load::kefu::queue_join_and_offer(peer, token, &tx).await?;

    let link = Link {
        outgoing: tx,
        ended: Arc::default(),
        withheld: Arc::default(),
    };
    let (answered_tx, mut answered) = mpsc::channel::<Result<(), String>>(1);
    let pc = peer.pc.clone();
    let state = link.clone();
    peer.keep(tokio::spawn(async move {
        let end = |why: String| {
            let mut ended = state.ended.lock().unwrap_or_else(|e| e.into_inner());
            ended.get_or_insert(why);
        };
        loop {
            tokio::select! {
                Some(text) = rx.recv() => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return end("signaling send failed".into());
                    }
                }
                frame = stream.next() => {
                    let Some(Ok(frame)) = frame else {
                        return end("signaling closed".into());
                    };
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
                        Ok(ServerMessage::MediaDisconnected { reason }) => {
                            end(format!("media disconnected: {reason}"));
                            continue;
                        }
                        Ok(ServerMessage::PeerLeft { participant }) => {
                            end(format!("{participant} left"));
                            continue;
                        }
                        Ok(ServerMessage::CallEnded { reason, by }) => {
                            end(format!("call ended: {reason:?} by {by:?}"));
                            continue;
                        }
                        Ok(ServerMessage::Moderation { state: ModerationState::Withheld, .. }) => {
                            *state.withheld.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                            continue;
                        }
                        _ => continue,
                    };
                    let _ = answered_tx.try_send(outcome);
                }
            }
        }
    }));
    match tokio::time::timeout(ANSWER_TIMEOUT, answered.recv()).await {
        Ok(Some(Ok(()))) => Ok(link),
        Ok(Some(Err(e))) => bail!("kefu refused the join: {e}"),
        Ok(None) => bail!("signaling closed before an answer"),
        Err(_) => bail!("no answer within {ANSWER_TIMEOUT:?}"),
    }
}
