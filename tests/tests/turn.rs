//! TURN: the credentials signaling hands out open an allocation on a real coturn;
//! expired or forged ones are refused. And a join carries them.

use std::sync::Arc;

use kefu_proto::signaling::ServerMessage;
use kefu_signaling::rooms::token::Side;
use kefu_signaling::rooms::turn::{IceTransportPolicy, rest_credentials};
use kefu_tests::coturn::Coturn;
use kefu_tests::{SignalingClient, spawn_app_with};
use webrtc::turn::client::{Client, ClientConfig};
use webrtc::util::Conn;

/// Tries a TURN allocation with these credentials; Ok(relayed address) or the error.
async fn allocate(turn: &Coturn, username: &str, password: &str) -> Result<String, String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client = Client::new(ClientConfig {
        stun_serv_addr: turn.addr.to_string(),
        turn_serv_addr: turn.addr.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: "kefu".into(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    client.listen().await.map_err(|e| e.to_string())?;
    let result = match client.allocate().await {
        Ok(relay) => relay
            .local_addr()
            .map(|a| a.to_string())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let _ = client.close().await;
    result
}

fn now() -> u64 {
    kefu_signaling::rooms::token::unix_now()
}

#[tokio::test]
async fn fresh_credentials_allocate_and_expired_or_forged_ones_are_refused() {
    let Some(turn) = Coturn::start() else { return };
    let (user, pass) = rest_credentials(&turn.secret, "room/agent/a1", now(), 600);
    let relayed = allocate(&turn, &user, &pass)
        .await
        .expect("fresh credentials allocate");
    assert!(relayed.starts_with("127.0.0.1:"), "{relayed}");

    // Issued an hour ago for ten minutes: expired.
    let (user, pass) = rest_credentials(&turn.secret, "room/agent/a1", now() - 3600, 600);
    let refused = allocate(&turn, &user, &pass).await;
    assert!(
        refused.is_err(),
        "expired credentials allocated: {refused:?}"
    );

    let (user, pass) = rest_credentials("not the secret", "room/agent/a1", now(), 600);
    let refused = allocate(&turn, &user, &pass).await;
    assert!(
        refused.is_err(),
        "forged credentials allocated: {refused:?}"
    );
}

#[tokio::test]
async fn a_join_carries_turn_credentials_that_work() {
    let Some(turn) = Coturn::start() else { return };
    let (url, secret) = (turn.addr.to_string(), turn.secret.clone());
    let server = spawn_app_with(move |c| {
        c.signaling.ice.turn_urls = vec![
            format!("turn:{url}?transport=udp"),
            format!("turn:{url}?transport=tcp"),
        ];
        c.signaling.ice.turn_secret = secret;
        c.signaling.ice.force_relay = true;
    })
    .await;
    let token = server.token(kefu_tests::server::ROOMS[0], "ann", Side::Customer);
    let mut ws = SignalingClient::connect(&server.ws_url).await;
    let joined = ws.join(&token).await;
    let ServerMessage::Joined {
        ice_servers,
        ice_transport_policy,
        ..
    } = joined
    else {
        panic!("not joined: {joined:?}");
    };
    assert_eq!(ice_transport_policy, IceTransportPolicy::Relay);
    assert_eq!(ice_servers.len(), 1);
    let turn_server = &ice_servers[0];
    assert_eq!(turn_server.urls.len(), 2);
    let user = turn_server.username.clone().expect("username");
    let pass = turn_server.credential.clone().expect("credential");
    let (expiry, id) = user.split_once(':').expect("expiry:id");
    let expiry: u64 = expiry.parse().expect("Unix seconds");
    assert!(expiry > now() && expiry <= now() + 600, "{expiry}");
    assert!(id.contains("ann"), "{id}");
    allocate(&turn, &user, &pass)
        .await
        .expect("the join's credentials allocate");
    server.stop().await.expect("stop");
}
