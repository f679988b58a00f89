//! `[cluster]`: whether this node shares its state with others, through what, and
//! which part it plays. The checks here are what `kefu serve` says at start when a
//! multi-node setting lacks something it cannot work without.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Where the state several nodes must agree on lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterBackend {
    /// In this process: one node.
    #[default]
    InProcess,
    /// In Redis: several nodes share it, with PostgreSQL and an external S3 store.
    Redis,
}

/// The part a node plays (`kefu serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Signaling, SFU, recorder and moderation in one process.
    All,
    /// HTTP/WebSocket signaling; media on other nodes.
    Signaling,
    /// SFU, recorder and moderation, driven by signaling nodes.
    Media,
}

impl NodeRole {
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::All => "all",
            NodeRole::Signaling => "signaling",
            NodeRole::Media => "media",
        }
    }

    /// Whether this node runs the SFU and takes calls' media.
    pub fn runs_media(self) -> bool {
        matches!(self, NodeRole::All | NodeRole::Media)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub backend: ClusterBackend,
    /// `redis://[:password@]host:port/db`; required with `backend = "redis"`.
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretString>,
    /// This node's name, unique in the cluster. Empty: the host name.
    pub node_id: String,
    /// Prefix of every Redis key and channel (several clusters can share a Redis).
    pub key_prefix: String,
    /// How often a node refreshes its registry entry and its leases.
    pub heartbeat_ms: u64,
    /// A node silent this long is dead: its calls end as `node_lost`.
    pub node_timeout_ms: u64,
    /// A Redis command that takes longer fails (the request is refused, not stalled).
    pub redis_timeout_ms: u64,
    /// Media role: where the control API that signaling nodes call listens.
    pub internal_bind: String,
    /// How other nodes reach this node's control API, e.g. `http://10.0.0.7:8081`.
    pub internal_url: String,
    /// Shared secret authenticating node-to-node calls (at least 32 bytes).
    #[serde(skip_serializing)]
    pub secret: Option<SecretString>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            backend: ClusterBackend::InProcess,
            redis_url: None,
            node_id: String::new(),
            key_prefix: "kefu".into(),
            heartbeat_ms: 1000,
            node_timeout_ms: 5000,
            redis_timeout_ms: 1000,
            internal_bind: "0.0.0.0:8081".into(),
            internal_url: String::new(),
            secret: None,
        }
    }
}

/// What the rest of the configuration says, as far as a cluster cares.
#[derive(Debug, Clone, Copy)]
pub struct SharedSetup {
    pub postgres: bool,
    pub external_storage: bool,
    pub token_secret_set: bool,
    pub data_key_set: bool,
}

impl ClusterConfig {
    /// This node's name: `node_id`, else the host name, else "kefu".
    pub fn node_name(&self) -> String {
        if !self.node_id.trim().is_empty() {
            return self.node_id.trim().to_owned();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "kefu".into())
    }

