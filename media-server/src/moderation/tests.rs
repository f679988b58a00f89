//! The screening machinery around the policy: pictures in through the sink, a real
//! worker thread, actions out (black frames asked of the SFU, events for signaling).

use std::sync::Mutex;
use std::time::Duration;

use doubles::*;
use kefu_proto::FrameSink;
use kefu_vision::{Picture, VisionError};

use super::*;

/// Test doubles.
mod doubles {
    use super::*;

    /// The test-only marker classifier (magenta is "offending"), slowed by `delay`.
    #[derive(Debug)]
    pub struct MarkerIsPositive {
        pub delay: Duration,
    }

    impl NudityClassifier for MarkerIsPositive {
        fn nsfw_score(&mut self, picture: &Picture) -> Result<f32, VisionError> {
            std::thread::sleep(self.delay);
            kefu_vision::TestMarkerColourClassifier::default().nsfw_score(picture)
        }
    }

    #[derive(Debug, Default)]
    pub struct Blanks(pub Mutex<Vec<(ParticipantId, bool)>>);

    impl Blanker for Blanks {
        fn set_blanked(&self, participant: ParticipantId, on: bool) {
            self.0.lock().expect("test value").push((participant, on));
        }
    }
}

fn parties() -> Vec<TapParty> {
    vec![
        TapParty {
            participant: ParticipantId::new("agent-1"),
            side: Side::Agent,
        },
        TapParty {
            participant: ParticipantId::new("customer-1"),
            side: Side::Customer,
        },
    ]
}

/// A flat picture: dark grey, or the test marker's magenta.
fn flat(side: Side, magenta: bool) -> I420Picture {
    let (w, h) = (64, 48);
    let (y, u, v) = if magenta {
        (106, 202, 222)
    } else {
        (40, 128, 128)
    };
    let quarter = (w / 2 * h / 2) as usize;
    let mut data = vec![y; (w * h) as usize];
    data.extend(std::iter::repeat_n(u, quarter));
    data.extend(std::iter::repeat_n(v, quarter));
    I420Picture {
        side,
        source: kefu_proto::PictureSource::OwnDecoder,
        width: w,
        height: h,
        data,
    }
}

