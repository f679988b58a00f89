//! What the load generator sends and measures. Publishers write synthetic VP8 frames
//! and Opus packets at realistic sizes; each ends in a 12-byte trailer holding its send
//! time. Subscribers read it back from a frame's last bytes (an SFU forwards payloads
//! untouched, though it may packetize them again: [`super::frame_tail`]), so forwarding
//! delay, delivery, sequence gaps and RFC 3550 jitter come from the same code for every
//! SFU under test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use webrtc::media::Sample;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_remote::TrackRemote;

use super::frame_tail::FrameTail;

const MAGIC: [u8; 4] = *b"KLD1";
pub const TRAILER_LEN: usize = 12;
/// Opus at 20 ms: 80 bytes of payload is ~32 kbit/s, a typical voice bitrate.
const OPUS_BYTES: usize = 80;
const AUDIO_PERIOD: Duration = Duration::from_millis(20);
/// Delay samples kept per run (beyond it, every later sample is dropped).
const MAX_DELAY_SAMPLES: usize = 2_000_000;

/// Publishers and subscribers share one process, so one origin serves both ends.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the process-wide origin.
pub fn now_us() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Appends the trailer carrying `sent_us`.
pub fn stamp(payload: &mut Vec<u8>, sent_us: u64) {
    payload.extend_from_slice(&MAGIC);
    payload.extend_from_slice(&sent_us.to_be_bytes());
}

/// The send time in a payload's trailer, if it has one.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    let start = payload.len().checked_sub(TRAILER_LEN)?;
    let (magic, time) = payload[start..].split_at(4);
    (magic == MAGIC).then(|| u64::from_be_bytes(time.try_into().unwrap_or([0; 8])))
}

/// Video every publisher sends.
#[derive(Debug, Clone, Copy)]
pub struct VideoProfile {
    pub kbps: u32,
    pub fps: u32,
    /// A keyframe (three times a delta frame) every this many seconds.
    pub keyframe_secs: u32,
}

impl VideoProfile {
    pub fn period(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }

    /// Frame `n`'s size: deltas and keyframes sized so a GOP averages `kbps`.
    pub fn frame_bytes(&self, n: u64) -> usize {
        let gop = u64::from(self.fps.max(1) * self.keyframe_secs.max(1));
        let average = u64::from(self.kbps) * 1000 / 8 / u64::from(self.fps.max(1));
        let delta = average * gop / (gop + 2);
        let size = if n.is_multiple_of(gop) {
            3 * delta
        } else {
            delta
        };
        usize::try_from(size).unwrap_or(usize::MAX).max(32)
    }

    fn is_keyframe(&self, n: u64) -> bool {
        n.is_multiple_of(u64::from(self.fps.max(1) * self.keyframe_secs.max(1)))
    }
}

/// The measurement window, in [`now_us`] time; empty until opened.
#[derive(Debug)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    pub fn open(&self, at: u64) {
        self.start.store(at, Ordering::SeqCst);
    }

    pub fn close(&self, at: u64) {
        self.end.store(at, Ordering::SeqCst);
    }

    /// Empty again, until the next [`Self::open`].
    pub fn reset(&self) {
        self.start.store(u64::MAX, Ordering::SeqCst);
        self.end.store(u64::MAX, Ordering::SeqCst);
    }

    pub fn contains(&self, t: u64) -> bool {
        t >= self.start.load(Ordering::Relaxed) && t < self.end.load(Ordering::Relaxed)
    }
}

/// Receive-side state of one forwarded stream.
#[derive(Debug)]
struct TrackStats {
    clock_rate: f64,
    packets: u64,
    first_seq: Option<u64>,
    highest_seq: u64,
    /// RFC 3550 interarrival jitter, in RTP clock units.
    jitter: f64,
    last_transit: Option<f64>,
    /// Video whose frames carry no trailer: re-encoded by the SFU (the beauty
    /// pipeline), so only its frame rate can be measured...
    plain: bool,
    /// ...from its frames arriving in the window.
    plain_frames: u64,
    /// Frames with a trailer in the window (a forwarded stream's).
    stamped_frames: u64,
    audio: bool,
    /// Delays of the frames (audio packets) sent and received in the window.
    window_delays: Vec<u32>,
}

