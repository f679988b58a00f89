//! Frames from RTP packets, for the consumers that need whole frames (placeholder).
