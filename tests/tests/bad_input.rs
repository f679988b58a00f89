//! Bad input on every channel gets a clear error (or a counted drop), never a panic,
//! and a call running beside it goes on.

use std::time::Duration;

use kefu_proto::signaling::{ErrorCode, ServerMessage};
use kefu_signaling::rooms::token::{Side, TokenKeys, unix_now};
use kefu_tests::signaling::Closed;
use kefu_tests::{RtcClient, SignalingClient, TestServer, running_call, spawn_app};

/// The call still flows: both sides get fresh audio and video.
async fn assert_call_unaffected(agent: &RtcClient, customer: &RtcClient) {
    for client in [agent, customer] {
        client.wait_for_more(25, 15, Duration::from_secs(5)).await;
    }
}

fn error_code(msg: &ServerMessage) -> ErrorCode {
    match msg {
        ServerMessage::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Waits until the SFU counted `sent` packets as malformed or from an unknown source;
/// returns both counts.
async fn wait_for_drops(server: &TestServer, sent: u64) -> (f64, f64) {
    kefu_tests::wait_until("drops to be counted", Duration::from_secs(5), || async {
        let malformed = server
            .metric("kefu_sfu_packets_dropped_total{reason=\"malformed\"}")
            .await;
        let unknown = server
            .metric("kefu_sfu_packets_dropped_total{reason=\"unknown_source\"}")
            .await;
        (malformed + unknown >= sent as f64).then_some((malformed, unknown))
    })
    .await
}

async fn joined_session(server: &TestServer, room: &str) -> SignalingClient {
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    let reply = ws.join(&server.token(room, "tester", Side::Customer)).await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sdp_gets_bad_sdp_and_the_session_stays() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let mut ws = joined_session(&server, "side").await;

    for sdp in [
        "",
        "hello",
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nm=video x y z\r\n",
    ] {
        ws.send_json(serde_json::json!({"type": "offer", "sdp": sdp}))
            .await;
        assert_eq!(
            error_code(&ws.recv().await),
            ErrorCode::BadSdp,
            "offer {sdp:?}"
        );
    }
    ws.send_json(serde_json::json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv().await,
        ServerMessage::Pong,
        "the session survives bad SDP"
    );
    assert_call_unaffected(&agent, &customer).await;
    assert!(
        server
            .metric("kefu_signaling_errors_total{code=\"bad_sdp\"}")
            .await
            >= 3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_room_is_refused_and_closed() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    let reply = ws
        .join(&server.token("no-such-room", "x", Side::Customer))
        .await;
    assert_eq!(error_code(&reply), ErrorCode::UnknownRoom);
    assert_eq!(ws.closed().await, Closed::Code(1008));
    assert_call_unaffected(&agent, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_tokens_are_refused() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;

    let forger = TokenKeys::new(b"not-the-server-key-not-the-server-key", 3600);
    let forged = forger.issue("call", "mallory", Side::Agent, unix_now());
    let expired = server
        .tokens
        .issue("call", "late", Side::Customer, unix_now() - 2 * 12 * 3600);
    for (token, code) in [
        (forged.as_str(), ErrorCode::InvalidToken),
        ("garbage", ErrorCode::InvalidToken),
        (expired.as_str(), ErrorCode::TokenExpired),
    ] {
        let mut ws = SignalingClient::connect(&server.ws_url).await;
        assert_eq!(
            error_code(&ws.join(token).await),
            code,
            "token {token:.20}…"
        );
        assert_eq!(ws.closed().await, Closed::Code(1008));
    }
    // Nothing but a joined session may talk to the SFU.
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    ws.send_json(serde_json::json!({"type": "offer", "sdp": "v=0"}))
        .await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::NotJoined);
    assert_call_unaffected(&agent, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_participant_finds_the_room_full() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    let reply = ws
        .join(&server.token("call", "intruder", Side::Customer))
        .await;
    assert_eq!(error_code(&reply), ErrorCode::RoomFull);
    assert_call_unaffected(&agent, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_gets_an_error_and_close_1009() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let counted = "kefu_signaling_errors_total{code=\"message_too_large\"}";

    // Over our limit (64 KiB): read whole, answered, closed with 1009.
    let mut ws = joined_session(&server, "side").await;
    let huge = serde_json::json!({"type": "offer", "sdp": "a".repeat(200 * 1024)});
    ws.send_json(huge).await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::MessageTooLarge);
    assert_eq!(ws.closed().await, Closed::Code(1009));
    assert_eq!(server.metric(counted).await, 1.0);

    // Over the WebSocket library's hard cap (1 MiB): never buffered whole. The server
    // judges it too large and closes while the client may still be sending, so the
    // client sees the error, the close, or a reset, depending on timing.
    let mut ws = joined_session(&server, "side").await;
    let huge = serde_json::json!({"type": "offer", "sdp": "a".repeat(2 * 1024 * 1024)});
    if ws.try_send_text(huge.to_string()).await {
        match ws.next().await {
            Ok(reply) => assert_eq!(error_code(&reply), ErrorCode::MessageTooLarge),
            Err(closed) => assert!(
                matches!(closed, Closed::Code(1009) | Closed::Eof),
                "{closed:?}"
            ),
        }
    }
    kefu_tests::wait_until(
        "the refusal to be counted",
        Duration::from_secs(5),
        || async { (server.metric(counted).await == 2.0).then_some(()) },
    )
    .await;
    assert_call_unaffected(&agent, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_messages_get_invalid_message_and_the_session_stays() {
    let server = spawn_app().await;
    let mut ws = joined_session(&server, "side").await;
    for junk in [
        "not json",
        "{}",
        r#"{"type":"dance"}"#,
        r#"{"type":"join"}"#,
        "[1,2,3]",
    ] {
        ws.send_text(junk).await;
        assert_eq!(
            error_code(&ws.recv().await),
            ErrorCode::InvalidMessage,
            "{junk}"
        );
    }
    ws.send_binary(vec![0xff; 64]).await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::InvalidMessage);
    ws.send_json(serde_json::json!({"type": "candidate", "candidate": "candidate:nonsense"}))
        .await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::BadCandidate);
    ws.send_json(serde_json::json!({"type": "join", "token": "again"}))
        .await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::AlreadyJoined);
    ws.send_json(serde_json::json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, ServerMessage::Pong);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed_after_the_join_timeout() {
    let server = kefu_tests::spawn_app_with(|c| c.signaling.join_timeout_secs = 1).await;
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::JoinTimeout);
    assert_eq!(ws.closed().await, Closed::Code(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_udp_datagrams_are_counted_and_dropped() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut sent = 0u64;
    for len in [0usize, 1, 2, 12, 13, 100, 512, 1200, 1500] {
        for _ in 0..50 {
            let datagram: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            socket
                .send_to(&datagram, server.media_addr.expect("role all"))
                .await
                .expect("send");
            sent += 1;
            if sent.is_multiple_of(10) {
                // Paced, so the kernel's receive buffer never overflows and every
                // datagram reaches the SFU to be judged.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    let dropped = wait_for_drops(&server, sent).await;
    assert!(
        dropped.0 > 0.0 && dropped.1 > 0.0,
        "both kinds seen: {dropped:?}"
    );
    assert_call_unaffected(&agent, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ice_restarts_get_clear_errors_and_the_session_stays() {
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let offer = kefu_tests::webrtc_client::sample_offer().await;

    let mut anonymous = SignalingClient::connect(&server.ws_url).await;
    anonymous
        .send_json(serde_json::json!({"type": "restart", "sdp": offer}))
        .await;
    assert_eq!(error_code(&anonymous.recv().await), ErrorCode::NotJoined);

    // Joined, but no peer connection in the SFU to restart: start a new one.
    let mut ws = joined_session(&server, "side").await;
    ws.send_json(serde_json::json!({"type": "restart", "sdp": offer}))
        .await;
    assert_eq!(error_code(&ws.recv().await), ErrorCode::RestartFailed);

    ws.send_json(serde_json::json!({"type": "offer", "sdp": offer}))
        .await;
    assert!(matches!(ws.recv().await, ServerMessage::Answer { .. }));
    // Not SDP; then a real offer, but from another peer connection.
    let other = kefu_tests::webrtc_client::sample_offer().await;
    for sdp in ["hello", other.as_str()] {
        ws.send_json(serde_json::json!({"type": "restart", "sdp": sdp}))
            .await;
        let reply = ws.recv().await;
        assert_eq!(error_code(&reply), ErrorCode::BadSdp, "restart {sdp:?}");
    }
    ws.send_json(serde_json::json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, ServerMessage::Pong, "the session stays");
    assert_call_unaffected(&agent, &customer).await;
    assert_eq!(
        server
            .metric("kefu_sfu_ice_events_total{event=\"restart\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_ice_tcp_is_counted_and_oversized_frames_close_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = spawn_app().await;
    let (agent, customer) = running_call(&server).await;
    let addr = server.media_tcp_addr.expect("ICE-TCP is on by default");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut sent = 0u64;
    for len in [1u16, 2, 13, 100, 1200] {
        for n in 0..20u8 {
            let mut frame = len.to_be_bytes().to_vec();
            frame.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n)));
            conn.write_all(&frame).await.expect("write");
            sent += 1;
        }
    }
    wait_for_drops(&server, sent).await;
    // A length no WebRTC packet has: the SFU hangs up on that connection.
    conn.write_all(&60_000u16.to_be_bytes())
        .await
        .expect("write");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut byte))
        .await
        .expect("the SFU closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "closed, got {read:?}");
    assert_call_unaffected(&agent, &customer).await;
}
