//! The face engine: both models loaded, enrollment of reference photos and analysis of
//! challenge frames. One engine is used by one thread at a time (`&mut self`).

use std::path::Path;

use opencv::core::Mat;

use crate::VisionError;
use crate::detector::{SCORE_THRESHOLD, YuNet};
use crate::embedding::Embedding;
use crate::geometry::DetectedFace;
use crate::liveness::{FaceSample, FrameFaces, Snapshot};
use crate::picture::{DecodeError, DecodeLimits, Picture};
use crate::quality::{self, QualityLimits};
use crate::recognizer::SFace;

/// Model files inside the models folder (deploy/fetch-models.sh puts them there).
pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar.onnx";
pub const RECOGNIZER_FILE: &str = "face_recognition_sface_2021dec.onnx";

/// Reference photos: 10 MB, 4096 px.
pub const PHOTO_LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 10 * 1024 * 1024,
    max_side: 4096,
};
/// Challenge frames are small camera pictures.
pub const FRAME_LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1024 * 1024,
    max_side: 1920,
};
/// Detection runs on a copy this size at most: 640 for photos, 320 for live frames
/// (YuNet: ~5 ms at 320×240, ~21 ms at 640×480 on one core here).
const PHOTO_DETECT_SIDE: u32 = 640;
const FRAME_DETECT_SIDE: u32 = 320;

/// Why a reference photo was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    #[error("not an image")]
    NotAnImage,
    #[error("image too large")]
    TooLarge,
    #[error("no face found")]
    NoFace,
    #[error("more than one face")]
    SeveralFaces,
    #[error("face too small")]
    FaceTooSmall,
    #[error("too dark")]
    TooDark,
    #[error("too blurry")]
    TooBlurry,
}

impl EnrollError {
    pub fn code(self) -> &'static str {
        match self {
            EnrollError::NotAnImage => "photo_not_an_image",
            EnrollError::TooLarge => "photo_too_large",
            EnrollError::NoFace => "photo_no_face",
            EnrollError::SeveralFaces => "photo_several_faces",
            EnrollError::FaceTooSmall => "photo_face_too_small",
            EnrollError::TooDark => "photo_too_dark",
            EnrollError::TooBlurry => "photo_too_blurry",
        }
    }
}

impl From<DecodeError> for EnrollError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::NotAnImage => EnrollError::NotAnImage,
            DecodeError::TooLarge => EnrollError::TooLarge,
        }
    }
}

/// What the engine can do, as signaling sees it.
pub trait FaceVision: Send {
    /// A reference photo → its template, or why it is not usable.
    fn enroll(&mut self, photo: &[u8]) -> Result<Result<Embedding, EnrollError>, VisionError>;
    /// A challenge frame → its faces, and its embeddings on demand.
    fn analyze<'a>(
        &'a mut self,
        frame: &[u8],
    ) -> Result<Result<AnalyzedFrame<'a>, DecodeError>, VisionError>;
}

/// The OpenCV engine.
pub struct FaceEngine {
    detector: YuNet,
    recognizer: SFace,
    pub quality: QualityLimits,
}

impl FaceEngine {
    /// Loads both models from `dir`.
    pub fn load(dir: &Path) -> Result<Self, VisionError> {
        Ok(Self {
            detector: YuNet::load(&dir.join(DETECTOR_FILE))?,
            recognizer: SFace::load(&dir.join(RECOGNIZER_FILE))?,
            quality: QualityLimits::default(),
        })
    }

    /// Faces in a picture, best first.
    pub fn detect(
        &mut self,
        picture: &Picture,
        max_side: u32,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        self.detector.detect(picture, max_side)
    }

    /// The embedding of one face (optionally of its mirror image).
    pub fn embed(
        &mut self,
        picture: &Picture,
        face: &DetectedFace,
        mirrored: bool,
    ) -> Result<Embedding, VisionError> {
        let aligned = self.recognizer.align(picture, face)?;
        self.recognizer.embed(&aligned, mirrored)
    }

    /// Enrollment of a decoded picture.
    pub fn enroll_picture(
        &mut self,
        picture: &Picture,
    ) -> Result<Result<Embedding, EnrollError>, VisionError> {
        let faces = self.detector.detect(picture, PHOTO_DETECT_SIDE)?;
        let face = match faces.as_slice() {
            [] => return Ok(Err(EnrollError::NoFace)),
            [one] => *one,
            _ => return Ok(Err(EnrollError::SeveralFaces)),
        };
        if face.width < self.quality.min_face_px {
            return Ok(Err(EnrollError::FaceTooSmall));
        }
        let aligned = self.recognizer.align(picture, &face)?;
        let q = quality::measure(&aligned)?;
        if q.brightness < self.quality.min_brightness {
            return Ok(Err(EnrollError::TooDark));
        }
        if q.sharpness < self.quality.min_sharpness {
            return Ok(Err(EnrollError::TooBlurry));
        }
        Ok(Ok(self.recognizer.embed(&aligned, false)?))
    }

