//! Face embeddings: OpenCV's SFace through cv::FaceRecognizerSF (align, then embed).

use std::path::Path;

use opencv::core::{self, Mat, Ptr};
use opencv::objdetect::{FaceRecognizerSF, FaceRecognizerSFTrait, FaceRecognizerSFTraitConst};
use opencv::prelude::*;

use crate::VisionError;
use crate::embedding::Embedding;
use crate::geometry::DetectedFace;
use crate::picture::Picture;

pub struct SFace {
    model: Ptr<FaceRecognizerSF>,
}

impl SFace {
    pub fn load(path: &Path) -> Result<Self, VisionError> {
        let name = path
            .to_str()
            .ok_or_else(|| VisionError::Model("model path is not UTF-8".into()))?;
        let model =
            FaceRecognizerSF::create(name, "", 0, 0).map_err(|e| VisionError::model(path, e))?;
        Ok(Self { model })
    }

    /// The face cut out and aligned to SFace's 112×112 template.
    pub fn align(&self, picture: &Picture, face: &DetectedFace) -> Result<Mat, VisionError> {
        let mut row = vec![face.x, face.y, face.width, face.height];
        for p in &face.landmarks.0 {
            row.extend([p.x, p.y]);
        }
        row.push(face.score);
        let face_box = Mat::from_slice(&row)?;
        let mut aligned = Mat::default();
        self.model
            .align_crop(picture.bgr(), &face_box, &mut aligned)?;
        Ok(aligned)
    }

    /// The embedding of an aligned crop; `mirrored` flips it left to right first.
    pub fn embed(&mut self, aligned: &Mat, mirrored: bool) -> Result<Embedding, VisionError> {
        let input = if mirrored {
            let mut flipped = Mat::default();
            core::flip(aligned, &mut flipped, 1)?;
            flipped
        } else {
            aligned.clone()
        };
        let mut feature = Mat::default();
        self.model.feature(&input, &mut feature)?;
        let values = feature.data_typed::<f32>()?.to_vec();
        Embedding::new(values)
            .ok_or_else(|| VisionError::Model("SFace gave an invalid embedding".into()))
    }
}

impl std::fmt::Debug for SFace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SFace")
    }
}
