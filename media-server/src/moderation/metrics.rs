//! Prometheus metrics of content moderation. The counters are the ones
//! [`super::ModerationStats`] reads, so tests and the metrics page agree.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PathLabels {
    pub path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabels {
    pub action: &'static str,
}

/// Handles to moderation's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct ModerationMetrics {
    pub(super) samples: Counter,
    /// Pictures handed over, by who decoded them.
    pub(super) pictures: Family<SourceLabels, Counter>,
    pub(super) dropped: Counter,
    pub(super) classified: Counter,
    pub(super) errors: Counter,
    pub(super) positives: Counter,
    pub(super) actions: Family<ActionLabels, Counter>,
    /// Rooms screened now, by who decodes their video.
    pub(super) rooms: Family<PathLabels, Gauge>,
    /// Seconds from a picture handed over to its verdict (queue + conversion +
    /// inference).
    pub(super) verdict_latency: Histogram,
}

impl Default for ModerationMetrics {
    fn default() -> Self {
        Self {
            samples: Counter::default(),
            pictures: Family::default(),
            dropped: Counter::default(),
            classified: Counter::default(),
            errors: Counter::default(),
            positives: Counter::default(),
            actions: Family::default(),
            rooms: Family::default(),
            // 5 ms to ≈ 2.5 s.
            verdict_latency: Histogram::new(exponential_buckets(0.005, 2.0, 10)),
        }
    }
}

impl ModerationMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "kefu_moderation_samples",
            "Pictures the moderation policy asked for",
            self.samples.clone(),
        );
        r.register(
            "kefu_moderation_pictures",
            "Pictures handed to moderation, by decoder (recorder, pipeline, own_decoder)",
            self.pictures.clone(),
        );
        r.register(
            "kefu_moderation_samples_dropped",
            "Samples dropped because the classifier was behind",
            self.dropped.clone(),
        );
        r.register(
            "kefu_moderation_samples_classified",
            "Samples the classifier scored",
            self.classified.clone(),
        );
        r.register(
            "kefu_moderation_classifier_errors",
            "Samples not classified: the classifier failed, or the picture was not one moderation takes",
            self.errors.clone(),
        );
        r.register(
            "kefu_moderation_positives",
            "Samples scoring at or above the enterprise's threshold",
            self.positives.clone(),
        );
        r.register(
            "kefu_moderation_actions",
            "Moderation actions, by action (blurred, restored, ended)",
            self.actions.clone(),
        );
        r.register(
            "kefu_moderation_rooms",
            "Calls screened now, by decode path (recorder, own_decode)",
            self.rooms.clone(),
        );
        r.register(
            "kefu_moderation_verdict_seconds",
            "From a picture handed to moderation to its verdict",
            self.verdict_latency.clone(),
        );
    }
}
