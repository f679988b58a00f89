//! The filter on real photos (test-data/, fetched by deploy/fetch-test-data.sh from
//! Debian's python3-skimage): identity for "none", size and format kept, skin
//! smoothed while strong edges stay, and a golden image with a tolerance.

use std::path::PathBuf;

use kefu_beauty::{BeautyFilter, BeautyParams, FilterError, I420, I420Ref, Preset};
use opencv::core::{self, Mat, Rect, Scalar, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

fn test_image(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../test-data")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run deploy/fetch-test-data.sh (make test does)",
        path.display()
    );
    path
}

/// An I420 picture as three owned planes with padded strides (as decoders give them).
struct Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    stride: usize,
}

const PAD: usize = 32;

impl Picture {
    fn load(name: &str, width: i32, height: i32) -> Picture {
        let bgr = imgcodecs::imread(
            test_image(name).to_str().expect("utf-8 path"),
            imgcodecs::IMREAD_COLOR,
        )
        .expect("read");
        let mut sized = Mat::default();
        imgproc::resize(
            &bgr,
            &mut sized,
            Size::new(width, height),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )
        .expect("resize");
        let mut yuv = Mat::default();
        imgproc::cvt_color(&sized, &mut yuv, imgproc::COLOR_BGR2YUV_I420, 0).expect("to I420");
        let data = yuv.data_bytes().expect("bytes");
        let (w, h) = (width as usize, height as usize);
        let stride = w + PAD;
        let mut pic = Picture {
            width: w,
            height: h,
            y: vec![0; stride * h],
            u: vec![0; stride / 2 * h / 2],
            v: vec![0; stride / 2 * h / 2],
            stride,
        };
        for row in 0..h {
            pic.y[row * stride..row * stride + w].copy_from_slice(&data[row * w..row * w + w]);
        }
        let (cw, ch) = (w / 2, h / 2);
        for row in 0..ch {
            let u0 = w * h + row * cw;
            let v0 = w * h + cw * ch + row * cw;
            pic.u[row * stride / 2..row * stride / 2 + cw].copy_from_slice(&data[u0..u0 + cw]);
            pic.v[row * stride / 2..row * stride / 2 + cw].copy_from_slice(&data[v0..v0 + cw]);
        }
        pic
    }

    fn frame(&mut self) -> I420<'_> {
        I420 {
            width: self.width,
            height: self.height,
            y: &mut self.y,
            y_stride: self.stride,
            u: &mut self.u,
            u_stride: self.stride / 2,
            v: &mut self.v,
            v_stride: self.stride / 2,
        }
    }

    /// The luma plane as a contiguous Mat.
    fn luma(&self) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(
            self.height as i32,
            self.width as i32,
            core::CV_8U,
            Scalar::all(0.0),
        )
        .expect("mat");
        let bytes = m.data_bytes_mut().expect("bytes");
        for row in 0..self.height {
            bytes[row * self.width..(row + 1) * self.width]
                .copy_from_slice(&self.y[row * self.stride..row * self.stride + self.width]);
        }
        m
    }
}

impl Picture {
    /// Back to BGR, to look at.
    fn bgr(&self) -> Mat {
        let (w, h) = (self.width, self.height);
        let mut i420 = Mat::new_rows_cols_with_default(
            (h * 3 / 2) as i32,
            w as i32,
            core::CV_8U,
            Scalar::all(0.0),
        )
        .expect("mat");
        let out = i420.data_bytes_mut().expect("bytes");
        for row in 0..h {
            out[row * w..(row + 1) * w]
                .copy_from_slice(&self.y[row * self.stride..row * self.stride + w]);
        }
        let (cw, ch, cs) = (w / 2, h / 2, self.stride / 2);
        for row in 0..ch {
            out[w * h + row * cw..w * h + (row + 1) * cw]
                .copy_from_slice(&self.u[row * cs..row * cs + cw]);
            let v0 = w * h + cw * ch;
            out[v0 + row * cw..v0 + (row + 1) * cw]
                .copy_from_slice(&self.v[row * cs..row * cs + cw]);
        }
        let mut bgr = Mat::default();
        imgproc::cvt_color(&i420, &mut bgr, imgproc::COLOR_YUV2BGR_I420, 0).expect("to BGR");
        bgr
    }
}

