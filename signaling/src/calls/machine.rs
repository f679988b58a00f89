//! The call state machine. Pure: `(state, event, now) → state`; the driver persists
//! every transition with its time and reason.
//!
//! ```text
//! customer asks:  requested ──assign──▶ ringing ──accept──▶ connecting ──media_up──▶ connected ──hang_up──▶ ended
//! agent calls:    inviting ──opened──▶ ringing
//! re-offer:       ringing ──reoffer──▶ requested (the agent declined or let it ring out)
//! side exits:     rejected, cancelled, timed_out, failed(kind)
//! kefu itself:    any live state ──terminate(reason)──▶ ended (shutdown, restart, node lost, moderation)
//! ```
//!
//! Every final state has an [`EndReason`] ([`CallState::end_reason`]): what the API,
//! the pages and the recordings show.

use serde::{Deserialize, Serialize};

/// Who started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The agent called out (needs the face-verification gate).
    AgentInitiated,
    /// The customer asked from the service page (routed through the queue).
    CustomerInitiated,
}

/// Video or voice; a voice call carries no video at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Video,
    Voice,
}

pub use kefu_proto::{EndReason, FailureKind, Party};

/// Where a call is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CallState {
    /// A customer asked; waiting for an agent (routing or the queue).
    Requested,
    /// An agent called out; the invite is out, the customer has not opened it yet.
    Inviting,
    /// The callee is being asked: the agent's workbench rings, or the customer's page
    /// shows the incoming call.
    Ringing,
    /// Accepted; media is being negotiated.
    Connecting,
    /// Both parties' media is up.
    Connected,
    /// Finished: after being connected, or stopped by kefu itself at any point
    /// (`by` is then `system`).
    Ended { by: Party, reason: EndReason },
    /// The callee declined.
    Rejected { by: Party },
    /// The caller gave up before it connected.
    Cancelled { by: Party },
    /// Nobody answered in time.
    TimedOut,
    /// It broke (media never came up, media lost, server error).
    Failed { kind: FailureKind },
}

/// What can happen to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Routing picked an agent for a customer request.
    Assigned,
    /// The agent a customer's request rang at declined it or let it ring out, and the
    /// request's wait limit is not reached: back to the queue for the next agent.
    Reoffer,
    /// The customer opened the invite and consented.
    CustomerOpened,
    Accept {
        by: Party,
    },
    Reject {
        by: Party,
    },
    Cancel {
        by: Party,
    },
    /// Both parties' media is connected.
    MediaUp,
    /// A party left: by hanging up, or by a connection that never came back
    /// (`reason` is [`EndReason::HangUp`] or [`EndReason::NetworkLost`]).
    HangUp {
        by: Party,
        reason: EndReason,
    },
    /// The ring (or queue) deadline passed.
    RingTimeout,
    Fail {
        kind: FailureKind,
    },
    /// kefu ends a live call (shutdown, restart, node lost, moderation).
    Terminate {
        reason: EndReason,
    },
}

/// An event that makes no sense in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not possible while the call is {state}")]
pub struct InvalidTransition {
    pub state: &'static str,
    pub event: &'static str,
}

