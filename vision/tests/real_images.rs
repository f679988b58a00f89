//! The engine on real photos with the real models: same person, another person, and
//! each liveness attack failing with its reason.

mod support;

use kefu_vision::liveness::{Challenge, FrameFaces, LivenessJudge, Policy, Progress, Turn};
use kefu_vision::{Embedding, EnrollError, FaceEngine, FaceSample, FaceVision, Failure};
use opencv::core::Mat;
use opencv::prelude::*;
use support::*;

fn reference(engine: &mut FaceEngine) -> Embedding {
    engine
        .enroll(&photo_bytes("obama.jpg"))
        .expect("engine works")
        .expect("obama.jpg enrols")
}

fn pose_of(engine: &mut FaceEngine, m: &Mat) -> Option<kefu_vision::Pose> {
    let frame = engine
        .analyze(&jpeg(m))
        .expect("engine works")
        .expect("a JPEG frame");
    match frame.faces {
        FrameFaces::One(p) => Some(p),
        _ => None,
    }
}

fn yaw_of(engine: &mut FaceEngine, m: &Mat) -> Option<f32> {
    pose_of(engine, m).map(|p| p.yaw)
}

/// Nose parallax of `m` against the frontal test frame.
fn parallax_of(engine: &mut FaceEngine, m: &Mat) -> Option<f32> {
    let front = pose_of(engine, &frame("obama.jpg"))?;
    pose_of(engine, m)?
        .landmarks
        .nose_parallax(&front.landmarks)
}

/// Runs one attempt over `frames` (receive time, picture), started at 0, with the
/// challenge shown 600 ms after the first face.
fn attempt(engine: &mut FaceEngine, steps: Vec<Turn>, frames: &[(i64, Mat)]) -> Progress {
    let references = vec![reference(engine)];
    let challenge = Challenge {
        steps,
        reveal_after_ms: 600,
    };
    let mut judge = LivenessJudge::new(challenge, Policy::default(), references, 0);
    let mut last = judge.progress();
    for (t, m) in frames {
        // As the server gets them: JPEG bytes through the engine's frame path.
        let mut frame = engine
            .analyze(&jpeg(m))
            .expect("engine works")
            .expect("a JPEG frame");
        let faces = frame.faces;
        last = judge.observe(*t, faces, &mut frame);
        assert!(frame.error.is_none(), "{:?}", frame.error);
        if matches!(last, Progress::Passed | Progress::Failed(_)) {
            break;
        }
    }
    last
}

/// Four frontal frames (t = 100…850 ms): the first step shows at 850.
fn frontal_then(rest: Vec<(i64, Mat)>) -> Vec<(i64, Mat)> {
    let front = frame("obama.jpg");
    let mut v: Vec<(i64, Mat)> = (0..4).map(|i| (100 + 250 * i, front.clone())).collect();
    v.extend(rest);
    v
}

#[test]
fn the_test_photos_have_the_poses_the_challenge_tests_use() {
    let mut e = engine();
    let front = yaw_of(&mut e, &frame("obama.jpg")).expect("face");
    let left = yaw_of(&mut e, &frame("obama3.jpg")).expect("face");
    let right = yaw_of(&mut e, &frame("obama2.jpg")).expect("face");
    let p = Policy::default();
    let (pl, pr) = (
        parallax_of(&mut e, &frame("obama3.jpg")).expect("parallax"),
        parallax_of(&mut e, &frame("obama2.jpg")).expect("parallax"),
    );
    println!(
        "yaw: obama {front:.3}, obama3 {left:.3}, obama2 {right:.3}; parallax obama3 {pl:.3} obama2 {pr:.3}"
    );
    assert!(pl >= p.min_parallax && -pr >= p.min_parallax, "{pl} {pr}");
    assert!(front.abs() < p.turn_yaw, "obama.jpg is frontal: {front}");
    assert!(
        left >= p.turn_yaw && left - front >= p.min_swing,
        "obama3 turns left: {left}"
    );
    assert!(
        -right >= p.turn_yaw && front - right >= p.min_swing,
        "obama2 turns right: {right}"
    );
}