impl TrackStats {
    fn new(audio: bool, clock_rate: u32) -> Self {
        Self {
            clock_rate: f64::from(clock_rate.max(1)),
            packets: 0,
            first_seq: None,
            highest_seq: 0,
            jitter: 0.0,
            last_transit: None,
            plain: false,
            plain_frames: 0,
            stamped_frames: 0,
            audio,
            window_delays: Vec::new(),
        }
    }

    fn on_packet(&mut self, seq: u16, rtp_time: u32, arrival_us: u64) {
        self.packets += 1;
        let ext = match self.first_seq {
            None => {
                let ext = u64::from(seq) + (1 << 16);
                self.first_seq = Some(ext);
                ext
            }
            Some(_) => extend_seq(self.highest_seq, seq),
        };
        self.highest_seq = self.highest_seq.max(ext);
        // The transit's absolute offset cancels out; only differences matter.
        let arrival = arrival_us as f64 * self.clock_rate / 1e6;
        let transit = arrival - f64::from(rtp_time);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // RTP time wraps every ~13 h at 90 kHz; a jump that large is not jitter.
            if d < self.clock_rate * 10.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    fn expected(&self) -> u64 {
        self.first_seq
            .map_or(0, |first| self.highest_seq + 1 - first)
    }
}

/// The 64-bit sequence number of `seq`, the one closest to `highest`.
fn extend_seq(highest: u64, seq: u16) -> u64 {
    let cycle = highest & !0xffff;
    let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)];
    candidates
        .into_iter()
        .map(|c| c.wrapping_add(u64::from(seq)))
        .min_by_key(|c| c.abs_diff(highest))
        .unwrap_or(highest)
}

/// Everything counted in one run, across all publishers and subscribers.
#[derive(Debug, Default)]
pub struct Tally {
    pub window: Window,
    pub sent_audio: AtomicU64,
    pub sent_video_frames: AtomicU64,
    /// Stamped in the window and received (at any time).
    pub received_audio: AtomicU64,
    pub received_video_frames: AtomicU64,
    /// RTP packets arriving during the window, by arrival time.
    pub window_packets: AtomicU64,
    pub window_bytes: AtomicU64,
    delays_us: Mutex<Vec<u32>>,
    tracks: Mutex<Vec<Arc<Mutex<TrackStats>>>>,
}

/// One stream's delays in the window.
#[derive(Debug, Clone, Copy)]
pub struct StreamDelay {
    /// Its place among the streams, in the order they started.
    pub index: usize,
    pub audio: bool,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A summary of [`Tally`] after the window closed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Delivery {
    pub streams: usize,
    pub sent_audio: u64,
    pub received_audio: u64,
    pub sent_video_frames: u64,
    pub received_video_frames: u64,
    pub window_packets: u64,
    pub window_bytes: u64,
    /// Sequence gaps over the whole run, all streams.
    pub lost_packets: u64,
    pub expected_packets: u64,
    pub mean_jitter_ms: f64,
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub delay_samples: usize,
}

impl Tally {
    /// Streams (subscribed tracks) that received at least `packets` packets.
    pub fn streams_receiving(&self, packets: u64) -> usize {
        let tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        tracks
            .iter()
            .filter(|t| t.lock().map(|t| t.packets >= packets).unwrap_or(false))
            .count()
    }

    fn add_track(&self, audio: bool, clock_rate: u32) -> Arc<Mutex<TrackStats>> {
        let track = Arc::new(Mutex::new(TrackStats::new(audio, clock_rate)));
        self.tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(track.clone());
        track
    }

