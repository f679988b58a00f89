//! Real VP8 for publishers whose video kefu decodes: the beauty pipeline rightly drops
//! the load generator's synthetic frames (a header and filler), so a moving test
//! picture is encoded once with libvpx (kefu-synthetic) and sent in a loop, each frame
//! with the send-time trailer appended (the VP8 decoder ignores bytes after the last
//! partition's data). The test picture is simpler than a camera's, so libvpx makes
//! less of it than a camera stream's bitrate; [`Vp8Loop::padded_to`] adds filler
//! there too, so that forwarding carries a camera's bytes and packets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use kefu_proto::{Codec, Side};
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use super::media::{self, Tally};

/// kefu-synthetic's keyframe interval (libvpx `gop`), in frames.
pub const GOP: usize = 30;
/// kefu-synthetic's frame rate.
pub const FPS: u32 = 30;

/// Encoded frames; after the last comes the first again, a keyframe.
#[derive(Debug, Clone)]
pub struct Vp8Loop {
    frames: Vec<Arc<[u8]>>,
}

impl Vp8Loop {
    /// `gops` keyframe intervals of a `width`×`height` moving picture at [`FPS`].
    pub fn encode(width: u32, height: u32, gops: usize) -> anyhow::Result<Self> {
        let wanted = gops.max(1) * GOP;
        // One interval more than kept: libvpx holds its last frames back (the encoder
        // is never flushed).
        let secs = (wanted + GOP) as f32 / FPS as f32;
        let taps = kefu_synthetic::party_frames_sized(
            Side::Agent,
            440.0,
            0.0,
            Some((secs, width, height)),
            Instant::now(),
        )
        .map_err(|e| anyhow!("encoding the VP8 loop: {e}"))?;
        let video: Vec<_> = taps
            .into_iter()
            .filter(|t| t.codec == Codec::Vp8)
            .take(wanted)
            .collect();
        if video.len() < wanted {
            bail!("libvpx gave {} frames of {wanted}", video.len());
        }
        // The wrap restarts the decoder's references at the first frame, so that must be
        // a keyframe; with a length of whole intervals the keyframes keep their cadence
        // across it, as a camera's stream would.
        if let Some(i) = (0..wanted).step_by(GOP).find(|&i| !video[i].keyframe) {
            bail!("VP8 loop: frame {i} starts an interval but is not a keyframe");
        }
        Ok(Self {
            frames: video.into_iter().map(|t| t.data).collect(),
        })
    }

    /// Each frame grown by the same factor (zero bytes after its data, keyframes
    /// staying larger than deltas) to a mean of `kbps`; a loop already at or above it
    /// stays as it is.
    pub fn padded_to(mut self, kbps: u32) -> Self {
        let factor = f64::from(kbps) / self.kbps();
        if factor > 1.0 {
            for frame in &mut self.frames {
                let mut grown = frame.to_vec();
                grown.resize((frame.len() as f64 * factor).round() as usize, 0);
                *frame = grown.into();
            }
        }
        self
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Mean bitrate of the loop at [`FPS`], kbit/s.
    pub fn kbps(&self) -> f64 {
        let bytes: usize = self.frames.iter().map(|f| f.len()).sum();
        bytes as f64 * 8.0 * f64::from(FPS) / self.frames.len().max(1) as f64 / 1000.0
    }
}

/// Writes the loop's frames at [`FPS`] until aborted, starting after `phase`; frames
/// sent in the window count in `tally`.
pub async fn publish(
    track: Arc<TrackLocalStaticSample>,
    frames: Arc<Vp8Loop>,
    phase: Duration,
    tally: Arc<Tally>,
) {
    let period = Duration::from_secs(1) / FPS;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for frame in frames.frames.iter().cycle() {
        tick.tick().await;
        let sent = media::now_us();
        let mut data = Vec::with_capacity(frame.len() + media::TRAILER_LEN);
        data.extend_from_slice(frame);
        media::stamp(&mut data, sent);
        if media::write(&track, data, period).await && tally.window.contains(sent) {
            tally.sent_video_frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_is_whole_intervals_starting_with_a_keyframe() {
        let frames = Vp8Loop::encode(320, 240, 2).expect("libvpx encodes");
        assert_eq!(frames.len(), 2 * GOP);
        assert!(frames.kbps() > 50.0, "{} kbit/s", frames.kbps());
        let padded = frames.clone().padded_to(2000);
        assert!((padded.kbps() - 2000.0).abs() < 5.0, "{}", padded.kbps());
        assert_eq!(padded.frames[0][..16], frames.frames[0][..16]);
    }
}