    /// Everything that keeps `role` from working with this configuration, one
    /// sentence each naming the key to set (empty: it can start).
    pub fn problems(&self, role: NodeRole, shared: SharedSetup) -> Vec<String> {
        let mut problems = Vec::new();
        if self.backend == ClusterBackend::InProcess {
            if role != NodeRole::All {
                problems.push(format!(
                    "--role {} shares state with other nodes: set cluster.backend = \"redis\" \
                     and cluster.redis_url",
                    role.name()
                ));
            }
            return problems;
        }
        if self
            .redis_url
            .as_ref()
            .is_none_or(|u| u.expose_secret().trim().is_empty())
        {
            problems.push("cluster.backend = \"redis\" needs cluster.redis_url".into());
        }
        if !shared.postgres {
            problems.push(
                "several nodes share one database: set database.url to a postgres:// URL \
                 (SQLite is for one node)"
                    .into(),
            );
        }
        if !shared.external_storage {
            problems.push(
                "several nodes share one object store: set storage.embedded = false and \
                 storage.endpoint (the embedded store is for one node)"
                    .into(),
            );
        }
        if !shared.token_secret_set {
            problems.push(
                "every node must sign and check the same tokens: set auth.token_secret \
                 (the same on every node)"
                    .into(),
            );
        }
        if !shared.data_key_set {
            problems.push(
                "every node must read the same encrypted data: set security.data_key \
                 (the same on every node)"
                    .into(),
            );
        }
        if self
            .secret
            .as_ref()
            .is_none_or(|s| s.expose_secret().len() < 32)
        {
            problems.push(
                "nodes authenticate each other: set cluster.secret (at least 32 bytes, \
                 the same on every node)"
                    .into(),
            );
        }
        if role == NodeRole::Media && self.internal_url.trim().is_empty() {
            problems.push(
                "a media node must say how signaling nodes reach it: set cluster.internal_url"
                    .into(),
            );
        }
        if self.heartbeat_ms == 0 || self.node_timeout_ms < 2 * self.heartbeat_ms {
            problems.push(
                "cluster.node_timeout_ms must be at least twice cluster.heartbeat_ms \
                 (one lost heartbeat must not declare a node dead)"
                    .into(),
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            problems.push("cluster.key_prefix must be a non-empty word".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> SharedSetup {
        SharedSetup {
            postgres: true,
            external_storage: true,
            token_secret_set: true,
            data_key_set: true,
        }
    }

    fn redis() -> ClusterConfig {
        ClusterConfig {
            backend: ClusterBackend::Redis,
            redis_url: Some("redis://127.0.0.1:6379/0".into()),
            secret: Some("0123456789abcdef0123456789abcdef".into()),
            internal_url: "http://10.0.0.7:8081".into(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn one_node_needs_nothing_shared() {
        let one = ClusterConfig::default();
        let nothing = SharedSetup {
            postgres: false,
            external_storage: false,
            token_secret_set: false,
            data_key_set: false,
        };
        assert!(one.problems(NodeRole::All, nothing).is_empty());
        let split = one.problems(NodeRole::Media, nothing);
        assert_eq!(split.len(), 1);
        assert!(split[0].contains("cluster.backend"), "{split:?}");
    }

    #[test]
    fn a_cluster_names_each_missing_shared_piece() {
        let ok = redis();
        for role in [NodeRole::All, NodeRole::Signaling, NodeRole::Media] {
            assert_eq!(ok.problems(role, complete()), Vec::<String>::new());
        }
        let cases: [(SharedSetup, &str); 4] = [
            (
                SharedSetup {
                    postgres: false,
                    ..complete()
                },
                "database.url",
            ),
            (
                SharedSetup {
                    external_storage: false,
                    ..complete()
                },
                "storage.embedded",
            ),
            (
                SharedSetup {
                    token_secret_set: false,
                    ..complete()
                },
                "auth.token_secret",
            ),
            (
                SharedSetup {
                    data_key_set: false,
                    ..complete()
                },
                "security.data_key",
            ),
        ];
        for (shared, key) in cases {
            let problems = ok.problems(NodeRole::Signaling, shared);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains(key), "{problems:?}");
        }
    }

    #[test]
    fn a_cluster_checks_its_own_keys() {
        let no_url = ClusterConfig {
            redis_url: None,
            ..redis()
        };
        assert!(no_url.problems(NodeRole::All, complete())[0].contains("cluster.redis_url"));
        let weak = ClusterConfig {
            secret: Some("short".into()),
            ..redis()
        };
        assert!(weak.problems(NodeRole::All, complete())[0].contains("cluster.secret"));
        let unreachable = ClusterConfig {
            internal_url: String::new(),
            ..redis()
        };
        assert!(
            unreachable
                .problems(NodeRole::Signaling, complete())
                .is_empty()
        );
        assert!(unreachable.problems(NodeRole::Media, complete())[0].contains("internal_url"));
        let hasty = ClusterConfig {
            heartbeat_ms: 1000,
            node_timeout_ms: 1500,
            ..redis()
        };
        assert!(hasty.problems(NodeRole::All, complete())[0].contains("node_timeout_ms"));
    }

    #[test]
    fn the_node_is_named_by_config_or_host() {
        let named = ClusterConfig {
            node_id: " media-1 ".into(),
            ..redis()
        };
        assert_eq!(named.node_name(), "media-1");
        assert!(!ClusterConfig::default().node_name().is_empty());
    }
}