impl CallState {
    /// The state's name as stored and shown.
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Requested => "requested",
            CallState::Inviting => "inviting",
            CallState::Ringing => "ringing",
            CallState::Connecting => "connecting",
            CallState::Connected => "connected",
            CallState::Ended { .. } => "ended",
            CallState::Rejected { .. } => "rejected",
            CallState::Cancelled { .. } => "cancelled",
            CallState::TimedOut => "timed_out",
            CallState::Failed { .. } => "failed",
        }
    }

    /// Why the call is over; `None` while it is live.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self {
            CallState::Ended { reason, .. } => Some(*reason),
            CallState::Rejected { .. } => Some(EndReason::Rejected),
            CallState::Cancelled { .. } => Some(EndReason::Cancelled),
            CallState::TimedOut => Some(EndReason::RingTimeout),
            CallState::Failed { .. } => Some(EndReason::Failed),
            _ => None,
        }
    }

    /// Who ended the call, when a party did.
    pub fn ended_by(&self) -> Option<Party> {
        match self {
            CallState::Ended { by, .. }
            | CallState::Rejected { by }
            | CallState::Cancelled { by } => Some(*by),
            CallState::TimedOut | CallState::Failed { .. } => Some(Party::System),
            _ => None,
        }
    }

    /// No event changes a final state.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CallState::Ended { .. }
                | CallState::Rejected { .. }
                | CallState::Cancelled { .. }
                | CallState::TimedOut
                | CallState::Failed { .. }
        )
    }

    /// Whether the call occupies one of the agent's concurrent-call slots.
    pub fn occupies_agent(&self) -> bool {
        matches!(
            self,
            CallState::Inviting | CallState::Ringing | CallState::Connecting | CallState::Connected
        )
    }

    /// The state after `event`, or why it cannot happen.
    pub fn next(
        &self,
        direction: Direction,
        event: &CallEvent,
    ) -> Result<CallState, InvalidTransition> {
        use CallEvent as E;
        use CallState as S;
        let next = match (self, event) {
            (S::Requested, E::Assigned) if direction == Direction::CustomerInitiated => S::Ringing,
            (S::Ringing, E::Reoffer) if direction == Direction::CustomerInitiated => S::Requested,
            (S::Inviting, E::CustomerOpened) if direction == Direction::AgentInitiated => {
                S::Ringing
            }
            (S::Ringing, E::Accept { by }) if *by == callee(direction) => S::Connecting,
            (S::Ringing, E::Reject { by }) if *by == callee(direction) => S::Rejected { by: *by },
            // The caller may withdraw until media is up.
            (S::Requested | S::Inviting | S::Ringing | S::Connecting, E::Cancel { by })
                if *by == caller(direction) =>
            {
                S::Cancelled { by: *by }
            }
            (S::Requested | S::Inviting | S::Ringing, E::RingTimeout) => S::TimedOut,
            (S::Connecting, E::MediaUp) => S::Connected,
            // Either side may give up while media is still being set up; a connection
            // lost meanwhile is said as such.
            (
                S::Connecting,
                E::HangUp {
                    by,
                    reason: EndReason::HangUp,
                },
            ) => S::Cancelled { by: *by },
            (S::Connecting | S::Connected, E::HangUp { by, reason }) => S::Ended {
                by: *by,
                reason: *reason,
            },
            (s, E::Fail { kind }) if !s.is_final() => S::Failed { kind: *kind },
            (s, E::Terminate { reason }) if !s.is_final() => S::Ended {
                by: Party::System,
                reason: *reason,
            },
            (s, e) => {
                return Err(InvalidTransition {
                    state: s.name(),
                    event: event_name(e),
                });
            }
        };
        Ok(next)
    }
}

/// The state a new call starts in.
pub fn initial_state(direction: Direction) -> CallState {
    match direction {
        Direction::AgentInitiated => CallState::Inviting,
        Direction::CustomerInitiated => CallState::Requested,
    }
}

/// Who starts a call of this direction.
pub(crate) fn caller(direction: Direction) -> Party {
    match direction {
        Direction::AgentInitiated => Party::Agent,
        Direction::CustomerInitiated => Party::Customer,
    }
}

fn callee(direction: Direction) -> Party {
    match direction {
        Direction::AgentInitiated => Party::Customer,
        Direction::CustomerInitiated => Party::Agent,
    }
}

impl CallEvent {
    /// The event's name as stored in the call log.
    pub fn name(&self) -> &'static str {
        event_name(self)
    }
}

