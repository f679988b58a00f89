//! The self-guided filter's linear coefficients (He & Sun 2015), in plain Rust.
//!
//! They are fitted at quarter resolution (320×180 for a 720p frame), where OpenCV's
//! per-call overhead and its double-precision float box filter cost more than the
//! arithmetic itself: twelve calls became four box means and one fused loop.

/// Reused buffers, sized for one picture.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    mean_i: Vec<f32>,
    mean_ii: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    column: Vec<f32>,
    padded: Vec<f32>,
}

/// From the guide `i` (`w`×`h`, rows contiguous): `mean_a` and `mean_b`, the box means
/// of a = var/(var + eps) and b = (1 − a)·mean(I) over (2r+1)² windows, with borders
/// mirrored as OpenCV's `BORDER_REFLECT` does. Slices shorter than `w`×`h` leave the
/// outputs as they were (callers size them from the same picture).
#[allow(clippy::too_many_arguments)]
pub(crate) fn coefficients(
    i: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
    s: &mut Scratch,
    mean_a: &mut [f32],
    mean_b: &mut [f32],
) {
    let n = w * h;
    if w == 0 || h == 0 || i.len() < n || mean_a.len() < n || mean_b.len() < n {
        return;
    }
    for v in [&mut s.mean_i, &mut s.mean_ii, &mut s.a, &mut s.b] {
        v.resize(n, 0.0);
    }
    let i = &i[..n];
    // Squares go through `a` first (it is free until the coefficients are known).
    for (sq, &v) in s.a.iter_mut().zip(i) {
        *sq = v * v;
    }
    let mut boxes = BoxMean {
        w,
        h,
        r,
        column: &mut s.column,
        padded: &mut s.padded,
    };
    boxes.run(i, &mut s.mean_i);
    boxes.run(&s.a, &mut s.mean_ii);
    for (((a, b), &m), &mm) in s.a.iter_mut().zip(&mut s.b).zip(&s.mean_i).zip(&s.mean_ii) {
        let var = mm - m * m;
        *a = var / (var + eps);
        *b = m - *a * m;
    }
    boxes.run(&s.a, &mut mean_a[..n]);
    boxes.run(&s.b, &mut mean_b[..n]);
}

struct BoxMean<'a> {
    w: usize,
    h: usize,
    r: usize,
    column: &'a mut Vec<f32>,
    padded: &'a mut Vec<f32>,
}

impl BoxMean<'_> {
    /// `dst` = the mean of `src` over the (2r+1)² window around each pixel. Rows first
    /// (the sum of 2r+1 whole rows, which vectorises), then along each summed row.
    fn run(&mut self, src: &[f32], dst: &mut [f32]) {
        let (w, h, r) = (self.w, self.h, self.r);
        let taps = 2 * r + 1;
        let norm = 1.0 / (taps * taps) as f32;
        self.column.resize(w, 0.0);
        self.padded.resize(w + 2 * r, 0.0);
        for (y, out) in dst.chunks_exact_mut(w).take(h).enumerate() {
            self.column.fill(0.0);
            for k in 0..taps {
                let row = mirror(y as isize + k as isize - r as isize, h) * w;
                for (c, &v) in self.column.iter_mut().zip(&src[row..row + w]) {
                    *c += v;
                }
            }
            self.padded[r..r + w].copy_from_slice(self.column);
            for j in 0..r {
                self.padded[j] = self.column[mirror(j as isize - r as isize, w)];
                self.padded[r + w + j] = self.column[mirror((w + j) as isize, w)];
            }
            out.fill(0.0);
            for k in 0..taps {
                for (o, &v) in out.iter_mut().zip(&self.padded[k..k + w]) {
                    *o += v;
                }
            }
            for o in out.iter_mut() {
                *o *= norm;
            }
        }
    }
}

/// `BORDER_REFLECT` (…cba|abc…xyz|zyx…) for any index, however far outside `0..n`.
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

#[cfg(test)]
mod tests {
    use opencv::core::{self, Mat, Size};
    use opencv::imgproc;
    use opencv::prelude::*;

    use super::*;

    /// The same statistics through OpenCV, as the filter computed them before.
    fn with_opencv(i: &[f32], w: usize, h: usize, r: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
        let img = Mat::new_rows_cols_with_data(h as i32, w as i32, i)
            .expect("a Mat over the slice")
            .try_clone()
            .expect("owned");
        let win = Size::new(2 * r as i32 + 1, 2 * r as i32 + 1);
        let bf = |src: &Mat| {
            let mut dst = Mat::default();
            imgproc::box_filter(
                src,
                &mut dst,
                -1,
                win,
                core::Point::new(-1, -1),
                true,
                core::BORDER_REFLECT,
            )
            .expect("box filter");
            dst
        };
        let mean_i = bf(&img);
        let mut sq = Mat::default();
        core::multiply(&img, &img, &mut sq, 1.0, -1).expect("square");
        let mean_ii = bf(&sq);
        let (mi, mii) = (
            mean_i.data_typed::<f32>().expect("f32"),
            mean_ii.data_typed::<f32>().expect("f32"),
        );
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (&m, &mm) in mi.iter().zip(mii) {
            let var = mm - m * m;
            let av = var / (var + eps);
            a.push(av);
            b.push(m - av * m);
        }
        let to_mat = |v: &[f32]| {
            Mat::new_rows_cols_with_data(h as i32, w as i32, v)
                .expect("Mat")
                .try_clone()
                .expect("owned")
        };
        let (ma, mb) = (bf(&to_mat(&a)), bf(&to_mat(&b)));
        (
            ma.data_typed::<f32>().expect("f32").to_vec(),
            mb.data_typed::<f32>().expect("f32").to_vec(),
        )
    }

    #[test]
    fn matches_opencv_box_filters_with_reflected_borders() {
        let mut seed: u32 = 0x1234_5678;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 1000) as f32 / 1000.0
        };
        let mut scratch = Scratch::default();
        // Real sizes, odd sizes and pictures smaller than the window (borders that
        // reflect more than once).
        for (w, h, r) in [(320, 180, 2), (33, 17, 4), (5, 3, 4), (1, 1, 1), (2, 9, 3)] {
            let i: Vec<f32> = (0..w * h).map(|_| next()).collect();
            let (mut ma, mut mb) = (vec![0.0; w * h], vec![0.0; w * h]);
            coefficients(&i, w, h, r, 0.006, &mut scratch, &mut ma, &mut mb);
            let (ea, eb) = with_opencv(&i, w, h, r, 0.006);
            for (k, (got, want)) in ma.iter().zip(&ea).chain(mb.iter().zip(&eb)).enumerate() {
                assert!(
                    (got - want).abs() < 1e-4,
                    "{w}×{h} r={r}: value {k} is {got}, OpenCV gives {want}"
                );
            }
        }
    }

    #[test]
    fn mirror_follows_border_reflect() {
        let got: Vec<usize> = (-4..8).map(|i| mirror(i, 3)).collect();
        assert_eq!(got, [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
    }

    #[test]
    fn short_slices_leave_the_outputs_alone() {
        let mut scratch = Scratch::default();
        let (mut ma, mut mb) = (vec![7.0; 4], vec![7.0; 4]);
        coefficients(&[0.5; 3], 2, 2, 1, 0.01, &mut scratch, &mut ma, &mut mb);
        assert_eq!((ma, mb), (vec![7.0; 4], vec![7.0; 4]));
    }
}