/// High-frequency energy: mean squared Laplacian in `area`.
fn hf_energy(luma: &Mat, area: Rect) -> f64 {
    let roi = Mat::roi(luma, area).expect("roi");
    let mut lap = Mat::default();
    imgproc::laplacian(
        &roi,
        &mut lap,
        core::CV_32F,
        1,
        1.0,
        0.0,
        core::BORDER_REPLICATE,
    )
    .expect("laplacian");
    let mut sq = Mat::default();
    core::multiply(&lap, &lap, &mut sq, 1.0, -1).expect("square");
    core::mean(&sq, &core::no_array()).expect("mean")[0]
}

// Regions of astronaut.png at 512×512 (its own size): Eileen Collins's cheek; her
// eye (structure inside the skin); the mission patch on her suit (text and hard edges).
const CHEEK: Rect = Rect {
    x: 186,
    y: 118,
    width: 24,
    height: 20,
};
const EYE: Rect = Rect {
    x: 186,
    y: 94,
    width: 30,
    height: 14,
};
const PATCH: Rect = Rect {
    x: 148,
    y: 358,
    width: 50,
    height: 50,
};

#[test]
fn none_is_identity_and_the_frame_keeps_its_size_and_padding() {
    let mut pic = Picture::load("astronaut.png", 512, 512);
    let before = (pic.y.clone(), pic.u.clone(), pic.v.clone());
    let mut filter = BeautyFilter::new();
    filter
        .apply(&mut pic.frame(), &Preset::None.params())
        .expect("none");
    assert_eq!(
        (pic.y.clone(), pic.u.clone(), pic.v.clone()),
        before,
        "none changes nothing"
    );

    filter
        .apply(&mut pic.frame(), &Preset::Natural.params())
        .expect("natural");
    assert_eq!(pic.y.len(), before.0.len());
    assert_ne!(pic.y, before.0, "natural changes the picture");
    // The padding beyond each row is not ours to touch.
    for row in 0..pic.height {
        assert!(
            pic.y[row * pic.stride + pic.width..(row + 1) * pic.stride]
                .iter()
                .all(|&b| b == 0)
        );
    }
}

#[test]
fn smoothing_softens_skin_and_keeps_strong_edges() {
    let original = Picture::load("astronaut.png", 512, 512);
    let mut pic = Picture::load("astronaut.png", 512, 512);
    let params = BeautyParams {
        smoothing: 0.7,
        whitening: 0.0,
        ruddiness: 0.0,
        sharpness: 0.0,
    };
    BeautyFilter::new()
        .apply(&mut pic.frame(), &params)
        .expect("smooth");
    let (before, after) = (original.luma(), pic.luma());
    let kept = |area| hf_energy(&after, area) / hf_energy(&before, area);
    let (skin, eye, patch) = (kept(CHEEK), kept(EYE), kept(PATCH));
    eprintln!("high frequencies kept: cheek {skin:.2}, eye {eye:.2}, patch {patch:.2}");
    assert!(
        skin < 0.6,
        "skin keeps {:.0} % of its high frequencies",
        skin * 100.0
    );
    assert!(
        eye > 1.5 * skin,
        "the eye keeps its structure ({:.0} %)",
        eye * 100.0
    );
    assert!(
        patch > 0.9,
        "edges off the skin keep {:.0} % of theirs",
        patch * 100.0
    );
}

