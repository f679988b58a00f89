//! How long a subscriber should hold a publisher's video before playing it, asked for
//! with the playout-delay header extension while the publisher's uplink loses packets.
//!
//! Forwarding packet by packet, a packet lost on the publisher's uplink reaches the
//! subscriber only once the SFU's NACK went upstream and the retransmission came back.
//! The subscriber sees a gap its own NACKs to the SFU cannot fill, and its browser
//! leaves frames delayed by retransmission out of its jitter estimate: it never learns
//! to wait for the upstream repair, and a repair that needs a second NACK round shows
//! as a freeze. So while the uplink is lossy the SFU asks the subscriber to hold video
//! for one upstream repair with one retry, and withdraws the request when the loss
//! stops. Pure state: the core feeds it str0m's connection stats and asks per packet.

use std::time::{Duration, Instant};

/// Ingress loss over one stats interval (str0m's TWCC register, every packet of the
/// connection) from which the uplink counts as lossy.
const LOSSY: f32 = 0.01;
/// How long a lossy interval keeps the hold on: losses come in spells, and a hold
/// flapping on and off would move the subscriber's playout back and forth.
pub(crate) const HOLD_AFTER_LOSS: Duration = Duration::from_secs(10);
/// After the hold, packets say "no minimum" this long, so a subscriber that missed
/// the first of them still lets go.
pub(crate) const WITHDRAW_FOR: Duration = Duration::from_secs(5);
/// str0m sends NACKs at most this often: a loss waits up to this long to be asked for.
const NACK_TIMER: Duration = Duration::from_millis(33);
/// str0m retries a NACK after the receive stream's RTT plus 5 ms, 100 ms while it
/// knows none (browsers send no RTCP XR, so it never learns one).
const NACK_RETRY: Duration = Duration::from_millis(105);
/// Scheduling and the publisher's own pacing of the retransmission.
const MARGIN: Duration = Duration::from_millis(25);
/// A longer hold would cost the conversation more than an occasional freeze does.
pub(crate) const MAX_HOLD: Duration = Duration::from_millis(400);
/// The round trip assumed until one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// The most the subscriber may delay playout: its browser's own default ceiling.
pub(crate) const MAX_PLAYOUT: Duration = Duration::from_secs(10);

/// The playout-delay request for one publisher's forwarded video.
#[derive(Debug, Default)]
pub(crate) struct PlayoutHint {
    /// Until when the subscribers are asked to hold this publisher's video.
    lossy_until: Option<Instant>,
    /// The latest round trip measured to the publisher.
    rtt: Option<Duration>,
}

impl PlayoutHint {
    /// A stats report on the publisher's connection: the share of its packets lost on
    /// the way in since the last report, and the round trip to it. Returns whether a
    /// hold starts now (it was off).
    pub fn observe(
        &mut self,
        now: Instant,
        ingress_loss: Option<f32>,
        rtt: Option<Duration>,
    ) -> bool {
        if rtt.is_some() {
            self.rtt = rtt;
        }
        if !ingress_loss.is_some_and(|loss| loss >= LOSSY) {
            return false;
        }
        let starts = self.lossy_until.is_none_or(|until| now >= until);
        self.lossy_until = Some(now + HOLD_AFTER_LOSS);
        starts
    }

    /// The (minimum, maximum) playout delay to put on the publisher's forwarded video
    /// now; `None` when there is nothing to ask.
    pub fn limits(&self, now: Instant) -> Option<(Duration, Duration)> {
        let until = self.lossy_until?;
        if now < until {
            Some((self.hold(), MAX_PLAYOUT))
        } else if now < until + WITHDRAW_FOR {
            Some((Duration::ZERO, MAX_PLAYOUT))
        } else {
            None
        }
    }

    /// Time for a lost packet to be asked for, the NACK or the retransmission to be
    /// lost once, the retry to go out and its answer to come back.
    fn hold(&self) -> Duration {
        let rtt = self.rtt.unwrap_or(DEFAULT_RTT);
        let retry = NACK_RETRY.max(rtt + Duration::from_millis(5));
        (NACK_TIMER + retry + rtt + MARGIN).min(MAX_HOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_clean_uplink_asks_for_nothing() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        assert!(!hint.observe(t0, Some(0.0), Some(80 * MS)));
        assert!(!hint.observe(t0 + 1000 * MS, Some(0.009), Some(80 * MS)));
        assert!(!hint.observe(t0 + 2000 * MS, None, None));
        assert_eq!(hint.limits(t0 + 2000 * MS), None);
    }

    #[test]
    fn a_lossy_uplink_asks_for_one_repair_with_a_retry() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        assert!(hint.observe(t0, Some(0.05), Some(100 * MS)));
        // 33 ms to be asked for, a retry after 105 ms, 100 ms for its answer, 25 ms.
        assert_eq!(hint.limits(t0), Some((263 * MS, MAX_PLAYOUT)));
        // A longer round trip also delays the retry.
        hint.observe(t0, Some(0.05), Some(150 * MS));
        assert_eq!(hint.limits(t0), Some((363 * MS, MAX_PLAYOUT)));
        // Unknown: the last one measured stays.
        hint.observe(t0, Some(0.05), None);
        assert_eq!(hint.limits(t0), Some((363 * MS, MAX_PLAYOUT)));
        // A short one still waits for str0m's retry.
        hint.observe(t0, Some(0.05), Some(10 * MS));
        assert_eq!(hint.limits(t0), Some((173 * MS, MAX_PLAYOUT)));
    }

    #[test]
    fn the_hold_is_capped_and_assumes_a_round_trip_until_one_is_measured() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        hint.observe(t0, Some(0.2), None);
        assert_eq!(hint.limits(t0), Some((263 * MS, MAX_PLAYOUT)));
        hint.observe(t0, Some(0.2), Some(900 * MS));
        assert_eq!(hint.limits(t0), Some((MAX_HOLD, MAX_PLAYOUT)));
    }

    #[test]
    fn the_hold_outlasts_the_loss_then_is_withdrawn_then_nothing_is_sent() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        assert!(hint.observe(t0, Some(0.05), Some(100 * MS)));
        // Loss again within the hold extends it without starting a new one.
        let t1 = t0 + 4000 * MS;
        assert!(!hint.observe(t1, Some(0.02), Some(100 * MS)));
        let held = Some((263 * MS, MAX_PLAYOUT));
        assert_eq!(hint.limits(t1 + HOLD_AFTER_LOSS - MS), held);
        let released = t1 + HOLD_AFTER_LOSS;
        assert_eq!(hint.limits(released), Some((Duration::ZERO, MAX_PLAYOUT)));
        assert_eq!(
            hint.limits(released + WITHDRAW_FOR - MS),
            Some((Duration::ZERO, MAX_PLAYOUT))
        );
        assert_eq!(hint.limits(released + WITHDRAW_FOR), None);
        // A new spell starts a new hold.
        assert!(hint.observe(released + WITHDRAW_FOR, Some(0.05), None));
        assert_eq!(hint.limits(released + WITHDRAW_FOR), held);
    }
}
