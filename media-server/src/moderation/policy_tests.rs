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
        if on.lift_blur {
            actions.push((t, Action::Nothing));
        }
        if on.sample {
            samples.push(t);
            let a = p.verdict(score(t), t + Duration::from_millis(40));
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
    assert_eq!(p.verdict(0.9, t0), Action::Nothing);
    let t1 = t0 + Duration::from_millis(300);
    assert!(
        p.picture(t1).sample,
        "a positive asks for a quick second look"
    );
    assert_eq!(p.verdict(0.1, t1), Action::Nothing);
    let t2 = t1 + Duration::from_millis(300);
    assert!(
        !p.picture(t2).sample,
        "after a negative the normal interval applies"
    );
    let t3 = t0 + Duration::from_millis(1300);
    assert!(p.picture(t3).sample);
    assert_eq!(
        p.verdict(0.9, t3),
        Action::Nothing,
        "one positive again, not two"
    );
    let t4 = t3 + Duration::from_millis(260);
    assert!(p.picture(t4).sample);
    assert_eq!(p.verdict(0.85, t4), Action::Blur);
    // Blurred: a negative resets the count towards the end, too.
    let mut t = t4;
    for score in [0.9, 0.9, 0.1, 0.9, 0.9] {
        t += Duration::from_millis(1100);
        assert!(p.picture(t).sample);
        assert_eq!(p.verdict(score, t), Action::Nothing);
    }
    t += Duration::from_millis(1100);
    assert!(p.picture(t).sample);
    assert_eq!(p.verdict(0.9, t), Action::EndCall);
}

#[test]
fn turning_the_camera_off_and_on_lifts_the_blur_and_warms_up_again() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    let briefly = |from: Instant| move |t: Instant| if t < from { 0.99 } else { 0.01 };
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
    // Camera off for 3 s: no pictures at all.
    let back = t0 + Duration::from_secs(5);
    let on = p.picture(back);
    assert!(on.lift_blur && on.sample);
    assert!(!p.is_blurred());
    assert_eq!(p.verdict(0.01, back), Action::Nothing);
    let offending = back + Duration::from_millis(900)..back + Duration::from_millis(1500);
    let (_, actions) = run(&mut p, back, Duration::from_secs(2), |t| {
        if offending.contains(&t) { 0.99 } else { 0.01 }
    });
    assert_eq!(
        actions.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
        [Action::Blur]
    );
    // A short stall is no camera cycle.
    let stall = back + Duration::from_millis(2800);
    assert!(!p.picture(stall).lift_blur);
    assert!(p.is_blurred());
}

#[test]
fn a_sample_awaiting_its_verdict_blocks_the_next_until_dropped_or_stale() {
    let t0 = Instant::now();
    let mut p = StreamPolicy::new(ModerationSettings::default());
    assert!(p.picture(t0).sample);
    let later = t0 + Duration::from_millis(1200);
    assert!(!p.picture(later).sample, "one sample in flight per stream");
    p.sample_dropped();
    assert!(p.picture(later + FRAME).sample);
    // A verdict that never comes is given up after VERDICT_TIMEOUT.
    let mut t = later + FRAME;
    let mut sampled_again = None;
    for i in 1..300 {
        t += FRAME;
        if p.picture(t).sample {
            sampled_again = Some(i);
            break;
        }
    }
    let waited = FRAME * sampled_again.expect("sampled again after the timeout");
    assert!(
        waited >= VERDICT_TIMEOUT && waited < VERDICT_TIMEOUT + FRAME * 2,
        "{waited:?}"
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
    assert_eq!(p.verdict(1.0, t0), Action::Nothing);
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
