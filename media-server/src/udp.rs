//! The SFU's UDP socket (placeholder).
