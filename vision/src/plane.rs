//! Is a face a flat picture moved about? The frontal frame is warped by the homography
//! its eyes and mouth corners make with the current frame's; a print then lines up
//! with the current face pixel for pixel, a real head turning in 3D does not.

use opencv::core::{self, Mat, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;

use crate::geometry::{DetectedFace, Landmarks, Point, homography};
use crate::picture::GreySnapshot;

/// Normalised correlation of `current`'s face region with the frontal snapshot warped
/// onto it; `None` when the geometry is degenerate.
pub fn plane_match(
    frontal: &GreySnapshot,
    frontal_landmarks: &Landmarks,
    current: &GreySnapshot,
    face: &DetectedFace,
) -> Result<Option<f32>, opencv::Error> {
    let outer = |l: &Landmarks, k: f32| {
        [l.0[0], l.0[1], l.0[3], l.0[4]].map(|p| Point::new(p.x * k, p.y * k))
    };
    let Some(h) = homography(
        outer(frontal_landmarks, frontal.scale),
        outer(&face.landmarks, current.scale),
    ) else {
        return Ok(None);
    };
    let rows: Vec<Vec<f64>> = h.chunks(3).map(<[f64]>::to_vec).collect();
    let hm = Mat::from_slice_2d(&rows)?;
    let mut warped = Mat::default();
    imgproc::warp_perspective(
        &frontal.grey,
        &mut warped,
        &hm,
        current.grey.size()?,
        imgproc::INTER_LINEAR,
        core::BORDER_CONSTANT,
        Scalar::all(0.0),
    )?;
    // The inner part of the face box: cheeks, eyes, nose, mouth; little background.
    let k = current.scale;
    let (w, h) = (face.width * k * 0.7, face.height * k * 0.7);
    let (x, y) = (
        face.x * k + face.width * k * 0.15,
        face.y * k + face.height * k * 0.15,
    );
    let bounds = Rect::new(0, 0, current.grey.cols(), current.grey.rows());
    let region = Rect::new(x as i32, y as i32, w as i32, h as i32) & bounds;
    if region.width < 8 || region.height < 8 {
        return Ok(None);
    }
    let a = Mat::roi(&current.grey, region)?;
    let b = Mat::roi(&warped, region)?;
    let mut score = Mat::default();
    imgproc::match_template(
        &a,
        &b,
        &mut score,
        imgproc::TM_CCOEFF_NORMED,
        &core::no_array(),
    )?;
    let direct = *score.at_2d::<f32>(0, 0)?;
    // Five landmarks place a print only roughly; let the pixels refine the plane
    // (ECC, a homography) and keep the better fit.
    let refined = refine(&a.try_clone()?, &b.try_clone()?).unwrap_or(f32::MIN);
    let best = direct.max(refined);
    Ok(best.is_finite().then_some(best))
}

/// The correlation after aligning `moving` to `fixed` by the best homography (ECC).
fn refine(fixed: &Mat, moving: &Mat) -> Option<f32> {
    let mut warp = Mat::eye(3, 3, core::CV_32F).ok()?.to_mat().ok()?;
    let criteria =
        core::TermCriteria::new(core::TermCriteria_COUNT + core::TermCriteria_EPS, 30, 1e-4)
            .ok()?;
    let rho = opencv::video::find_transform_ecc(
        fixed,
        moving,
        &mut warp,
        opencv::video::MOTION_HOMOGRAPHY,
        criteria,
        &core::no_array(),
        5,
    )
    .ok()?;
    Some(rho as f32)
}
