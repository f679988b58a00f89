//! The composition root: builds every part of a kefu node (database, keys, object
//! store, recorder, SFU, signaling) and wires them through their seams, serves until
//! asked to stop, then drains. Role `all` (`kefu serve`) is this one process; the
//! signaling and media roles of a multi-node deployment will be assembled here too.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use kefu_media_server::{MediaServer, SfuMetrics};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, watch};
use tracing::info;

use kefu_signaling::accounts::bootstrap::{BootstrapCredentials, seed_if_empty};
use kefu_signaling::accounts::secrets::DataKey;
use kefu_signaling::calls::EndReason;
use kefu_signaling::cluster::Shared;
use kefu_signaling::cluster::bus::RoomBus;
use kefu_signaling::cluster::config::{ClusterBackend, NodeRole, SharedSetup};
use kefu_signaling::cluster::heartbeat::{self, NodeIdentity};
use kefu_signaling::cluster::media::MediaRouter;
use kefu_signaling::cluster::nodes::NodeLoad;
use kefu_signaling::cluster::redis::{RedisCluster, RedisNodes, RedisPlacement, RedisRooms};
use kefu_signaling::config::KefuConfig;
use kefu_signaling::http as routes;
use kefu_signaling::metrics::Metrics;
use kefu_signaling::rooms::Rooms;
use kefu_signaling::rooms::token::{Side, TokenKeys, unix_now};
use kefu_signaling::state::AccountState;
use kefu_signaling::state::AppState;
use kefu_signaling::store::Store;

/// Refuses to start `role` with a configuration that lacks what it needs (several
/// nodes must share a database, an object store, keys and Redis), naming every key.
pub fn check_role(config: &KefuConfig, role: NodeRole) -> anyhow::Result<()> {
    let shared = SharedSetup {
        postgres: config
            .database
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://")),
        external_storage: !config.storage.embedded,
        token_secret_set: config.auth.token_secret.is_some(),
        data_key_set: config.security.data_key.is_some(),
    };
    let problems = config.cluster.problems(role, shared);
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "--role {} cannot start with this configuration:\n  - {}",
        role.name(),
        problems.join("\n  - ")
    )
}

/// The shared-state seams this node runs with: in process, or in Redis.
async fn shared_state(
    config: &KefuConfig,
    data_key: &DataKey,
) -> anyhow::Result<(Shared, Option<RedisCluster>)> {
    let attempts = config.auth.login_attempts_per_minute;
    Ok(match config.cluster.backend {
        ClusterBackend::InProcess => (Shared::in_process(attempts), None),
        ClusterBackend::Redis => {
            let redis = RedisCluster::connect(&config.cluster)
                .await
                .context("connecting to Redis (cluster.redis_url)")?;
            info!(node = redis.node(), "shared state in Redis");
            (
                Shared::redis(&redis, attempts, data_key.clone()),
                Some(redis),
            )
        }
    })
}

/// This node in the cluster registry: its heartbeat task, and the registry to leave
/// when it stops.
#[derive(Debug)]
struct Registration {
    nodes: RedisNodes,
    id: String,
    /// The heartbeat period.
    period: Duration,
    /// Silence this long makes a node lost.
    timeout: Duration,
    /// Each Redis command's deadline.
    redis_timeout: Duration,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Leaves the registry (a stopped node is gone, not lost).
    async fn leave(self) {
        self.heartbeat.abort();
        if let Err(e) = self.nodes.forget(&self.id).await {
            tracing::warn!("leaving the cluster registry: {e}");
        }
    }
}

/// Files under the data folder keeping generated keys across restarts.
const TOKEN_SECRET_FILE: &str = "token-secret";
const DATA_KEY_FILE: &str = "data-key";

/// A built server, bound to its ports, not yet serving.
#[derive(Debug)]
pub struct App {
    listener: std::net::TcpListener,
    http_addr: SocketAddr,
    tls: Option<RustlsConfig>,
    state: AppState,
    /// The SFU, on roles `all` and `media`.
    media: Option<MediaServer>,
    role: NodeRole,
    /// Role `media`: the control API signaling nodes call, bound.
    internal: Option<(tokio::net::TcpListener, SecretString)>,
    shutdown_tx: watch::Sender<bool>,
    grace: Duration,
    drain_timeout: Duration,
    bootstrap: Option<BootstrapCredentials>,
    /// Notified when an operator asks this node to drain (`kefu admin drain`).
    drain_requested: Arc<Notify>,
    /// Set once this node drains; its registry entry says so.
    node_draining: Arc<std::sync::atomic::AtomicBool>,
    /// The SFU's figures (a media node's drain waits for its rooms to empty).
    sfu_metrics: SfuMetrics,
    registration: Option<Registration>,
    /// The cross-node relay of call changes (its tasks stop with the app).
    _relay: Option<[kefu_signaling::cluster::redis::RelayTasks; 2]>,
}

