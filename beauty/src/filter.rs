//! The beauty filter, on I420 planes (no colour conversion).
//!
//! Per frame, at half resolution (where the chroma planes already are):
//! - a soft skin mask from Cb/Cr (the classic YCbCr skin box, blurred);
//! - a self-guided filter of luma (He et al.): smooths low-variance texture (skin) and
//!   keeps high-variance structure (eyes, hair, text) by construction;
//! - the smoothing delta, weighted by the mask, is upscaled and added to full-res luma;
//! - ruddiness lifts Cr inside the mask.
//!
//! At full resolution: a lightening tone curve (a lookup table, rebuilt only when the
//! parameter changes) and a light unsharp mask. Every buffer is allocated once per
//! frame size; the hot path allocates nothing.
//!
//! The source is only read ([`BeautyFilter::load`]) and the result is written plane by
//! plane wherever the caller wants it, so a pipeline goes from the decoder's picture
//! straight into the encoder's frame without copies of its own.

use opencv::core::{self, CV_8U, CV_32F, Mat, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::frame::{I420, I420Ref, plane_fits};
use crate::guided;
use crate::params::BeautyParams;

/// Skin in BT.601 YCbCr (Chai & Ngan): Cb 77–127, Cr 133–173.
const CB_RANGE: (f64, f64) = (77.0, 127.0);
const CR_RANGE: (f64, f64) = (133.0, 173.0);

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("the frame's planes do not match its size and strides")]
    BadFrame,
    #[error("no picture loaded into the filter")]
    NotLoaded,
    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
}

/// Buffers for one frame size.
struct Buffers {
    size: (i32, i32),
    y: Mat,
    u: Mat,
    v: Mat,
    // Quarter resolution, f32: the guide and the guided filter's coefficients.
    luma_q: Mat,
    mean_a_q: Mat,
    mean_b_q: Mat,
    guided: guided::Scratch,
    // Half resolution, f32.
    luma: Mat,
    mean_i: Mat,
    mean_ii: Mat,
    sq: Mat,
    var: Mat,
    a: Mat,
    q: Mat,
    mask8: Mat,
    mask8_v: Mat,
    mask: Mat,
    q8: Mat,
    weight8: Mat,
    // One row each, for the final per-pixel pass.
    weight_row: Vec<i16>,
    // Full resolution.
    q_full: Mat,
    scratch8: Mat,
}

impl Buffers {
    fn new(width: i32, height: i32) -> Result<Self, opencv::Error> {
        let full = |t| Mat::new_rows_cols_with_default(height, width, t, Scalar::all(0.0));
        let half = |t| Mat::new_rows_cols_with_default(height / 2, width / 2, t, Scalar::all(0.0));
        let quarter =
            |t| Mat::new_rows_cols_with_default(height / 4, width / 4, t, Scalar::all(0.0));
        Ok(Self {
            size: (width, height),
            y: full(CV_8U)?,
            u: half(CV_8U)?,
            v: half(CV_8U)?,
            luma_q: quarter(CV_32F)?,
            mean_a_q: quarter(CV_32F)?,
            mean_b_q: quarter(CV_32F)?,
            guided: guided::Scratch::default(),
            luma: half(CV_32F)?,
            mean_i: half(CV_32F)?,
            mean_ii: half(CV_32F)?,
            sq: half(CV_32F)?,
            var: half(CV_32F)?,
            a: half(CV_32F)?,
            q: half(CV_32F)?,
            mask8: half(CV_8U)?,
            mask8_v: half(CV_8U)?,
            mask: half(CV_32F)?,
            q8: half(CV_8U)?,
            weight8: half(CV_8U)?,
            weight_row: vec![0; width as usize],
            q_full: full(CV_8U)?,
            scratch8: half(CV_8U)?,
        })
    }
}

/// One stream's filter: keep it across frames (buffers and the tone curve are reused).
///
/// [`Self::load`] reads a picture and does the work; [`Self::write_y`],
/// [`Self::write_u`] and [`Self::write_v`] then put the result into any planes of the
/// same size (one at a time, e.g. an encoder's frame). [`Self::apply`] does both in
/// place.
pub struct BeautyFilter {
    bufs: Option<Buffers>,
    lut: [u8; 256],
    lut_for: Option<f64>,
    /// What the loaded picture needs on the way out; `None` until a load succeeds.
    loaded: Option<Loaded>,
}

#[derive(Debug, Clone, Copy)]
struct Loaded {
    /// All-zero parameters (the "none" preset): the picture goes out as it came in.
    identity: bool,
    sharpen_q8: i16,
    ruddy: bool,
}

impl std::fmt::Debug for BeautyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeautyFilter")
            .field("size", &self.bufs.as_ref().map(|b| b.size))
            .finish()
    }
}

impl Default for BeautyFilter {
    fn default() -> Self {
        Self::new()
    }
}