#[test]
fn the_same_person_matches_and_another_does_not() {
    let mut e = engine();
    let r = reference(&mut e);
    let t = Policy::default().match_threshold;
    for name in ["obama2.jpg", "obama3.jpg"] {
        let emb = e
            .enroll(&photo_bytes(name))
            .expect("engine")
            .expect("enrols");
        assert!(emb.cosine(&r) >= t, "{name}: {}", emb.cosine(&r));
    }
    let biden = e
        .enroll(&photo_bytes("biden.jpg"))
        .expect("engine")
        .expect("enrols");
    assert!(biden.cosine(&r) < t, "biden: {}", biden.cosine(&r));
}

#[test]
fn following_the_challenge_with_real_turns_passes() {
    let mut e = engine();
    let (front, left, right) = (frame("obama.jpg"), frame("obama3.jpg"), frame("obama2.jpg"));
    let frames = frontal_then(vec![
        (1100, front.clone()),
        (1350, left),
        (1600, front),
        (1850, right),
    ]);
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Passed
    );
}

#[test]
fn another_person_following_the_challenge_fails_as_a_different_person() {
    let mut e = engine();
    let b = frame("biden.jpg");
    let frames: Vec<_> = (0..6).map(|i| (100 + 250 * i, b.clone())).collect();
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::DifferentPerson)
    );
}

#[test]
fn a_still_photo_held_up_fails_as_no_motion() {
    let mut e = engine();
    let front = frame("obama.jpg");
    let frames: Vec<_> = (0..40).map(|i| (100 + 250 * i, front.clone())).collect();
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::NoMotion)
    );
}

/// How well `m`'s face lines up with the frontal frame moved as a plane.
fn plane_match_of(engine: &mut FaceEngine, m: &Mat) -> Option<f32> {
    let front = {
        let mut f = engine
            .analyze(&jpeg(&frame("obama.jpg")))
            .expect("engine")
            .expect("a JPEG frame");
        f.snapshot()?
    };
    let mut cur = engine
        .analyze(&jpeg(m))
        .expect("engine")
        .expect("a JPEG frame");
    cur.face()?;
    cur.plane_match(&front)
}

#[test]
fn a_flat_photo_tilted_and_rotated_fails_as_planar_motion() {
    let mut e = engine();
    let front = frame("obama.jpg");
    let p = Policy::default();
    // Turned up to ±40° about its vertical axis and rolled ±15°: the print moves; where
    // its landmarks look like a turn, its pixels still line up as a plane.
    let poses = [
        (0.0, 0.0),
        (-40.0, 0.0),
        (40.0, 10.0),
        (-25.0, -15.0),
        (30.0, 15.0),
        (-20.0, 0.0),
        (20.0, 5.0),
    ];
    let mut frames = Vec::new();
    for i in 0..34 {
        let (yaw, roll) = poses[i % poses.len()];
        let m = flat_print_turned(&front, yaw, roll);
        if i < poses.len() {
            let y = yaw_of(&mut e, &m);
            let pm = plane_match_of(&mut e, &m);
            println!("print turned {yaw}° rolled {roll}°: yaw {y:?} plane match {pm:?}");
            if let Some(pm) = pm {
                assert!(pm >= p.max_plane_match, "a print lines up as a plane: {pm}");
            }
        }
        frames.push((100 + 250 * i as i64, m));
    }
    for name in ["obama2.jpg", "obama3.jpg"] {
        let pm = plane_match_of(&mut e, &frame(name)).expect("plane match");
        println!("{name}: plane match {pm:.3}");
        assert!(
            pm < p.max_plane_match,
            "a real turn does not line up: {name} {pm}"
        );
    }
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::PlanarMotion)
    );
}

#[test]
fn a_turned_photo_and_its_mirror_image_fail_as_mirrored() {
    let mut e = engine();
    let right = frame("obama2.jpg");
    let fake_left = mirrored(&right);
    let frames = frontal_then(vec![
        (1100, right),
        (1350, frame("obama.jpg")),
        (1600, fake_left),
    ]);
    assert_eq!(
        attempt(&mut e, vec![Turn::Right, Turn::Left], &frames),
        Progress::Failed(Failure::Mirrored)
    );
}

