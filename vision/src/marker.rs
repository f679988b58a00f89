//! A classifier **for tests only**: it flags pictures that are mostly one marker colour
//! (pure magenta), so browser tests can show "offending" video with a fake camera and
//! exercise the whole moderation path — sampling, blur, incident, call end — without
//! offending pictures. kefu uses it only when the test configuration names it
//! (`moderation.classifier = "test_marker_colour"`); the release default is open_nsfw,
//! and the server logs a warning whenever this one is in use.

use opencv::core::{self, Mat, Scalar};

use crate::VisionError;
use crate::nudity::NudityClassifier;
use crate::picture::Picture;

/// The marker: BGR (255, 0, 255), give or take what a video codec does to it.
const LOW: [f64; 3] = [180.0, 0.0, 180.0];
const HIGH: [f64; 3] = [255.0, 90.0, 255.0];

/// Scores the share of the picture in the marker colour: 1.0 when at least
/// `coverage` of it is, else that share scaled below 0.5. `delay` makes each score
/// take that long (overload tests: a classifier slower than the streams need).
#[derive(Debug, Clone, Copy)]
pub struct TestMarkerColourClassifier {
    pub coverage: f32,
    pub delay: std::time::Duration,
}

impl Default for TestMarkerColourClassifier {
    fn default() -> Self {
        Self {
            coverage: 0.3,
            delay: std::time::Duration::ZERO,
        }
    }
}

impl NudityClassifier for TestMarkerColourClassifier {
    fn nsfw_score(&mut self, picture: &Picture) -> Result<f32, VisionError> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut mask = Mat::default();
        let (lo, hi) = (
            Scalar::new(LOW[0], LOW[1], LOW[2], 0.0),
            Scalar::new(HIGH[0], HIGH[1], HIGH[2], 0.0),
        );
        core::in_range(picture.bgr(), &lo, &hi, &mut mask)?;
        let total = (picture.width() as f32 * picture.height() as f32).max(1.0);
        let share = core::count_non_zero(&mask)? as f32 / total;
        Ok(if share >= self.coverage {
            1.0
        } else {
            share / self.coverage * 0.5
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{CV_8UC3, Rect};
    use opencv::prelude::*;

    fn picture(fill: [f64; 3], marker_rows: i32) -> Picture {
        let mut m = Mat::new_rows_cols_with_default(
            100,
            100,
            CV_8UC3,
            Scalar::new(fill[0], fill[1], fill[2], 0.0),
        )
        .expect("mat");
        if marker_rows > 0 {
            let mut roi = Mat::roi_mut(&mut m, Rect::new(0, 0, 100, marker_rows)).expect("roi");
            roi.set_to_def(&Scalar::new(250.0, 10.0, 245.0, 0.0))
                .expect("fill");
        }
        Picture::from_bgr(m).expect("picture")
    }

    #[test]
    fn flags_the_marker_colour_and_nothing_else() {
        let mut c = TestMarkerColourClassifier::default();
        assert_eq!(
            c.nsfw_score(&picture([0.0, 0.0, 0.0], 100))
                .expect("test value"),
            1.0
        );
        assert_eq!(
            c.nsfw_score(&picture([0.0, 0.0, 0.0], 40))
                .expect("test value"),
            1.0
        );
        let partial = c
            .nsfw_score(&picture([0.0, 0.0, 0.0], 15))
            .expect("test value");
        assert!((0.2..0.3).contains(&partial), "{partial}");
        // Skin, red, blue: nothing.
        for fill in [[120.0, 160.0, 220.0], [0.0, 0.0, 255.0], [255.0, 0.0, 0.0]] {
            assert_eq!(
                c.nsfw_score(&picture(fill, 0)).expect("test value"),
                0.0,
                "{fill:?}"
            );
        }
    }
}
