//! The S3-compatible server embedded in `kefu` (s3s-fs): objects live as files under
//! the data folder, SigV4 is checked against one generated key pair, and it listens
//! on 127.0.0.1 only (s3s-fs calls itself experimental; it is never exposed).

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// A running embedded store; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedS3 {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EmbeddedS3 {
    /// Serves `root` on `127.0.0.1:port` (0: any free port) with one access key.
    pub async fn start(
        root: &Path,
        port: u16,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| anyhow::anyhow!("embedded S3 at {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        info!(%addr, "embedded S3 store listening (loopback only)");
        // Connections live in the server's task set, so stopping the server closes
        // them too (kept-alive client connections would otherwise outlive it).
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let service = service.clone();
                        connections.spawn(async move {
                            let conn = ConnBuilder::new(TokioExecutor::new());
                            if let Err(e) = conn.serve_connection(TokioIo::new(socket), service).await {
                                debug!("embedded S3 connection: {e}");
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
