//! Server-side beauty filters on video frames (OpenCV).
//!
//! Empty on purpose: the walking skeleton only fixes the crate boundary. The beauty
//! issue (#5) fills it; nothing here pretends to filter.