    /// One packet of a subscribed stream; `stamp` is the send time of the frame (or
    /// audio packet) it ends, read from the trailer. Returns the delay it recorded.
    fn on_packet(
        &self,
        kind: RTPCodecType,
        packet: &Packet,
        stamp: Option<u64>,
        arrival_us: u64,
    ) -> Option<u32> {
        if self.window.contains(arrival_us) {
            self.window_packets.fetch_add(1, Ordering::Relaxed);
            let bytes = packet.payload.len() as u64 + 12;
            self.window_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        // A frame's stamp comes with its last packet (marker bit set).
        let ends_unit = kind == RTPCodecType::Audio || packet.header.marker;
        let sent = stamp.filter(|&sent| ends_unit && self.window.contains(sent))?;
        match kind {
            RTPCodecType::Audio => self.received_audio.fetch_add(1, Ordering::Relaxed),
            _ => self.received_video_frames.fetch_add(1, Ordering::Relaxed),
        };
        let delay = u32::try_from(arrival_us.saturating_sub(sent)).unwrap_or(u32::MAX);
        let mut delays = self.delays_us.lock().unwrap_or_else(|e| e.into_inner());
        if delays.len() < MAX_DELAY_SAMPLES {
            delays.push(delay);
        }
        Some(delay)
    }

    /// Each stream's own delay figures in the window: whether a high p99 is every
    /// stream's or a few streams'.
    pub fn stream_delays(&self) -> Vec<StreamDelay> {
        let tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        tracks
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let t = t.lock().unwrap_or_else(|e| e.into_inner());
                let mut delays = t.window_delays.clone();
                delays.sort_unstable();
                StreamDelay {
                    index,
                    audio: t.audio,
                    samples: delays.len(),
                    p50_ms: percentile_ms(&delays, 0.50),
                    p99_ms: percentile_ms(&delays, 0.99),
                    max_ms: percentile_ms(&delays, 1.0),
                }
            })
            .collect()
    }

    /// Frames that arrived in the window on each re-encoded video stream, for its
    /// frame rate. A stream counts as re-encoded when most of its frames in the window
    /// came without trailers: a lost or repeated last packet of a forwarded frame now
    /// and then does not make it one.
    pub fn plain_video_frames(&self) -> Vec<u64> {
        let tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        tracks
            .iter()
            .filter_map(|t| {
                let t = t.lock().unwrap_or_else(|e| e.into_inner());
                (t.plain && t.plain_frames > t.stamped_frames).then_some(t.plain_frames)
            })
            .collect()
    }

    /// Closes the window and zeroes what it counted, to measure again on the same
    /// peers (a benchmark adding calls step by step). Per-stream loss and jitter stay
    /// whole-run figures.
    pub fn reset(&self) {
        self.window.reset();
        for counter in [
            &self.sent_audio,
            &self.sent_video_frames,
            &self.received_audio,
            &self.received_video_frames,
            &self.window_packets,
            &self.window_bytes,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        self.delays_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for track in self.tracks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let mut track = track.lock().unwrap_or_else(|e| e.into_inner());
            track.plain = false;
            track.plain_frames = 0;
            track.stamped_frames = 0;
            track.window_delays.clear();
        }
    }

