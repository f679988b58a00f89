//! The face-verification gate in front of agent-initiated calls. Pure policy: the
//! caller gathers the facts from the store; customer-initiated calls never ask.

use serde::Serialize;

/// What the gate needs to know about one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateFacts {
    /// When the agent's current session began (Unix ms).
    pub session_started_at: i64,
    /// The agent's latest passed verification (Unix ms), if any.
    pub last_passed_at: Option<i64>,
    /// Agent-initiated calls created since that verification.
    pub outgoing_since_pass: u32,
    /// Outgoing calls one verification covers (the enterprise's setting, default 3).
    pub period: u32,
}

/// Why a verification is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum VerificationDue {
    /// No passed verification since this login.
    FirstCallSinceLogin,
    /// The last verification has covered its `period` calls.
    PeriodUsed { period: u32 },
}

/// Whether an agent may call out now.
pub fn check_gate(facts: GateFacts) -> Result<(), VerificationDue> {
    let verified_this_session = facts
        .last_passed_at
        .is_some_and(|t| t >= facts.session_started_at);
    if !verified_this_session {
        return Err(VerificationDue::FirstCallSinceLogin);
    }
    // A period of 0 would lock agents out for good; treat it as 1.
    let period = facts.period.max(1);
    if facts.outgoing_since_pass >= period {
        return Err(VerificationDue::PeriodUsed { period });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: i64 = 1_000;

    fn facts(last_passed_at: Option<i64>, outgoing_since_pass: u32) -> GateFacts {
        GateFacts {
            session_started_at: LOGIN,
            last_passed_at,
            outgoing_since_pass,
            period: 3,
        }
    }

    #[test]
    fn the_first_call_after_login_needs_a_verification() {
        assert_eq!(
            check_gate(facts(None, 0)),
            Err(VerificationDue::FirstCallSinceLogin)
        );
        assert_eq!(
            check_gate(facts(Some(LOGIN - 1), 0)),
            Err(VerificationDue::FirstCallSinceLogin),
            "a verification from an earlier session does not count"
        );
    }

    #[test]
    fn one_verification_covers_three_calls_then_the_fourth_is_refused() {
        for made in 0..3 {
            assert_eq!(
                check_gate(facts(Some(LOGIN + 5), made)),
                Ok(()),
                "call {}",
                made + 1
            );
        }
        assert_eq!(
            check_gate(facts(Some(LOGIN + 5), 3)),
            Err(VerificationDue::PeriodUsed { period: 3 })
        );
    }

    #[test]
    fn the_period_is_the_enterprise_setting() {
        let f = GateFacts {
            period: 1,
            ..facts(Some(LOGIN), 1)
        };
        assert_eq!(
            check_gate(f),
            Err(VerificationDue::PeriodUsed { period: 1 })
        );
        let f = GateFacts {
            period: 0,
            ..facts(Some(LOGIN), 0)
        };
        assert_eq!(check_gate(f), Ok(()), "0 behaves as 1, never a lock-out");
    }
}
