//! Face geometry from the detector's five landmarks: where the head points.

/// A point in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    fn sub(self, o: Point) -> Point {
        Point::new(self.x - o.x, self.y - o.y)
    }

    fn mid(self, o: Point) -> Point {
        Point::new((self.x + o.x) / 2.0, (self.y + o.y) / 2.0)
    }

    fn dot(self, o: Point) -> f32 {
        self.x * o.x + self.y * o.y
    }

    fn len(self) -> f32 {
        self.dot(self).sqrt()
    }
}

/// YuNet's five landmarks, in its order: the eye on the picture's left (the person's
/// right eye in an unmirrored camera picture), the other eye, the nose tip, then the
/// mouth corners in the same left/right order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Landmarks(pub [Point; 5]);

/// A detected face: box, landmarks and the detector's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectedFace {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub landmarks: Landmarks,
    pub score: f32,
}

/// Where a face points, from its landmarks. Invariant to scale and to rotation in the
/// picture plane (tilting the head sideways, or a rotated photo).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// The nose's offset from the eyes' midpoint along the eye axis, in inter-ocular
    /// distances. Positive: the nose points to the picture's right, which in an
    /// unmirrored camera picture is the person's own left.
    pub yaw: f32,
    /// Inter-ocular distance ÷ eyes-to-mouth distance. A flat photo turned away from the
    /// camera shrinks it like a real head does, but without moving the nose (`yaw`).
    pub width_ratio: f32,
    /// The landmarks the pose was read from (the judge compares frames with them).
    pub landmarks: Landmarks,
}

impl Landmarks {
    pub fn pose(&self) -> Option<Pose> {
        let [eye_a, eye_b, nose, mouth_a, mouth_b] = self.0;
        let axis = eye_b.sub(eye_a);
        let interocular = axis.len();
        if interocular < 1.0 {
            return None;
        }
        let unit = Point::new(axis.x / interocular, axis.y / interocular);
        let eye_mid = eye_a.mid(eye_b);
        let yaw = nose.sub(eye_mid).dot(unit) / interocular;
        let eyes_to_mouth = mouth_a.mid(mouth_b).sub(eye_mid).len();
        if eyes_to_mouth < 1.0 {
            return None;
        }
        Some(Pose {
            yaw,
            width_ratio: interocular / eyes_to_mouth,
            landmarks: *self,
        })
    }

    /// How far the nose moved off the plane of the eyes and mouth corners since
    /// `frontal`, along the eye axis, in inter-ocular distances (signed like `yaw`).
    ///
    /// The four outer points fix a homography between the two pictures; a flat print,
    /// however it is turned or tilted, moves its nose by that same homography (≈ 0
    /// here), while a real head's nose stands out of that plane and turns further.
    pub fn nose_parallax(&self, frontal: &Landmarks) -> Option<f32> {
        let outer = |l: &Landmarks| [l.0[0], l.0[1], l.0[3], l.0[4]];
        let h = homography(outer(frontal), outer(self))?;
        let predicted = apply(&h, frontal.0[2])?;
        let [eye_a, eye_b, nose, _, _] = self.0;
        let axis = eye_b.sub(eye_a);
        let interocular = axis.len();
        if interocular < 1.0 {
            return None;
        }
        Some(nose.sub(predicted).dot(axis) / (interocular * interocular))
    }

    /// The same landmarks in the picture flipped left to right (width `w`).
    pub fn mirrored(&self, w: f32) -> Landmarks {
        let flip = |p: Point| Point::new(w - p.x, p.y);
        let [a, b, n, ma, mb] = self.0;
        // The picture-left eye of the flipped picture is the old picture-right eye.
        Landmarks([flip(b), flip(a), flip(n), flip(mb), flip(ma)])
    }
}

/// The 3×3 homography (row-major, h33 = 1) taking `src` to `dst`; `None` when the
/// points are degenerate.
pub(crate) fn homography(src: [Point; 4], dst: [Point; 4]) -> Option<[f64; 9]> {
    // Two equations per correspondence in h11..h32; solved by Gaussian elimination.
    let mut a = [[0.0f64; 9]; 8];
    for (i, (p, q)) in src.iter().zip(dst.iter()).enumerate() {
        let (x, y, u, v) = (
            f64::from(p.x),
            f64::from(p.y),
            f64::from(q.x),
            f64::from(q.y),
        );
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let k = r[col] / pivot_row[col];
                for (v, p) in r.iter_mut().zip(pivot_row.iter()).skip(col) {
                    *v -= k * p;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

fn apply(h: &[f64; 9], p: Point) -> Option<Point> {
    let (x, y) = (f64::from(p.x), f64::from(p.y));
    let w = h[6] * x + h[7] * y + h[8];
    if w.abs() < 1e-9 {
        return None;
    }
    Some(Point::new(
        ((h[0] * x + h[1] * y + h[2]) / w) as f32,
        ((h[3] * x + h[4] * y + h[5]) / w) as f32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(nose_x: f32) -> Landmarks {
        Landmarks([
            Point::new(100.0, 100.0),
            Point::new(160.0, 100.0),
            Point::new(nose_x, 130.0),
            Point::new(110.0, 160.0),
            Point::new(150.0, 160.0),
        ])
    }

    #[test]
    fn a_centred_nose_is_frontal_and_an_offset_nose_is_a_turn() {
        let front = face(130.0).pose().expect("pose");
        assert!(front.yaw.abs() < 1e-6, "{front:?}");
        assert!((front.width_ratio - 1.0).abs() < 1e-6);
        let left = face(142.0).pose().expect("pose");
        assert!((left.yaw - 0.2).abs() < 1e-5, "{left:?}");
        let right = face(118.0).pose().expect("pose");
        assert!((right.yaw + 0.2).abs() < 1e-5, "{right:?}");
    }

    #[test]
    fn rotating_the_picture_does_not_change_the_pose() {
        let lm = face(142.0);
        let (s, c) = 0.5f32.sin_cos();
        let rot = Landmarks(lm.0.map(|p| Point::new(c * p.x - s * p.y, s * p.x + c * p.y)));
        let (a, b) = (lm.pose().expect("pose"), rot.pose().expect("pose"));
        assert!((a.yaw - b.yaw).abs() < 1e-4 && (a.width_ratio - b.width_ratio).abs() < 1e-4);
    }

    #[test]
    fn a_mirror_flips_the_sign_of_the_yaw() {
        let lm = face(142.0);
        let m = lm.mirrored(400.0).pose().expect("pose");
        assert!((m.yaw + 0.2).abs() < 1e-5, "{m:?}");
    }

    #[test]
    fn a_plane_moved_by_a_homography_has_no_nose_parallax_but_a_turned_nose_has() {
        let frontal = face(130.0);
        // Any projective warp of the whole face: the nose follows the plane.
        let warp = |p: Point| {
            let w = 1.0 + 0.001 * p.x;
            Point::new(
                (1.1 * p.x + 0.2 * p.y + 5.0) / w,
                (0.1 * p.x + 0.9 * p.y - 3.0) / w,
            )
        };
        let flat = Landmarks(frontal.0.map(warp));
        let p = flat.nose_parallax(&frontal).expect("parallax");
        assert!(p.abs() < 1e-3, "{p}");
        // The same warp with the nose turned further: positive parallax (like yaw).
        let mut turned = flat;
        turned.0[2].x += 12.0;
        let p = turned.nose_parallax(&frontal).expect("parallax");
        assert!(p > 0.1, "{p}");
    }

    #[test]
    fn degenerate_landmarks_have_no_pose() {
        assert_eq!(Landmarks::default().pose(), None);
    }
}
