//! Two independent WebRTC clients (webrtc-rs) call each other through the SFU.

use std::time::Duration;

use kefu_proto::signaling::ServerMessage;
use kefu_signaling::rooms::token::Side;
use kefu_tests::{RtcClient, TestServer, running_call, spawn_app};

/// Whether `client` was told that the other participant left.
async fn told_left(client: &RtcClient) -> bool {
    client.messages.lock().await.iter().any(
        |m| matches!(m, ServerMessage::PeerLeft { participant } if participant == "customer-1"),
    )
}

async fn wait_until_told_left(client: &RtcClient, timeout: Duration) {
    kefu_tests::wait_until("peer_left at the agent", timeout, || async {
        told_left(client).await.then_some(())
    })
    .await;
}

async fn wait_until_sfu_holds(server: &TestServer, participants: f64) {
    kefu_tests::wait_until(
        "the SFU to hold its participants",
        Duration::from_secs(5),
        || async { (server.metric("kefu_sfu_participants").await == participants).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_receives_the_others_audio_and_video() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;

    // Five more seconds of media: ~250 audio packets and ~150 frames each way.
    for client in [&agent, &customer] {
        let counts = client.wait_for_more(150, 90, Duration::from_secs(10)).await;
        assert!(
            counts.video_packets > counts.video_frames,
            "frames span packets: {counts:?}"
        );
    }

    let messages = agent.messages.lock().await.clone();
    assert!(
        matches!(messages.first(), Some(ServerMessage::Joined { .. })),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Answer { .. }))
    );
    // The customer is announced, or already there when the agent's join is handled
    // (both connect at once; the server may take the customer's join first).
    assert!(
        messages.iter().any(|m| match m {
            ServerMessage::PeerJoined(p) => p.participant == "customer-1",
            ServerMessage::Joined { peers, .. } => {
                peers.iter().any(|p| p.participant == "customer-1")
            }
            _ => false,
        }),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, ServerMessage::MediaConnected))
    );

    assert_eq!(server.metric("kefu_calls").await, 1.0);
    assert_eq!(server.metric("kefu_sfu_participants").await, 2.0);
    assert!(server.metric("kefu_sfu_packets_forwarded_total").await > 500.0);
}

/// `media.udp_gso = false` (a kernel without UDP GSO): the same call, every datagram
/// sent one per system call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_gso_turned_off_media_flows_the_same_over_plain_sends() {
    let server = kefu_tests::spawn_app_with(|c| c.media.udp_gso = false).await;
    let (agent, customer) = running_call(&server).await;
    for client in [&agent, &customer] {
        let counts = client.wait_for_more(150, 90, Duration::from_secs(10)).await;
        assert!(counts.video_packets > counts.video_frames, "{counts:?}");
    }
    // The socket's counters reach the metrics on a 1 s tick.
    let plain = kefu_tests::wait_until("plain sends counted", Duration::from_secs(5), || async {
        let sent = server
            .metric("kefu_sfu_udp_datagrams_sent_total{path=\"plain\"}")
            .await;
        (sent > 500.0).then_some(sent)
    })
    .await;
    assert!(server.metric("kefu_sfu_packets_forwarded_total").await > 500.0);
    assert_eq!(
        server
            .metric("kefu_sfu_udp_datagrams_sent_total{path=\"gso\"}")
            .await,
        0.0,
        "GSO used although turned off ({plain} plain datagrams)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_tells_the_other_side_and_frees_the_sfu() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    customer.hang_up();
    customer.pc.close().await.expect("close");
    wait_until_told_left(&agent, Duration::from_secs(5)).await;
    wait_until_sfu_holds(&server, 1.0).await;
    assert_eq!(server.metric("kefu_calls").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_page_replaces_its_old_connection_and_media_resumes() {
    let server = spawn_app().await;
    let (agent, old_customer) = running_call(&server).await;
    // The customer reloads: same identity, new signaling and peer connection.
    let customer = kefu_tests::RtcClient::join(
        &server,
        "call",
        "customer-1",
        kefu_signaling::rooms::token::Side::Customer,
    )
    .await;
    kefu_tests::wait_until(
        "the old connection to be told",
        Duration::from_secs(5),
        || async {
            let messages = old_customer.messages.lock().await;
            messages
                .iter()
                .any(|m| {
                    matches!(
                        m,
                        ServerMessage::Error {
                            code: kefu_proto::signaling::ErrorCode::Replaced,
                            ..
                        }
                    )
                })
                .then_some(())
        },
    )
    .await;
    customer
        .wait_for_more(50, 30, Duration::from_secs(10))
        .await;
    agent.wait_for_more(50, 30, Duration::from_secs(10)).await;
    assert_eq!(server.metric("kefu_participants").await, 2.0);
    assert_eq!(server.metric("kefu_sfu_participants").await, 2.0);
}

/// The customer's network changes: its signaling connection ends without a close
/// frame, and it comes back on a new one with an ICE restart of the same peer
/// connection. Nobody is told it left, and media resumes both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_keeps_its_place_and_an_ice_restart_resumes_media() {
    let server = spawn_app().await;
    let (agent, mut customer) = running_call(&server).await;
    customer.lose_signaling();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !told_left(&agent).await,
        "the agent is not told the customer left"
    );
    assert_eq!(server.metric("kefu_sfu_participants").await, 2.0);

    let token = server.token("call", "customer-1", Side::Customer);
    customer.reconnect(&server, &token).await;
    kefu_tests::wait_until("the restart's answer", Duration::from_secs(5), || async {
        let messages = customer.messages.lock().await;
        let joined = messages
            .iter()
            .filter(|m| matches!(m, ServerMessage::Joined { .. }))
            .count();
        let answers = messages
            .iter()
            .filter(|m| matches!(m, ServerMessage::Answer { .. }))
            .count();
        (joined == 2 && answers == 2).then_some(())
    })
    .await;
    customer
        .wait_for_more(50, 30, Duration::from_secs(10))
        .await;
    agent.wait_for_more(50, 30, Duration::from_secs(10)).await;
    assert_eq!(
        server
            .metric("kefu_sfu_ice_events_total{event=\"restart\"}")
            .await,
        1.0
    );
    assert_eq!(server.metric("kefu_sfu_participants").await, 2.0);
    assert!(!told_left(&agent).await);
}

/// A lost connection that does not come back within the grace period hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_that_stays_away_leaves_after_the_grace_period() {
    let server = kefu_tests::spawn_app_with(|c| c.signaling.reconnect_grace_secs = 2).await;
    let (agent, mut customer) = running_call(&server).await;
    customer.lose_signaling();
    let lost_at = std::time::Instant::now();
    wait_until_told_left(&agent, Duration::from_secs(10)).await;
    let waited = lost_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "left only after the grace period, not after {waited:?}"
    );
    wait_until_sfu_holds(&server, 1.0).await;
}