fn is_identity(params: &BeautyParams) -> bool {
    params.fields().iter().all(|(_, v)| *v == 0.0)
}

impl BeautyFilter {
    pub fn new() -> Self {
        Self {
            bufs: None,
            lut: [0; 256],
            lut_for: None,
            loaded: None,
        }
    }

    /// Filters `frame` in place with `params` (already validated). All-zero parameters
    /// (the "none" preset) leave the frame untouched.
    pub fn apply(
        &mut self,
        frame: &mut I420<'_>,
        params: &BeautyParams,
    ) -> Result<(), FilterError> {
        if !frame.is_consistent() {
            return Err(FilterError::BadFrame);
        }
        if is_identity(params) {
            return Ok(());
        }
        self.load(&frame.as_ref(), params)?;
        self.write_y(frame.y, frame.y_stride)?;
        // Chroma: Cb never changes, Cr only with ruddiness.
        if params.ruddiness > 0.0 {
            self.write_v(frame.v, frame.v_stride)?;
        }
        Ok(())
    }

    /// Reads `src` and filters it with `params` (already validated) into the filter's
    /// own buffers; `src` is left as it is.
    pub fn load(&mut self, src: &I420Ref<'_>, params: &BeautyParams) -> Result<(), FilterError> {
        self.loaded = None;
        if !src.is_consistent() {
            return Err(FilterError::BadFrame);
        }
        let (w, h) = (src.width as i32, src.height as i32);
        if self.bufs.as_ref().is_none_or(|b| b.size != (w, h)) {
            self.bufs = Some(Buffers::new(w, h)?);
        }
        let identity = is_identity(params);
        let curved = !identity && params.whitening > 0.0;
        if curved && self.lut_for != Some(params.whitening) {
            self.lut = tone_curve(params.whitening);
            self.lut_for = Some(params.whitening);
        }
        let Some(b) = self.bufs.as_mut() else {
            return Ok(());
        };
        // Tone curve first, so smoothing works on the lightened picture; applied while
        // reading the source (no pass of its own).
        copy_in(&mut b.y, src.y, src.y_stride, curved.then_some(&self.lut))?;
        copy_in(&mut b.u, src.u, src.u_stride, None)?;
        copy_in(&mut b.v, src.v, src.v_stride, None)?;
        if identity {
            self.loaded = Some(Loaded {
                identity,
                sharpen_q8: 0,
                ruddy: false,
            });
            return Ok(());
        }

        skin_mask(b)?;
        if params.smoothing > 0.0 {
            smoothed_luma(b, params.smoothing)?;
            // m = skin × flatness × strength, flatness = 1 − mean(a) of the guided
            // filter: ≈ 0 on edges (eyes, brows, lips keep full-resolution detail),
            // ≈ 1 on smooth skin. Kept at half resolution as 0–255.
            let blend = 0.5 + 0.5 * params.smoothing;
            b.mean_i.convert_to(&mut b.var, CV_32F, -1.0, 1.0)?;
            core::multiply(&b.var, &b.mask, &mut b.a, blend * 255.0, -1)?;
            b.a.convert_to(&mut b.weight8, CV_8U, 1.0, 0.0)?;
        } else {
            b.weight8.set_to(&Scalar::all(0.0), &core::no_array())?;
            b.q_full.set_to(&Scalar::all(0.0), &core::no_array())?;
        }
        let ruddy = params.ruddiness > 0.0;
        if ruddy {
            // Cr up to +12 inside the skin mask.
            core::add_weighted(
                &b.v,
                1.0,
                &b.mask,
                params.ruddiness * 12.0,
                0.0,
                &mut b.scratch8,
                CV_8U,
            )?;
        }
        self.loaded = Some(Loaded {
            identity,
            // k ≤ 128 keeps every product of the per-pixel pass inside i16.
            sharpen_q8: (params.sharpness * 0.5 * 256.0).round().clamp(0.0, 128.0) as i16,
            ruddy,
        });
        Ok(())
    }

    /// Writes the loaded picture's luma (the last full-resolution pass runs here).
    pub fn write_y(&mut self, dst: &mut [u8], stride: usize) -> Result<(), FilterError> {
        let (Some(loaded), Some(b)) = (self.loaded, self.bufs.as_mut()) else {
            return Err(FilterError::NotLoaded);
        };
        let (w, h) = (b.size.0 as usize, b.size.1 as usize);
        if !plane_fits(dst.len(), stride, w, h) {
            return Err(FilterError::BadFrame);
        }
        if loaded.identity {
            copy_out(&b.y, dst, stride)?;
        } else {
            compose_luma(b, loaded.sharpen_q8, dst, stride)?;
        }
        Ok(())
    }

