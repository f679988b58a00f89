//! Prometheus metrics of the SFU, published by the driver from the core's [`SfuStats`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::{DropReason, SfuStats};
use crate::udp::UdpStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IceLabels {
    event: &'static str,
}

/// How the media socket sent: `gso` (a run of datagrams per system call) or `plain`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

const GSO: PathLabels = PathLabels { path: "gso" };
const PLAIN: PathLabels = PathLabels { path: "plain" };

/// Handles to the SFU's metrics; cheap to clone (all `Arc`s inside).
#[derive(Clone, Debug, Default)]
pub struct SfuMetrics {
    rooms: Gauge,
    participants: Gauge,
    packets_forwarded: Counter,
    frames_forwarded: Counter,
    remb_sent: Counter,
    playout_holds: Counter,
    ice_events: Family<IceLabels, Counter>,
    packets_dropped: Family<DropLabels, Counter>,
    /// Agent video frames the beauty pipeline could not take (it was behind).
    pub(crate) pipeline_dropped: Counter,
    /// Seconds from a frame entering the beauty pipeline to its encoded result.
    pub(crate) pipeline_latency: LatencyHistogram,
    /// Beauty pipelines running now (one per room whose agent video is filtered).
    pub(crate) pipelines: Gauge,
    udp_datagrams_received: Counter,
    udp_recv_calls: Counter,
    udp_datagrams_sent: Family<PathLabels, Counter>,
    udp_send_calls: Family<PathLabels, Counter>,
    udp_send_failures: Counter,
    /// What was last published, so counters advance by the difference.
    published: std::sync::Arc<std::sync::Mutex<SfuStats>>,
    udp_published: std::sync::Arc<std::sync::Mutex<UdpStats>>,
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
            "kefu_sfu_playout_holds",
            "Times a publisher's lossy uplink made the SFU ask its subscribers to hold its video longer",
            self.playout_holds.clone(),
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
        self.register_udp(registry);
    }

    fn register_udp(&self, registry: &mut Registry) {
        registry.register(
            "kefu_sfu_udp_datagrams_received",
            "Datagrams read from the media UDP socket",
            self.udp_datagrams_received.clone(),
        );
        registry.register(
            "kefu_sfu_udp_recv_calls",
            "Receive system calls on the media UDP socket (each reads a batch; empty ones count)",
            self.udp_recv_calls.clone(),
        );
        registry.register(
            "kefu_sfu_udp_datagrams_sent",
            "Datagrams sent on the media UDP socket, by path: gso (runs per system call) or plain",
            self.udp_datagrams_sent.clone(),
        );
        registry.register(
            "kefu_sfu_udp_send_calls",
            "Send system calls on the media UDP socket that succeeded, by path",
            self.udp_send_calls.clone(),
        );
        registry.register(
            "kefu_sfu_udp_send_failures",
            "Datagrams the media UDP socket could not send (buffer full or error): dropped",
            self.udp_send_failures.clone(),
        );
        for path in [&GSO, &PLAIN] {
            drop(self.udp_datagrams_sent.get_or_create(path));
            drop(self.udp_send_calls.get_or_create(path));
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
        self.playout_holds
            .inc_by(stats.playout_holds.saturating_sub(last.playout_holds));
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

    /// Brings the media socket's metrics up to date with its counters.
    pub fn publish_udp(&self, stats: &UdpStats) {
        let Ok(mut last) = self.udp_published.lock() else {
            return; // a panic elsewhere poisoned it; metrics are best effort
        };
        let delta = |now: u64, before: u64| now.saturating_sub(before);
        self.udp_datagrams_received
            .inc_by(delta(stats.datagrams_received, last.datagrams_received));
        self.udp_recv_calls
            .inc_by(delta(stats.recv_calls, last.recv_calls));
        let plain = delta(stats.plain_sends, last.plain_sends);
        self.udp_datagrams_sent.get_or_create(&PLAIN).inc_by(plain);
        self.udp_send_calls.get_or_create(&PLAIN).inc_by(plain);
        self.udp_datagrams_sent
            .get_or_create(&GSO)
            .inc_by(delta(stats.gso_datagrams, last.gso_datagrams));
        self.udp_send_calls
            .get_or_create(&GSO)
            .inc_by(delta(stats.gso_sends, last.gso_sends));
        self.udp_send_failures
            .inc_by(delta(stats.send_failures, last.send_failures));
        *last = *stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_counters_are_published_by_path_as_differences() {
        let metrics = SfuMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut stats = UdpStats {
            datagrams_received: 100,
            recv_calls: 10,
            plain_sends: 7,
            gso_sends: 2,
            gso_datagrams: 12,
            send_failures: 1,
        };
        metrics.publish_udp(&stats);
        stats.gso_sends += 1;
        stats.gso_datagrams += 5;
        metrics.publish_udp(&stats);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for line in [
            "kefu_sfu_udp_datagrams_received_total 100",
            "kefu_sfu_udp_recv_calls_total 10",
            "kefu_sfu_udp_datagrams_sent_total{path=\"plain\"} 7",
            "kefu_sfu_udp_datagrams_sent_total{path=\"gso\"} 17",
            "kefu_sfu_udp_send_calls_total{path=\"plain\"} 7",
            "kefu_sfu_udp_send_calls_total{path=\"gso\"} 3",
            "kefu_sfu_udp_send_failures_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
