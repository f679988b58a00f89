//! One call of the soak, made through the product as the capacity benchmark makes
//! it: a new agent invites, the customer accepts the invite, both join the call's
//! room with their room tokens and publish real VP8 and Opus-sized audio.

use std::sync::Arc;
use std::time::Duration;

use crate::load::peer::Peer;
use crate::load::vp8_loop::{self, Vp8Loop};
use anyhow::Context;
use reqwest::Method;
use serde_json::json;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;

use super::join::{Link, join};
use super::server::SoakServer;
use super::traffic::Traffic;

/// A running call and its two parties.
#[derive(Debug)]
pub struct SoakCall {
    pub index: usize,
    /// The call's id in the product.
    pub id: String,
    agent_token: String,
    agent: Peer,
    customer: Peer,
    agent_link: Link,
    customer_link: Link,
}

/// What a call needs of the run.
#[derive(Debug, Clone, Copy)]
pub struct CallSetup<'a> {
    pub server: &'a SoakServer,
    pub boss: &'a str,
    /// The agents' beauty preset ("none": forwarded as is).
    pub preset: &'a str,
    pub frames: &'a Arc<Vp8Loop>,
    pub traffic: &'a Traffic,
}

impl SoakCall {
    /// Call `index`: its agent, the invite, both parties joined and publishing.
    pub async fn start(setup: CallSetup<'_>, index: usize) -> anyhow::Result<Self> {
        let server = setup.server;
        let login = format!("agent{index}");
        let agent_token = server.agent(setup.boss, &login, setup.preset).await?;
        let created = server
            .api_expect(
                201,
                Method::POST,
                "/api/v1/calls",
                Some(&agent_token),
                Some(json!({"kind": "video"})),
            )
            .await?;
        let id = created["id"].as_str().context("call id")?.to_owned();
        let code = created["invite_url"]
            .as_str()
            .and_then(|url| url.rsplit('/').next())
            .context("invite code")?;
        let ticket = server
            .api_expect(
                200,
                Method::POST,
                &format!("/api/v1/invites/{code}/accept"),
                None,
                Some(json!({"display_name": "张三", "consent": true})),
            )
            .await?;
        let customer_token = ticket["room_token"].as_str().context("customer token")?;
        let agent_ticket = server
            .api_expect(
                200,
                Method::GET,
                &format!("/api/v1/calls/{id}/room-token"),
                Some(&agent_token),
                None,
            )
            .await?;
        let agent_room_token = agent_ticket["room_token"].as_str().context("agent token")?;

        let traffic = setup.traffic;
        // Beauty re-encodes the agents' video: what they send is counted apart.
        let agent_video = if traffic.beauty {
            &traffic.agent_video_sent
        } else {
            &traffic.to_customers
        };
        let mut agent = Peer::new(None, &traffic.to_agents).await;
        agent
            .publish_vp8_loop(
                &format!("{id}-agent"),
                setup.frames,
                phase(2 * index),
                &traffic.to_customers,
                agent_video,
            )
            .await?;
        let agent_link = join(&server.ws_url, &mut agent, agent_room_token)
            .await
            .with_context(|| format!("call {index}: the agent joins"))?;
        let mut customer = Peer::new(None, &traffic.to_customers).await;
        customer
            .publish_vp8_loop(
                &format!("{id}-customer"),
                setup.frames,
                phase(2 * index + 1),
                &traffic.to_agents,
                &traffic.to_agents,
            )
            .await?;
        let customer_link = join(&server.ws_url, &mut customer, customer_token)
            .await
            .with_context(|| format!("call {index}: the customer joins"))?;
        Ok(Self {
            index,
            id,
            agent_token,
            agent,
            customer,
            agent_link,
            customer_link,
        })
    }

    /// Why the call is not up any more, if it is not: a party's peer connection
    /// failed or closed, the server ended a party's part, or the call's state in the
    /// product is not `connected`.
    pub async fn broken(&self, server: &SoakServer) -> anyhow::Result<Option<String>> {
        for (who, peer, link) in [
            ("agent", &self.agent, &self.agent_link),
            ("customer", &self.customer, &self.customer_link),
        ] {
            let state = peer.pc.connection_state();
            if matches!(
                state,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            ) {
                return Ok(Some(format!("{who}'s peer connection {state}")));
            }
            if let Some(why) = link.ended() {
                return Ok(Some(format!("{who}: {why}")));
            }
        }
        let (status, view) = server
            .api(
                Method::GET,
                &format!("/api/v1/calls/{}", self.id),
                Some(&self.agent_token),
                None,
            )
            .await?;
        if status != 200 || view["state"] != "connected" {
            return Ok(Some(format!("the call is {} ({status})", view["state"])));
        }
        Ok(None)
    }

    /// Times moderation withheld a party's video in this call (the test picture
    /// should never be). Both parties are told; the agent's count is the call's.
    pub fn withheld(&self) -> u32 {
        self.agent_link.withheld()
    }

    /// Hangs up through the product, as the pages' buttons do: the agent leaves, then
    /// the customer; the peers close once the server had time to take it.
    pub async fn hang_up(self) {
        self.agent_link.hang_up();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.customer_link.hang_up();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.agent.close().await;
        self.customer.close().await;
    }
}

/// Publisher `i`'s start within a keyframe interval, so that neither the publishers'
/// frames nor their keyframes come in lockstep (golden-ratio spread: calls added later
/// fall between earlier ones).
fn phase(i: usize) -> Duration {
    let interval = Duration::from_secs(1) * vp8_loop::GOP as u32 / vp8_loop::FPS;
    interval.mul_f64((i as f64 * 0.618_033_988_75).fract())
}
