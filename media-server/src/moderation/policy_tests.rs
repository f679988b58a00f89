use super::*;

const FRAME: Duration = Duration::from_millis(33);

/// Drives a stream at 30 fps from `from` for `span`, answering each sample at once
/// with `score(t)`; returns the sample times and the actions with their times.
fn run(
    p: &mut StreamPolicy,
    from: Instant,
    span: Duration,
    score: impl Fn(Instant) -> f32,
) -> (Vec<Instant>, Vec<(Instant, Action)>) {
    let (mut samples, mut actions) = (Vec::new(), Vec::new());
    let frames = (span.as_millis() / FRAME.as_millis()) as u32;
    for i in 0..frames {
        let t = from + FRAME * i;
        let on = p.picture(t);
        if on.sample {
            samples.push(t);
            let a = p.verdict(score(t), t + Duration::from_millis(40), t);
            if a != Action::Nothing {
                actions.push((t, a));
            }
        }
    }
    (samples, actions)
}

fn gaps(samples: &[Instant]) -> Vec<u128> {
    samples
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect()
}

#[test]
fn samples_every_second_for_ten_seconds_then_every_two() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let (samples, actions) = run(&mut p, t0, Duration::from_secs(20), |_| 0.01);
    assert!(actions.is_empty());
    assert_eq!(samples[0], t0, "the first picture is sampled at once");
    let g = gaps(&samples);
    // Frames come every 33 ms, so a due sample waits for the next picture.
    let warm: Vec<_> = samples
        .iter()
        .filter(|s| **s - t0 < Duration::from_secs(10))
        .collect();
    assert_eq!(warm.len(), 10, "{g:?}");
    assert!(g[..9].iter().all(|ms| (1000..1034).contains(ms)), "{g:?}");
    assert!(g[10..].iter().all(|ms| (2000..2034).contains(ms)), "{g:?}");
    assert_eq!(samples.len(), 15, "{g:?}");
}

#[test]
fn two_positives_blur_and_three_more_end_the_call() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let offending_from = t0 + Duration::from_millis(3300);
    let (samples, actions) = run(&mut p, t0, Duration::from_secs(10), |t| {
        if t >= offending_from { 0.97 } else { 0.02 }
    });
    let kinds: Vec<Action> = actions.iter().map(|(_, a)| *a).collect();
    assert_eq!(kinds, [Action::Blur, Action::EndCall]);
    let blur_at = actions[0].0;
    // The first offending picture is sampled within a warm-up interval and confirmed
    // 250 ms later: well within two seconds.
    assert!(
        blur_at - offending_from <= Duration::from_millis(1400),
        "{:?}",
        blur_at - offending_from
    );
    assert!(p.is_blurred());
    assert_eq!(p.streak_scores(), [0.97; 5]);
    // After the end nothing more is sampled.
    let last = *samples.last().expect("test value");
    assert!(last <= actions[1].0);
}

#[test]
fn a_negative_in_between_restarts_the_count() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    assert!(p.picture(t0).sample);
    assert_eq!(p.verdict(0.9, t0, t0), Action::Nothing);
    let t1 = t0 + Duration::from_millis(300);
    assert!(
        p.picture(t1).sample,
        "a positive asks for a quick second look"
    );
    assert_eq!(p.verdict(0.1, t1, t1), Action::Nothing);
    let t2 = t1 + Duration::from_millis(300);
    assert!(
        !p.picture(t2).sample,
        "after a negative the normal interval applies"
    );
    let t3 = t0 + Duration::from_millis(1300);
    assert!(p.picture(t3).sample);
    assert_eq!(
        p.verdict(0.9, t3, t3),
        Action::Nothing,
        "one positive again, not two"
    );
    let t4 = t3 + Duration::from_millis(260);
    assert!(p.picture(t4).sample);
    assert_eq!(p.verdict(0.85, t4, t4), Action::Blur);
    // Blurred: a negative resets the count towards the end, too.
    let mut t = t4;
    for score in [0.9, 0.9, 0.1, 0.9, 0.9] {
        t += Duration::from_millis(1100);
        assert!(p.picture(t).sample);
        assert_eq!(p.verdict(score, t, t), Action::Nothing);
    }
    t += Duration::from_millis(1100);
    assert!(p.picture(t).sample);
    assert_eq!(p.verdict(0.9, t, t), Action::EndCall);
}

