//! Customer-service calls: the state machine and the verification policy.

pub mod lifecycle;
pub mod machine;
pub mod model;
pub mod routing;
pub mod service;
pub mod verification;

pub use machine::{
    CallEvent, CallKind, CallState, Direction, EndReason, FailureKind, InvalidTransition, Party,
    initial_state,
};
pub use model::{Call, CallEventRow, VerificationFilter, VerificationRecord};
