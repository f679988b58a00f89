//! Layered configuration: defaults → TOML file → `KEFU_SECTION__KEY` environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
pub use kefu_media_server::MediaConfig;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Everything `kefu serve` can be told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KefuConfig {
    /// Folder holding all state (token secret now; database and object store later).
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub media: MediaConfig,
    pub auth: AuthConfig,
    pub signaling: SignalingConfig,
    pub database: crate::store::DatabaseConfig,
    pub security: SecurityConfig,
    pub bootstrap: BootstrapConfig,
    pub log: LogConfig,
    /// Call recording: spool, picture size, upload parts (`[recording]`).
    pub recording: kefu_recorder::RecorderConfig,
    /// Object store for recordings (`[storage]`): embedded by default.
    pub storage: kefu_recorder::StorageConfig,
    /// Face verification (`[verification]`).
    pub verification: VerificationConfig,
    /// Content moderation (`[moderation]`): its model.
    pub moderation: ModerationConfig,
    /// Several nodes (`[cluster]`): the shared-state backend and this node's part.
    pub cluster: crate::cluster::config::ClusterConfig,
}

/// Which nudity classifier screens calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    /// Yahoo's open_nsfw (`open_nsfw.onnx` in `models_dir`). The only one for real use.
    #[default]
    OpenNsfw,
    /// FOR TESTS ONLY: flags pictures that are mostly magenta, so browser tests can
    /// show "offending" video. Logged as a warning whenever it is in use.
    TestMarkerColour,
}

/// Content moderation: the classifier and where its model is. A model that is missing
/// or broken stops the server at start (never a classifier that passes everything).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModerationConfig {
    pub classifier: ClassifierKind,
    /// Folder with `open_nsfw.onnx` (deploy/fetch-models.sh fills `models/`).
    pub models_dir: PathBuf,
    /// FOR TESTS ONLY, with `test_marker_colour`: each score takes this long, to show
    /// what happens when the classifier cannot keep up. Refused with open_nsfw.
    pub test_classifier_delay_ms: u64,
}

impl Default for ModerationConfig {
    fn default() -> Self {
        Self {
            classifier: ClassifierKind::default(),
            models_dir: PathBuf::from("models"),
            test_classifier_delay_ms: 0,
        }
    }
}

/// Face verification: where the models are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// Folder with the YuNet and SFace ONNX files (deploy/fetch-models.sh fills
    /// `models/` in the repository). Relative paths are from the working directory.
    pub models_dir: PathBuf,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models"),
        }
    }
}

/// Keys for personal data at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// AES-256-GCM key (base64 of 32 bytes) encrypting ID numbers. Unset: a random key
    /// is created once and kept in `<data_dir>/data-key` (back it up with the database).
    #[serde(skip_serializing)]
    pub data_key: Option<SecretString>,
}

