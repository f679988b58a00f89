//! Nudity screening: Yahoo's open_nsfw (BSD-2-Clause) as ONNX through cv::dnn, behind a
//! classifier trait the moderation pipeline asks. A missing or broken model is an
//! error at load, never a classifier that passes everything.

use std::path::Path;

use opencv::core::{self, Mat, Rect, Scalar, Size, Vector};
use opencv::dnn::{self, NetTrait, NetTraitConst};
use opencv::imgproc;
use opencv::prelude::*;

use crate::VisionError;
use crate::picture::Picture;

/// The model file inside the models folder (deploy/fetch-models.sh puts it there).
pub const NSFW_FILE: &str = "open_nsfw.onnx";

/// The reference preprocessing: resize to 256×256, centre crop 224×224, BGR minus the
/// training set's mean.
const RESIZE: i32 = 256;
const CROP: i32 = 224;
const MEAN_BGR: [f64; 3] = [104.0, 117.0, 123.0];

/// Scores a picture: the probability (0–1) that it shows nudity.
pub trait NudityClassifier: Send {
    fn nsfw_score(&mut self, picture: &Picture) -> Result<f32, VisionError>;
}

/// open_nsfw in OpenCV's DNN module.
pub struct OpenNsfw {
    net: dnn::Net,
}

impl std::fmt::Debug for OpenNsfw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenNsfw")
    }
}

impl OpenNsfw {
    /// Loads the model and runs it once on a grey picture: a file that loads but does
    /// not answer like open_nsfw is refused here, at start.
    pub fn load(dir: &Path) -> Result<Self, VisionError> {
        let path = dir.join(NSFW_FILE);
        let net = dnn::read_net_from_onnx(&path).map_err(|e| VisionError::model(&path, e))?;
        let mut model = Self { net };
        let grey = Mat::new_rows_cols_with_default(CROP, CROP, core::CV_8UC3, Scalar::all(128.0))?;
        let probe = Picture::from_bgr(grey)
            .ok_or_else(|| VisionError::Model("cannot build the probe picture".into()))?;
        let score = model
            .nsfw_score(&probe)
            .map_err(|e| VisionError::Model(format!("{}: {e}", path.display())))?;
        if !(0.0..=1.0).contains(&score) {
            return Err(VisionError::Model(format!(
                "{}: not a probability ({score}); is this open_nsfw?",
                path.display()
            )));
        }
        Ok(model)
    }

    /// The network's input: NHWC float32 [1, 224, 224, 3].
    fn input(picture: &Picture) -> Result<Mat, VisionError> {
        let mut resized = Mat::default();
        imgproc::resize(
            picture.bgr(),
            &mut resized,
            Size::new(RESIZE, RESIZE),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let off = (RESIZE - CROP) / 2;
        let crop = Mat::roi(&resized, Rect::new(off, off, CROP, CROP))?;
        let mut float = Mat::default();
        crop.convert_to(&mut float, core::CV_32FC3, 1.0, 0.0)?;
        let mut centred = Mat::default();
        core::subtract(
            &float,
            &Scalar::new(MEAN_BGR[0], MEAN_BGR[1], MEAN_BGR[2], 0.0),
            &mut centred,
            &core::no_array(),
            -1,
        )?;
        // A continuous 224×224×3 float picture is already the NHWC layout.
        let channels_flat = centred.reshape(1, 0)?;
        let flat: Vec<f32> = channels_flat.data_typed::<f32>()?.to_vec();
        let blob = Mat::from_slice(&flat)?;
        Ok(blob.reshape_nd(1, &[1, CROP, CROP, 3])?.try_clone()?)
    }
}

impl NudityClassifier for OpenNsfw {
    fn nsfw_score(&mut self, picture: &Picture) -> Result<f32, VisionError> {
        let blob = Self::input(picture)?;
        self.net.set_input(&blob, "", 1.0, Scalar::all(0.0))?;
        let names = self.net.get_unconnected_out_layers_names()?;
        let mut outputs = Vector::<Mat>::new();
        self.net.forward(&mut outputs, &names)?;
        let out = outputs.get(0)?;
        let probs = out.data_typed::<f32>()?;
        // [P(safe), P(nsfw)].
        match probs {
            [_, nsfw] if nsfw.is_finite() => Ok(*nsfw),
            _ => Err(VisionError::Model(format!(
                "open_nsfw gave {} values, not 2 probabilities",
                probs.len()
            ))),
        }
    }
}