impl App {
    /// Binds HTTP and media sockets (port 0 works for both) and prepares the state.
    pub async fn build(config: KefuConfig) -> anyhow::Result<Self> {
        Self::build_as(config, NodeRole::All).await
    }

    /// Like [`App::build`], for one part of a multi-node deployment.
    pub async fn build_as(config: KefuConfig, role: NodeRole) -> anyhow::Result<Self> {
        config.validate()?;
        check_role(&config, role)?;
        install_tls_provider();
        let tokens = token_keys(&config)?;
        let data_key = data_key(&config)?;
        let store = Store::open(&config.database, &config.data_dir)
            .await
            .context("opening the database")?;
        let bootstrap = seed_if_empty(&store, &config.bootstrap, kefu_signaling::clock::now_ms())
            .await
            .context("seeding the first enterprise")?;
        let listener = std::net::TcpListener::bind(config.server.bind)
            .with_context(|| format!("binding HTTP on {}", config.server.bind))?;
        let http_addr = listener.local_addr()?;
        let scheme = if config.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let public_url = config
            .server
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{scheme}://{http_addr}"));
        let (shared, redis) = shared_state(&config, &data_key).await?;
        let accounts = AccountState {
            store,
            data_key,
            login_limiter: shared.limiter.clone(),
            session_ttl_secs: config.auth.session_ttl_secs,
            public_url,
        };

        let sfu_metrics = SfuMetrics::default();
        let moderation_metrics = kefu_media_server::moderation::ModerationMetrics::default();
        let (media, moderation) = if role.runs_media() {
            let media = MediaServer::start(&config.media, sfu_metrics.clone())
                .await
                .context("starting the media server")?;
            let moderation =
                start_moderation(&config.moderation, &media, moderation_metrics.clone())?;
            (Some(media), Some(moderation))
        } else {
            (None, None)
        };

        let rooms: Arc<dyn RoomBus> = match &redis {
            Some(redis) => Arc::new(RedisRooms::start(redis.clone()).await),
            None => Arc::new(Rooms::default()),
        };
        for room in &config.signaling.rooms {
            rooms
                .create(room)
                .await
                .with_context(|| format!("opening the standing room {room}"))?;
        }
        let recorder_metrics = kefu_recorder::RecorderMetrics::default();
        let metrics = Arc::new(Metrics::new(
            rooms.clone(),
            &sfu_metrics,
            &recorder_metrics,
            &moderation_metrics,
        ));
        // Only a single node owns every unfinished recording; a media node recovers
        // its own (recover_node), a signaling node none.
        let recordings = start_recordings(
            &config,
            &accounts.store,
            recorder_metrics,
            role == NodeRole::All,
        )
        .await?;

        let tls = match &config.server.tls {
            Some(tls) => Some(
                RustlsConfig::from_pem_file(&tls.cert_path, &tls.key_path)
                    .await
                    .with_context(|| {
                        format!(
                            "loading TLS certificate {} and key {}",
                            tls.cert_path.display(),
                            tls.key_path.display()
                        )
                    })?,
            ),
            None => None,
        };
        let drain_requested = Arc::new(Notify::new());
        // A media node takes no call until its control API serves (run).
        let node_draining = Arc::new(std::sync::atomic::AtomicBool::new(role == NodeRole::Media));
        let registration = redis.as_ref().map(|redis| {
            let nodes = RedisNodes::new(
                redis.clone(),
                Duration::from_millis(config.cluster.node_timeout_ms),
            );
            let identity = NodeIdentity {
                id: redis.node().to_owned(),
                role: role.name(),
                internal_url: config.cluster.internal_url.clone(),
            };
            let (rooms, sfu, runs_media) = (rooms.clone(), sfu_metrics.clone(), role.runs_media());
            let moderation = moderation.as_ref().map(|(m, _)| m.clone());
            let load = move || {
                let screened = moderation.as_ref().map(|m| m.stats()).unwrap_or_default();
                NodeLoad {
                    // Where the media runs, the SFU's rooms; elsewhere the calls
                    // whose pages this node serves.
                    calls: u32::try_from(if runs_media {
                        sfu.rooms()
                    } else {
                        rooms.counts().calls
                    })
                    .unwrap_or(u32::MAX),
                    pipeline_streams: u32::try_from(sfu.pipelines()).unwrap_or(u32::MAX),
                    // Both parties' video in each screened room.
                    screened_streams: u32::try_from(
                        2 * (screened.rooms_on_recorder + screened.rooms_on_own_decode),
                    )
                    .unwrap_or(u32::MAX),
                    ..NodeLoad::default()
                }
            };
            let period = Duration::from_millis(config.cluster.heartbeat_ms);
            Registration {
                id: identity.id.clone(),
                period,
                timeout: Duration::from_millis(config.cluster.node_timeout_ms),
                redis_timeout: Duration::from_millis(config.cluster.redis_timeout_ms),
                heartbeat: tokio::spawn(heartbeat::run(
                    nodes.clone(),
                    identity,
                    period,
                    load,
                    drain_requested.clone(),
                    node_draining.clone(),
                )),
                nodes,
            }
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (router, moderation_events): (Arc<dyn MediaRouter>, _) = match (&media, moderation) {
            (Some(media), Some((moderation, events))) => (
                Arc::new(kefu_signaling::cluster::media::LocalMediaRouter {
                    sfu: media.handle.clone(),
                    recorder: recordings.recorder.clone(),
                    moderation,
                }),
                Some(events),
            ),
            _ => (Arc::new(remote_media(&config, redis.as_ref())?), None),
        };
        let state = AppState::new(
            rooms,
            tokens,
            router,
            config.signaling.clone(),
            metrics,
            shutdown_rx,
            accounts,
            recordings,
            kefu_signaling::verification::worker::FaceWorker::start(
                &config.verification.models_dir,
            ),
            shared,
            kefu_signaling::http::limits::HttpGuard::new(&config.server),
        );
        // Call changes made on other nodes reach this node's pages, and back.
        // So do the ends of face checks another node ran.
        let relay = redis.as_ref().map(|redis| {
            [
                kefu_signaling::cluster::redis::relay_call_events(
                    redis.clone(),
                    state.calls.clone(),
                    state.store.clone(),
                ),
                kefu_signaling::cluster::redis::relay_attempt_results(
                    redis.clone(),
                    state.attempts.clone(),
                    state.data_key.clone(),
                ),
            ]
        });
        if let Some(events) = moderation_events {
            tokio::spawn(kefu_signaling::moderation::reactions::run(
                state.clone(),
                events,
            ));
        }
        match (role, &redis) {
            // Calls the last process left live (it died without draining) cannot go
            // on: their sessions and media are gone. End them and free the agents.
            // (Role all is one node, with or without Redis: every call was its own.)
            (NodeRole::All, _) => {
                let restarted = state
                    .calls
                    .end_all_live(EndReason::SystemRestart, kefu_signaling::clock::now_ms())
                    .await
                    .context("ending the calls an earlier run left live")?;
                if restarted > 0 {
                    info!(calls = restarted, "ended calls an earlier run left live");
                }
            }
            // A media node coming back: the calls it held are over; their recordings
            // are recovered from its spool.
            (NodeRole::Media, Some(redis)) => recover_node(&state, redis).await?,
            // (A media node without Redis does not pass check_role.)
            (NodeRole::Signaling, _) | (NodeRole::Media, None) => {}
        }
        let internal = match role {
            NodeRole::Media => {
                let listener = tokio::net::TcpListener::bind(&config.cluster.internal_bind)
                    .await
                    .with_context(|| {
                        format!(
                            "binding the control API on {}",
                            config.cluster.internal_bind
                        )
                    })?;
                let secret = config.cluster.secret.clone().context("cluster.secret")?;
                Some((listener, secret))
            }
            _ => None,
        };
        Ok(Self {
            listener,
            http_addr,
            tls,
            state,
            media,
            role,
            internal,
            shutdown_tx,
            grace: Duration::from_secs(config.server.shutdown_grace_secs),
            drain_timeout: Duration::from_secs(config.server.drain_timeout_secs),
            bootstrap,
            drain_requested,
            node_draining,
            sfu_metrics,
            registration,
            _relay: relay,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The UDP address browsers send media to (roles `all` and `media`).
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media.as_ref().map(|m| m.handle.local_addr())
    }

    /// The advertised ICE-TCP address, when on.
    pub fn media_tcp_addr(&self) -> Option<SocketAddr> {
        self.media.as_ref().and_then(|m| m.handle.tcp_addr())
    }

    /// The UDP address the SFU's socket is bound to.
    pub fn media_bound_addr(&self) -> Option<SocketAddr> {
        self.media.as_ref().map(|m| m.handle.bound_addr())
    }

    /// Role `media`: where the control API listens.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// `http://host:port` or `https://…`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The admin created on this first start (empty database), to show once.
    pub fn bootstrap_credentials(&self) -> Option<&BootstrapCredentials> {
        self.bootstrap.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn data_key(&self) -> &DataKey {
        &self.state.data_key
    }

    /// The object store recordings, evidence and reference photos live in.
    pub fn objects(&self) -> &kefu_recorder::ObjectStore {
        &self.state.recordings.storage.store
    }

    pub fn tokens(&self) -> &TokenKeys {
        &self.state.tokens
    }

    pub fn rooms(&self) -> &dyn RoomBus {
        self.state.rooms.as_ref()
    }

    /// Page links for `room`: (agent URL, customer URL), each with a fresh token.
    pub fn room_links(&self, room: &str) -> (String, String) {
        let now = unix_now();
        let base = self.base_url();
        let agent = self.tokens().issue(room, "agent", Side::Agent, now);
        let customer = self.tokens().issue(room, "customer", Side::Customer, now);
        (
            format!("{base}/agent?token={agent}"),
            format!("{base}/customer?token={customer}"),
        )
    }

    /// Serves until `shutdown` resolves, then closes sessions and drains connections.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            tls,
            state,
            media,
            role,
            internal,
            shutdown_tx,
            grace,
            drain_timeout,
            drain_requested,
            node_draining,
            sfu_metrics,
            registration,
            _relay,
            ..
        } = self;
        let app = match role {
            // A media node's public port serves health and metrics only.
            NodeRole::Media => routes::ops_router(state.clone()),
            _ => {
                let routes = routes::router(state.clone());
                // Other signaling nodes hand over requests for attempts held here.
                state.forwarder.serve(routes.clone()).await;
                routes
            }
        }
        .into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        let sweeper = tokio::spawn(sweep_calls(state.clone(), role));
        // Retention is a signaling node's work (each runs it; deletes are idempotent).
        let retention = (role != NodeRole::Media).then(|| {
            tokio::spawn(kefu_signaling::retention::job::run_daily(
                state.store.clone(),
                state.recordings.storage.store.clone(),
            ))
        });
        // Signaling nodes end the calls of a media node that went silent.
        let watcher = match (role, &registration) {
            (NodeRole::Signaling, Some(r)) => {
                let redis = r.nodes.redis().clone();
                Some(tokio::spawn(kefu_signaling::cluster::node_loss::watch(
                    state.clone(),
                    r.nodes.clone(),
                    RedisPlacement::new(redis.clone(), r.nodes.clone()),
                    kefu_signaling::cluster::redis::RedisLease::new(
                        redis,
                        Duration::from_secs(10),
                        Duration::from_millis(100),
                    ),
                    kefu_signaling::cluster::node_loss::LossTimes::new(
                        r.period,
                        r.timeout,
                        r.redis_timeout,
                    ),
                )))
            }
            _ => None,
        };
        let control = internal.map(|(listener, secret)| {
            let router = kefu_signaling::cluster::remote::server::router(state.clone(), secret);
            // Serving from here on: calls may be placed here.
            node_draining.store(false, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!("control API stopped: {e}");
                }
            })
        });
        let draining = state.clone();
        let sfu = sfu_metrics.clone();
        let held = registration.as_ref().map(|r| {
            (
                RedisPlacement::new(r.nodes.redis().clone(), r.nodes.clone()),
                r.id.clone(),
            )
        });
        tokio::spawn(async move {
            // An operator's drain request ends this node as a stop signal does.
            tokio::select! {
                _ = shutdown => {}
                _ = drain_requested.notified() => {}
            }
            node_draining.store(true, std::sync::atomic::Ordering::SeqCst);
            match role {
                NodeRole::All => drain(&draining, drain_timeout).await,
                // Its calls carry on: the pages reconnect to another signaling node.
                NodeRole::Signaling => draining.start_draining(),
                NodeRole::Media => drain_media(&draining, held, sfu, drain_timeout).await,
            }
            info!("shutting down: closing sessions");
            let _ = shutdown_tx.send(true);
            stopper.graceful_shutdown(Some(grace));
        });
        let served = match tls {
            Some(tls) => {
                axum_server::from_tcp_rustls(listener, tls)?
                    .handle(handle)
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)?
                    .handle(handle)
                    .serve(app)
                    .await
            }
        };
        sweeper.abort();
        if let Some(retention) = retention {
            retention.abort();
        }
        state.forwarder.stop_serving();
        // A signaling node lets go of its pages' media connections without taking
        // anyone out of a call: they resume through other nodes.
        if role == NodeRole::Signaling {
            state.media.detach_all();
        }
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        if let Some(control) = control {
            control.abort();
        }
        if let Some(registration) = registration {
            registration.leave().await;
        }
        served.context("HTTP server failed")?;
        state.store.close().await;
        drop(state);
        // The driver thread ends at once; joining it takes the peer connections down.
        if let Some(mut media) = media {
            media.stop();
        }
        info!("stopped");
        Ok(())
    }
}