#[test]
fn stronger_settings_smooth_more() {
    let original = Picture::load("astronaut.png", 512, 512).luma();
    let energy = |s: f64| {
        let mut pic = Picture::load("astronaut.png", 512, 512);
        let p = BeautyParams {
            smoothing: s,
            whitening: 0.0,
            ruddiness: 0.0,
            sharpness: 0.0,
        };
        BeautyFilter::new()
            .apply(&mut pic.frame(), &p)
            .expect("filter");
        hf_energy(&pic.luma(), CHEEK) / hf_energy(&original, CHEEK)
    };
    let (light, strong) = (energy(0.2), energy(0.9));
    assert!(
        strong < light,
        "0.9 keeps {strong:.2}, 0.2 keeps {light:.2}"
    );
}

#[test]
fn whitening_lightens_and_ruddiness_reddens_skin() {
    let original = Picture::load("astronaut.png", 512, 512);
    let mut pic = Picture::load("astronaut.png", 512, 512);
    let p = BeautyParams {
        smoothing: 0.0,
        whitening: 0.8,
        ruddiness: 0.8,
        sharpness: 0.0,
    };
    BeautyFilter::new()
        .apply(&mut pic.frame(), &p)
        .expect("filter");
    let mean = |m: &Mat| {
        core::mean(&Mat::roi(m, CHEEK).expect("roi"), &core::no_array()).expect("mean")[0]
    };
    assert!(mean(&pic.luma()) > mean(&original.luma()) + 5.0, "lighter");
    let cr = |p: &Picture| {
        let (x, y) = ((CHEEK.x / 2) as usize, (CHEEK.y / 2) as usize);
        p.v[y * p.stride / 2 + x] as i32
    };
    assert!(cr(&pic) > cr(&original), "rosier cheek");
}

#[test]
fn bad_frames_are_errors() {
    let mut y = vec![0u8; 10];
    let (mut u, mut v) = (vec![0u8; 10], vec![0u8; 10]);
    let mut frame = I420 {
        width: 64,
        height: 64,
        y: &mut y,
        y_stride: 64,
        u: &mut u,
        u_stride: 32,
        v: &mut v,
        v_stride: 32,
    };
    assert!(
        BeautyFilter::new()
            .apply(&mut frame, &Preset::Natural.params())
            .is_err()
    );
}

/// A pipeline reads the decoder's picture and writes the encoder's: the result must be
/// the one `apply` gives in place, with the source untouched, into planes of another
/// stride.
#[test]
fn load_then_write_equals_in_place_and_leaves_the_source_alone() {
    for preset in [Preset::Natural, Preset::Smooth, Preset::None] {
        let params = preset.params();
        let source = Picture::load("astronaut.png", 320, 240);
        let mut in_place = Picture::load("astronaut.png", 320, 240);
        BeautyFilter::new()
            .apply(&mut in_place.frame(), &params)
            .expect("in place");
        let (w, h, stride) = (source.width, source.height, source.width + 7);
        let (mut y, mut u, mut v) = (
            vec![0u8; stride * h],
            vec![0u8; stride / 2 * (h / 2)],
            vec![0u8; stride / 2 * (h / 2)],
        );
        let mut filter = BeautyFilter::new();
        let src = I420Ref {
            width: w,
            height: h,
            y: &source.y,
            y_stride: source.stride,
            u: &source.u,
            u_stride: source.stride / 2,
            v: &source.v,
            v_stride: source.stride / 2,
        };
        filter.load(&src, &params).expect("load");
        filter.write_y(&mut y, stride).expect("y");
        filter.write_u(&mut u, stride / 2).expect("u");
        filter.write_v(&mut v, stride / 2).expect("v");
        let rows = |plane: &[u8], stride: usize, width: usize, rows: usize| -> Vec<u8> {
            (0..rows)
                .flat_map(|r| plane[r * stride..r * stride + width].to_vec())
                .collect()
        };
        let name = preset.as_str();
        assert_eq!(
            rows(&y, stride, w, h),
            rows(&in_place.y, in_place.stride, w, h),
            "{name} Y"
        );
        for (out, want) in [(&u, &in_place.u), (&v, &in_place.v)] {
            assert_eq!(
                rows(out, stride / 2, w / 2, h / 2),
                rows(want, in_place.stride / 2, w / 2, h / 2),
                "{name} chroma"
            );
        }
        let original = Picture::load("astronaut.png", 320, 240);
        assert!(
            source.y == original.y && source.u == original.u && source.v == original.v,
            "the source is only read"
        );
    }
}

