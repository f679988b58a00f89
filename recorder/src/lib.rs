//! Call recorder: capture both parties, transcode live, upload to S3-compatible storage.
//!
//! Empty on purpose: the walking skeleton only fixes the crate boundary. The recorder
//! issue (#4) fills it; nothing here pretends to record.
