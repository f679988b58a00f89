//! webrtc-rs peer connections for the load: publishers send synthetic audio and video,
//! every subscribed track is read into the tally.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use super::media::{self, Tally, VideoProfile};
use super::vp8_loop::{self, Vp8Loop};
use crate::webrtc_client::new_peer_connection_on;

/// One peer connection and the tasks feeding it; both end when dropped.
#[derive(Debug)]
pub struct Peer {
    pub pc: Arc<RTCPeerConnection>,
    tasks: Vec<JoinHandle<()>>,
}

impl Peer {
    /// A peer connection whose subscribed tracks are counted in `tally`.
    pub async fn new(private_ip: Option<IpAddr>, tally: &Arc<Tally>) -> Self {
        let pc = Arc::new(new_peer_connection_on(private_ip).await);
        let tally = tally.clone();
        pc.on_track(Box::new(move |track, _, _| {
            tokio::spawn(media::receive(track, tally.clone()));
            Box::pin(async {})
        }));
        Self {
            pc,
            tasks: Vec::new(),
        }
    }

    /// Adds an Opus and a VP8 track and starts writing to them after `phase`.
    pub async fn publish(
        &mut self,
        name: &str,
        video: VideoProfile,
        phase: Duration,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<()> {
        let (audio, vp8) = self.add_tracks(name).await?;
        self.tasks.push(tokio::spawn(media::publish_audio(
            audio,
            phase,
            tally.clone(),
        )));
        self.tasks.push(tokio::spawn(media::publish_video(
            vp8,
            video,
            phase,
            tally.clone(),
        )));
        Ok(())
    }

    /// Like [`Self::publish`], with real VP8 from `frames` (for an SFU that decodes
    /// it); its sent frames count in `video_tally`, which may be another than the
    /// audio's when what arrives of this video is measured apart (re-encoded).
    pub async fn publish_vp8_loop(
        &mut self,
        name: &str,
        frames: &Arc<Vp8Loop>,
        phase: Duration,
        tally: &Arc<Tally>,
        video_tally: &Arc<Tally>,
    ) -> anyhow::Result<()> {
        let (audio, vp8) = self.add_tracks(name).await?;
        self.tasks.push(tokio::spawn(media::publish_audio(
            audio,
            phase,
            tally.clone(),
        )));
        self.tasks.push(tokio::spawn(vp8_loop::publish(
            vp8,
            frames.clone(),
            phase,
            video_tally.clone(),
        )));
        Ok(())
    }

    /// An Opus and a VP8 track added to the connection.
    async fn add_tracks(
        &self,
        name: &str,
    ) -> anyhow::Result<(Arc<TrackLocalStaticSample>, Arc<TrackLocalStaticSample>)> {
        let track = |mime: &str, clock_rate, channels, id: &str| {
            Arc::new(TrackLocalStaticSample::new(
                RTCRtpCodecCapability {
                    mime_type: mime.to_owned(),
                    clock_rate,
                    channels,
                    ..Default::default()
                },
                id.to_owned(),
                format!("{name}-stream"),
            ))
        };
        let audio = track(MIME_TYPE_OPUS, 48_000, 2, "audio");
        let vp8 = track(MIME_TYPE_VP8, 90_000, 0, "video");
        for t in [&audio, &vp8] {
            self.pc
                .add_track(t.clone() as Arc<dyn TrackLocal + Send + Sync>)
                .await?;
        }
        Ok((audio, vp8))
    }

    /// Sets `description` as local and waits for every candidate to be gathered, for
    /// servers that take candidates inside the SDP rather than trickled.
    pub async fn set_local_gathered(
        &self,
        description: RTCSessionDescription,
    ) -> anyhow::Result<String> {
        let mut gathered = self.pc.gathering_complete_promise().await;
        self.pc.set_local_description(description).await?;
        let _ = gathered.recv().await;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| anyhow::anyhow!("no local description after setting it"))?;
        Ok(local.sdp)
    }

    pub fn keep(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    pub async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.pc.close().await;
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
