//! Bringing up the object store: the embedded s3s-fs server with a generated key pair
//! kept under the data folder, or an external S3 from the config.

use std::path::Path;

use anyhow::Context;
use kefu_recorder::embedded::EmbeddedS3;
use kefu_recorder::{ObjectStore, StorageConfig};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

const CREDENTIALS_FILE: &str = "s3-credentials.json";

/// The running store: the client, and the embedded server when there is one.
#[derive(Debug)]
pub struct StorageRuntime {
    pub store: ObjectStore,
    pub embedded: Option<EmbeddedS3>,
}

#[derive(Serialize, Deserialize)]
struct Keys {
    access_key: String,
    secret_key: String,
}

/// Starts the embedded server when configured, connects the client and makes sure
/// the bucket exists. An unreachable external store is not fatal: recordings spool
/// locally and upload when it answers.
pub async fn start_storage(cfg: &StorageConfig, data_dir: &Path) -> anyhow::Result<StorageRuntime> {
    let mut cfg = cfg.clone();
    let embedded = if cfg.embedded {
        if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
            let keys = embedded_keys(data_dir)?;
            cfg.access_key = keys.access_key;
            cfg.secret_key = keys.secret_key;
        }
        let server = EmbeddedS3::start(
            &data_dir.join("objects"),
            cfg.embedded_port,
            &cfg.access_key,
            &cfg.secret_key,
        )
        .await
        .context("starting the embedded S3 store")?;
        cfg.endpoint = server.endpoint();
        cfg.path_style = true;
        Some(server)
    } else {
        anyhow::ensure!(
            !cfg.endpoint.is_empty(),
            "storage.endpoint is required when storage.embedded = false"
        );
        None
    };
    let store = ObjectStore::new(&cfg);
    match store.ensure_bucket().await {
        Ok(()) => info!(bucket = %cfg.bucket, endpoint = %cfg.endpoint, "object store ready"),
        Err(e) => {
            warn!(bucket = %cfg.bucket, "object store not reachable yet ({e}); recordings will wait for it")
        }
    }
    Ok(StorageRuntime { store, embedded })
}

/// The embedded store's keys: generated once, kept owner-readable in the data folder.
fn embedded_keys(data_dir: &Path) -> anyhow::Result<Keys> {
    let path = data_dir.join(CREDENTIALS_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()));
    }
    use rand::Rng;
    let mut rng = rand::rng();
    let hex = |n: usize, rng: &mut rand::rngs::ThreadRng| -> String {
        (0..n)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let keys = Keys {
        access_key: format!("kefu{}", hex(8, &mut rng)),
        secret_key: hex(24, &mut rng),
    };
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(&path, serde_json::to_vec(&keys)?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(keys)
}