#[test]
fn a_camera_cycle_lifts_the_blur_only_once_the_new_picture_is_clean() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let briefly = |until: Instant| move |t: Instant| if t < until { 0.99 } else { 0.01 };
    let (_, actions) = run(
        &mut p,
        t0,
        Duration::from_secs(2),
        briefly(t0 + Duration::from_millis(400)),
    );
    assert_eq!(
        actions.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
        [Action::Blur]
    );
    assert!(p.is_blurred(), "negatives alone do not lift it");
    // A short stall is no camera cycle.
    // 1.3 s without pictures is a stall, not a camera cycle: a clean sample after it
    // does not lift.
    let stall = t0 + Duration::from_millis(3300);
    assert!(p.picture(stall).sample);
    assert_eq!(p.verdict(0.01, stall, stall), Action::Nothing);
    assert!(p.is_blurred());
    // Camera off for 3 s, then on: sampled at once, still withheld until judged.
    let back = t0 + Duration::from_secs(6);
    assert!(p.picture(back).sample);
    assert!(p.is_blurred());
    assert_eq!(p.verdict(0.01, back, back), Action::Lift);
    assert!(!p.is_blurred());
}

/// A stream whose first two samples (0 ms and a confirmation) were positive: blurred.
fn blurred_at_once() -> (StreamPolicy, Instant) {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let (_, actions) = run(&mut p, t0, Duration::from_millis(400), |_| 0.99);
    assert_eq!(
        actions.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
        [Action::Blur]
    );
    (p, t0)
}

#[test]
fn cycling_the_camera_cannot_dodge_the_end_of_the_call() {
    let (mut p, t0) = blurred_at_once();
    // Back with the same picture: stays withheld, and the positives count on.
    let mut t = t0 + Duration::from_secs(3);
    assert!(p.picture(t).sample);
    assert_eq!(p.verdict(0.99, t, t), Action::Nothing);
    assert!(p.is_blurred(), "a positive first sample keeps it withheld");
    let mut last = Action::Nothing;
    for _ in 0..2 {
        t += Duration::from_secs(3);
        assert!(p.picture(t).sample);
        last = p.verdict(0.99, t, t);
    }
    assert_eq!(
        last,
        Action::EndCall,
        "three positives after the blur, cycles or not"
    );

    // Clean pictures after each cycle lift it, but the third blur ends the call.
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let mut step = |t: Instant, score: f32| {
        assert!(p.picture(t).sample, "a sample is due at {:?}", t - t0);
        p.verdict(score, t, t)
    };
    let mut t = t0;
    let mut acted = Vec::new();
    for round in 0..3 {
        // Two positives, the second one a confirmation 300 ms later.
        acted.push(step(t, 0.99));
        t += Duration::from_millis(300);
        acted.push(step(t, 0.99));
        if round < 2 {
            // Camera off for 3 s and on with a clean picture.
            t += Duration::from_secs(3);
            acted.push(step(t, 0.01));
            t += Duration::from_millis(1000);
        }
    }
    acted.retain(|a| *a != Action::Nothing);
    assert_eq!(
        acted,
        [
            Action::Blur,
            Action::Lift,
            Action::Blur,
            Action::Lift,
            Action::EndCall
        ]
    );
}

