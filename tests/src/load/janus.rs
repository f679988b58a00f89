//! Janus under the same load: Debian's `janus` with only the VideoRoom plugin and the
//! HTTP transport (on 127.0.0.1), one room per call. Each party publishes on one
//! handle and subscribes to the other party on a second, as Janus's own clients do.
//!
//! Janus never gathers candidates on loopback interfaces (its `src/ice.c` skips
//! `IFF_LOOPBACK`), so its media uses a private address on a dummy interface inside
//! the benchmark's own network namespace (`deploy/bench-sfu.sh`); nothing can leave it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use super::media::{Tally, VideoProfile};
use super::peer::Peer;
use super::process::{ServerProcess, free_port};

/// The dummy interface `deploy/bench-sfu.sh` creates; Janus gathers only on it.
pub const BENCH_INTERFACE: &str = "kbench0";
const PLUGIN: &str = "janus.plugin.videoroom";
const FIRST_ROOM: u64 = 1000;
/// VideoRoom's error code for a feed that is not (yet) publishing.
const NO_SUCH_FEED: u64 = 428;

#[derive(Debug)]
pub struct JanusTarget {
    pub process: ServerProcess,
    api: Arc<JanusApi>,
    private_ip: IpAddr,
}

impl JanusTarget {
    /// Starts `bin` with configs written to `dir`: VideoRoom + HTTP only, ICE-lite
    /// (as kefu), candidates on [`BENCH_INTERFACE`] only.
    pub async fn start(bin: &Path, dir: &Path, private_ip: IpAddr) -> anyhow::Result<Self> {
        let port = free_port()?;
        let conf = dir.join("janus-conf");
        write_configs(&conf, port)?;
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(conf.join("janus.jcfg"))
            .arg("--configs-folder")
            .arg(&conf)
            .arg("--disable-colors");
        let base = format!("http://127.0.0.1:{port}/janus");
        let process =
            ServerProcess::spawn_ready("janus", command, dir, &format!("{base}/info")).await?;
        let api = JanusApi::connect(base).await?;
        Ok(Self {
            process,
            api,
            private_ip,
        })
    }

