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
//! stops. Pure state: the core feeds [`PlayoutHint`] str0m's connection stats, and
//! each subscriber's video line keeps what it was told ([`PlayoutAsked`]) so the
//! release reaches it whatever happens to the publisher (a rejoin, moderation's black
//! frames, the beauty pipeline taking over): a browser keeps the last minimum it got.

use std::time::{Duration, Instant};

/// Ingress loss over one stats interval (str0m's TWCC register, every packet of the
/// connection) from which the uplink counts as lossy.
const LOSSY: f32 = 0.01;
/// How long a lossy interval keeps the hold on: losses come in spells, and a hold
/// flapping on and off would move the subscriber's playout back and forth.
pub(crate) const HOLD_AFTER_LOSS: Duration = Duration::from_secs(10);
/// After a hold, packets say "no minimum" this long, so a subscriber that missed the
/// first of them still lets go.
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
/// The most the subscriber may delay playout: its browser's own ceiling.
pub(crate) const MAX_PLAYOUT: Duration = Duration::from_secs(10);

/// Whether one publisher's uplink is lossy, and how long its video should be held.
#[derive(Debug, Default)]
pub(crate) struct PlayoutHint {
    /// Until when the subscribers are asked to hold this publisher's video.
    lossy_until: Option<Instant>,
    /// The latest round trip measured to the publisher.
    rtt: Option<Duration>,
}

impl PlayoutHint {
    /// The round trip to the publisher, from its receiver reports on what the SFU
    /// sends it (the same measure its browser has of the path, unlike the
    /// TWCC-based one, which adds the feedback's own delay).
    pub fn observe_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// A stats report on the publisher's connection: the share of its packets lost on
    /// the way in since the last report. Returns whether a hold starts now (it was
    /// off).
    pub fn observe_loss(&mut self, now: Instant, ingress_loss: Option<f32>) -> bool {
        if !ingress_loss.is_some_and(|loss| loss >= LOSSY) {
            return false;
        }
        let starts = self.lossy_until.is_none_or(|until| now >= until);
        self.lossy_until = Some(now + HOLD_AFTER_LOSS);
        starts
    }

    /// The minimum playout delay to ask for the publisher's video now, if any.
    pub fn hold(&self, now: Instant) -> Option<Duration> {
        let until = self.lossy_until?;
        (now < until).then(|| self.repair_time())
    }

    /// Time for a lost packet to be asked for, the NACK or the retransmission to be
    /// lost once, the retry to go out and its answer to come back.
    fn repair_time(&self) -> Duration {
        let rtt = self.rtt.unwrap_or(DEFAULT_RTT);
        // The publisher's browser does not resend a packet within one round trip of
        // resending it: a retry sooner than that is ignored, and the next one counts.
        let retries = rtt.as_micros().div_ceil(NACK_RETRY.as_micros()).max(1);
        let retry = NACK_RETRY * u32::try_from(retries).unwrap_or(u32::MAX).min(16);
        (NACK_TIMER + retry + rtt + MARGIN).min(MAX_HOLD)
    }
}

/// What one subscriber's video line was last asked for.
#[derive(Debug, Default)]
pub(crate) struct PlayoutAsked {
    /// A minimum above zero was written and not yet released.
    holding: bool,
    /// Until when the release is repeated.
    releasing_until: Option<Instant>,
}

impl PlayoutAsked {
    /// The (minimum, maximum) playout delay for the next packet on this line, given
    /// the hold its source asks for now (`None`: none, or a source that never asks,
    /// like kefu's own frames).
    pub fn next(&mut self, hold: Option<Duration>, now: Instant) -> Option<(Duration, Duration)> {
        if let Some(min) = hold {
            self.holding = true;
            self.releasing_until = None;
            return Some((min, MAX_PLAYOUT));
        }
        if self.holding {
            self.holding = false;
            self.releasing_until = Some(now + WITHDRAW_FOR);
        }
        match self.releasing_until {
            Some(until) if now < until => Some((Duration::ZERO, MAX_PLAYOUT)),
            _ => {
                self.releasing_until = None;
                None
            }
        }
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
        hint.observe_rtt(80 * MS);
        assert!(!hint.observe_loss(t0, Some(0.0)));
        assert!(!hint.observe_loss(t0 + 1000 * MS, Some(0.009)));
        assert!(!hint.observe_loss(t0 + 2000 * MS, None));
        assert_eq!(hint.hold(t0 + 2000 * MS), None);
    }

