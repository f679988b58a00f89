//! Prometheus metrics of the SFU, published by the driver from the core's [`SfuStats`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::{DropReason, SfuStats};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IceLabels {
    event: &'static str,
}

/// Handles to the SFU's metrics; cheap to clone (all `Arc`s inside).
#[derive(Clone, Debug, Default)]
pub struct SfuMetrics {
    rooms: Gauge,
    participants: Gauge,
    packets_forwarded: Counter,
    frames_forwarded: Counter,
    remb_sent: Counter,
    ice_events: Family<IceLabels, Counter>,
    packets_dropped: Family<DropLabels, Counter>,
    /// Agent video frames the beauty pipeline could not take (it was behind).
    pub(crate) pipeline_dropped: Counter,
    /// Seconds from a frame entering the beauty pipeline to its encoded result.
    pub(crate) pipeline_latency: LatencyHistogram,
    /// Beauty pipelines running now (one per room whose agent video is filtered).
    pub(crate) pipelines: Gauge,
    /// What was last published, so counters advance by the difference.
    published: std::sync::Arc<std::sync::Mutex<SfuStats>>,
}

/// Latency buckets from 1 ms to ≈ 0.5 s.
#[derive(Clone, Debug)]
pub(crate) struct LatencyHistogram(Histogram);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Histogram::new(exponential_buckets(0.001, 2.0, 10)))
    }
}

impl LatencyHistogram {
    pub(crate) fn observe(&self, seconds: f64) {
        self.0.observe(seconds);
    }
}

impl SfuMetrics {
    /// Rooms with a participant in the SFU now (a node's calls, for placing calls).
    pub fn rooms(&self) -> u64 {
        u64::try_from(self.rooms.get()).unwrap_or(0)
    }

    /// Beauty pipelines running now (a node's load, for placing calls).
    pub fn pipelines(&self) -> u64 {
        u64::try_from(self.pipelines.get()).unwrap_or(0)
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "kefu_beauty_frames_dropped",
            "Agent video frames dropped because the beauty pipeline was behind",
            self.pipeline_dropped.clone(),
        );
        registry.register(
            "kefu_beauty_pipelines",
            "Beauty pipelines running (agent streams decoded, filtered and encoded here)",
            self.pipelines.clone(),
        );
        registry.register(
            "kefu_beauty_latency_seconds",
            "Time a frame spends in the beauty pipeline (queue, decode, filter, encode)",
            self.pipeline_latency.0.clone(),
        );
        registry.register(
            "kefu_sfu_rooms",
            "Rooms with at least one participant in the SFU",
            self.rooms.clone(),
        );
        registry.register(
            "kefu_sfu_participants",
            "Peer connections held by the SFU",
            self.participants.clone(),
        );
        registry.register(
            "kefu_sfu_packets_forwarded",
            "RTP packets received from a publisher whose media was written to a subscriber",
            self.packets_forwarded.clone(),
        );
        registry.register(
            "kefu_sfu_frames_forwarded",
            "Media frames (depacketized) written to a subscriber",
            self.frames_forwarded.clone(),
        );
        registry.register(
            "kefu_sfu_remb_sent",
            "Bitrate caps (REMB) asked of publishers as a subscriber's bandwidth estimate moved",
            self.remb_sent.clone(),
        );
        registry.register(
            "kefu_sfu_ice_events",
            "ICE restarts accepted, paths recovered, participants dropped for a lost path",
            self.ice_events.clone(),
        );
        for event in ["restart", "recovered", "lost"] {
            drop(self.ice_events.get_or_create(&IceLabels { event }));
        }
        registry.register(
            "kefu_sfu_packets_dropped",
            "Datagrams or media the SFU dropped, by reason",
            self.packets_dropped.clone(),
        );
        // Every reason is present from the start, so dashboards see zeros, not gaps.
        for reason in DropReason::ALL {
            drop(self.packets_dropped.get_or_create(&DropLabels {
                reason: reason.as_str(),
            }));
        }
    }

    /// Brings the metrics up to date with the core's counters.
    pub fn publish(&self, stats: &SfuStats) {
        let Ok(mut last) = self.published.lock() else {
            return; // a panic elsewhere poisoned it; metrics are best effort
        };
        self.rooms.set(stats.rooms as i64);
        self.participants.set(stats.participants as i64);
        self.packets_forwarded.inc_by(
            stats
                .packets_forwarded
                .saturating_sub(last.packets_forwarded),
        );
        self.frames_forwarded
            .inc_by(stats.frames_forwarded.saturating_sub(last.frames_forwarded));
        self.remb_sent
            .inc_by(stats.remb_sent.saturating_sub(last.remb_sent));
        for (event, now, before) in [
            ("restart", stats.ice_restarts, last.ice_restarts),
            ("recovered", stats.ice_recoveries, last.ice_recoveries),
            ("lost", stats.ice_lost, last.ice_lost),
        ] {
            self.ice_events
                .get_or_create(&IceLabels { event })
                .inc_by(now.saturating_sub(before));
        }
        for reason in DropReason::ALL {
            let delta = stats.dropped(reason).saturating_sub(last.dropped(reason));
            if delta > 0 {
                self.packets_dropped
                    .get_or_create(&DropLabels {
                        reason: reason.as_str(),
                    })
                    .inc_by(delta);
            }
        }
        *last = stats.clone();
    }
}
