use super::*;
use crate::embedding::EMBEDDING_LEN;
use crate::geometry::{Landmarks, Point};

/// A person is a direction in embedding space; a mirrored picture of them is a
/// nearby but different one, as SFace sees it.
fn person(id: usize) -> Embedding {
    let mut v = vec![0.01; EMBEDDING_LEN];
    v[id] = 1.0;
    Embedding::new(v).expect("valid")
}

fn mirror_of(id: usize) -> Embedding {
    let mut v = vec![0.01; EMBEDDING_LEN];
    v[id] = 1.0;
    v[id + 50] = 0.9;
    Embedding::new(v).expect("valid")
}

struct Sample {
    person: usize,
    /// What `plane_match` answers: high for a flat print.
    plane: f32,
    landmarks: Landmarks,
    /// A picture that is some other picture's mirror image: its flipped embedding
    /// equals that other picture's plain one.
    flipped_of: Option<usize>,
    asked: u32,
}

impl FaceSample for Sample {
    fn embedding(&mut self) -> Option<Embedding> {
        self.asked += 1;
        Some(match self.flipped_of {
            Some(_) => mirror_of(self.person),
            None => person(self.person),
        })
    }
    fn mirrored_embedding(&mut self) -> Option<Embedding> {
        self.asked += 1;
        Some(match self.flipped_of {
            Some(_) => person(self.person),
            None => mirror_of(self.person),
        })
    }
    fn snapshot(&mut self) -> Option<Snapshot> {
        Some(Snapshot {
            landmarks: self.landmarks,
            picture: None,
        })
    }
    fn plane_match(&mut self, _frontal: &Snapshot) -> Option<f32> {
        Some(self.plane)
    }
}

fn landmarks_of(faces: FrameFaces) -> Landmarks {
    match faces {
        FrameFaces::One(p) => p.landmarks,
        _ => Landmarks::default(),
    }
}

/// A face whose nose sits `yaw` inter-ocular distances off centre, everything else
/// fixed (so the nose parallax against a frontal frame equals the yaw change).
fn pose(yaw: f32) -> FrameFaces {
    FrameFaces::One(face_pose(yaw, 1.0))
}

/// The same face squeezed horizontally by `squeeze` (a print turned away).
fn face_pose(yaw: f32, squeeze: f32) -> Pose {
    let x = |v: f32| 130.0 + (v - 130.0) * squeeze;
    let lm = Landmarks([
        Point::new(x(100.0), 100.0),
        Point::new(x(160.0), 100.0),
        Point::new(x(130.0 + yaw * 60.0), 130.0),
        Point::new(x(110.0), 160.0),
        Point::new(x(150.0), 160.0),
    ]);
    lm.pose().expect("pose")
}

const ALICE: usize = 1;
const BOB: usize = 2;

fn judge(steps: Vec<Turn>) -> LivenessJudge {
    LivenessJudge::new(
        Challenge {
            steps,
            reveal_after_ms: 600,
        },
        Policy::default(),
        vec![person(ALICE)],
        0,
    )
}

/// Feeds `(time, faces, person)` frames; returns the last progress.
fn feed(j: &mut LivenessJudge, frames: &[(i64, FrameFaces, usize)]) -> Progress {
    let mut last = j.progress();
    for &(t, faces, who) in frames {
        let mut s = Sample {
            person: who,
            plane: 0.2,
            landmarks: landmarks_of(faces),
            flipped_of: None,
            asked: 0,
        };
        last = j.observe(t, faces, &mut s);
    }
    last
}

/// Frontal frames every 250 ms from t=100 until the first step shows.
fn frontal(who: usize) -> Vec<(i64, FrameFaces, usize)> {
    (0..4).map(|i| (100 + 250 * i, pose(0.02), who)).collect()
}