    /// Writes the loaded picture's Cb plane.
    pub fn write_u(&self, dst: &mut [u8], stride: usize) -> Result<(), FilterError> {
        let (_, b) = self.loaded_chroma(dst, stride)?;
        copy_out(&b.u, dst, stride)
    }

    /// Writes the loaded picture's Cr plane.
    pub fn write_v(&self, dst: &mut [u8], stride: usize) -> Result<(), FilterError> {
        let (loaded, b) = self.loaded_chroma(dst, stride)?;
        copy_out(if loaded.ruddy { &b.scratch8 } else { &b.v }, dst, stride)
    }

    fn loaded_chroma(&self, dst: &[u8], stride: usize) -> Result<(Loaded, &Buffers), FilterError> {
        let (Some(loaded), Some(b)) = (self.loaded, self.bufs.as_ref()) else {
            return Err(FilterError::NotLoaded);
        };
        let (w, h) = (b.size.0 as usize / 2, b.size.1 as usize / 2);
        if !plane_fits(dst.len(), stride, w, h) {
            return Err(FilterError::BadFrame);
        }
        Ok((loaded, b))
    }
}

/// Full-resolution luma, written straight into the frame, row by row:
/// sharpened = y + k·(4y − left − right − up − down)/4 (a Laplacian unsharp mask) and
/// out = sharpened + w·(smoothed − sharpened), with `w` from the half-resolution weight
/// map (the mask is soft, so nearest is fine). One branch-free loop per row in i16
/// (eight lanes even on baseline x86-64 SSE2); every product stays below 2¹⁵.
fn compose_luma(
    b: &mut Buffers,
    sharpen_q8: i16,
    out: &mut [u8],
    stride: usize,
) -> Result<(), opencv::Error> {
    let (w, h) = (b.size.0 as usize, b.size.1 as usize);
    let y = b.y.data_bytes()?;
    let q = b.q_full.data_bytes()?;
    let weights = b.weight8.data_bytes()?;
    let wrow_full = &mut b.weight_row;
    for row in 0..h {
        if row % 2 == 0 {
            let wrow = &weights[(row / 2) * (w / 2)..][..w / 2];
            for (pair, &wt) in wrow_full.chunks_exact_mut(2).zip(wrow) {
                // Halved to 0–127 so that w·(smoothed − sharpened) fits i16.
                pair[0] = i16::from(wt >> 1);
                pair[1] = i16::from(wt >> 1);
            }
        }
        let Some(dst) = out.get_mut(row * stride..row * stride + w) else {
            continue;
        };
        let rows = RowInputs {
            src: &y[row * w..(row + 1) * w],
            up: &y[row.saturating_sub(1) * w..][..w],
            down: &y[(row + 1).min(h - 1) * w..][..w],
            smooth: &q[row * w..(row + 1) * w],
            weight: wrow_full,
        };
        compose_row(&rows, sharpen_q8, dst);
    }
    Ok(())
}

struct RowInputs<'a> {
    src: &'a [u8],
    up: &'a [u8],
    down: &'a [u8],
    smooth: &'a [u8],
    weight: &'a [i16],
}

/// One output row; the two end pixels are blended but not sharpened.
#[inline(always)]
fn compose_row(r: &RowInputs<'_>, k: i16, dst: &mut [u8]) {
    let n = dst.len();
    if n < 3
        || [
            r.src.len(),
            r.up.len(),
            r.down.len(),
            r.smooth.len(),
            r.weight.len(),
        ]
        .iter()
        .any(|&len| len < n)
    {
        return;
    }
    let blend = |sharp: i16, smooth: u8, wt: i16| -> u8 {
        (sharp + ((wt * (i16::from(smooth) - sharp)) >> 7)) as u8
    };
    let inner = 1..n - 1;
    for (((((((o, &l), &c), &rr), &u), &d), &sm), &wt) in dst[inner.clone()]
        .iter_mut()
        .zip(&r.src[..n - 2])
        .zip(&r.src[inner.clone()])
        .zip(&r.src[2..n])
        .zip(&r.up[inner.clone()])
        .zip(&r.down[inner.clone()])
        .zip(&r.smooth[inner.clone()])
        .zip(&r.weight[inner])
    {
        let v = i16::from(c);
        let lap = (4 * v - i16::from(l) - i16::from(rr) - i16::from(u) - i16::from(d)) >> 2;
        let sharp = (v + ((k * lap) >> 8)).clamp(0, 255);
        *o = blend(sharp, sm, wt);
    }
    for x in [0, n - 1] {
        dst[x] = blend(i16::from(r.src[x]), r.smooth[x], r.weight[x]);
    }
}

