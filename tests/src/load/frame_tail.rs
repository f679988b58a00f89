//! A video frame's trailer as the subscriber reassembles it: an SFU packetizes frames
//! again on the way out, so the trailer's 12 bytes may be split over a frame's last
//! two packets (each starting with a VP8 payload descriptor, RFC 7741).

use webrtc::rtp::packet::Packet;

use super::media::{TRAILER_LEN, read_stamp};

/// The last bytes of the frame being received on one stream.
#[derive(Debug, Default)]
pub struct FrameTail {
    timestamp: Option<u32>,
    bytes: Vec<u8>,
}

impl FrameTail {
    /// Takes the next VP8 packet of the stream; at a frame's last packet (marker set)
    /// returns the frame's send time, if it carries a trailer.
    pub fn push(&mut self, packet: &Packet) -> Option<u64> {
        if self.timestamp != Some(packet.header.timestamp) {
            self.timestamp = Some(packet.header.timestamp);
            self.bytes.clear();
        }
        let payload = &packet.payload[..];
        self.bytes
            .extend_from_slice(&payload[vp8_descriptor_len(payload)..]);
        let excess = self.bytes.len().saturating_sub(TRAILER_LEN);
        self.bytes.drain(..excess);
        if !packet.header.marker {
            return None;
        }
        let stamp = read_stamp(&self.bytes);
        self.bytes.clear();
        stamp
    }
}

/// The length of the VP8 payload descriptor at the start of `payload`.
fn vp8_descriptor_len(payload: &[u8]) -> usize {
    let Some(&first) = payload.first() else {
        return 0;
    };
    if first & 0x80 == 0 {
        return 1;
    }
    let Some(&extension) = payload.get(1) else {
        return payload.len();
    };
    let mut len = 2;
    if extension & 0x80 != 0 {
        // PictureID: 15 bits when its M bit is set, else 7.
        len += if payload.get(len).is_some_and(|b| b & 0x80 != 0) {
            2
        } else {
            1
        };
    }
    if extension & 0x40 != 0 {
        len += 1; // TL0PICIDX
    }
    if extension & 0x30 != 0 {
        len += 1; // TID and KEYIDX share a byte
    }
    len.min(payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::media::stamp;

    fn packet(timestamp: u32, marker: bool, payload: Vec<u8>) -> Packet {
        let mut p = Packet::default();
        p.header.timestamp = timestamp;
        p.header.marker = marker;
        p.payload = payload.into();
        p
    }

    #[test]
    fn a_trailer_split_over_two_packets_is_read() {
        let mut frame = vec![7u8; 30];
        stamp(&mut frame, 42);
        let (head, tail) = frame.split_at(frame.len() - 3);
        let mut tails = FrameTail::default();
        // A short descriptor, then one with an extension and a 15-bit picture id.
        let first = [&[0x10u8][..], head].concat();
        let last = [&[0x80u8, 0x80, 0x81, 0x23][..], tail].concat();
        assert_eq!(tails.push(&packet(9, false, first)), None);
        assert_eq!(tails.push(&packet(9, true, last)), Some(42));
    }

    #[test]
    fn a_frame_without_trailer_has_no_stamp_and_frames_do_not_mix() {
        let mut tails = FrameTail::default();
        let mut earlier = vec![0x10u8, 1, 2];
        stamp(&mut earlier, 42);
        // Frame 1's last packet was lost: its bytes must not complete frame 2.
        assert_eq!(tails.push(&packet(1, false, earlier)), None);
        assert_eq!(tails.push(&packet(2, true, vec![0x10, 5, 6, 7])), None);
    }
}
