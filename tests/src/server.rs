//! kefu in-process on 127.0.0.1 with free ports and a fresh data folder.

use std::net::SocketAddr;

use kefu::App;
use kefu_signaling::accounts::UserRole;
use kefu_signaling::accounts::admin::{self, UserSpec};
use kefu_signaling::accounts::bootstrap::BootstrapCredentials;
use kefu_signaling::accounts::secrets::DataKey;
use kefu_signaling::clock::now_ms;
use kefu_signaling::cluster::config::NodeRole;
use kefu_signaling::config::KefuConfig;
use kefu_signaling::rooms::token::{Side, TokenKeys, unix_now};
use kefu_signaling::store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; stopped (gracefully) when dropped or by [`TestServer::stop`].
#[derive(Debug)]
pub struct TestServer {
    pub base_url: String,
    pub ws_url: String,
    /// The SFU's UDP address (`None` on a signaling node).
    pub media_addr: Option<SocketAddr>,
    /// The SFU's ICE-TCP address (on by default).
    pub media_tcp_addr: Option<SocketAddr>,
    pub tokens: TokenKeys,
    pub store: Store,
    pub data_key: DataKey,
    /// The object store (recordings, evidence, reference photos).
    pub objects: kefu_recorder::ObjectStore,
    /// The admin seeded on first start.
    pub bootstrap: Option<BootstrapCredentials>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// `None` only after [`TestServer::stop_keeping_data`] took it.
    data: Option<tempfile::TempDir>,
}

/// Rooms every test server has.
pub const ROOMS: [&str; 3] = ["call", "side", "spare"];

pub async fn spawn_app() -> TestServer {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], after `tweak` adjusted the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut KefuConfig)) -> TestServer {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), tweak).await
}

/// Like [`spawn_app_with`], on an existing data folder (a restart).
pub async fn spawn_app_in(
    data: tempfile::TempDir,
    tweak: impl FnOnce(&mut KefuConfig),
) -> TestServer {
    spawn_node(NodeRole::All, data, tweak).await
}

/// One node of a cluster in `role` (its configuration from `tweak`).
pub async fn spawn_node(
    role: NodeRole,
    data: tempfile::TempDir,
    tweak: impl FnOnce(&mut KefuConfig),
) -> TestServer {
    if std::env::var_os("TEST_LOG").is_some() {
        kefu_signaling::telemetry::init(&Default::default());
    }
    let mut config = KefuConfig {
        data_dir: data.path().to_path_buf(),
        ..KefuConfig::default()
    };
    config.server.bind = ([127, 0, 0, 1], 0).into();
    config.server.shutdown_grace_secs = 2;
    config.media.port = 0;
    config.media.advertise_ip = Some([127, 0, 0, 1].into());
    config.signaling.rooms = ROOMS.iter().map(|r| r.to_string()).collect();
    // The face models deploy/fetch-models.sh put in the repository.
    config.verification.models_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    config.moderation.models_dir = config.verification.models_dir.clone();
    tweak(&mut config);

    let app = App::build_as(config, role).await.expect("app builds");
    let base_url = app.base_url();
    let ws_url = base_url.replacen("http", "ws", 1) + "/ws";
    let media_addr = app.media_addr();
    let media_tcp_addr = app.media_tcp_addr();
    let tokens = app.tokens().clone();
    let store = app.store().clone();
    let data_key = app.data_key().clone();
    let objects = app.objects().clone();
    let bootstrap = app.bootstrap_credentials().cloned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestServer {
        base_url,
        ws_url,
        media_addr,
        media_tcp_addr,
        tokens,
        store,
        data_key,
        objects,
        bootstrap,
        stop: Some(stop),
        task: Some(task),
        data: Some(data),
    }
}

impl TestServer {
    /// The server's data folder (database, spool, embedded object store).
    pub fn data_dir(&self) -> &std::path::Path {
        // Invariant: only stop_keeping_data takes it, and that consumes the server.
        self.data
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(std::path::Path::new(""))
    }

    /// A valid token for `name` in `room`.
    pub fn token(&self, room: &str, name: &str, role: Side) -> String {
        self.tokens.issue(room, name, role, unix_now())
    }

    /// Creates an enterprise with the given main account.
    pub async fn enterprise(&self, main_account: &str) {
        admin::create_enterprise(&self.store, "Test Co", main_account, now_ms())
            .await
            .expect("enterprise");
    }

    /// Creates a user with `password` in the enterprise `main_account`.
    pub async fn user(&self, main_account: &str, login: &str, role: UserRole, password: &str) {
        let spec = UserSpec {
            main_account: main_account.into(),
            login: login.into(),
            role,
            real_name: format!("{login} 测试"),
            id_number: Some(kefu_proto::Pii::new("110101199003071234".to_owned())),
            password: Some(password.into()),
            capacity: 2,
        };
        admin::create_user(&self.store, &self.data_key, &spec, now_ms())
            .await
            .expect("user");
    }

    /// Logs in through the API; returns the bearer token.
    pub async fn login(&self, login: &str, password: &str) -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.base_url))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .expect("POST login");
        assert_eq!(res.status(), 200, "login {login}");
        let body: serde_json::Value = res.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base_url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of one sample line in `/metrics` (`name{labels}`), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Stops the server gracefully and hands over its data folder (to start again on it).
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        let data = self.data.take().expect("the data folder is still ours");
        self.stop().await.expect("clean stop");
        data
    }

    /// Triggers graceful shutdown and waits for the server to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
