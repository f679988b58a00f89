//! The kefu under test: `kefu serve` (role all, the product's one-process deployment)
//! as a child process on the embedded SQLite database and object store, and the
//! scenario enterprise seeded into that database the way `kefu admin` does (the
//! database is in WAL mode: the server and this process share it safely).

use std::path::Path;
use std::process::Command;

use crate::load::process::{ServerProcess, free_port};
use crate::scenario::{ENTERPRISE, PASSWORD};
use anyhow::{Context, bail};
use kefu_signaling::accounts::UserRole;
use kefu_signaling::accounts::admin::{self, UserSpec};
use kefu_signaling::accounts::secrets::DataKey;
use kefu_signaling::clock::now_ms;
use kefu_signaling::store::Store;
use kefu_signaling::verification::{CheckOutcome, record_verification};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Throwaway secrets of a server that lives for one run.
const TOKEN_SECRET: &str = "kefu-soak-benchmark-token-secret-0123456789";
const DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Every sign-in, invite and acceptance comes from 127.0.0.1.
const REQUESTS_PER_MINUTE: u32 = 100_000;

#[derive(Debug)]
pub struct SoakServer {
    process: ServerProcess,
    pub base_url: String,
    pub ws_url: String,
    store: Store,
    data_key: DataKey,
    http: reqwest::Client,
}

impl SoakServer {
    /// Starts `bin serve` with everything under `dir`; returns once it is healthy.
    pub async fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let data = dir.join("kefu-data");
        // The models deploy/fetch-models.sh put in the repository: screening needs
        // open_nsfw to start at all.
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let config = format!(
            "data_dir = {data:?}\n\
             [server]\nbind = \"127.0.0.1:{port}\"\n\
             anonymous_requests_per_minute = {REQUESTS_PER_MINUTE}\n\
             [media]\nport = 0\nadvertise_ip = \"127.0.0.1\"\nice_tcp = false\n\
             [auth]\ntoken_secret = {TOKEN_SECRET:?}\n\
             login_attempts_per_minute = {REQUESTS_PER_MINUTE}\n\
             [security]\ndata_key = {DATA_KEY:?}\n\
             [log]\nfilter = \"warn\"\n\
             [verification]\nmodels_dir = {models:?}\n\
             [moderation]\nmodels_dir = {models:?}\n",
        );
        let config_path = dir.join("kefu.toml");
        std::fs::write(&config_path, config)?;
        let mut command = Command::new(bin);
        command
            .args(["serve", "--role", "all"])
            .env("KEFU_CONFIG", &config_path);
        let base_url = format!("http://127.0.0.1:{port}");
        let ready = format!("{base_url}/healthz");
        let process = ServerProcess::spawn_ready("kefu", command, dir, &ready).await?;
        // The server created the database and applied the migrations by now.
        let url = format!("sqlite://{}?mode=rw", data.join("kefu.db").display());
        let store = Store::connect(&url, Some(2))
            .await
            .context("opening the server's database")?;
        let data_key = DataKey::from_base64(DATA_KEY).map_err(anyhow::Error::msg)?;
        Ok(Self {
            process,
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            base_url,
            store,
            data_key,
            http: reqwest::Client::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Fails when the server exited (crashed, or killed for memory).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.process.check_running()
    }

    /// `method path` with an optional bearer and JSON body: the status and the body
    /// (JSON, or the text as a JSON string).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Like [`Self::api`], failing unless the status is `expected`.
    pub async fn api_expect(
        &self,
        expected: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.api(method.clone(), path, token, body).await?;
        if status.as_u16() != expected {
            bail!("{method} {path}: {status} (expected {expected}): {value}");
        }
        Ok(value)
    }

    /// The server's /metrics text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base_url);
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// The body of `url` (a path on the server).
    pub async fn download(&self, path: &str) -> anyhow::Result<bytes::Bytes> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        Ok(response.bytes().await?)
    }

    async fn login(&self, login: &str) -> anyhow::Result<String> {
        let body = json!({"login": login, "password": PASSWORD});
        let session = self
            .api_expect(200, Method::POST, "/api/v1/auth/login", None, Some(body))
            .await?;
        session["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no token in the login answer: {session}"))
    }

    async fn user(&self, login: &str, role: UserRole) -> anyhow::Result<String> {
        let spec = UserSpec {
            main_account: ENTERPRISE.into(),
            login: login.into(),
            role,
            real_name: format!("{login} 测试"),
            id_number: Some(kefu_proto::Pii::new("110101199003071234".to_owned())),
            password: Some(PASSWORD.into()),
            capacity: 2,
        };
        let (user, _) = admin::create_user(&self.store, &self.data_key, &spec, now_ms()).await?;
        Ok(user.id.to_string())
    }

    /// The scenario enterprise with recording and moderation on (the product's
    /// defaults, set all the same so the run does not depend on them); returns its
    /// admin's bearer token.
    pub async fn enterprise(&self) -> anyhow::Result<String> {
        admin::create_enterprise(&self.store, "Soak Co", ENTERPRISE, now_ms()).await?;
        self.user("boss", UserRole::Admin).await?;
        let boss = self.login("boss").await?;
        admin::set_recording(&self.store, ENTERPRISE, true).await?;
        let path = "/api/v1/enterprise/moderation-settings";
        let mut settings = self
            .api_expect(200, Method::GET, path, Some(&boss), None)
            .await?;
        settings["enabled"] = json!(true);
        self.api_expect(200, Method::PUT, path, Some(&boss), Some(settings))
            .await?;
        Ok(boss)
    }

    /// One more agent with the video service, the beauty `preset` and a passed face
    /// check; returns its bearer token (an agent holds a couple of calls at most, so
    /// every call gets its own).
    pub async fn agent(&self, boss: &str, login: &str, preset: &str) -> anyhow::Result<String> {
        let id = self.user(login, UserRole::Agent).await?;
        self.api_expect(
            200,
            Method::PUT,
            &format!("/api/v1/agents/{id}/video-service"),
            Some(boss),
            Some(json!({"enabled": true})),
        )
        .await?;
        let token = self.login(login).await?;
        self.api_expect(
            200,
            Method::PUT,
            "/api/v1/me/beauty",
            Some(&token),
            Some(json!({"preset": preset})),
        )
        .await?;
        // The face check's outcome, as the engine records it (after the sign-in: the
        // gate asks for a check newer than it).
        let (user, _) = self
            .store
            .user_by_login(login)
            .await?
            .with_context(|| format!("agent {login} just created"))?;
        record_verification(&self.store, &user, CheckOutcome { passed: true }, now_ms()).await?;
        Ok(token)
    }
}