#[test]
fn a_face_that_changes_mid_sequence_fails() {
    let mut e = engine();
    let b = frame("biden.jpg");
    let frames = frontal_then((0..4).map(|i| (1100 + 250 * i, b.clone())).collect());
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::IdentityChanged)
    );
}

#[test]
fn answering_in_the_wrong_order_fails() {
    let mut e = engine();
    let frames = frontal_then(vec![
        (1100, frame("obama2.jpg")),
        (1350, frame("obama3.jpg")),
    ]);
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::WrongDirection)
    );
}

#[test]
fn answering_too_late_fails() {
    let mut e = engine();
    // The first step shows at 850 ms; its window is 6 s.
    let frames = frontal_then(vec![(850 + 6_400, frame("obama3.jpg"))]);
    assert_eq!(
        attempt(&mut e, vec![Turn::Left, Turn::Right], &frames),
        Progress::Failed(Failure::TooLate)
    );
}

#[test]
fn each_bad_reference_photo_gets_its_reason() {
    let mut e = engine();
    let obama = photo("obama.jpg");
    let enrol = |e: &mut FaceEngine, bytes: &[u8]| e.enroll(bytes).expect("engine works").err();

    assert_eq!(
        enrol(&mut e, b"GIF89a not a photo"),
        Some(EnrollError::NotAnImage)
    );
    let mut huge = photo_bytes("obama.jpg");
    huge.resize(10 * 1024 * 1024 + 1, 0);
    assert_eq!(enrol(&mut e, &huge), Some(EnrollError::TooLarge));
    let wide = scaled(obama.bgr(), 5000.0);
    assert_eq!(enrol(&mut e, &jpeg(&wide)), Some(EnrollError::TooLarge));

    let coffee = std::fs::read(repo().join("test-data/coffee.png")).expect("coffee.png");
    assert_eq!(enrol(&mut e, &coffee), Some(EnrollError::NoFace));

    let two = side_by_side(&frame("obama.jpg"), &frame("biden.jpg"));
    assert_eq!(enrol(&mut e, &jpeg(&two)), Some(EnrollError::SeveralFaces));

    let small = scaled(obama.bgr(), 220.0);
    assert_eq!(
        enrol(&mut e, &jpeg(&small)),
        Some(EnrollError::FaceTooSmall)
    );

    let mut dark = Mat::default();
    obama
        .bgr()
        .convert_to(&mut dark, -1, 0.12, 0.0)
        .expect("darken");
    assert_eq!(enrol(&mut e, &jpeg(&dark)), Some(EnrollError::TooDark));

    let mut blurred = Mat::default();
    opencv::imgproc::gaussian_blur(
        obama.bgr(),
        &mut blurred,
        opencv::core::Size::new(0, 0),
        9.0,
        9.0,
        opencv::core::BORDER_DEFAULT,
    )
    .expect("blur");
    let q = e.photo_quality(&picture(blurred.clone())).expect("engine");
    println!(
        "blurred: {q:?}; sharp: {:?}",
        e.photo_quality(&obama).expect("engine")
    );
    assert_eq!(enrol(&mut e, &jpeg(&blurred)), Some(EnrollError::TooBlurry));

    assert_eq!(
        enrol(&mut e, &photo_bytes("obama.jpg")),
        None,
        "a good photo enrols"
    );
}

fn side_by_side(a: &Mat, b: &Mat) -> Mat {
    use opencv::core::MatTraitConst;
    let h = a.rows().min(b.rows());
    let fit = |m: &Mat| {
        scaled(
            m,
            f64::from(h) * f64::from(m.cols().max(m.rows())) / f64::from(m.rows()),
        )
    };
    let (a, b) = (fit(a), fit(b));
    let (a, b) = (
        Mat::roi(&a, opencv::core::Rect::new(0, 0, a.cols(), h))
            .expect("roi")
            .try_clone()
            .expect("clone"),
        Mat::roi(&b, opencv::core::Rect::new(0, 0, b.cols(), h))
            .expect("roi")
            .try_clone()
            .expect("clone"),
    );
    let mut out = Mat::default();
    let v = opencv::core::Vector::<Mat>::from_iter([a, b]);
    opencv::core::hconcat(&v, &mut out).expect("hconcat");
    out
}
