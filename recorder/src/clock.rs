//! Puts every frame on the recording's timeline (microseconds since it started).
//!
//! Within one party, audio and video are tied by the sender's RTCP sender reports
//! (the same sender clock stamps both), so lips stay in sync. Across parties, each
//! sender clock is anchored to our arrival time of its first reported frame. Before
//! the first report, a stream runs on its RTP clock from the arrival of its first frame.

use std::time::{Duration, Instant, SystemTime};

use kefu_proto::TapFrame;

#[derive(Debug, Clone, Copy)]
struct StreamAnchor {
    arrival: Instant,
    rtp_time: u64,
}

/// Timeline state of one recording.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    /// Per party: our arrival time and the sender's clock at the first reported frame.
    sender_anchor: [Option<(Instant, SystemTime)>; 2],
    /// Per party and stream (audio, video): first frame before any sender report.
    stream_anchor: [[Option<StreamAnchor>; 2]; 2],
}

impl Timeline {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            sender_anchor: [None; 2],
            stream_anchor: [[None; 2]; 2],
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Microseconds from the recording's start to `at` (negative before it).
    pub fn micros_at(&self, at: Instant) -> i64 {
        signed_micros(at, self.start)
    }

    /// The frame's place on the timeline, in microseconds.
    pub fn place(&mut self, frame: &TapFrame) -> i64 {
        let rate = i64::from(frame.clock_rate.max(1));
        let party = frame.side.index();
        if let Some(sr) = frame.sender_clock {
            // RTP timestamps wrap at 32 bits; the report may predate an extension step.
            let ticks = i64::from((frame.rtp_time as u32).wrapping_sub(sr.rtp_time as u32) as i32);
            let sent = shift(sr.ntp_time, ticks * 1_000_000 / rate);
            let (arrival, sender) = *self.sender_anchor[party].get_or_insert((frame.arrival, sent));
            let since_anchor = match sent.duration_since(sender) {
                Ok(d) => d.as_micros() as i64,
                Err(e) => -(e.duration().as_micros() as i64),
            };
            return self.micros_at(arrival) + since_anchor;
        }
        let stream = usize::from(frame.codec.is_video());
        let anchor = *self.stream_anchor[party][stream].get_or_insert(StreamAnchor {
            arrival: frame.arrival,
            rtp_time: frame.rtp_time,
        });
        let ticks = frame.rtp_time as i64 - anchor.rtp_time as i64;
        self.micros_at(anchor.arrival) + ticks * 1_000_000 / rate
    }
}

fn signed_micros(at: Instant, from: Instant) -> i64 {
    if at >= from {
        at.duration_since(from).as_micros() as i64
    } else {
        -(from.duration_since(at).as_micros() as i64)
    }
}

fn shift(t: SystemTime, micros: i64) -> SystemTime {
    let d = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 { t + d } else { t - d }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_proto::{Codec, SenderClock, Side};
    use std::sync::Arc;

    fn frame(party: Side, codec: Codec, rtp: u64, rate: u32, arrival: Instant) -> TapFrame {
        TapFrame {
            side: party,
            codec,
            rtp_time: rtp,
            clock_rate: rate,
            arrival,
            sender_clock: None,
            contiguous: true,
            keyframe: false,
            data: Arc::from(&[0u8][..]),
        }
    }

    #[test]
    fn rtp_clock_from_first_arrival_ignores_jitter() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0);
        let a = frame(
            Side::Agent,
            Codec::Opus,
            1000,
            48_000,
            t0 + Duration::from_millis(100),
        );
        assert_eq!(tl.place(&a), 100_000);
        // 20 ms of audio later, but it arrived 35 ms late: the RTP clock wins.
        let b = frame(
            Side::Agent,
            Codec::Opus,
            1960,
            48_000,
            t0 + Duration::from_millis(155),
        );
        assert_eq!(tl.place(&b), 120_000);
    }

    #[test]
    fn sender_reports_align_audio_and_video_of_one_party() {
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut tl = Timeline::new(t0);
        // Audio captured at wall+0 arrives at 50 ms; video captured at the same instant
        // arrives 80 ms later (bigger frame, more packets).
        let mut audio = frame(
            Side::Customer,
            Codec::Opus,
            48_000,
            48_000,
            t0 + Duration::from_millis(50),
        );
        audio.sender_clock = Some(SenderClock {
            ntp_time: wall,
            rtp_time: 48_000,
        });
        let mut video = frame(
            Side::Customer,
            Codec::Vp8,
            90_000,
            90_000,
            t0 + Duration::from_millis(130),
        );
        video.sender_clock = Some(SenderClock {
            ntp_time: wall,
            rtp_time: 90_000,
        });
        assert_eq!(tl.place(&audio), 50_000);
        assert_eq!(tl.place(&video), 50_000, "same capture instant, same place");
        // One second of video later.
        video.rtp_time += 90_000;
        assert_eq!(tl.place(&video), 1_050_000);
    }

    #[test]
    fn rtp_wraparound_against_an_old_report() {
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let mut tl = Timeline::new(t0);
        let mut f = frame(Side::Agent, Codec::Vp8, (1u64 << 32) + 900, 90_000, t0);
        f.sender_clock = Some(SenderClock {
            ntp_time: wall,
            rtp_time: u64::from(u32::MAX) - 8_999,
        });
        assert_eq!(tl.place(&f), 0);
        f.rtp_time += 9_000;
        assert_eq!(tl.place(&f), 100_000);
    }
}
