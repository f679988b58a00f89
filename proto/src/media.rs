//! What the SFU hands to whoever listens to a room (the recorder today, moderation
//! next): one depacketized frame of one side, through a [`FrameSink`].
//!
//! Plain types on purpose, so the SFU can tap without knowing about FFmpeg or object
//! storage, and a listener can be driven by tests without an SFU.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::ids::ParticipantId;
use crate::side::Side;

/// Codecs the SFU forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }
}

/// The video codecs a pipeline decodes and encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    Vp8,
    H264,
}

impl From<VideoCodec> for Codec {
    fn from(c: VideoCodec) -> Self {
        match c {
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::H264 => Codec::H264,
        }
    }
}

/// The sender's clock from its latest RTCP sender report: `ntp_time` is when the
/// sender's RTP clock read `rtp_time`. It ties a party's audio and video together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    pub ntp_time: SystemTime,
    pub rtp_time: u64,
}

/// One depacketized frame (a whole video frame or one Opus packet).
#[derive(Debug, Clone)]
pub struct TapFrame {
    pub side: Side,
    pub codec: Codec,
    /// RTP timestamp (extended over wrap-arounds) in `clock_rate` units.
    pub rtp_time: u64,
    pub clock_rate: u32,
    /// When the first packet of the frame reached the SFU.
    pub arrival: Instant,
    pub sender_clock: Option<SenderClock>,
    /// Whether nothing was lost since the previous frame of this stream.
    pub contiguous: bool,
    pub keyframe: bool,
    pub data: Arc<[u8]>,
}

/// A participant of a tapped room and its side of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapParty {
    pub participant: ParticipantId,
    pub side: Side,
}

/// Where the SFU writes a room's frames. Called on the SFU's own thread for every
/// frame: it must never block (a full queue drops the frame and says so).
pub trait FrameSink: Send + Sync + Debug {
    /// Queues a frame; false when it was dropped (queue full or listener gone).
    fn try_send(&self, frame: TapFrame) -> bool;
}

/// A decoded picture of one side, I420 and tightly packed: `width × height` bytes of
/// Y, then U, then V, each of `(width / 2) × (height / 2)` bytes (sizes are even).
#[derive(Clone)]
pub struct I420Picture {
    pub side: Side,
    /// Who decoded it (so each decode path can be counted).
    pub source: PictureSource,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Who decoded a picture handed to moderation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PictureSource {
    /// The recorder, which decodes both parties for the recording anyway.
    Recorder,
    /// The beauty pipeline, which decodes the agent's video anyway.
    Pipeline,
    /// Moderation's own decoder (nothing else decodes the stream).
    OwnDecoder,
}

impl PictureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PictureSource::Recorder => "recorder",
            PictureSource::Pipeline => "pipeline",
            PictureSource::OwnDecoder => "own_decoder",
        }
    }
}

impl I420Picture {
    /// Pictures larger than this on either side are handed to moderation decimated
    /// (the classifier looks at 224×224; a huge frame must not cost a huge copy).
    pub const MAX_SIDE: u32 = 1920;

    /// Packs a decoder's strided I420 planes (`(plane, stride)` for Y, U, V) of a
    /// `width × height` picture: cropped to even sizes, and larger than
    /// [`Self::MAX_SIDE`] taken every k-th pixel and row (the classifier needs no
    /// more). `None` for a picture too small, or planes shorter than claimed.
    pub fn pack(
        planes: [(&[u8], usize); 3],
        width: u32,
        height: u32,
        side: Side,
        source: PictureSource,
    ) -> Option<I420Picture> {
        let step = width.max(height).div_ceil(Self::MAX_SIDE).max(1) as usize;
        let (w, h) = ((width as usize / step) & !1, (height as usize / step) & !1);
        if w < 2 || h < 2 {
            return None;
        }
        let mut data = Vec::with_capacity(Self::len_for(w as u32, h as u32));
        for (i, (plane, stride)) in planes.into_iter().enumerate() {
            let (cols, rows) = if i == 0 { (w, h) } else { (w / 2, h / 2) };
            for row in 0..rows {
                let start = (row * step).checked_mul(stride)?;
                let line = plane.get(start..start.checked_add((cols - 1) * step + 1)?)?;
                if step == 1 {
                    data.extend_from_slice(line);
                } else {
                    data.extend(line.iter().step_by(step));
                }
            }
        }
        Some(I420Picture {
            side,
            source,
            width: w as u32,
            height: h as u32,
            data,
        })
    }