#[test]
fn following_the_challenge_passes() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    let p = feed(&mut j, &frontal(ALICE));
    assert!(
        matches!(
            p,
            Progress::Step {
                index: 0,
                turn: Turn::Left,
                total: 2,
                ..
            }
        ),
        "{p:?}"
    );
    let p = feed(
        &mut j,
        &[(1300, pose(0.05), ALICE), (1600, pose(0.2), ALICE)],
    );
    assert!(
        matches!(
            p,
            Progress::Step {
                index: 1,
                turn: Turn::Right,
                ..
            }
        ),
        "{p:?}"
    );
    let p = feed(
        &mut j,
        &[(1900, pose(0.15), ALICE), (2200, pose(-0.18), ALICE)],
    );
    assert_eq!(p, Progress::Passed);
}

#[test]
fn the_challenge_is_shown_only_after_capture_started() {
    let mut j = judge(vec![Turn::Right, Turn::Left]);
    assert_eq!(j.tick(5_000), Progress::LookAtCamera);
    let p = feed(
        &mut j,
        &[(5_100, pose(0.0), ALICE), (5_400, pose(0.0), ALICE)],
    );
    assert_eq!(
        p,
        Progress::LookAtCamera,
        "reveal is 600 ms after the first face"
    );
    let p = feed(&mut j, &[(5_700, pose(0.0), ALICE)]);
    assert!(
        matches!(
            p,
            Progress::Step {
                index: 0,
                since_ms: 5_700,
                ..
            }
        ),
        "{p:?}"
    );
}

#[test]
fn a_still_picture_fails_as_no_motion() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    let frames: Vec<_> = (0..40)
        .map(|i| (100 + 250 * i, pose(0.03), ALICE))
        .collect();
    assert_eq!(feed(&mut j, &frames), Progress::Failed(Failure::NoMotion));
    assert_eq!(
        Failure::NoMotion.category(),
        FailureCategory::LivenessNotShown
    );
}

#[test]
fn motion_without_a_turning_nose_fails_as_planar() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    let frames: Vec<_> = (0..40)
        .map(|i| {
            let squeeze = 1.0 - 0.3 * ((i % 8) as f32 / 8.0);
            (
                100 + 250 * i,
                FrameFaces::One(face_pose(0.03, squeeze)),
                ALICE,
            )
        })
        .collect();
    assert_eq!(
        feed(&mut j, &frames),
        Progress::Failed(Failure::PlanarMotion)
    );
}

#[test]
fn another_person_fails_at_once() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    let p = feed(&mut j, &[(100, pose(0.0), BOB)]);
    assert_eq!(p, Progress::Failed(Failure::DifferentPerson));
    assert_eq!(
        Failure::DifferentPerson.category(),
        FailureCategory::DifferentPerson
    );
}

#[test]
fn a_face_that_changes_mid_sequence_fails() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    let p = feed(&mut j, &[(1300, pose(0.0), ALICE), (1600, pose(0.2), BOB)]);
    assert_eq!(p, Progress::Failed(Failure::IdentityChanged));
}

#[test]
fn a_periodic_identity_check_catches_a_swap_between_answers() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    // Frames 5..8: the 8th face frame is checked (every 8th).
    let frames: Vec<_> = (0..4).map(|i| (1300 + 250 * i, pose(0.0), BOB)).collect();
    assert_eq!(
        feed(&mut j, &frames),
        Progress::Failed(Failure::IdentityChanged)
    );
}

#[test]
fn turning_the_wrong_way_first_fails() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    let p = feed(&mut j, &[(1300, pose(-0.2), ALICE)]);
    assert_eq!(p, Progress::Failed(Failure::WrongDirection));
}

#[test]
fn still_facing_the_previous_way_is_not_a_wrong_turn() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    feed(&mut j, &[(1300, pose(0.2), ALICE)]);
    let p = feed(&mut j, &[(1600, pose(0.2), ALICE)]);
    assert!(matches!(p, Progress::Step { index: 1, .. }), "{p:?}");
}

#[test]
fn frames_sent_before_anyone_could_react_do_not_answer() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    // Shown at 850 ms; a turned frame 100 ms later was captured before the prompt.
    let p = feed(&mut j, &[(950, pose(0.2), ALICE)]);
    assert!(matches!(p, Progress::Step { index: 0, .. }), "{p:?}");
}