/// Feeds both sides at 30 fps (real time, the screen reads the clock) for at most
/// `limit`, the customer's pictures magenta from `marker_after` on; stops early once
/// `done` says so.
fn feed(
    screen: &Arc<RoomScreen>,
    limit: Duration,
    marker_after: Duration,
    done: impl Fn() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit && !done() {
        for side in [Side::Agent, Side::Customer] {
            let magenta = side == Side::Customer && start.elapsed() >= marker_after;
            if screen.decoded(side) {
                screen.offer(flat(side, magenta));
            }
        }
        std::thread::sleep(Duration::from_millis(33));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offending_customer_is_blanked_for_the_agent_then_the_call_ends() {
    let blanks = Arc::new(Blanks::default());
    let (moderation, mut events) = Moderation::start(
        Box::new(MarkerIsPositive {
            delay: Duration::ZERO,
        }),
        blanks.clone(),
        ModerationMetrics::default(),
    )
    .expect("worker");
    let room = RoomId::new("room-1");
    let screen = moderation.screen(
        room.clone(),
        parties(),
        ModerationSettings::default(),
        DecodePath::Recorder,
    );
    let s = Arc::clone(&screen);
    let fed = tokio::task::spawn_blocking(move || {
        feed(
            &s,
            Duration::from_secs(4),
            Duration::from_millis(1500),
            || false,
        );
    });

    let blurred = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an action within 5 s")
        .expect("event");
    assert_eq!(blurred.action, ModerationAction::Blurred);
    assert_eq!(blurred.side, Side::Customer);
    assert_eq!(blurred.participant, ParticipantId::new("customer-1"));
    assert_eq!(blurred.scores.len(), 2);
    assert!(
        blurred.scores.iter().all(|s| *s > 0.8),
        "{:?}",
        blurred.scores
    );
    let evidence = blurred.evidence.as_ref().expect("evidence");
    assert_eq!(&evidence.jpeg[..2], &[0xFF, 0xD8]);
    assert_eq!(&evidence.mosaic_jpeg[..2], &[0xFF, 0xD8]);
    assert_eq!(
        blanks.0.lock().expect("test value").as_slice(),
        [(ParticipantId::new("customer-1"), true)]
    );
    assert!(screen.is_blurred(Side::Customer) && !screen.is_blurred(Side::Agent));

    let ended = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the end within 5 s")
        .expect("event");
    assert_eq!(ended.action, ModerationAction::EndCall);
    assert_eq!(ended.scores.len(), 5);
    moderation.stop(&room);
    fed.await.expect("feeder");
    let stats = moderation.stats();
    assert!(stats.classified >= 5 && stats.positives >= 5, "{stats:?}");
    assert_eq!(stats.actions, 2);
    assert_eq!(stats.rooms_on_recorder, 0, "stopped rooms are forgotten");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_behind_classifier_drops_samples_without_holding_the_decoders() {
    let (moderation, _events) = Moderation::start(
        Box::new(MarkerIsPositive {
            delay: Duration::from_millis(150),
        }),
        Arc::new(Blanks::default()),
        ModerationMetrics::default(),
    )
    .expect("worker");
    let screens: Vec<_> = (0..12)
        .map(|i| {
            moderation.screen(
                RoomId::new(format!("room-{i}")),
                parties(),
                ModerationSettings::default(),
                DecodePath::OwnDecode,
            )
        })
        .collect();
    assert_eq!(moderation.stats().rooms_on_own_decode, 12);
    // Every stream wants its first sample at once: 24 samples for a queue of 4.
    let mut slowest = Duration::ZERO;
    for screen in &screens {
        for side in [Side::Agent, Side::Customer] {
            let t = Instant::now();
            if screen.decoded(side) {
                screen.offer(flat(side, false));
            }
            slowest = slowest.max(t.elapsed());
        }
    }
    let stats = moderation.stats();
    assert_eq!(stats.samples, 24);
    assert!(stats.dropped >= 24 - QUEUE as u64 - 1, "{stats:?}");
    // Dropping is a counter and a flag, not a wait on the classifier (150 ms a sample).
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
    // A dropped sample is no verdict in flight: the stream samples again when due.
    std::thread::sleep(Duration::from_millis(1100));
    let again = screens.iter().filter(|s| s.decoded(Side::Agent)).count();
    assert!(again >= 6, "{again} streams sampled again");
}

#[test]
fn own_decoder_hands_real_vp8_pictures_to_the_screen() {
    #[derive(Debug, Default)]
    struct Wants(Mutex<(u32, Vec<I420Picture>)>);
    impl PictureSink for Wants {
        fn decoded(&self, _side: Side) -> bool {
            let mut w = self.0.lock().expect("test value");
            w.0 += 1;
            w.0.is_multiple_of(10)
        }
        fn offer(&self, picture: I420Picture) {
            self.0.lock().expect("test value").1.push(picture);
        }
    }
    let frames =
        kefu_synthetic::party_frames(Side::Customer, 440.0, 2.0, Some(2.0), Instant::now())
            .expect("synthetic media");
    let video = frames.iter().filter(|f| f.codec.is_video()).count() as u32;
    let wants = Arc::new(Wants::default());
    let decoder = OwnDecoder::spawn(&RoomId::new("room-d"), wants.clone()).expect("thread");
    for frame in frames {
        while !decoder.try_send(frame.clone()) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while wants.0.lock().expect("test value").0 < video && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let w = wants.0.lock().expect("test value");
    assert_eq!(w.0, video, "every video frame decoded once");
    assert_eq!(w.1.len() as u32, video / 10);
    let p = &w.1[0];
    assert!(p.is_well_formed() && (p.width, p.height) == (320, 240) && p.side == Side::Customer);
    // The moving test picture is not flat grey.
    let y = &p.data[..(320 * 240)];
    assert!(y.iter().max() > y.iter().min());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorder_that_stops_decoding_hands_the_room_to_an_own_decoder() {
    let (moderation, mut events) = Moderation::start(
        Box::new(MarkerIsPositive {
            delay: Duration::ZERO,
        }),
        Arc::new(Blanks::default()),
        ModerationMetrics::default(),
    )
    .expect("worker");
    let room = RoomId::new("room-r");
    let screen = moderation.screen(
        room.clone(),
        parties(),
        ModerationSettings::default(),
        DecodePath::Recorder,
    );
    screen.source_lost();
    screen.source_lost();
    let lost = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("told at once")
        .expect("event");
    assert_eq!(lost.action, ModerationAction::DecoderLost);
    assert_eq!(lost.room, room);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.recv())
            .await
            .is_err(),
        "once"
    );
    let (switched, tap) = moderation
        .switch_to_own_decode(&room)
        .expect("a screened room");
    assert!(Arc::ptr_eq(&switched, &screen));
    assert_eq!(tap, parties());
    let stats = moderation.stats();
    assert_eq!((stats.rooms_on_recorder, stats.rooms_on_own_decode), (0, 1));
    assert!(moderation.switch_to_own_decode(&room).is_none(), "already");
    assert!(
        moderation
            .switch_to_own_decode(&RoomId::new("nope"))
            .is_none()
    );
}