#[test]
fn writing_before_a_load_or_into_a_short_plane_is_an_error() {
    let mut filter = BeautyFilter::new();
    let mut plane = vec![0u8; 64 * 64];
    assert!(matches!(
        filter.write_y(&mut plane, 64),
        Err(FilterError::NotLoaded)
    ));
    let mut pic = Picture::load("astronaut.png", 64, 64);
    let frame = pic.frame();
    filter
        .load(&frame.as_ref(), &Preset::Natural.params())
        .expect("load");
    let mut short = vec![0u8; 64 * 63];
    assert!(matches!(
        filter.write_y(&mut short, 64),
        Err(FilterError::BadFrame)
    ));
    assert!(matches!(
        filter.write_v(&mut short[..100], 32),
        Err(FilterError::BadFrame)
    ));
    assert!(filter.write_y(&mut plane, 64).is_ok());
}

/// The natural preset on the astronaut, against a stored result (downscaled luma, PNG).
/// Regenerate with `KEFU_BLESS=1 cargo test -p kefu-beauty golden` after a deliberate
/// change, and look at the picture before committing it.
#[test]
fn golden_natural_astronaut() {
    let mut pic = Picture::load("astronaut.png", 512, 512);
    BeautyFilter::new()
        .apply(&mut pic.frame(), &Preset::Natural.params())
        .expect("natural");
    let mut small = Mat::default();
    imgproc::resize(
        &pic.luma(),
        &mut small,
        Size::new(256, 256),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )
    .expect("resize");
    let golden =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/natural-astronaut-luma.png");
    if std::env::var_os("KEFU_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("dir");
        imgcodecs::imwrite(
            golden.to_str().expect("utf-8"),
            &small,
            &core::Vector::new(),
        )
        .expect("write golden");
        // Before | natural | smooth, for a person to look at.
        let before = Picture::load("astronaut.png", 512, 512);
        let mut smooth = Picture::load("astronaut.png", 512, 512);
        BeautyFilter::new()
            .apply(&mut smooth.frame(), &Preset::Smooth.params())
            .expect("smooth");
        let mut row = Mat::default();
        let parts: core::Vector<Mat> = vec![before.bgr(), pic.bgr(), smooth.bgr()]
            .into_iter()
            .collect();
        core::hconcat(&parts, &mut row).expect("side by side");
        let look = std::env::temp_dir().join("kefu-beauty-astronaut.png");
        imgcodecs::imwrite(look.to_str().expect("utf-8"), &row, &core::Vector::new())
            .expect("write");
        eprintln!("before | natural | smooth: {}", look.display());
    }
    let expected = imgcodecs::imread(golden.to_str().expect("utf-8"), imgcodecs::IMREAD_GRAYSCALE)
        .expect("golden image");
    assert_eq!(expected.size().expect("size"), small.size().expect("size"));
    let mut diff = Mat::default();
    core::absdiff(&small, &expected, &mut diff).expect("diff");
    let mean_diff = core::mean(&diff, &core::no_array()).expect("mean")[0];
    let mut max_diff = 0.0;
    core::min_max_loc(
        &diff,
        None,
        Some(&mut max_diff),
        None,
        None,
        &core::no_array(),
    )
    .expect("max");
    assert!(
        mean_diff <= 0.5 && max_diff <= 8.0,
        "mean diff {mean_diff:.2}, max {max_diff}"
    );
}