    /// Brightness and sharpness of the best face (calibration and diagnostics).
    pub fn photo_quality(
        &mut self,
        picture: &Picture,
    ) -> Result<Option<quality::Quality>, VisionError> {
        let faces = self.detector.detect(picture, PHOTO_DETECT_SIDE)?;
        let Some(face) = faces.first() else {
            return Ok(None);
        };
        let aligned = self.recognizer.align(picture, face)?;
        Ok(Some(quality::measure(&aligned)?))
    }

    /// Analysis of a decoded frame.
    pub fn analyze_picture(&mut self, picture: Picture) -> Result<AnalyzedFrame<'_>, VisionError> {
        let faces = self.detector.detect(&picture, FRAME_DETECT_SIDE)?;
        let (summary, face) = match faces.as_slice() {
            [] => (FrameFaces::None, None),
            [one] => match one.landmarks.pose() {
                Some(pose) => (FrameFaces::One(pose), Some(*one)),
                None => (FrameFaces::None, None),
            },
            _ => (FrameFaces::Several, None),
        };
        Ok(AnalyzedFrame {
            engine: self,
            picture,
            face,
            faces: summary,
            aligned: None,
            cached: [None, None],
            error: None,
        })
    }
}

impl FaceVision for FaceEngine {
    fn enroll(&mut self, photo: &[u8]) -> Result<Result<Embedding, EnrollError>, VisionError> {
        match Picture::decode(photo, PHOTO_LIMITS) {
            Ok(picture) => self.enroll_picture(&picture),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn analyze<'a>(
        &'a mut self,
        frame: &[u8],
    ) -> Result<Result<AnalyzedFrame<'a>, DecodeError>, VisionError> {
        // Live frames are judged at detection size: a 640×480 JPEG decodes straight to
        // 320×240 (landmarks, the ~100 px face SFace aligns to 112×112).
        match Picture::decode_at_most(frame, FRAME_LIMITS, FRAME_DETECT_SIDE) {
            Ok(picture) => Ok(Ok(self.analyze_picture(picture)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

/// One analysed frame: its faces now, its embeddings when the judge asks.
pub struct AnalyzedFrame<'a> {
    engine: &'a mut FaceEngine,
    picture: Picture,
    face: Option<DetectedFace>,
    pub faces: FrameFaces,
    aligned: Option<Mat>,
    /// Embeddings computed so far: plain, mirrored.
    cached: [Option<Embedding>; 2],
    /// The first engine error met while computing an embedding.
    pub error: Option<VisionError>,
}

impl AnalyzedFrame<'_> {
    fn embed(&mut self, mirrored: bool) -> Option<Embedding> {
        let face = self.face?;
        if let Some(e) = &self.cached[usize::from(mirrored)] {
            return Some(e.clone());
        }
        let result = (|| {
            if self.aligned.is_none() {
                self.aligned = Some(self.engine.recognizer.align(&self.picture, &face)?);
            }
            let aligned = self
                .aligned
                .as_ref()
                .ok_or_else(|| VisionError::Model("no crop".into()))?;
            self.engine.recognizer.embed(aligned, mirrored)
        })();
        match result {
            Ok(e) => {
                self.cached[usize::from(mirrored)] = Some(e.clone());
                Some(e)
            }
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// The single face found, if exactly one was.
    pub fn face(&self) -> Option<&DetectedFace> {
        self.face.as_ref()
    }
}

impl AnalyzedFrame<'_> {
    fn note<T>(&mut self, r: Result<Option<T>, opencv::Error>) -> Option<T> {
        r.unwrap_or_else(|e| {
            self.error.get_or_insert(e.into());
            None
        })
    }
}

impl FaceSample for AnalyzedFrame<'_> {
    fn embedding(&mut self) -> Option<Embedding> {
        self.embed(false)
    }

    fn mirrored_embedding(&mut self) -> Option<Embedding> {
        self.embed(true)
    }

    fn snapshot(&mut self) -> Option<Snapshot> {
        let face = self.face?;
        let grey = self.picture.grey_snapshot().map(Some);
        let grey = self.note(grey)?;
        Some(Snapshot {
            landmarks: face.landmarks,
            picture: Some(grey),
        })
    }

    fn plane_match(&mut self, frontal: &Snapshot) -> Option<f32> {
        let face = self.face?;
        let frontal_grey = frontal.picture.as_ref()?;
        let current = self.picture.grey_snapshot().map(Some);
        let current = self.note(current)?;
        let m = crate::plane::plane_match(frontal_grey, &frontal.landmarks, &current, &face);
        self.note(m)
    }
}

/// Faces with at least this confidence count (several-faces check included).
pub const FACE_SCORE: f32 = SCORE_THRESHOLD;

impl std::fmt::Debug for FaceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaceEngine")
    }
}

impl std::fmt::Debug for AnalyzedFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyzedFrame")
            .field("faces", &self.faces)
            .finish_non_exhaustive()
    }
}
