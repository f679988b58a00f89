//! Face detection with five landmarks: OpenCV's YuNet (2023mar) through cv::dnn, with
//! our own decoder of its outputs (OpenCV 4.6's FaceDetectorYN only knows the older
//! model's output names).

use std::path::Path;

use opencv::core::{self, Mat, MatTraitConst, MatTraitConstManual, Scalar, Size, Vector};
use opencv::dnn::{self, NetTrait, NetTraitConst};
use opencv::imgproc;

use crate::VisionError;
use crate::geometry::{DetectedFace, Landmarks, Point};
use crate::picture::Picture;

const STRIDES: [i32; 3] = [8, 16, 32];
/// The network's input sides must be multiples of this.
const DIVISOR: i32 = 32;
/// Faces below this confidence are not faces.
pub const SCORE_THRESHOLD: f32 = 0.7;
const NMS_IOU: f32 = 0.3;

pub struct YuNet {
    net: dnn::Net,
    /// Output names in `STRIDES` order: cls, obj, bbox, kps.
    names: Vector<String>,
}

impl YuNet {
    pub fn load(path: &Path) -> Result<Self, VisionError> {
        let net = dnn::read_net_from_onnx(path).map_err(|e| VisionError::model(path, e))?;
        let mut names = Vector::<String>::new();
        for kind in ["cls", "obj", "bbox", "kps"] {
            for s in STRIDES {
                names.push(&format!("{kind}_{s}"));
            }
        }
        let outputs = net
            .get_unconnected_out_layers_names()
            .map_err(|e| VisionError::model(path, e))?;
        for name in &names {
            if !outputs.iter().any(|o| o == name) {
                return Err(VisionError::Model(format!(
                    "{}: no output {name}; is this YuNet 2023mar?",
                    path.display()
                )));
            }
        }
        Ok(Self { net, names })
    }

    /// Faces in `picture`, detected on a copy whose longest side is at most `max_side`;
    /// coordinates are in the original picture. Best first.
    pub fn detect(
        &mut self,
        picture: &Picture,
        max_side: u32,
    ) -> Result<Vec<DetectedFace>, VisionError> {
        let (w, h) = (picture.width() as f32, picture.height() as f32);
        let scale = (max_side as f32 / w.max(h)).min(1.0);
        let (sw, sh) = (
            ((w * scale).round() as i32).max(1),
            ((h * scale).round() as i32).max(1),
        );
        let mut small = Mat::default();
        if scale < 1.0 {
            imgproc::resize(
                picture.bgr(),
                &mut small,
                Size::new(sw, sh),
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )?;
        } else {
            small = picture.bgr().clone();
        }
        let pad_w = (sw + DIVISOR - 1) / DIVISOR * DIVISOR;
        let pad_h = (sh + DIVISOR - 1) / DIVISOR * DIVISOR;
        let mut padded = Mat::default();
        core::copy_make_border(
            &small,
            &mut padded,
            0,
            pad_h - sh,
            0,
            pad_w - sw,
            core::BORDER_CONSTANT,
            Scalar::all(0.0),
        )?;
        let blob = dnn::blob_from_image(
            &padded,
            1.0,
            Size::new(pad_w, pad_h),
            Scalar::all(0.0),
            false,
            false,
            core::CV_32F,
        )?;
        self.net.set_input(&blob, "", 1.0, Scalar::all(0.0))?;
        let mut outputs = Vector::<Mat>::new();
        self.net.forward(&mut outputs, &self.names)?;
        let mut faces = decode(&outputs, pad_w, pad_h)?;
        faces = non_max_suppression(faces);
        for f in &mut faces {
            rescale(f, 1.0 / scale);
        }
        Ok(faces)
    }
}

fn floats(m: &Mat) -> Result<&[f32], VisionError> {
    if !m.is_continuous() {
        return Err(VisionError::Model("YuNet output not continuous".into()));
    }
    Ok(m.data_typed::<f32>()?)
}

fn decode(outputs: &Vector<Mat>, pad_w: i32, pad_h: i32) -> Result<Vec<DetectedFace>, VisionError> {
    let n = STRIDES.len();
    let mut faces = Vec::new();
    for (i, stride) in STRIDES.iter().enumerate() {
        let (cols, rows) = (pad_w / stride, pad_h / stride);
        let cells = (cols * rows) as usize;
        let cls = outputs.get(i)?;
        let obj = outputs.get(i + n)?;
        let bbox = outputs.get(i + 2 * n)?;
        let kps = outputs.get(i + 3 * n)?;
        let (cls, obj, bbox, kps) = (floats(&cls)?, floats(&obj)?, floats(&bbox)?, floats(&kps)?);
        if cls.len() < cells
            || obj.len() < cells
            || bbox.len() < cells * 4
            || kps.len() < cells * 10
        {
            return Err(VisionError::Model(
                "YuNet output has an unexpected size".into(),
            ));
        }
        let s = *stride as f32;
        for idx in 0..cells {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            // NaN (a broken model) is no face either.
            if score.is_nan() || score < SCORE_THRESHOLD {
                continue;
            }
            let (c, r) = ((idx % cols as usize) as f32, (idx / cols as usize) as f32);
            let b = &bbox[idx * 4..idx * 4 + 4];
            let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
            let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
            let k = &kps[idx * 10..idx * 10 + 10];
            let lm =
                std::array::from_fn(|j| Point::new((k[2 * j] + c) * s, (k[2 * j + 1] + r) * s));
            let finite = [cx, cy, bw, bh].iter().all(|v| v.is_finite())
                && lm
                    .iter()
                    .all(|p: &Point| p.x.is_finite() && p.y.is_finite());
            if !finite {
                continue;
            }
            faces.push(DetectedFace {
                x: cx - bw / 2.0,
                y: cy - bh / 2.0,
                width: bw,
                height: bh,
                landmarks: Landmarks(lm),
                score,
            });
        }
    }
    Ok(faces)
}

fn iou(a: &DetectedFace, b: &DetectedFace) -> f32 {
    let x1 = a.x.max(b.x);
    let y1 = a.y.max(b.y);
    let x2 = (a.x + a.width).min(b.x + b.width);
    let y2 = (a.y + a.height).min(b.y + b.height);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a.width * a.height + b.width * b.height - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

fn non_max_suppression(mut faces: Vec<DetectedFace>) -> Vec<DetectedFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DetectedFace> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(k, &f) < NMS_IOU) {
            kept.push(f);
        }
    }
    kept
}

fn rescale(f: &mut DetectedFace, k: f32) {
    f.x *= k;
    f.y *= k;
    f.width *= k;
    f.height *= k;
    for p in &mut f.landmarks.0 {
        p.x *= k;
        p.y *= k;
    }
}

impl std::fmt::Debug for YuNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("YuNet")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> DetectedFace {
        DetectedFace {
            x,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            score,
            ..Default::default()
        }
    }

    #[test]
    fn overlapping_boxes_keep_the_best_and_distinct_ones_stay() {
        let kept = non_max_suppression(vec![face(0.0, 0.8), face(1.0, 0.9), face(50.0, 0.75)]);
        let xs: Vec<f32> = kept.iter().map(|f| f.x).collect();
        assert_eq!(xs, vec![1.0, 50.0]);
    }
}
