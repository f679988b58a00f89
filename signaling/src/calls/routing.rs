//! Which agent takes a customer's request. Pure: the caller gathers the loads.

use crate::accounts::UserId;

/// One agent of a reception group, as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLoad {
    pub id: UserId,
    pub available: bool,
    pub capacity: u32,
    pub live_calls: u32,
    /// Since when the agent has been idle (Unix ms): ties go to the longest idle.
    pub idle_since: i64,
}

/// The agent to ring: available and under capacity, least busy first, then longest
/// idle, then by id so the choice is deterministic.
pub fn pick_agent(agents: &[AgentLoad]) -> Option<&UserId> {
    agents
        .iter()
        .filter(|a| a.available && a.live_calls < a.capacity)
        .min_by(|a, b| {
            a.live_calls
                .cmp(&b.live_calls)
                .then(a.idle_since.cmp(&b.idle_since))
                .then(a.id.cmp(&b.id))
        })
        .map(|a| &a.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(
        id: &str,
        available: bool,
        capacity: u32,
        live_calls: u32,
        idle_since: i64,
    ) -> AgentLoad {
        AgentLoad {
            id: UserId(id.into()),
            available,
            capacity,
            live_calls,
            idle_since,
        }
    }

    #[test]
    fn least_busy_wins() {
        let agents = [agent("a", true, 3, 2, 0), agent("b", true, 3, 1, 50)];
        assert_eq!(pick_agent(&agents).map(UserId::as_str), Some("b"));
    }

    #[test]
    fn ties_go_to_the_longest_idle() {
        let agents = [agent("a", true, 2, 0, 200), agent("b", true, 2, 0, 100)];
        assert_eq!(pick_agent(&agents).map(UserId::as_str), Some("b"));
    }

    #[test]
    fn unavailable_or_full_agents_are_skipped() {
        let agents = [agent("away", false, 2, 0, 0), agent("full", true, 1, 1, 0)];
        assert_eq!(pick_agent(&agents), None);
        let agents = [agent("away", false, 2, 0, 0), agent("free", true, 1, 0, 9)];
        assert_eq!(pick_agent(&agents).map(UserId::as_str), Some("free"));
    }
}
