//! The engines a kefu cluster shares, as `make test` provides them (Redis, PostgreSQL,
//! Ceph radosgw: deploy/with-*.sh), and node configurations on them.

use kefu_signaling::cluster::config::ClusterBackend;
use kefu_signaling::config::KefuConfig;

/// The test servers of the shared engines.
#[derive(Debug, Clone)]
pub struct Engines {
    pub redis: String,
    pub postgres: String,
    pub s3: (String, String, String),
}

/// The engines, or `None` (outside CI only) when a test server is missing.
pub fn engines() -> Option<Engines> {
    let var = |name: &str| std::env::var(name).ok();
    match (
        var("TEST_REDIS_URL"),
        var("TEST_POSTGRES_URL"),
        var("TEST_S3_ENDPOINT"),
        var("TEST_S3_ACCESS_KEY"),
        var("TEST_S3_SECRET_KEY"),
    ) {
        (Some(redis), Some(postgres), Some(endpoint), Some(access), Some(secret)) => {
            Some(Engines {
                redis,
                postgres,
                s3: (endpoint, access, secret),
            })
        }
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI must run the cluster tests: TEST_REDIS_URL, TEST_POSTGRES_URL and TEST_S3_* \
             (make test sets them)"
        ),
        _ => {
            eprintln!("Redis, PostgreSQL or S3 test server missing: cluster tests skipped");
            None
        }
    }
}

