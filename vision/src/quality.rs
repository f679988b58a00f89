//! Whether a reference photo's face is good enough to enrol: size, light, sharpness,
//! measured on the aligned 112×112 crop SFace embeds.

use opencv::core::{self, Mat, MatTraitConst};
use opencv::imgproc;

use crate::VisionError;

/// Enrollment quality limits (calibrated on the test photos, docs/verification.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityLimits {
    /// Face box width in the photo, pixels.
    pub min_face_px: f32,
    /// Mean grey level of the aligned face, 0–255.
    pub min_brightness: f64,
    /// Variance of the Laplacian of the aligned face.
    pub min_sharpness: f64,
}

impl Default for QualityLimits {
    fn default() -> Self {
        Self {
            min_face_px: 80.0,
            min_brightness: 50.0,
            min_sharpness: 300.0,
        }
    }
}

/// Brightness and sharpness of an aligned BGR crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub brightness: f64,
    pub sharpness: f64,
}

pub fn measure(aligned: &Mat) -> Result<Quality, VisionError> {
    let mut grey = Mat::default();
    imgproc::cvt_color(aligned, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?;
    let brightness = core::mean(&grey, &core::no_array())?[0];
    let mut lap = Mat::default();
    imgproc::laplacian(
        &grey,
        &mut lap,
        core::CV_64F,
        3,
        1.0,
        0.0,
        core::BORDER_DEFAULT,
    )?;
    let mut mean = Mat::default();
    let mut dev = Mat::default();
    core::mean_std_dev(&lap, &mut mean, &mut dev, &core::no_array())?;
    let sd = *dev.at::<f64>(0)?;
    Ok(Quality {
        brightness,
        sharpness: sd * sd,
    })
}
