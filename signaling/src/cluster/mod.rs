//! The seams a multi-node deployment fills in: small traits for what must be shared
//! across kefu nodes, each with the in-process implementation a single node uses.
//! (Redis implementations come with multi-node operation.) The beauty dialog's
//! previews have their seam beside them: `beauty::preview::PreviewStore`.

pub mod bus;
pub mod lease;
pub mod links;
pub mod media;
