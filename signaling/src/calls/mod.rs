//! Customer-service calls: the state machine, the one lifecycle every transition goes
//! through, routing and queues, invites, customers' requests, their queries and HTTP
//! handlers.

pub mod http;
pub mod invites;
pub mod lifecycle;
pub mod machine;
pub mod model;
pub mod requests;
pub mod routing;
pub mod service;
pub mod store;

pub use machine::{
    CallEvent, CallKind, CallState, Direction, EndReason, FailureKind, InvalidTransition, Party,
    initial_state,
};
pub use model::{Call, CallEventRow};
