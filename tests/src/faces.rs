//! Camera-like frames made from the real test photos (deploy/fetch-models.sh puts them
//! in test-data/faces): each photo cropped around its face and letterboxed into
//! 640×480, the face about 40 % of the width, as a webcam shows an agent.

use std::path::PathBuf;

use opencv::core::{self, Mat, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// The photos and where their faces are (x, y, w, h of the crop in the photo). The
/// same rectangles are in tests/e2e/verification.test.mjs.
/// x, y, width, height in the photo.
type Crop = (i32, i32, i32, i32);

pub const CROPS: [(&str, Crop); 4] = [
    ("obama.jpg", (201, 39, 577, 432)),
    ("obama2.jpg", (0, 161, 626, 516)),
    ("obama3.jpg", (448, 190, 658, 493)),
    ("biden.jpg", (228, 119, 691, 518)),
];

/// Frontal; a turn to the person's own left; to their right; another person.
pub const FRONTAL: &str = "obama.jpg";
pub const TURNED_LEFT: &str = "obama3.jpg";
pub const TURNED_RIGHT: &str = "obama2.jpg";
pub const SOMEONE_ELSE: &str = "biden.jpg";

pub fn photo_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../test-data/faces")
        .join(name)
}

/// The photo file's bytes.
pub fn photo_bytes(name: &str) -> Vec<u8> {
    let path = photo_path(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (deploy/fetch-models.sh)", path.display()))
}

fn decode(bytes: &[u8]) -> Mat {
    imgcodecs::imdecode(&Vector::<u8>::from_slice(bytes), imgcodecs::IMREAD_COLOR).expect("decode")
}

/// JPEG bytes of a 640×480 frame showing `name`.
pub fn frame(name: &str) -> Vec<u8> {
    let (_, (x, y, w, h)) = *CROPS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no crop for {name}"));
    let photo = decode(&photo_bytes(name));
    let crop = Mat::roi(&photo, Rect::new(x, y, w, h))
        .expect("crop")
        .try_clone()
        .expect("clone");
    let k = (640.0 / f64::from(w)).min(480.0 / f64::from(h));
    let mut small = Mat::default();
    imgproc::resize(
        &crop,
        &mut small,
        Size::new(0, 0),
        k,
        k,
        imgproc::INTER_AREA,
    )
    .expect("resize");
    let mut out =
        Mat::new_rows_cols_with_default(480, 640, core::CV_8UC3, Scalar::all(0.0)).expect("canvas");
    let (sw, sh) = (small.cols().min(640), small.rows().min(480));
    let mut roi =
        Mat::roi_mut(&mut out, Rect::new((640 - sw) / 2, (480 - sh) / 2, sw, sh)).expect("roi");
    Mat::roi(&small, Rect::new(0, 0, sw, sh))
        .expect("roi")
        .copy_to(&mut roi)
        .expect("copy");
    encode(&out)
}

pub fn encode(m: &Mat) -> Vec<u8> {
    let mut buf = Vector::<u8>::new();
    imgcodecs::imencode(".jpg", m, &mut buf, &Vector::new()).expect("encode");
    buf.to_vec()
}

/// `name` darkened, blurred or scaled: bad reference photos from a good one.
pub fn altered(name: &str, alter: impl FnOnce(&Mat) -> Mat) -> Vec<u8> {
    encode(&alter(&decode(&photo_bytes(name))))
}

pub fn darker(m: &Mat) -> Mat {
    let mut out = Mat::default();
    m.convert_to(&mut out, -1, 0.12, 0.0).expect("darken");
    out
}

pub fn blurred(m: &Mat) -> Mat {
    let mut out = Mat::default();
    imgproc::gaussian_blur(m, &mut out, Size::new(0, 0), 9.0, 9.0, core::BORDER_DEFAULT)
        .expect("blur");
    out
}

pub fn scaled(m: &Mat, longest: f64) -> Mat {
    let k = longest / f64::from(m.cols().max(m.rows()));
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(0, 0), k, k, imgproc::INTER_AREA).expect("resize");
    out
}

/// Two photos side by side (two faces in one picture).
pub fn side_by_side(a: &str, b: &str) -> Vec<u8> {
    let a = scaled(&decode(&photo_bytes(a)), 800.0);
    let b = scaled(&decode(&photo_bytes(b)), 800.0);
    let h = a.rows().min(b.rows());
    let cut = |m: &Mat| {
        Mat::roi(m, Rect::new(0, 0, m.cols(), h))
            .expect("roi")
            .try_clone()
            .expect("clone")
    };
    let mut out = Mat::default();
    core::hconcat(&Vector::<Mat>::from_iter([cut(&a), cut(&b)]), &mut out).expect("hconcat");
    encode(&out)
}
