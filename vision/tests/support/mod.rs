//! Real models and real photos for the engine tests (fetched by deploy/fetch-models.sh).

#![allow(dead_code)]

use std::path::PathBuf;

use kefu_vision::engine::PHOTO_LIMITS;
use kefu_vision::{FaceEngine, Picture};
use opencv::core::{self, Mat, MatTraitConst, Rect, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn engine() -> FaceEngine {
    let dir = repo().join("models");
    FaceEngine::load(&dir).unwrap_or_else(|e| {
        panic!("{e}: the models come from deploy/fetch-models.sh (make test runs it)")
    })
}

pub fn photo_bytes(name: &str) -> Vec<u8> {
    let path = repo().join("test-data/faces").join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (deploy/fetch-models.sh)", path.display()))
}

pub fn photo(name: &str) -> Picture {
    Picture::decode(&photo_bytes(name), PHOTO_LIMITS).expect("test photo decodes")
}

/// What a webcam sends: a 640×480 picture with the face filling about 40 % of its
/// width (the photo cropped around the face, letterboxed to 4:3).
pub fn frame(name: &str) -> Mat {
    let pic = photo(name);
    let face = engine()
        .detect(&pic, 1280)
        .expect("engine works")
        .first()
        .copied()
        .unwrap_or_else(|| panic!("{name} has a face"));
    let (w, h) = (pic.width() as i32, pic.height() as i32);
    let cw = ((face.width / 0.4) as i32).min(w);
    let ch = (cw * 3 / 4).min(h);
    let x = ((face.x + face.width / 2.0) as i32 - cw / 2).clamp(0, w - cw);
    let y = ((face.y + face.height / 2.0) as i32 - ch / 2).clamp(0, h - ch);
    let crop = Mat::roi(pic.bgr(), Rect::new(x, y, cw, ch))
        .expect("crop")
        .try_clone()
        .expect("clone");
    letterbox(&crop, 640, 480)
}

pub fn letterbox(m: &Mat, w: i32, h: i32) -> Mat {
    let k = (f64::from(w) / f64::from(m.cols())).min(f64::from(h) / f64::from(m.rows()));
    let mut s = Mat::default();
    imgproc::resize(m, &mut s, Size::new(0, 0), k, k, imgproc::INTER_AREA).expect("resize");
    let mut out =
        Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(0.0)).expect("canvas");
    let (sw, sh) = (s.cols().min(w), s.rows().min(h));
    let mut roi =
        Mat::roi_mut(&mut out, Rect::new((w - sw) / 2, (h - sh) / 2, sw, sh)).expect("roi");
    Mat::roi(&s, Rect::new(0, 0, sw, sh))
        .expect("roi")
        .copy_to(&mut roi)
        .expect("copy");
    out
}

pub fn scaled(m: &Mat, longest: f64) -> Mat {
    let k = longest / f64::from(m.cols().max(m.rows()));
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(0, 0), k, k, imgproc::INTER_AREA).expect("resize");
    out
}

pub fn mirrored(m: &Mat) -> Mat {
    let mut out = Mat::default();
    core::flip(m, &mut out, 1).expect("flip");
    out
}

/// The photo as a flat print turned `yaw_deg` about its vertical axis and rotated
/// `roll_deg` in its plane, seen by a camera (a perspective warp of one picture).
pub fn flat_print_turned(m: &Mat, yaw_deg: f64, roll_deg: f64) -> Mat {
    let (w, h) = (f64::from(m.cols()), f64::from(m.rows()));
    let f = w.max(h);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (sy, cyaw) = yaw_deg.to_radians().sin_cos();
    let (sr, cr) = roll_deg.to_radians().sin_cos();
    // R = Rz(roll) · Ry(yaw); H = K R K⁻¹, with the print 1 focal length away.
    let r = [
        [cr * cyaw, -sr, cr * sy],
        [sr * cyaw, cr, sr * sy],
        [-sy, 0.0, cyaw],
    ];
    let k = [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]];
    let kinv = [
        [1.0 / f, 0.0, -cx / f],
        [0.0, 1.0 / f, -cy / f],
        [0.0, 0.0, 1.0],
    ];
    let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
        let mut o = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                o[i][j] = (0..3).map(|t| a[i][t] * b[t][j]).sum();
            }
        }
        o
    };
    let hm = mul(mul(k, r), kinv);
    let rows: Vec<Vec<f64>> = hm.iter().map(|r| r.to_vec()).collect();
    let hmat = Mat::from_slice_2d(&rows).expect("homography");
    let mut out = Mat::default();
    imgproc::warp_perspective(
        m,
        &mut out,
        &hmat,
        m.size().expect("size"),
        imgproc::INTER_LINEAR,
        core::BORDER_CONSTANT,
        Scalar::all(0.0),
    )
    .expect("warp");
    out
}

pub fn picture(m: Mat) -> Picture {
    Picture::from_bgr(m).expect("BGR picture")
}

pub fn jpeg(m: &Mat) -> Vec<u8> {
    let mut buf = core::Vector::<u8>::new();
    opencv::imgcodecs::imencode(".jpg", m, &mut buf, &core::Vector::new()).expect("encode");
    buf.to_vec()
}
