//! The two sides of a customer-service call.

use serde::{Deserialize, Serialize};

/// Which side of the call someone is on: in a room token, in the SFU's tap, in the
/// recording's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Agent,
    Customer,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Agent, Side::Customer];

    /// 0 for the agent, 1 for the customer (array slots).
    pub fn index(self) -> usize {
        match self {
            Side::Agent => 0,
            Side::Customer => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Agent => "agent",
            Side::Customer => "customer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_serialize_lowercase_and_index_their_slots() {
        assert_eq!(
            serde_json::to_string(&Side::Customer).expect("json"),
            r#""customer""#
        );
        assert_eq!(Side::ALL.map(Side::index), [0, 1]);
        assert_eq!(Side::Agent.as_str(), "agent");
    }
}