#[test]
fn a_sample_due_while_one_awaits_its_verdict_is_skipped_and_reported() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    assert!(p.picture(t0).sample);
    // No verdict comes: every due time meanwhile is reported as behind, until the
    // verdict is given up after VERDICT_TIMEOUT.
    let (mut behind, mut resampled) = (0, None);
    for i in 1..300u32 {
        let t = t0 + FRAME * i;
        let on = p.picture(t);
        behind += u32::from(on.behind);
        if on.sample {
            resampled = Some(t - t0);
            break;
        }
    }
    let resampled = resampled.expect("sampled again after the timeout");
    assert!(
        resampled >= VERDICT_TIMEOUT && resampled < VERDICT_TIMEOUT + Duration::from_secs(1),
        "{resampled:?}"
    );
    assert!((4..=5).contains(&behind), "{behind} skipped samples");
    // A dropped sample frees the stream at once for its next due time.
    p.sample_dropped(None);
    let next = t0 + resampled + Duration::from_millis(1100);
    assert!(p.picture(next).sample);
}

#[test]
fn a_late_verdict_from_before_a_camera_cycle_is_ignored() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    assert!(p.picture(t0).sample);
    let back = t0 + Duration::from_secs(3);
    assert!(p.picture(back).sample, "a new run samples at once");
    assert_eq!(
        p.verdict(0.99, back, t0),
        Action::Nothing,
        "the old run's verdict"
    );
    assert!(p.streak_scores().is_empty());
    assert!(
        p.picture(back + Duration::from_millis(1100)).behind,
        "the new sample still awaits its verdict"
    );
}

#[test]
fn disabled_screening_samples_nothing() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings {
        enabled: false,
        ..ModerationSettings::default()
    });
    let (samples, actions) = run(&mut p, t0, Duration::from_secs(5), |_| 1.0);
    assert!(samples.is_empty() && actions.is_empty());
    assert_eq!(p.verdict(1.0, t0, t0), Action::Nothing);
}

#[test]
fn settings_outside_their_ranges_are_refused_by_name() {
    assert_eq!(ModerationSettings::default().validate(), Ok(()));
    let bad = |s: ModerationSettings| s.validate().expect_err("refused").field;
    let d = ModerationSettings::default();
    assert_eq!(
        bad(ModerationSettings {
            threshold: f32::NAN,
            ..d
        }),
        "threshold"
    );
    assert_eq!(
        bad(ModerationSettings {
            threshold: 0.2,
            ..d
        }),
        "threshold"
    );
    assert_eq!(
        bad(ModerationSettings {
            positives_to_blur: 0,
            ..d
        }),
        "positives_to_blur"
    );
    assert_eq!(
        bad(ModerationSettings {
            positives_to_end: 0,
            ..d
        }),
        "positives_to_end"
    );
    assert_eq!(
        bad(ModerationSettings {
            warmup_interval_ms: 10,
            ..d
        }),
        "warmup_interval_ms"
    );
    assert_eq!(
        bad(ModerationSettings {
            warmup_ms: 1_000_000,
            ..d
        }),
        "warmup_ms"
    );
    assert_eq!(
        bad(ModerationSettings {
            steady_interval_ms: 600,
            ..d
        }),
        "steady_interval_ms",
        "steadier than the warm-up"
    );
}

#[test]
fn a_score_that_is_not_a_number_is_no_evidence_either_way() {
    let (mut p, t0) = blurred_at_once();
    let back = t0 + Duration::from_secs(3);
    assert!(p.picture(back).sample);
    assert_eq!(p.verdict(f32::NAN, back, back), Action::Nothing);
    assert!(p.is_blurred(), "NaN lifts nothing");
    let next = back + Duration::from_millis(1100);
    assert!(
        p.picture(next).sample,
        "and frees the stream for the next sample"
    );
    assert_eq!(p.verdict(f32::INFINITY, next, next), Action::Nothing);
    assert!(p.streak_scores().is_empty(), "nor counts as a positive");
    // Still three real positives from the end.
    let mut t = next + Duration::from_millis(1100);
    let mut last = Action::Nothing;
    for _ in 0..3 {
        assert!(p.picture(t).sample);
        assert_eq!(last, Action::Nothing);
        last = p.verdict(0.99, t, t);
        t += Duration::from_millis(300);
    }
    assert_eq!(last, Action::EndCall);
}
