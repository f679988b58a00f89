//! Decoding untrusted image bytes into a BGR picture, with limits checked first.

use opencv::core::{Mat, MatTraitConst, Vector};
use opencv::imgcodecs;

use crate::header::read_header;

/// Limits on what is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    /// Longest side, in pixels.
    pub max_side: u32,
}

/// Why bytes were not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JPEG or PNG image")]
    NotAnImage,
    #[error("the image is larger than allowed")]
    TooLarge,
}

/// A decoded picture, 8-bit BGR.
pub struct Picture {
    pub(crate) bgr: Mat,
}

impl Picture {
    pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Picture, DecodeError> {
        Self::decode_at_most(bytes, limits, u32::MAX)
    }

    /// Like [`Picture::decode`], but a JPEG at least twice (four times) `side` on its
    /// longest side is decoded at half (a quarter) of its size: the decoder skips the
    /// detail instead of decoding it and throwing it away.
    pub fn decode_at_most(
        bytes: &[u8],
        limits: DecodeLimits,
        side: u32,
    ) -> Result<Picture, DecodeError> {
        if bytes.len() > limits.max_bytes {
            return Err(DecodeError::TooLarge);
        }
        let header = read_header(bytes).ok_or(DecodeError::NotAnImage)?;
        let longest = header.width.max(header.height);
        if longest > limits.max_side {
            return Err(DecodeError::TooLarge);
        }
        let jpeg = header.format == crate::header::ImageFormat::Jpeg;
        let flag = match longest / side.max(1) {
            _ if !jpeg => imgcodecs::IMREAD_COLOR,
            0 | 1 => imgcodecs::IMREAD_COLOR,
            2 | 3 => imgcodecs::IMREAD_REDUCED_COLOR_2,
            _ => imgcodecs::IMREAD_REDUCED_COLOR_4,
        };
        let buf = Vector::<u8>::from_slice(bytes);
        let bgr = imgcodecs::imdecode(&buf, flag).map_err(|_| DecodeError::NotAnImage)?;
        if bgr.empty() || bgr.cols() <= 0 || bgr.rows() <= 0 {
            return Err(DecodeError::NotAnImage);
        }
        Ok(Picture { bgr })
    }

    /// From an 8-bit BGR matrix (tests and benchmarks build their own pictures).
    pub fn from_bgr(bgr: Mat) -> Option<Picture> {
        (bgr.typ() == opencv::core::CV_8UC3 && !bgr.empty()).then_some(Picture { bgr })
    }

    pub fn width(&self) -> u32 {
        self.bgr.cols().max(0) as u32
    }

    pub fn height(&self) -> u32 {
        self.bgr.rows().max(0) as u32
    }

    pub fn bgr(&self) -> &Mat {
        &self.bgr
    }
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Picture")
    }
}

/// A small grey copy of a frame, for comparing later frames with it.
#[derive(Clone)]
pub struct GreySnapshot {
    pub(crate) grey: Mat,
    /// Snapshot pixels per picture pixel.
    pub(crate) scale: f32,
}

impl std::fmt::Debug for GreySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GreySnapshot")
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

/// Longest side of a grey snapshot.
const SNAPSHOT_SIDE: f32 = 320.0;

impl Picture {
    pub(crate) fn grey_snapshot(&self) -> Result<GreySnapshot, opencv::Error> {
        use opencv::core::Size;
        use opencv::imgproc;
        let scale = (SNAPSHOT_SIDE / self.width().max(self.height()) as f32).min(1.0);
        let mut grey = Mat::default();
        imgproc::cvt_color(&self.bgr, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?;
        let mut small = Mat::default();
        imgproc::resize(
            &grey,
            &mut small,
            Size::new(0, 0),
            f64::from(scale),
            f64::from(scale),
            imgproc::INTER_AREA,
        )?;
        Ok(GreySnapshot { grey: small, scale })
    }
}