    pub fn delivery(&self) -> Delivery {
        let tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        let (mut lost, mut expected, mut jitter_ms) = (0, 0, 0.0);
        for track in tracks.iter() {
            let t = track.lock().unwrap_or_else(|e| e.into_inner());
            expected += t.expected();
            lost += t.expected().saturating_sub(t.packets);
            jitter_ms += t.jitter / t.clock_rate * 1000.0;
        }
        let mut delays = self
            .delays_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        delays.sort_unstable();
        Delivery {
            streams: tracks.len(),
            sent_audio: self.sent_audio.load(Ordering::Relaxed),
            received_audio: self.received_audio.load(Ordering::Relaxed),
            sent_video_frames: self.sent_video_frames.load(Ordering::Relaxed),
            received_video_frames: self.received_video_frames.load(Ordering::Relaxed),
            window_packets: self.window_packets.load(Ordering::Relaxed),
            window_bytes: self.window_bytes.load(Ordering::Relaxed),
            lost_packets: lost,
            expected_packets: expected,
            mean_jitter_ms: jitter_ms / tracks.len().max(1) as f64,
            delay_p50_ms: percentile_ms(&delays, 0.50),
            delay_p99_ms: percentile_ms(&delays, 0.99),
            delay_samples: delays.len(),
        }
    }
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_us.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// Reads a subscribed track until it ends, counting into `tally`.
pub async fn receive(track: Arc<TrackRemote>, tally: Arc<Tally>) {
    let kind = track.kind();
    let audio = kind == RTPCodecType::Audio;
    let stats = tally.add_track(audio, track.codec().capability.clock_rate);
    let mut tail = FrameTail::default();
    while let Ok((packet, _)) = track.read_rtp().await {
        let arrival = now_us();
        let stamp = match kind {
            RTPCodecType::Video => tail.push(&packet),
            _ => read_stamp(&packet.payload),
        };
        let plain_frame = kind == RTPCodecType::Video && packet.header.marker && stamp.is_none();
        let delay = tally.on_packet(kind, &packet, stamp, arrival);
        let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.on_packet(
            packet.header.sequence_number,
            packet.header.timestamp,
            arrival,
        );
        if plain_frame {
            stats.plain = true;
            stats.plain_frames += u64::from(tally.window.contains(arrival));
        } else if kind == RTPCodecType::Video && packet.header.marker {
            stats.stamped_frames += u64::from(tally.window.contains(arrival));
        }
        stats.window_delays.extend(delay);
    }
}

/// Writes VP8-shaped frames at `profile` until aborted; starts after `phase` so that
/// many publishers do not send in lockstep.
pub async fn publish_video(
    track: Arc<TrackLocalStaticSample>,
    profile: VideoProfile,
    phase: Duration,
    tally: Arc<Tally>,
) {
    let period = profile.period();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for n in 0u64.. {
        tick.tick().await;
        let sent = now_us();
        let mut frame = vp8_frame(n, profile.is_keyframe(n), profile.frame_bytes(n));
        stamp(&mut frame, sent);
        if write(&track, frame, period).await && tally.window.contains(sent) {
            tally.sent_video_frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes 20 ms Opus-sized packets until aborted.
pub async fn publish_audio(track: Arc<TrackLocalStaticSample>, phase: Duration, tally: Arc<Tally>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, AUDIO_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let sent = now_us();
        // TOC 0xfc: CELT fullband, 20 ms, mono, one frame.
        let mut packet = vec![0xfc; OPUS_BYTES];
        stamp(&mut packet, sent);
        if write(&track, packet, AUDIO_PERIOD).await && tally.window.contains(sent) {
            tally.sent_audio.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes one sample; false when the track refused it.
pub(super) async fn write(
    track: &TrackLocalStaticSample,
    data: Vec<u8>,
    duration: Duration,
) -> bool {
    let sample = Sample {
        data: Bytes::from(data),
        timestamp: SystemTime::now(),
        duration,
        ..Default::default()
    };
    track.write_sample(&sample).await.is_ok()
}

/// A VP8 frame header (keyframe start code and 640×480 on keyframes) and filler.
fn vp8_frame(n: u64, keyframe: bool, size: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(size + TRAILER_LEN);
    // Frame tag: bit 0 clear = keyframe; show_frame set.
    frame.extend_from_slice(&[if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00]);
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    }
    frame.resize(size, (n % 251) as u8);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_is_absent_from_plain_payloads() {
        let mut payload = vec![1, 2, 3];
        stamp(&mut payload, 123_456_789);
        assert_eq!(read_stamp(&payload), Some(123_456_789));
        assert_eq!(read_stamp(&[0; 20]), None);
        assert_eq!(read_stamp(&[1, 2]), None);
    }

    #[test]
    fn frame_sizes_average_to_the_bitrate() {
        let p = VideoProfile {
            kbps: 1000,
            fps: 30,
            keyframe_secs: 2,
        };
        let bytes: usize = (0..600).map(|n| p.frame_bytes(n)).sum();
        let kbps = bytes as f64 * 8.0 / 20.0 / 1000.0;
        assert!((kbps - 1000.0).abs() < 10.0, "{kbps} kbit/s");
        assert_eq!(p.frame_bytes(0), 3 * p.frame_bytes(1));
    }

    #[test]
    fn sequence_gaps_count_as_expected_and_wraps_do_not() {
        let mut t = TrackStats::new(false, 90_000);
        for (i, seq) in [65_534u16, 65_535, 0, 2, 3].into_iter().enumerate() {
            t.on_packet(seq, 0, i as u64 * 1000);
        }
        assert_eq!(t.packets, 5);
        assert_eq!(t.expected(), 6, "one gap across the wrap");
    }

    #[test]
    fn steady_arrivals_have_no_jitter_and_uneven_ones_do() {
        let mut steady = TrackStats::new(false, 90_000);
        let mut uneven = TrackStats::new(false, 90_000);
        for i in 0..100u32 {
            steady.on_packet(i as u16, i * 3000, u64::from(i) * 33_333);
            let wobble = if i % 2 == 0 { 0 } else { 10_000 };
            uneven.on_packet(i as u16, i * 3000, u64::from(i) * 33_333 + wobble);
        }
        assert!(steady.jitter < 1.0, "{}", steady.jitter);
        // ±10 ms at 90 kHz is 900 clock units; the estimate converges towards it.
        assert!(uneven.jitter > 500.0, "{}", uneven.jitter);
    }
}