/// How often a drain looks whether the last recordings are stored.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// The first part of a shutdown: refuse new requests, end every live call through
/// the lifecycle (reason `system_shutdown`), and wait until every recording is stored
/// (ready or failed), within `timeout`. What does not make it is recovered at the next
/// start, as after a crash.
async fn drain(state: &AppState, timeout: Duration) {
    info!("draining: no new requests; ending live calls");
    state.start_draining();
    let drained = tokio::time::timeout(timeout, async {
        match state
            .calls
            .end_all_live(EndReason::SystemShutdown, kefu_signaling::clock::now_ms())
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(calls = n, "ended live calls for the shutdown"),
            Err(e) => tracing::warn!("ending live calls failed: {e}"),
        }
        loop {
            match state.store.unfinished_recordings().await {
                Ok(left) if left.is_empty() => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot read the recordings still open: {e}");
                    break;
                }
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?timeout,
            "drain timed out; unfinished recordings are recovered at the next start"
        );
    }
}

/// A media node's drain: no new calls are placed here (its registry entry says
/// draining), the calls it holds finish as their people hang up, and their recordings
/// are stored; then it stops. Calls still running after `timeout` end as
/// `system_shutdown`.
async fn drain_media(
    state: &AppState,
    held: Option<(RedisPlacement, String)>,
    sfu: SfuMetrics,
    timeout: Duration,
) {
    info!("draining: no new calls here; waiting for the live ones to finish");
    state.start_draining();
    let finished = tokio::time::timeout(timeout, async {
        loop {
            // The SFU's own rooms (a placement is released a little after its call).
            if sfu.rooms() == 0 && state.recordings.recorder.active_ids().is_empty() {
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    })
    .await;
    if finished.is_err() {
        // Only this node's calls: the others' media is elsewhere and goes on.
        tracing::warn!(?timeout, "drain timed out; ending the calls still here");
        let rooms = match &held {
            Some((placement, me)) => placement.rooms_of(me).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let now = kefu_signaling::clock::now_ms();
        for room in rooms {
            let event = kefu_signaling::calls::machine::CallEvent::Terminate {
                reason: EndReason::SystemShutdown,
            };
            let _ = state
                .calls
                .apply(&kefu_signaling::accounts::CallId(room), event, now)
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while !state.recordings.recorder.active_ids().is_empty() {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        })
        .await;
    }
}

/// A media node (re)starting in a cluster: the calls it held when it stopped or died
/// cannot go on; they end (if the signaling nodes did not end them as `node_lost`
/// already) and their recordings are recovered from the spool.
async fn recover_node(state: &AppState, redis: &RedisCluster) -> anyhow::Result<()> {
    let nodes = RedisNodes::new(redis.clone(), Duration::from_secs(60));
    let placement = RedisPlacement::new(redis.clone(), nodes);
    let rooms = placement
        .rooms_of(redis.node())
        .await
        .context("reading the rooms this node held")?;
    let now = kefu_signaling::clock::now_ms();
    for room in &rooms {
        let id = kefu_signaling::accounts::CallId(room.clone());
        let event = kefu_signaling::calls::machine::CallEvent::Terminate {
            reason: EndReason::SystemRestart,
        };
        if let Err(e) = state.calls.apply(&id, event, now).await {
            tracing::debug!(%room, "not ended at restart: {e}");
        }
    }
    // The recordings of the calls it held, and any other whose spool is on this disk
    // (a call that ended, its placement released, while the upload was running).
    let recorder = state.recordings.recorder.clone();
    let recovered = state
        .recordings
        .recover_where(&state.store, now, |rec| {
            rooms.contains(&rec.call_id.0) || recorder.spool_path(&rec.id, rec.kind).exists()
        })
        .await
        .context("recovering this node's recordings")?;
    for room in &rooms {
        if let Err(e) = placement.release(room).await {
            tracing::warn!(%room, "placement not released: {e}");
        }
    }
    if !rooms.is_empty() || recovered > 0 {
        info!(
            calls = rooms.len(),
            recordings = recovered,
            "took back what this node held"
        );
    }
    Ok(())
}

/// The media plane on other nodes, for a signaling node.
fn remote_media(
    config: &KefuConfig,
    redis: Option<&RedisCluster>,
) -> anyhow::Result<kefu_signaling::cluster::remote::client::RemoteMediaRouter> {
    let redis = redis.context("a signaling node needs cluster.backend = \"redis\"")?;
    let nodes = RedisNodes::new(
        redis.clone(),
        Duration::from_millis(config.cluster.node_timeout_ms),
    );
    let secret = config.cluster.secret.clone().context("cluster.secret")?;
    Ok(
        kefu_signaling::cluster::remote::client::RemoteMediaRouter::new(
            RedisPlacement::new(redis.clone(), nodes),
            secret,
        ),
    )
}

/// How often unanswered calls are timed out and queues re-dispatched.
const CALL_SWEEP: Duration = Duration::from_secs(1);
/// Every this many call sweeps (10 minutes), spools of deleted recordings go…
const ORPHAN_SPOOL_SWEEP_TICKS: u64 = 600;
/// …once untouched this long (a recording being set up has no row for an instant).
const ORPHAN_SPOOL_AGE: Duration = Duration::from_secs(3600);

/// Object store, recorder, the task persisting its events, and recovery of what an
/// earlier process left unfinished.
async fn start_recordings(
    config: &KefuConfig,
    store: &Store,
    metrics: kefu_recorder::RecorderMetrics,
    recover: bool,
) -> anyhow::Result<kefu_signaling::recordings::Recordings> {
    let storage =
        kefu_signaling::recordings::start_storage(&config.storage, &config.data_dir).await?;
    let mut rcfg = config.recording.clone();
    if rcfg.spool_dir.as_os_str().is_empty() {
        rcfg.spool_dir = config.data_dir.join("spool");
    }
    let (recorder, events) = kefu_recorder::Recorder::new(rcfg, storage.store.clone(), metrics)
        .context("creating the recording spool")?;
    tokio::spawn(kefu_signaling::recordings::persist_events(
        store.clone(),
        events,
    ));
    let recordings = kefu_signaling::recordings::Recordings {
        recorder,
        storage: Arc::new(storage),
    };
    if !recover {
        return Ok(recordings);
    }
    let recovered = recordings
        .recover_all(store, kefu_signaling::clock::now_ms())
        .await
        .context("recovering unfinished recordings")?;
    if recovered > 0 {
        info!(
            recordings = recovered,
            "recovering recordings an earlier run left unfinished"
        );
    }
    Ok(recordings)
}

/// Every [`CALL_SWEEP`]: times out calls nobody answered, then gives waiting requests
/// to agents who became free (a call ended, a slot opened).
async fn sweep_calls(state: AppState, role: NodeRole) {
    let mut tick = tokio::time::interval(CALL_SWEEP);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        if state.is_draining() {
            continue;
        }
        let now = kefu_signaling::clock::now_ms();
        ticks += 1;
        // Where recordings are made: now and then, the spools of deleted recordings.
        if role != NodeRole::Signaling && ticks.is_multiple_of(ORPHAN_SPOOL_SWEEP_TICKS) {
            let swept = state
                .recordings
                .sweep_orphan_spools(&state.store, ORPHAN_SPOOL_AGE)
                .await;
            if let Err(e) = swept {
                tracing::warn!("sweeping orphan spools failed: {e}");
            }
        }
        // A media node only closes the recordings of calls that ended elsewhere;
        // timeouts and queues are a signaling node's work.
        if role == NodeRole::Media {
            if let Err(e) = state.recordings.reconcile(&state.store, now).await {
                tracing::warn!("reconciling recordings failed: {e}");
            }
            continue;
        }
        match state.calls.expire_overdue(now).await {
            Ok(0) => {}
            Ok(n) => info!(calls = n, "unanswered calls timed out"),
            Err(e) => tracing::warn!("expiring calls failed: {e}"),
        }
        state.calls.dispatch_all(now).await;
        if let Err(e) = state
            .recordings
            .reconcile(&state.store, kefu_signaling::clock::now_ms())
            .await
        {
            tracing::warn!("reconciling recordings failed: {e}");
        }
    }
}

/// Makes aws-lc-rs the process-wide rustls provider. Needed when more than one
/// provider is compiled in (tests link ring through their HTTP client); harmless when
/// one is already installed.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The room-token keys: the configured secret, or the one kept in the data folder.
pub fn token_keys(config: &KefuConfig) -> anyhow::Result<TokenKeys> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
    let secret = match &config.auth.token_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => load_or_create_secret(&config.data_dir)?,
    };
    Ok(TokenKeys::new(&secret, config.auth.token_ttl_secs))
}

