//! A bare signaling client over tokio-tungstenite, for protocol-level tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kefu_proto::signaling::ServerMessage;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the server ended the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The stream ended without a close frame.
    Eof,
}

#[derive(Debug)]
pub struct SignalingClient {
    ws: Ws,
}

impl SignalingClient {
    pub async fn connect(ws_url: &str) -> Self {
        let (ws, _) = connect_async(ws_url).await.expect("WebSocket connects");
        Self { ws }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    /// Sends without insisting: the server may close while a large message is in flight.
    pub async fn try_send_text(&mut self, text: String) -> bool {
        self.ws.send(Message::Text(text.into())).await.is_ok()
    }

    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// Joins with `token` and returns the server's first answer.
    pub async fn join(&mut self, token: &str) -> ServerMessage {
        self.send_json(serde_json::json!({"type": "join", "token": token}))
            .await;
        self.recv().await
    }

    /// The next protocol message; panics on close or after 10 s.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next().await {
            Ok(msg) => msg,
            Err(closed) => panic!("connection closed ({closed:?}) while a message was expected"),
        }
    }

    /// The next message, or how the connection closed.
    pub async fn next(&mut self) -> Result<ServerMessage, Closed> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("server sends protocol JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Closed::Code(
                        frame
                            .map(|f| u16::from(f.code))
                            .unwrap_or(u16::from(CloseCode::Status)),
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Closed::Eof),
            }
        }
    }

    /// Skips messages until the connection closes; returns how.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.next().await {
                return closed;
            }
        }
    }
}

/// The pages' event channel (`/ws/events`) at `ws_url` (a server's signaling URL),
/// subscribed with the bearer `session`, as web/workbench.js does.
#[derive(Debug)]
pub struct EventChannel {
    ws: Ws,
}

impl EventChannel {
    pub async fn subscribe(ws_url: &str, session: &str) -> Self {
        let (mut ws, _) = connect_async(format!("{ws_url}/events"))
            .await
            .expect("event channel connects");
        let subscribe = serde_json::json!({"type": "subscribe", "session": session});
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .expect("subscribe");
        Self { ws }
    }

    /// The next event for which `wanted` holds, within `timeout`; `None` when the
    /// channel closed or the time ran out first.
    pub async fn next_where(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let found = tokio::time::timeout(timeout, async {
            while let Some(Ok(message)) = self.ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let event: serde_json::Value = serde_json::from_str(&text).expect("JSON events");
                if wanted(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await;
        found.ok().flatten()
    }
}
