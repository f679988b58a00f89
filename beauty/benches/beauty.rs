//! `beauty/<preset>_<size>` on one core, beside a naive full-frame
//! `cv::bilateralFilter` of luma (d = 9) in the same group. Goal: natural ≤ 2 ms at 720p.
//! Run with `make bench`; results in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kefu_beauty::{BeautyFilter, I420, Preset};
use opencv::core::{self, Mat, Scalar, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// The astronaut photo at `w`×`h` as I420 planes (contiguous).
fn planes(w: i32, h: i32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-data/astronaut.png");
    let bgr = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR)
        .expect("test-data/astronaut.png (deploy/fetch-test-data.sh)");
    let mut sized = Mat::default();
    imgproc::resize(
        &bgr,
        &mut sized,
        Size::new(w, h),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
    .expect("resize");
    let mut yuv = Mat::default();
    imgproc::cvt_color(&sized, &mut yuv, imgproc::COLOR_BGR2YUV_I420, 0).expect("I420");
    let d = yuv.data_bytes().expect("bytes");
    let (y, c) = ((w * h) as usize, (w * h / 4) as usize);
    (
        d[..y].to_vec(),
        d[y..y + c].to_vec(),
        d[y + c..y + 2 * c].to_vec(),
    )
}

fn bench(c: &mut Criterion) {
    core::set_num_threads(1).expect("one thread");
    let mut group = c.benchmark_group("beauty");
    for (label, w, h) in [
        ("540p", 960, 540),
        ("720p", 1280, 720),
        ("1080p", 1920, 1080),
    ] {
        let (y0, u0, v0) = planes(w, h);
        for preset in [Preset::Natural, Preset::Smooth] {
            let params = preset.params();
            let mut filter = BeautyFilter::new();
            let (mut y, mut u, mut v) = (y0.clone(), u0.clone(), v0.clone());
            group.bench_function(BenchmarkId::new(preset.as_str(), label), |b| {
                b.iter(|| {
                    // Fresh input each time, as a stream would give.
                    y.copy_from_slice(&y0);
                    u.copy_from_slice(&u0);
                    v.copy_from_slice(&v0);
                    let mut frame = I420 {
                        width: w as usize,
                        height: h as usize,
                        y: &mut y,
                        y_stride: w as usize,
                        u: &mut u,
                        u_stride: w as usize / 2,
                        v: &mut v,
                        v_stride: w as usize / 2,
                    };
                    filter.apply(&mut frame, &params).expect("filter");
                })
            });
        }
        let mut luma =
            Mat::new_rows_cols_with_default(h, w, core::CV_8U, Scalar::all(0.0)).expect("luma");
        luma.data_bytes_mut().expect("bytes").copy_from_slice(&y0);
        let mut out =
            Mat::new_rows_cols_with_default(h, w, core::CV_8U, Scalar::all(0.0)).expect("out");
        group.bench_function(BenchmarkId::new("bilateral_baseline", label), |b| {
            b.iter(|| {
                imgproc::bilateral_filter(&luma, &mut out, 9, 30.0, 7.0, core::BORDER_DEFAULT)
                    .expect("bilateral")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