/// A new database on the test server, so runs never share tables.
pub async fn fresh_database(admin_url: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("kefu_cluster_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(admin_url)
        .await
        .expect("postgres admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

/// A key prefix (and bucket suffix) no other test run uses.
pub fn fresh_prefix() -> String {
    format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Configures `config` as node `node` of the cluster on `engines` under `prefix`.
pub fn cluster_node(
    config: &mut KefuConfig,
    engines: &Engines,
    database: &str,
    prefix: &str,
    node: &str,
) {
    let (endpoint, access, secret) = engines.s3.clone();
    config.cluster.backend = ClusterBackend::Redis;
    config.cluster.redis_url = Some(engines.redis.clone().into());
    config.cluster.key_prefix = prefix.to_owned();
    config.cluster.node_id = node.into();
    config.cluster.secret = Some("a cluster secret of 32 bytes ok!".into());
    config.cluster.heartbeat_ms = 200;
    config.cluster.node_timeout_ms = 1000;
    config.database.url = Some(database.to_owned());
    config.storage.embedded = false;
    config.storage.endpoint = endpoint;
    config.storage.access_key = access;
    config.storage.secret_key = secret;
    config.storage.bucket = format!("kefu-{prefix}");
    config.auth.token_secret = Some("a token secret of at least 32 bytes".into());
    config.security.data_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
}

/// A free TCP port on loopback (for a media node's control API, whose URL must be
/// known before it binds).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A kefu node as a process of its own (the `kefu` binary `make test` built), on the
/// engines under `prefix`; killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    pub id: String,
    /// `http://127.0.0.1:<port>`: health and metrics.
    pub base_url: String,
    child: Option<std::process::Child>,
    env: Vec<(&'static str, String)>,
    _data: tempfile::TempDir,
}

/// The `kefu` binary of this build: beside this program (a tool in `target/debug/`)
/// or one folder up (a test in `target/debug/deps/`).
fn kefu_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("program path");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("kefu"))
        .find(|candidate| candidate.is_file())
        .expect("the kefu binary (make test builds it)")
}

impl NodeProcess {
    /// Starts `kefu serve --role media` as node `node`; returns once it is healthy.
    pub async fn media(engines: &Engines, database: &str, prefix: &str, node: &str) -> Self {
        let (http, internal) = (free_port(), free_port());
        let data = tempfile::tempdir().expect("data dir");
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let (endpoint, access, secret) = engines.s3.clone();
        let env = [
            ("KEFU_DATA_DIR", data.path().display().to_string()),
            ("KEFU_SERVER__BIND", format!("127.0.0.1:{http}")),
            ("KEFU_MEDIA__PORT", "0".into()),
            ("KEFU_MEDIA__ADVERTISE_IP", "127.0.0.1".into()),
            ("KEFU_CLUSTER__BACKEND", "redis".into()),
            ("KEFU_CLUSTER__REDIS_URL", engines.redis.clone()),
            ("KEFU_CLUSTER__KEY_PREFIX", prefix.into()),
            ("KEFU_CLUSTER__NODE_ID", node.into()),
            (
                "KEFU_CLUSTER__SECRET",
                "a cluster secret of 32 bytes ok!".into(),
            ),
            ("KEFU_CLUSTER__HEARTBEAT_MS", "200".into()),
            ("KEFU_CLUSTER__NODE_TIMEOUT_MS", "1000".into()),
            (
                "KEFU_CLUSTER__INTERNAL_BIND",
                format!("127.0.0.1:{internal}"),
            ),
            (
                "KEFU_CLUSTER__INTERNAL_URL",
                format!("http://127.0.0.1:{internal}"),
            ),
            ("KEFU_DATABASE__URL", database.into()),
            ("KEFU_STORAGE__EMBEDDED", "false".into()),
            ("KEFU_STORAGE__ENDPOINT", endpoint),
            ("KEFU_STORAGE__ACCESS_KEY", access),
            ("KEFU_STORAGE__SECRET_KEY", secret),
            ("KEFU_STORAGE__BUCKET", format!("kefu-{prefix}")),
            (
                "KEFU_AUTH__TOKEN_SECRET",
                "a token secret of at least 32 bytes".into(),
            ),
            (
                "KEFU_SECURITY__DATA_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            ),
            (
                "KEFU_VERIFICATION__MODELS_DIR",
                models.display().to_string(),
            ),
            ("KEFU_MODERATION__MODELS_DIR", models.display().to_string()),
            // A participant whose control connection dropped keeps its place this long.
            ("KEFU_SIGNALING__RECONNECT_GRACE_SECS", "3".into()),
        ];
        let mut node = Self {
            id: node.to_owned(),
            base_url: format!("http://127.0.0.1:{http}"),
            child: None,
            env: env.to_vec(),
            _data: data,
        };
        node.start().await;
        node
    }

    /// Starts the process (again, on the same data folder and ports after a kill);
    /// returns once it is healthy.
    pub async fn start(&mut self) {
        let child = std::process::Command::new(kefu_binary())
            .args(["serve", "--role", "media"])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("kefu starts");
        self.child = Some(child);
        let health = format!("{}/healthz", self.base_url);
        crate::wait_until(
            "the media node to be healthy",
            std::time::Duration::from_secs(30),
            || async {
                reqwest::get(&health)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(drop)
            },
        )
        .await;
    }

    /// The process id while it runs (its CPU and memory are read from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Runs `kefu admin ARGS…` with this node's configuration.
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(kefu_binary())
            .arg("admin")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("kefu admin runs")
    }

    /// Waits for the process to exit by itself; its exit status.
    pub async fn exited(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not exit",
                self.id
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// One sample of its `/metrics` (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base_url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster on one machine: signaling nodes in this process (their API is what a
/// test drives) and media nodes as processes of their own (their CPU figures are
/// their own, and they can die).
#[derive(Debug)]
pub struct Cluster {
    pub signaling: Vec<crate::TestServer>,
    pub media: Vec<NodeProcess>,
}

/// Two media nodes, then two signaling nodes (configured further by `tweak`), on the
/// engines under a fresh prefix and database; returns once every node has sent a
/// heartbeat.
pub async fn start_cluster(engines: &Engines, tweak: impl Fn(&mut KefuConfig)) -> Cluster {
    start_cluster_with(engines, 2, tweak).await
}

/// [`start_cluster`] with `media_nodes` media nodes (a capacity benchmark loads one).
pub async fn start_cluster_with(
    engines: &Engines,
    media_nodes: usize,
    tweak: impl Fn(&mut KefuConfig),
) -> Cluster {
    let prefix = fresh_prefix();
    let database = fresh_database(&engines.postgres).await;
    let mut media = Vec::new();
    for n in 1..=media_nodes {
        media.push(NodeProcess::media(engines, &database, &prefix, &format!("media-{n}")).await);
    }
    let mut signaling = Vec::new();
    for n in 1..=2 {
        let node = format!("signaling-{n}");
        let dir = tempfile::tempdir().expect("dir");
        let server = crate::spawn_node(
            kefu_signaling::cluster::config::NodeRole::Signaling,
            dir,
            |c| {
                cluster_node(c, engines, &database, &prefix, &node);
                tweak(c);
            },
        )
        .await;
        signaling.push(server);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Cluster { signaling, media }
}

/// A Redis of a test's own (persisting to disk, as a production Redis must), to
/// stop and start again.
#[derive(Debug)]
pub struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("dir"),
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn spawn(&mut self) {
        let server =
            std::env::var("TEST_REDIS_SERVER").expect("TEST_REDIS_SERVER (make test sets it)");
        let child = std::process::Command::new(server)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops it the way an operator does (SIGTERM: it writes its data out first).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