fn event_name(e: &CallEvent) -> &'static str {
    match e {
        CallEvent::Assigned => "assigned",
        CallEvent::Reoffer => "reoffer",
        CallEvent::CustomerOpened => "customer_opened",
        CallEvent::Accept { .. } => "accept",
        CallEvent::Reject { .. } => "reject",
        CallEvent::Cancel { .. } => "cancel",
        CallEvent::MediaUp => "media_up",
        CallEvent::HangUp { .. } => "hang_up",
        CallEvent::RingTimeout => "ring_timeout",
        CallEvent::Fail { .. } => "fail",
        CallEvent::Terminate { .. } => "terminate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallEvent as E;
    use CallState as S;
    use Direction::{AgentInitiated as Out, CustomerInitiated as In};

    fn hang_up(by: Party) -> CallEvent {
        E::HangUp {
            by,
            reason: EndReason::HangUp,
        }
    }

    fn fail() -> CallEvent {
        E::Fail {
            kind: FailureKind::MediaLost,
        }
    }

    /// Every allowed edge, for both directions where it applies.
    #[test]
    fn every_allowed_edge() {
        let edges: Vec<(Direction, S, E, S)> = vec![
            (In, S::Requested, E::Assigned, S::Ringing),
            (In, S::Ringing, E::Reoffer, S::Requested),
            (
                Out,
                S::Connecting,
                E::Cancel { by: Party::Agent },
                S::Cancelled { by: Party::Agent },
            ),
            (Out, S::Inviting, E::CustomerOpened, S::Ringing),
            (
                In,
                S::Ringing,
                E::Accept { by: Party::Agent },
                S::Connecting,
            ),
            (
                Out,
                S::Ringing,
                E::Accept {
                    by: Party::Customer,
                },
                S::Connecting,
            ),
            (
                In,
                S::Ringing,
                E::Reject { by: Party::Agent },
                S::Rejected { by: Party::Agent },
            ),
            (
                Out,
                S::Ringing,
                E::Reject {
                    by: Party::Customer,
                },
                S::Rejected {
                    by: Party::Customer,
                },
            ),
            (
                In,
                S::Requested,
                E::Cancel {
                    by: Party::Customer,
                },
                S::Cancelled {
                    by: Party::Customer,
                },
            ),
            (
                In,
                S::Ringing,
                E::Cancel {
                    by: Party::Customer,
                },
                S::Cancelled {
                    by: Party::Customer,
                },
            ),
            (
                Out,
                S::Inviting,
                E::Cancel { by: Party::Agent },
                S::Cancelled { by: Party::Agent },
            ),
            (
                Out,
                S::Ringing,
                E::Cancel { by: Party::Agent },
                S::Cancelled { by: Party::Agent },
            ),
            (In, S::Requested, E::RingTimeout, S::TimedOut),
            (In, S::Ringing, E::RingTimeout, S::TimedOut),
            (Out, S::Inviting, E::RingTimeout, S::TimedOut),
            (Out, S::Ringing, E::RingTimeout, S::TimedOut),
            (Out, S::Connecting, E::MediaUp, S::Connected),
            (
                In,
                S::Connecting,
                hang_up(Party::Customer),
                S::Cancelled {
                    by: Party::Customer,
                },
            ),
            (
                Out,
                S::Connected,
                hang_up(Party::Agent),
                S::Ended {
                    by: Party::Agent,
                    reason: EndReason::HangUp,
                },
            ),
            (
                In,
                S::Connected,
                hang_up(Party::Customer),
                S::Ended {
                    by: Party::Customer,
                    reason: EndReason::HangUp,
                },
            ),
            (
                Out,
                S::Connected,
                hang_up(Party::System),
                S::Ended {
                    by: Party::System,
                    reason: EndReason::HangUp,
                },
            ),
        ];
        for (direction, from, event, to) in edges {
            assert_eq!(
                from.next(direction, &event),
                Ok(to.clone()),
                "{direction:?} {from:?} --{event:?}-->"
            );
        }
        for from in [
            S::Requested,
            S::Inviting,
            S::Ringing,
            S::Connecting,
            S::Connected,
        ] {
            for direction in [In, Out] {
                assert!(
                    matches!(from.next(direction, &fail()), Ok(S::Failed { .. })),
                    "{from:?} can fail"
                );
            }
        }
    }

    #[test]
    fn the_wrong_party_cannot_answer_or_cancel() {
        assert!(
            S::Ringing
                .next(
                    In,
                    &E::Accept {
                        by: Party::Customer
                    }
                )
                .is_err(),
            "caller can't accept"
        );
        assert!(
            S::Ringing
                .next(Out, &E::Accept { by: Party::Agent })
                .is_err()
        );
        assert!(
            S::Ringing
                .next(Out, &E::Reject { by: Party::Agent })
                .is_err()
        );
        assert!(
            S::Inviting
                .next(
                    Out,
                    &E::Cancel {
                        by: Party::Customer
                    }
                )
                .is_err(),
            "callee rejects, not cancels"
        );
        assert!(
            S::Requested
                .next(In, &E::Cancel { by: Party::Agent })
                .is_err()
        );
    }

    #[test]
    fn direction_decides_the_first_step() {
        assert_eq!(initial_state(In), S::Requested);
        assert_eq!(initial_state(Out), S::Inviting);
        assert!(
            S::Requested.next(Out, &E::Assigned).is_err(),
            "agent calls are not routed"
        );
        assert!(S::Inviting.next(In, &E::CustomerOpened).is_err());
        assert!(
            S::Ringing.next(Out, &E::Reoffer).is_err(),
            "an agent's call to a customer is never re-offered"
        );
    }

    #[test]
    fn final_states_accept_nothing() {
        let finals = [
            S::Ended {
                by: Party::Agent,
                reason: EndReason::HangUp,
            },
            S::Rejected { by: Party::Agent },
            S::Cancelled {
                by: Party::Customer,
            },
            S::TimedOut,
            S::Failed {
                kind: FailureKind::Internal,
            },
        ];
        let events = [
            E::Assigned,
            E::Reoffer,
            E::CustomerOpened,
            E::Accept { by: Party::Agent },
            E::Reject { by: Party::Agent },
            E::Cancel { by: Party::Agent },
            E::MediaUp,
            hang_up(Party::Agent),
            E::RingTimeout,
            fail(),
            E::Terminate {
                reason: EndReason::SystemShutdown,
            },
        ];
        for state in &finals {
            assert!(state.is_final());
            assert!(!state.occupies_agent());
            for event in &events {
                for direction in [In, Out] {
                    let err = state.next(direction, event).expect_err("final");
                    assert_eq!(err.state, state.name());
                }
            }
        }
    }

    #[test]
    fn out_of_order_events_are_refused() {
        assert!(S::Requested.next(In, &E::MediaUp).is_err());
        assert!(
            S::Ringing.next(In, &E::MediaUp).is_err(),
            "media before accepting"
        );
        assert!(
            S::Connected
                .next(In, &E::Accept { by: Party::Agent })
                .is_err()
        );
        assert!(
            S::Connected.next(In, &E::RingTimeout).is_err(),
            "no ring timeout once connected"
        );
        assert!(
            S::Inviting.next(Out, &hang_up(Party::Agent)).is_err(),
            "cancel, not hang up"
        );
    }

    #[test]
    fn kefu_ends_any_live_call_with_its_reason() {
        for from in [
            S::Requested,
            S::Inviting,
            S::Ringing,
            S::Connecting,
            S::Connected,
        ] {
            for reason in [
                EndReason::SystemShutdown,
                EndReason::SystemRestart,
                EndReason::NodeLost,
                EndReason::Moderation,
            ] {
                let next = from.next(In, &E::Terminate { reason }).expect("terminates");
                assert_eq!(next.end_reason(), Some(reason), "{from:?}");
                assert_eq!(next.ended_by(), Some(Party::System));
            }
        }
    }

    #[test]
    fn a_lost_connection_ends_as_network_lost_not_as_a_hang_up() {
        let lost = E::HangUp {
            by: Party::Customer,
            reason: EndReason::NetworkLost,
        };
        for from in [S::Connecting, S::Connected] {
            let next = from.next(Out, &lost).expect("ends");
            assert_eq!(next.end_reason(), Some(EndReason::NetworkLost));
            assert_eq!(next.ended_by(), Some(Party::Customer));
        }
        assert_eq!(
            S::Connected
                .next(Out, &hang_up(Party::Agent))
                .expect("ends")
                .end_reason(),
            Some(EndReason::HangUp)
        );
    }

    #[test]
    fn every_final_state_has_a_reason_and_live_ones_have_none() {
        for live in [
            S::Requested,
            S::Inviting,
            S::Ringing,
            S::Connecting,
            S::Connected,
        ] {
            assert_eq!(live.end_reason(), None);
        }
        assert_eq!(S::TimedOut.end_reason(), Some(EndReason::RingTimeout));
        assert_eq!(
            S::Rejected { by: Party::Agent }.end_reason(),
            Some(EndReason::Rejected)
        );
        assert_eq!(
            S::Cancelled {
                by: Party::Customer
            }
            .end_reason(),
            Some(EndReason::Cancelled)
        );
        assert_eq!(
            S::Failed {
                kind: FailureKind::MediaNeverConnected
            }
            .end_reason(),
            Some(EndReason::Failed)
        );
    }

    #[test]
    fn only_live_calls_occupy_the_agent() {
        assert!(
            !S::Requested.occupies_agent(),
            "a queued request has no agent yet"
        );
        for s in [S::Inviting, S::Ringing, S::Connecting, S::Connected] {
            assert!(s.occupies_agent(), "{s:?}");
        }
    }
}