#[test]
fn an_answer_after_the_window_is_too_late() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    let p = feed(&mut j, &[(850 + 6_500, pose(0.2), ALICE)]);
    assert_eq!(p, Progress::Failed(Failure::TooLate));
    assert_eq!(Failure::TooLate.category(), FailureCategory::TimedOut);
}

#[test]
fn a_turn_and_its_mirror_image_fail() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    feed(&mut j, &[(1300, pose(0.2), ALICE)]);
    // The "right" answer is the left picture flipped.
    let mut s = Sample {
        person: ALICE,
        plane: 0.2,
        landmarks: landmarks_of(pose(-0.2)),
        flipped_of: Some(0),
        asked: 0,
    };
    let p = j.observe(1700, pose(-0.2), &mut s);
    assert_eq!(p, Progress::Failed(Failure::Mirrored));
}

#[test]
fn no_face_at_all_times_out_as_no_face_and_several_faces_fail() {
    let mut j = judge(vec![Turn::Left]);
    let frames: Vec<_> = (0..50)
        .map(|i| (250 * i, FrameFaces::None, ALICE))
        .collect();
    assert_eq!(feed(&mut j, &frames), Progress::Failed(Failure::NoFace));
    let mut j = judge(vec![Turn::Left]);
    let p = feed(&mut j, &[(100, FrameFaces::Several, ALICE)]);
    assert_eq!(p, Progress::Failed(Failure::SeveralFaces));
}

#[test]
fn a_finished_attempt_stays_finished() {
    let mut j = judge(vec![Turn::Left]);
    feed(&mut j, &[(100, pose(0.0), BOB)]);
    let p = feed(&mut j, &frontal(ALICE));
    assert_eq!(p, Progress::Failed(Failure::DifferentPerson));
}

#[test]
fn embeddings_are_computed_only_when_needed() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    let mut asked = 0;
    for i in 0..3 {
        let mut s = Sample {
            person: ALICE,
            plane: 0.2,
            landmarks: landmarks_of(pose(0.0)),
            flipped_of: None,
            asked: 0,
        };
        j.observe(100 + 250 * i, pose(0.0), &mut s);
        asked += s.asked;
    }
    assert_eq!(asked, 1, "only the first face frame is embedded");
}

#[test]
fn a_turn_that_lines_up_with_the_frontal_picture_as_a_plane_is_a_print() {
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    feed(&mut j, &frontal(ALICE));
    for i in 0..30 {
        let yaw = if i % 2 == 0 { 0.2 } else { -0.2 };
        let mut s = Sample {
            person: ALICE,
            plane: 0.97,
            landmarks: landmarks_of(pose(yaw)),
            flipped_of: None,
            asked: 0,
        };
        let p = j.observe(1100 + 250 * i, pose(yaw), &mut s);
        if let Progress::Failed(f) = p {
            assert_eq!(f, Failure::PlanarMotion);
            return;
        }
    }
    panic!("never failed");
}

#[test]
fn the_face_timeout_counts_from_the_first_frame_not_from_the_opening() {
    // The camera permission prompt took 20 s: no failure for that.
    let mut j = judge(vec![Turn::Left, Turn::Right]);
    assert_eq!(j.tick(20_000), Progress::LookAtCamera);
    let p = feed(&mut j, &[(20_000, FrameFaces::None, ALICE)]);
    assert_eq!(p, Progress::LookAtCamera);
    assert_eq!(j.tick(29_000), Progress::LookAtCamera);
    assert_eq!(j.tick(30_500), Progress::Failed(Failure::NoFace));
}

#[test]
fn an_aborted_attempt_is_over() {
    let mut j = judge(vec![Turn::Left]);
    j.abort(Failure::TooLate);
    assert_eq!(
        feed(&mut j, &frontal(ALICE)),
        Progress::Failed(Failure::TooLate)
    );
}