/// Soft skin mask in [0, 1] at half resolution.
fn skin_mask(b: &mut Buffers) -> Result<(), opencv::Error> {
    core::in_range(
        &b.u,
        &Scalar::all(CB_RANGE.0),
        &Scalar::all(CB_RANGE.1),
        &mut b.mask8,
    )?;
    core::in_range(
        &b.v,
        &Scalar::all(CR_RANGE.0),
        &Scalar::all(CR_RANGE.1),
        &mut b.mask8_v,
    )?;
    core::bitwise_and(&b.mask8, &b.mask8_v, &mut b.scratch8, &core::no_array())?;
    // Soft edges, so the smoothing fades out instead of drawing the mask's outline.
    imgproc::box_filter(
        &b.scratch8,
        &mut b.mask8,
        -1,
        Size::new(9, 9),
        core::Point::new(-1, -1),
        true,
        core::BORDER_REPLICATE,
    )?;
    b.mask8.convert_to(&mut b.mask, CV_32F, 1.0 / 255.0, 0.0)
}

/// Luma smoothed by a fast self-guided filter (He & Sun 2015): the linear
/// coefficients are fitted at quarter resolution, applied at half resolution, and the
/// result is brought to full resolution in `b.q_full`. The filter's mean(a) (≈ 1 on
/// edges) is left at half resolution in `b.mean_i`.
fn smoothed_luma(b: &mut Buffers, strength: f64) -> Result<(), opencv::Error> {
    let (w, h) = b.size;
    imgproc::resize(
        &b.y,
        &mut b.scratch8,
        Size::new(w / 2, h / 2),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    b.scratch8
        .convert_to(&mut b.luma, CV_32F, 1.0 / 255.0, 0.0)?;
    imgproc::resize(
        &b.luma,
        &mut b.luma_q,
        Size::new(w / 4, h / 4),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    // Radius in quarter-res pixels and the edge threshold grow with the strength.
    let r = 1 + (strength * 3.0).round() as usize;
    let eps = 0.002 + 0.012 * strength;
    guided::coefficients(
        b.luma_q.data_typed::<f32>()?,
        b.luma_q.cols() as usize,
        b.luma_q.rows() as usize,
        r,
        eps as f32,
        &mut b.guided,
        b.mean_a_q.data_typed_mut::<f32>()?,
        b.mean_b_q.data_typed_mut::<f32>()?,
    );
    let half = Size::new(w / 2, h / 2);
    imgproc::resize(
        &b.mean_a_q,
        &mut b.mean_i,
        half,
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )?;
    imgproc::resize(
        &b.mean_b_q,
        &mut b.mean_ii,
        half,
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )?;
    // q = mean(a)·I + mean(b), at half resolution.
    core::multiply(&b.mean_i, &b.luma, &mut b.sq, 1.0, -1)?;
    core::add(&b.sq, &b.mean_ii, &mut b.q, &core::no_array(), -1)?;
    b.q.convert_to(&mut b.q8, CV_8U, 255.0, 0.0)?;
    imgproc::resize(
        &b.q8,
        &mut b.q_full,
        Size::new(w, h),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
}

/// Lightening curve: y' = 255·log(1 + (β−1)·y/255) / log β, β growing with `w`.
fn tone_curve(w: f64) -> [u8; 256] {
    let beta = 1.0 + 6.0 * w;
    let mut lut = [0; 256];
    for (y, out) in lut.iter_mut().enumerate() {
        let x = y as f64 / 255.0;
        let curved = (1.0 + (beta - 1.0) * x).ln() / beta.ln();
        // Blend with identity so small settings stay subtle.
        let v = x + (curved - x) * w.min(1.0);
        *out = (v * 255.0).round().clamp(0.0, 255.0) as u8;
    }
    lut
}

/// Copies a strided plane into a contiguous Mat of the same size, through `curve`
/// when there is one.
fn copy_in(
    dst: &mut Mat,
    src: &[u8],
    stride: usize,
    curve: Option<&[u8; 256]>,
) -> Result<(), FilterError> {
    let cols = dst.cols() as usize;
    let data = dst.data_bytes_mut()?;
    for (row, out) in data.chunks_exact_mut(cols).enumerate() {
        let line = src
            .get(row * stride..row * stride + cols)
            .ok_or(FilterError::BadFrame)?;
        match curve {
            Some(lut) => {
                for (o, &v) in out.iter_mut().zip(line) {
                    *o = lut[usize::from(v)];
                }
            }
            None => out.copy_from_slice(line),
        }
    }
    Ok(())
}

/// Copies a contiguous Mat into a strided plane (already checked to fit).
fn copy_out(src: &Mat, dst: &mut [u8], stride: usize) -> Result<(), FilterError> {
    let cols = src.cols() as usize;
    let data = src.data_bytes()?;
    for (row, line) in data.chunks_exact(cols).enumerate() {
        let out = dst
            .get_mut(row * stride..row * stride + cols)
            .ok_or(FilterError::BadFrame)?;
        out.copy_from_slice(line);
    }
    Ok(())
}
