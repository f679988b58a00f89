//! The `/metrics` registry: signaling's own gauges plus the SFU's counters.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use kefu_media_server::SfuMetrics;

use crate::cluster::bus::RoomBus;
use kefu_proto::signaling::ErrorCode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: String,
}

/// All metrics of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Gauge,
    participants: Gauge,
    signaling_errors: Family<ErrorLabels, Counter>,
    nodes_lost: Counter,
    rooms: Arc<dyn RoomBus>,
}

impl Metrics {
    pub fn new(
        rooms: Arc<dyn RoomBus>,
        sfu: &SfuMetrics,
        recorder: &kefu_recorder::RecorderMetrics,
        moderation: &kefu_media_server::moderation::ModerationMetrics,
    ) -> Self {
        let mut registry = Registry::default();
        let calls = Gauge::default();
        let participants = Gauge::default();
        let signaling_errors = Family::<ErrorLabels, Counter>::default();
        let nodes_lost = Counter::default();
        registry.register(
            "kefu_calls",
            "Rooms with both participants joined",
            calls.clone(),
        );
        registry.register(
            "kefu_participants",
            "Participants joined through signaling",
            participants.clone(),
        );
        registry.register(
            "kefu_signaling_errors",
            "Errors sent on signaling channels, by code",
            signaling_errors.clone(),
        );
        registry.register(
            "kefu_cluster_nodes_lost",
            "Nodes this signaling node judged lost (silent past the timeout and the rejoin time)",
            nodes_lost.clone(),
        );
        sfu.register(&mut registry);
        recorder.register(&mut registry);
        moderation.register(&mut registry);
        Self {
            registry,
            calls,
            participants,
            signaling_errors,
            nodes_lost,
            rooms,
        }
    }

    /// A node was judged lost and its calls ended here.
    pub fn count_node_lost(&self) {
        self.nodes_lost.inc();
    }

    pub fn count_error(&self, code: ErrorCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.signaling_errors
            .get_or_create(&ErrorLabels { code })
            .inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let counts = self.rooms.counts();
        self.calls.set(counts.calls as i64);
        self.participants.set(counts.participants as i64);
        let mut out = String::new();
        // Invariant: writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