/// What an empty database is seeded with on first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub enterprise_name: String,
    pub main_account: String,
    pub admin_login: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            enterprise_name: "示例企业 Demo".into(),
            main_account: "10000".into(),
            admin_login: "admin".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP(S) listen address; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Serve HTTPS with this certificate and key (PEM). Phones only grant camera and
    /// microphone to secure pages, so LAN use needs it; 127.0.0.1 does not.
    pub tls: Option<TlsConfig>,
    /// Seconds open connections get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Longest a shutdown waits for live calls to end and their recordings to be
    /// uploaded before it stops anyway (what is left is recovered at the next start).
    pub drain_timeout_secs: u64,
    /// Base URL people reach kefu at (invite links, QR codes), e.g.
    /// `https://kefu.example.com`. Unset: the bound address.
    pub public_url: Option<String>,
    /// Load balancers and proxies in front of kefu (addresses or CIDR ranges, e.g.
    /// `10.0.0.0/8`): from them, the client's address is read from
    /// `X-Forwarded-For`; from anyone else that header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests per minute one client address may make to what needs no sign-in
    /// (pages, the customer and phone endpoints, links) and with a sign-in that fails.
    pub anonymous_requests_per_minute: u32,
    /// Longest a request may take before it is answered 503 `timeout` (WebSockets and
    /// a response's streamed body are not bound by it).
    pub request_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            shutdown_grace_secs: 5,
            drain_timeout_secs: 30,
            public_url: None,
            trusted_proxies: Vec::new(),
            anonymous_requests_per_minute: 3000,
            request_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC key for room tokens (at least 32 bytes). Unset: a random key is created
    /// once and kept in `<data_dir>/token-secret`.
    #[serde(skip_serializing)]
    pub token_secret: Option<SecretString>,
    /// Lifetime of a room token in seconds.
    pub token_ttl_secs: u64,
    /// Lifetime of a login session in seconds.
    pub session_ttl_secs: u64,
    /// Login attempts allowed per login name, and per client address, each minute.
    pub login_attempts_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            token_ttl_secs: 12 * 3600,
            session_ttl_secs: 12 * 3600,
            login_attempts_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalingConfig {
    /// Largest WebSocket message we read; larger ones get `message_too_large`.
    pub max_message_bytes: usize,
    /// Seconds a new WebSocket has to send `join`.
    pub join_timeout_secs: u64,
    /// Seconds a participant whose WebSocket dropped without `leave` (a network
    /// change) keeps its place in the call, waiting for it to join again.
    pub reconnect_grace_secs: u64,
    /// Rooms that exist from the start (the demo room `make run` prints links for).
    pub rooms: Vec<String>,
    /// STUN/TURN servers for browsers (`[signaling.ice]`).
    pub ice: crate::rooms::turn::IceConfig,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            join_timeout_secs: 10,
            reconnect_grace_secs: 15,
            rooms: vec!["demo".into()],
            ice: crate::rooms::turn::IceConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,str0m=warn,dimpl=warn".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl KefuConfig {
    /// Defaults, then the TOML file (when given), then `KEFU_…` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(KefuConfig {
            data_dir: PathBuf::from("data"),
            ..KefuConfig::default()
        }));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} not found",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: KefuConfig = figment
            // KEFU_CONFIG names the file (read by the CLI), not a key.
            .merge(Env::prefixed("KEFU_").ignore(&["CONFIG"]).split("__"))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.auth.session_ttl_secs == 0 || self.auth.login_attempts_per_minute == 0 {
            return Err(ConfigError(
                "auth.session_ttl_secs and auth.login_attempts_per_minute must be positive".into(),
            ));
        }
        if self.auth.token_ttl_secs == 0 {
            return Err(ConfigError("auth.token_ttl_secs must be positive".into()));
        }
        if self.server.anonymous_requests_per_minute == 0 || self.server.request_timeout_secs == 0 {
            return Err(ConfigError(
                "server.anonymous_requests_per_minute and server.request_timeout_secs must be positive"
                    .into(),
            ));
        }
        let video = &self.recording.video;
        if video.width < 64
            || video.height < 64
            || !video.width.is_multiple_of(8)
            || !video.height.is_multiple_of(8)
        {
            return Err(ConfigError(
                "recording.video width and height must be multiples of 8, at least 64".into(),
            ));
        }
        if video.fps == 0 || video.fps > 60 || video.crf > 51 {
            return Err(ConfigError(
                "recording.video.fps must be 1–60 and crf 0–51".into(),
            ));
        }
        if self.recording.part_size_bytes < 5 * 1024 * 1024 {
            return Err(ConfigError(
                "recording.part_size_bytes must be at least 5 MiB (the S3 minimum)".into(),
            ));
        }
        if self.signaling.max_message_bytes < 1024 {
            return Err(ConfigError(
                "signaling.max_message_bytes must be at least 1024".into(),
            ));
        }
        if let Some(secret) = &self.auth.token_secret {
            use secrecy::ExposeSecret;
            if secret.expose_secret().len() < 32 {
                return Err(ConfigError(
                    "auth.token_secret must be at least 32 bytes".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The configuration cannot be used; the message says which key and why.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
// figment's Jail closures must return its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "kefu.toml",
                "[server]\nbind = \"127.0.0.1:9000\"\n[media]\nport = 0\n",
            )?;
            jail.set_env("KEFU_MEDIA__PORT", "41000");
            let config = KefuConfig::load(Some(Path::new("kefu.toml"))).expect("valid");
            assert_eq!(config.server.bind.port(), 9000);
            assert_eq!(config.media.port, 41000, "environment wins over the file");
            assert_eq!(
                config.signaling.max_message_bytes,
                64 * 1024,
                "defaults stay"
            );
            Ok(())
        });
    }

    #[test]
    fn ice_servers_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "KEFU_SIGNALING__ICE__TURN_URLS",
                r#"["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"]"#,
            );
            jail.set_env("KEFU_SIGNALING__ICE__TURN_SECRET", "s3cret");
            jail.set_env("KEFU_SIGNALING__ICE__FORCE_RELAY", "true");
            let config = KefuConfig::load(None).expect("valid");
            let ice = &config.signaling.ice;
            assert_eq!(ice.turn_urls.len(), 2);
            assert_eq!(ice.turn_urls[1], "turn:127.0.0.1:3478?transport=tcp");
            assert_eq!(ice.turn_secret, "s3cret");
            assert!(ice.force_relay);
            assert_eq!(ice.turn_credential_ttl_secs, 600, "default");
            Ok(())
        });
    }

    #[test]
    fn the_shipped_example_config_loads() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kefu.example.toml");
        let config = KefuConfig::load(Some(Path::new(example))).expect("example is valid");
        assert_eq!(config.media.port, 50000);
        assert_eq!(config.signaling.rooms, vec!["demo".to_string()]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kefu.toml", "[server]\nbindd = \"127.0.0.1:9000\"\n")?;
            let err = KefuConfig::load(Some(Path::new("kefu.toml"))).expect_err("typo");
            assert!(err.to_string().contains("bindd"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_beauty_encoders_vp8_version_is_normal_unless_set_and_checked() {
        use kefu_media_server::Vp8Version;
        figment::Jail::expect_with(|jail| {
            assert_eq!(
                KefuConfig::load(None).expect("defaults").media.beauty_vp8,
                Vp8Version::Normal
            );
            jail.create_file("kefu.toml", "[media]\nbeauty_vp8 = \"simple\"\n")?;
            let config = KefuConfig::load(Some(Path::new("kefu.toml"))).expect("valid");
            assert_eq!(config.media.beauty_vp8, Vp8Version::Simple);
            jail.create_file("bad.toml", "[media]\nbeauty_vp8 = \"fast\"\n")?;
            let err = KefuConfig::load(Some(Path::new("bad.toml"))).expect_err("not a version");
            assert!(err.to_string().contains("fast"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn short_token_secret_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KEFU_AUTH__TOKEN_SECRET", "short");
            let err = KefuConfig::load(None).expect_err("too short");
            assert!(err.to_string().contains("32 bytes"), "{err}");
            Ok(())
        });
    }
}