    /// The planes' total size for even `width × height`.
    pub fn len_for(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        w * h + 2 * (w / 2) * (h / 2)
    }

    /// Whether `data` holds exactly the planes the size says.
    pub fn is_well_formed(&self) -> bool {
        self.width >= 2
            && self.height >= 2
            && self.width.is_multiple_of(2)
            && self.height.is_multiple_of(2)
            && self.data.len() == Self::len_for(self.width, self.height)
    }
}

impl Debug for I420Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the pixels: they are somebody's face.
        f.debug_struct("I420Picture")
            .field("side", &self.side)
            .field("source", &self.source)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// Where whoever decodes a party's video (the recorder, or moderation's own decoder
/// when nothing else decodes) hands pictures to content moderation. Called on the
/// decoding thread for every picture: both methods must be cheap and never block.
pub trait PictureSink: Send + Sync + Debug {
    /// A picture of `side` was just decoded; true when moderation wants it now (then
    /// hand it over with [`PictureSink::offer`]). Also how moderation learns that a
    /// party's video runs (a camera turned on after a pause starts a new warm-up).
    fn decoded(&self, side: Side) -> bool;

    /// The picture asked for by [`PictureSink::decoded`].
    fn offer(&self, picture: I420Picture);

    /// The decoder handing pictures over stopped for good before the call ended (the
    /// recording failed): moderation must decode the call some other way.
    fn source_lost(&self) {}

    /// The picture asked for could not be handed over (a format or size moderation
    /// does not take): no sample this time.
    fn skipped(&self, _side: Side) {}

    /// Whether another decoder already hands over `side`'s pictures (the beauty
    /// pipeline does the agent's): a decoder of moderation's own then skips that side.
    fn decoded_elsewhere(&self, _side: Side) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes(h: usize, stride: usize) -> Vec<u8> {
        // Luma: the column number; chroma: 128.
        let mut v = Vec::new();
        for _ in 0..h {
            v.extend((0..stride).map(|x| (x % 256) as u8));
        }
        v.resize(stride * h + 2 * (stride / 2) * (h / 2), 128);
        v
    }

    #[test]
    fn packing_crops_to_even_and_refuses_short_planes() {
        let (w, h, stride) = (641usize, 361usize, 704usize);
        let data = planes(h, stride);
        let (y, rest) = data.split_at(stride * h);
        let (u, v) = rest.split_at((stride / 2) * (h / 2));
        let p = I420Picture::pack(
            [(y, stride), (u, stride / 2), (v, stride / 2)],
            w as u32,
            h as u32,
            Side::Customer,
            PictureSource::OwnDecoder,
        )
        .expect("packed");
        assert_eq!((p.width, p.height), (640, 360));
        assert!(p.is_well_formed());
        assert_eq!(&p.data[..3], &[0, 1, 2]);
        assert!(
            I420Picture::pack(
                [(&y[..100], stride), (u, stride / 2), (v, stride / 2)],
                w as u32,
                h as u32,
                Side::Agent,
                PictureSource::Recorder
            )
            .is_none(),
            "a plane shorter than claimed is refused, not read past"
        );
        assert!(
            I420Picture::pack(
                [(y, usize::MAX), (u, 1), (v, 1)],
                4,
                4,
                Side::Agent,
                PictureSource::Recorder
            )
            .is_none()
        );
    }

    #[test]
    fn huge_pictures_are_decimated_not_refused() {
        let (w, h) = (3840usize, 2160usize);
        let data = planes(h, w);
        let (y, rest) = data.split_at(w * h);
        let (u, v) = rest.split_at((w / 2) * (h / 2));
        let p = I420Picture::pack(
            [(y, w), (u, w / 2), (v, w / 2)],
            w as u32,
            h as u32,
            Side::Customer,
            PictureSource::Recorder,
        )
        .expect("packed");
        assert_eq!((p.width, p.height), (1920, 1080));
        assert!(p.is_well_formed());
        assert_eq!(&p.data[..3], &[0, 2, 4], "every second column");
    }
}