    #[test]
    fn a_lossy_uplink_asks_for_one_repair_with_a_retry() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        hint.observe_rtt(100 * MS);
        assert!(hint.observe_loss(t0, Some(0.05)));
        // 33 ms to be asked for, a retry after 105 ms, 100 ms for its answer, 25 ms.
        assert_eq!(hint.hold(t0), Some(263 * MS));
        // Over 105 ms the first retry comes too soon for the browser; the second counts.
        hint.observe_rtt(120 * MS);
        assert_eq!(hint.hold(t0), Some(388 * MS));
        // A short one still waits for str0m's retry.
        hint.observe_rtt(10 * MS);
        assert_eq!(hint.hold(t0), Some(173 * MS));
    }

    #[test]
    fn the_hold_is_capped_and_assumes_a_round_trip_until_one_is_measured() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        hint.observe_loss(t0, Some(0.2));
        assert_eq!(hint.hold(t0), Some(263 * MS));
        hint.observe_rtt(150 * MS);
        assert_eq!(hint.hold(t0), Some(MAX_HOLD));
        hint.observe_rtt(Duration::from_secs(3600));
        assert_eq!(hint.hold(t0), Some(MAX_HOLD));
    }

    #[test]
    fn the_hold_outlasts_the_loss_and_a_new_spell_starts_a_new_one() {
        let t0 = Instant::now();
        let mut hint = PlayoutHint::default();
        hint.observe_rtt(100 * MS);
        assert!(hint.observe_loss(t0, Some(0.05)));
        // Loss again within the hold extends it without starting a new one.
        let t1 = t0 + 4000 * MS;
        assert!(!hint.observe_loss(t1, Some(0.02)));
        assert_eq!(hint.hold(t1 + HOLD_AFTER_LOSS - MS), Some(263 * MS));
        let over = t1 + HOLD_AFTER_LOSS;
        assert_eq!(hint.hold(over), None);
        assert!(hint.observe_loss(over, Some(0.05)));
        assert_eq!(hint.hold(over), Some(263 * MS));
    }

    #[test]
    fn a_subscriber_is_released_after_a_hold_whatever_feeds_it_then() {
        let t0 = Instant::now();
        let mut asked = PlayoutAsked::default();
        assert_eq!(asked.next(None, t0), None, "never held: nothing");
        assert_eq!(
            asked.next(Some(263 * MS), t0),
            Some((263 * MS, MAX_PLAYOUT))
        );
        // The hold ends, or another source (a rejoined publisher, black frames, the
        // pipeline) takes the line: "no minimum" for WITHDRAW_FOR, then nothing.
        let t1 = t0 + 1000 * MS;
        let release = Some((Duration::ZERO, MAX_PLAYOUT));
        assert_eq!(asked.next(None, t1), release);
        assert_eq!(asked.next(None, t1 + WITHDRAW_FOR - MS), release);
        assert_eq!(asked.next(None, t1 + WITHDRAW_FOR), None);
        assert_eq!(asked.next(None, t1 + WITHDRAW_FOR + MS), None);
        // A hold during a release replaces it.
        asked.next(Some(200 * MS), t1);
        asked.next(None, t1 + MS);
        assert_eq!(
            asked.next(Some(300 * MS), t1 + 2 * MS),
            Some((300 * MS, MAX_PLAYOUT))
        );
        assert_eq!(asked.next(None, t1 + 3 * MS), release);
    }
}