    async fn publish(
        &self,
        room: u64,
        name: &str,
        video: VideoProfile,
        phase: Duration,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<(Peer, u64)> {
        let handle = self.api.attach().await?;
        let joined = self
            .api
            .message(
                handle,
                json!({"request": "join", "ptype": "publisher", "room": room, "display": name}),
                None,
            )
            .await?;
        let feed = plugin_data(&joined)?["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("joined without a feed id: {joined}"))?;

        let mut peer = Peer::new(Some(self.private_ip), tally).await;
        peer.publish(&format!("{room}-{name}"), video, phase, tally)
            .await?;
        let offer = peer.pc.create_offer(None).await?;
        let sdp = peer.set_local_gathered(offer).await?;
        let published = self
            .api
            .message(
                handle,
                json!({"request": "publish", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": sdp, "trickle": false})),
            )
            .await?;
        plugin_data(&published)?;
        let answer = jsep_sdp(&published)?;
        peer.pc
            .set_remote_description(RTCSessionDescription::answer(answer)?)
            .await?;
        Ok((peer, feed))
    }

    async fn subscribe(&self, room: u64, feed: u64, tally: &Arc<Tally>) -> anyhow::Result<Peer> {
        let handle = self.api.attach().await?;
        // A feed can be subscribed once its publisher's media is up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let attached = loop {
            let attached = self
                .api
                .message(
                    handle,
                    json!({"request": "join", "ptype": "subscriber", "room": room,
                           "streams": [{"feed": feed}]}),
                    None,
                )
                .await?;
            let not_yet = attached["plugindata"]["data"]["error_code"] == NO_SUCH_FEED;
            if !not_yet || tokio::time::Instant::now() >= deadline {
                break attached;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        plugin_data(&attached)?;
        let peer = Peer::new(Some(self.private_ip), tally).await;
        let offer = RTCSessionDescription::offer(jsep_sdp(&attached)?)?;
        peer.pc.set_remote_description(offer).await?;
        let answer = peer.pc.create_answer(None).await?;
        let sdp = peer.set_local_gathered(answer).await?;
        let started = self
            .api
            .message(
                handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": sdp, "trickle": false})),
            )
            .await?;
        plugin_data(&started)?;
        Ok(peer)
    }
}

impl super::SfuUnderLoad for JanusTarget {
    /// Two publishers in call `index`'s room, each subscribed to the other.
    async fn add_call(
        &self,
        index: usize,
        video: VideoProfile,
        phase: Duration,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<Vec<Peer>> {
        let room = FIRST_ROOM + index as u64;
        let control = self.api.attach().await?;
        let created = self
            .api
            .message(
                control,
                json!({"request": "create", "room": room, "publishers": 2,
                       "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0}),
                None,
            )
            .await?;
        plugin_data(&created)?;

        let mut peers = Vec::new();
        let mut feeds = Vec::new();
        for name in ["agent", "customer"] {
            let (peer, feed) = self.publish(room, name, video, phase, tally).await?;
            peers.push(peer);
            feeds.push(feed);
        }
        for feed in feeds.iter().rev() {
            peers.push(self.subscribe(room, *feed, tally).await?);
        }
        Ok(peers)
    }

    fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

/// The VideoRoom's answer inside an event; its `error` as an error.
fn plugin_data(event: &Value) -> anyhow::Result<&Value> {
    let data = &event["plugindata"]["data"];
    if let Some(error) = data.get("error") {
        bail!("videoroom error {}: {error}", data["error_code"]);
    }
    if data.is_null() {
        bail!("no plugin data in {event}");
    }
    Ok(data)
}

fn jsep_sdp(event: &Value) -> anyhow::Result<String> {
    event["jsep"]["sdp"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no SDP in {event}"))
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus session over the REST API; a long poll delivers asynchronous events to
/// whoever waits for their transaction.
#[derive(Debug)]
struct JanusApi {
    http: reqwest::Client,
    session_url: String,
    next_transaction: AtomicU64,
    waiters: Waiters,
    poll: JoinHandle<()>,
}

impl Drop for JanusApi {
    fn drop(&mut self) {
        self.poll.abort();
    }
}

impl JanusApi {
    async fn connect(base: String) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::new();
        let created = post(
            &http,
            &base,
            json!({"janus": "create", "transaction": "create"}),
        )
        .await?;
        let session = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no session id: {created}"))?;
        let session_url = format!("{base}/{session}");
        let waiters: Waiters = Arc::default();
        let poll = tokio::spawn(long_poll(
            http.clone(),
            session_url.clone(),
            waiters.clone(),
        ));
        Ok(Arc::new(Self {
            http,
            session_url,
            next_transaction: AtomicU64::new(1),
            waiters,
            poll,
        }))
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed))
    }

    async fn attach(&self) -> anyhow::Result<u64> {
        let body = json!({"janus": "attach", "plugin": PLUGIN, "transaction": self.transaction()});
        let attached = post(&self.http, &self.session_url, body).await?;
        attached["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no handle id: {attached}"))
    }

    /// Sends a plugin message; returns the synchronous answer, or the event that
    /// follows an `ack`.
    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let transaction = self.transaction();
        let mut request = json!({"janus": "message", "transaction": transaction, "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(transaction.clone(), tx);
        let url = format!("{}/{handle}", self.session_url);
        let reply = post(&self.http, &url, request).await;
        let reply = match reply {
            Ok(r) if r["janus"] == "ack" => None,
            Ok(r) => Some(r),
            Err(e) => {
                self.waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&transaction);
                return Err(e);
            }
        };
        if let Some(reply) = reply {
            self.waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&transaction);
            return Ok(reply);
        }
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .context("no Janus event within 20 s")?
            .context("Janus event poll ended")
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let reply: Value = http.post(url).json(&body).send().await?.json().await?;
    if reply["janus"] == "error" {
        bail!("Janus refused {}: {}", body["janus"], reply["error"]);
    }
    Ok(reply)
}

/// Long-polls the session (which also keeps it alive) and hands each event to the
/// waiter of its transaction; others (webrtcup, media, keepalive) are dropped.
async fn long_poll(http: reqwest::Client, session_url: String, waiters: Waiters) {
    let url = format!("{session_url}?maxev=16");
    loop {
        let events = match http.get(&url).send().await {
            Ok(res) => res.json::<Value>().await.unwrap_or(Value::Null),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let events = match events {
            Value::Array(list) => list,
            one => vec![one],
        };
        for event in events {
            let Some(transaction) = event["transaction"].as_str() else {
                continue;
            };
            let waiter = waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(transaction);
            if let Some(waiter) = waiter {
                let _ = waiter.send(event);
            }
        }
    }
}

fn write_configs(conf: &Path, http_port: u16) -> anyhow::Result<()> {
    std::fs::create_dir_all(conf)?;
    let lib = "/usr/lib/x86_64-linux-gnu/janus";
    let disabled_plugins = [
        "audiobridge",
        "duktape",
        "echotest",
        "lua",
        "nosip",
        "recordplay",
        "sip",
        "streaming",
        "textroom",
        "videocall",
        "voicemail",
    ]
    .map(|p| format!("libjanus_{p}.so"))
    .join(",");
    let disabled_transports = ["mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets"]
        .map(|t| format!("libjanus_{t}.so"))
        .join(",");
    let main = format!(
        "general: {{\n\
         \tconfigs_folder = {conf:?}\n\
         \tplugins_folder = \"{lib}/plugins\"\n\
         \ttransports_folder = \"{lib}/transports\"\n\
         \tevents_folder = \"{lib}/events\"\n\
         \tloggers_folder = \"{lib}/loggers\"\n\
         \tdebug_level = 3\n\
         \tserver_name = \"kefu-bench-janus\"\n\
         }}\n\
         media: {{\n\trtp_port_range = \"20000-40000\"\n}}\n\
         nat: {{\n\tice_lite = true\n\tice_enforce_list = \"{BENCH_INTERFACE}\"\n}}\n\
         plugins: {{\n\tdisable = \"{disabled_plugins}\"\n}}\n\
         transports: {{\n\tdisable = \"{disabled_transports}\"\n}}\n",
    );
    let http = format!(
        "general: {{\n\tbase_path = \"/janus\"\n\thttp = true\n\tport = {http_port}\n\
         \tip = \"127.0.0.1\"\n\thttps = false\n}}\n\
         admin: {{\n\tadmin_http = false\n}}\n"
    );
    std::fs::write(conf.join("janus.jcfg"), main)?;
    std::fs::write(conf.join("janus.transport.http.jcfg"), http)?;
    std::fs::write(conf.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    Ok(())
}
