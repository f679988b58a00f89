//! Video pictures in and evidence out: I420 from a decoder → BGR, BGR → JPEG, and a
//! coarse mosaic of a picture (what a reviewer sees before choosing to look).

use opencv::core::{Mat, MatTraitConst, Size, Vector};
use opencv::{imgcodecs, imgproc};

use crate::VisionError;
use crate::picture::Picture;

impl Picture {
    /// From packed I420 planes (`width × height`, both even; Y, then U, then V).
    pub fn from_i420(width: u32, height: u32, data: &[u8]) -> Result<Picture, VisionError> {
        let (w, h) = (width as usize, height as usize);
        if w < 2
            || h < 2
            || !w.is_multiple_of(2)
            || !h.is_multiple_of(2)
            || data.len() != w * h * 3 / 2
        {
            return Err(VisionError::Model(format!(
                "an I420 picture of {width}×{height} cannot hold {} bytes",
                data.len()
            )));
        }
        // One single-channel matrix of 1.5 × height rows is OpenCV's I420 layout.
        let yuv = Mat::from_slice(data)?;
        let yuv = yuv.reshape(1, (h * 3 / 2) as i32)?;
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&yuv, &mut bgr, imgproc::COLOR_YUV2BGR_I420)?;
        Ok(Picture { bgr })
    }

    /// The picture as a JPEG of `quality` (1–100).
    pub fn to_jpeg(&self, quality: i32) -> Result<Vec<u8>, VisionError> {
        let mut out = Vector::<u8>::new();
        let params = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
        imgcodecs::imencode(".jpg", &self.bgr, &mut out, &params)?;
        Ok(out.as_slice().to_vec())
    }

    /// A mosaic of `cells` blocks across (keeping the aspect), at the same size: shapes
    /// and colours, nothing recognisable.
    pub fn mosaic(&self, cells: i32) -> Result<Picture, VisionError> {
        let (w, h) = (self.bgr.cols(), self.bgr.rows());
        let across = cells.clamp(2, w.max(2));
        let down = (across * h / w.max(1)).max(2);
        let mut small = Mat::default();
        imgproc::resize(
            &self.bgr,
            &mut small,
            Size::new(across, down),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        let mut big = Mat::default();
        imgproc::resize(
            &small,
            &mut big,
            Size::new(w, h),
            0.0,
            0.0,
            imgproc::INTER_NEAREST,
        )?;
        Ok(Picture { bgr: big })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{CV_8UC3, Scalar, Vec3b};
    use opencv::prelude::*;

    #[test]
    fn i420_grey_becomes_grey_bgr_and_bad_sizes_are_refused() {
        let (w, h) = (64u32, 48u32);
        let mut data = vec![128u8; (w * h) as usize];
        data.extend(vec![128u8; (w * h / 2) as usize]);
        let p = Picture::from_i420(w, h, &data).expect("converted");
        assert_eq!((p.width(), p.height()), (w, h));
        let px = *p.bgr().at_2d::<Vec3b>(10, 10).expect("pixel");
        assert!(px.iter().all(|c| (125..=131).contains(c)), "{px:?}");
        assert!(Picture::from_i420(w, h, &data[1..]).is_err());
        assert!(Picture::from_i420(63, 48, &data).is_err());
    }

    #[test]
    fn jpeg_round_trips_and_the_mosaic_hides_detail() {
        let mut bgr =
            Mat::new_rows_cols_with_default(120, 160, CV_8UC3, Scalar::all(0.0)).expect("mat");
        // A fine checkerboard: detail a 8-cell mosaic cannot keep.
        for y in 0..120 {
            for x in 0..160 {
                if (x / 2 + y / 2) % 2 == 0 {
                    *bgr.at_2d_mut::<Vec3b>(y, x).expect("px") = Vec3b::from([255, 255, 255]);
                }
            }
        }
        let p = Picture::from_bgr(bgr).expect("picture");
        let jpeg = p.to_jpeg(85).expect("jpeg");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let limits = crate::DecodeLimits {
            max_bytes: 1 << 20,
            max_side: 1000,
        };
        let back = Picture::decode(&jpeg, limits).expect("decodes");
        assert_eq!((back.width(), back.height()), (160, 120));
        let m = p.mosaic(8).expect("mosaic");
        assert_eq!((m.width(), m.height()), (160, 120));
        let a = *m.bgr().at_2d::<Vec3b>(0, 0).expect("px");
        let b = *m.bgr().at_2d::<Vec3b>(0, 2).expect("px");
        assert_eq!(a, b, "neighbours inside one cell are equal");
        assert!(
            (100..=155).contains(&a[0]),
            "a cell averages its detail: {a:?}"
        );
    }
}
