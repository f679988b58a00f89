//! Shared state handed to every route.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

use crate::accounts::secrets::DataKey;
use crate::calls::lifecycle::CallDriver;
use crate::cluster::Shared;
use crate::cluster::bus::RoomBus;
use crate::cluster::limiter::AttemptLimiter;
use crate::cluster::media::MediaRouter;
use crate::config::SignalingConfig;
use crate::metrics::Metrics;
use crate::rooms::token::TokenKeys;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct AppState {
    pub rooms: Arc<dyn RoomBus>,
    pub tokens: TokenKeys,
    /// The media plane, behind its routing seam.
    pub media: Arc<dyn MediaRouter>,
    pub signaling: Arc<SignalingConfig>,
    pub metrics: Arc<Metrics>,
    /// Flips to `true` when the server stops; sessions close on it.
    pub shutdown: watch::Receiver<bool>,
    pub store: Store,
    pub data_key: DataKey,
    /// Login attempts and public customer endpoints (shared by every node).
    pub login_limiter: Arc<dyn AttemptLimiter>,
    pub session_ttl_secs: u64,
    /// Every call transition goes through here.
    pub calls: CallDriver,
    /// Base URL of links given to people (invites): `server.public_url` or the bound address.
    pub public_url: String,
    /// Call recording: the recorder and its object store.
    pub recordings: crate::recordings::Recordings,
    /// Short-lived play/download links.
    pub links: Arc<dyn crate::cluster::links::LinkStore>,
    /// Open beauty-dialog previews.
    pub previews: Arc<dyn crate::beauty::preview::PreviewStore>,
    /// Face verification: the engine and the open attempts.
    pub attempts: crate::verification::attempts::Attempts,
    /// Requests for an attempt another node holds go there.
    pub forwarder: Arc<dyn crate::cluster::forward::Forwarder>,
    /// Client addresses, the anonymous rate and the request deadline.
    pub guard: Arc<crate::http::limits::HttpGuard>,
    sessions: Arc<AtomicU64>,
    /// Set when a shutdown begins: new requests get 503 `draining`.
    draining: Arc<AtomicBool>,
}

/// The account side of the state: database, keys, limits.
#[derive(Clone, Debug)]
pub struct AccountState {
    pub store: Store,
    pub data_key: DataKey,
    pub login_limiter: Arc<dyn AttemptLimiter>,
    pub session_ttl_secs: u64,
    pub public_url: String,
}

impl AppState {
    // One argument per independent part of the process; a builder would only hide that.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rooms: Arc<dyn RoomBus>,
        tokens: TokenKeys,
        media: Arc<dyn MediaRouter>,
        signaling: SignalingConfig,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        accounts: AccountState,
        recordings: crate::recordings::Recordings,
        faces: crate::verification::worker::FaceWorker,
        shared: Shared,
        guard: crate::http::limits::HttpGuard,
    ) -> Self {
        let attempts = crate::verification::attempts::Attempts::new(
            faces,
            accounts.store.clone(),
            accounts.data_key.clone(),
        );
        let calls = CallDriver::new(
            accounts.store.clone(),
            media.clone(),
            rooms.clone(),
            recordings.clone(),
            shared.lease.clone(),
        );
        Self {
            calls,
            rooms,
            tokens,
            media,
            signaling: Arc::new(signaling),
            metrics,
            shutdown,
            store: accounts.store,
            data_key: accounts.data_key,
            login_limiter: accounts.login_limiter,
            session_ttl_secs: accounts.session_ttl_secs,
            public_url: accounts.public_url,
            recordings,
            links: shared.links,
            previews: shared.previews,
            forwarder: shared.forwarder,
            guard: Arc::new(guard),
            attempts,
            sessions: Arc::new(AtomicU64::new(1)),
            draining: Arc::default(),
        }
    }

    /// Refuse new requests from now on (shutdown).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// A process-unique number for a WebSocket session.
    pub fn next_session_id(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed)
    }
}