/// The key encrypting personal data: configured, or kept in the data folder.
pub fn data_key(config: &KefuConfig) -> anyhow::Result<DataKey> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
    let text = match &config.security.data_key {
        Some(key) => key.expose_secret().to_owned(),
        None => {
            let path = config.data_dir.join(DATA_KEY_FILE);
            match std::fs::read_to_string(&path) {
                Ok(existing) => existing,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let fresh = DataKey::generate_base64();
                    write_private(&path, &fresh)
                        .with_context(|| format!("writing {}", path.display()))?;
                    fresh
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
        }
    };
    DataKey::from_base64(&text).map_err(|e| anyhow::anyhow!("security.data_key: {e}"))
}

/// Reads the token key from the data folder, creating a random one the first time.
fn load_or_create_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(TOKEN_SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 64 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &hex).with_context(|| format!("writing {}", path.display()))?;
    Ok(hex.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// The classifier the configuration names, and the moderation worker around it. The
/// real model missing or broken is a startup error: a server that cannot screen must
/// not look as if it did.
fn start_moderation(
    config: &kefu_signaling::config::ModerationConfig,
    media: &MediaServer,
    metrics: kefu_media_server::moderation::ModerationMetrics,
) -> anyhow::Result<(
    kefu_media_server::moderation::Moderation,
    tokio::sync::mpsc::UnboundedReceiver<kefu_media_server::moderation::ModerationEvent>,
)> {
    use kefu_signaling::config::ClassifierKind;
    let classifier: Box<dyn kefu_vision::NudityClassifier> = match config.classifier {
        ClassifierKind::OpenNsfw if config.test_classifier_delay_ms > 0 => anyhow::bail!(
            "moderation.test_classifier_delay_ms slows the test-only classifier; it must stay 0 \
             with open_nsfw"
        ),
        ClassifierKind::OpenNsfw => Box::new(
            kefu_vision::OpenNsfw::load(&config.models_dir).with_context(|| {
                format!(
                    "loading the content moderation model from {} (deploy/fetch-models.sh \
                     downloads it; moderation.models_dir says where it is)",
                    config.models_dir.display()
                )
            })?,
        ),
        ClassifierKind::TestMarkerColour => {
            tracing::warn!(
                "content moderation uses the TEST-ONLY marker-colour classifier \
                 (moderation.classifier = \"test_marker_colour\"): calls are NOT screened for nudity"
            );
            Box::new(kefu_vision::TestMarkerColourClassifier {
                delay: Duration::from_millis(config.test_classifier_delay_ms),
                ..Default::default()
            })
        }
    };
    kefu_media_server::moderation::Moderation::start(
        classifier,
        Arc::new(media.handle.clone()),
        metrics,
    )
    .context("starting the moderation worker")
}
