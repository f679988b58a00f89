//! A pipeline on its own thread: frames in through a bounded queue, settings and
//! keyframe requests through shared state (never lost to a full queue), results out
//! to the media driver.
//!
//! Falling behind drops frames rather than building latency, without breaking the
//! stream: every queued frame is decoded (later frames reference it), but only the
//! newest is filtered and encoded. A full queue loses frames before the decoder, so
//! the pipeline then waits for the agent's next keyframe (and asks for one).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kefu_beauty::BeautyParams;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::{BeautyPipeline, InputFrame, Processed, VideoCodec};
use crate::config::Vp8Encoding;
use kefu_proto::RoomId;

/// Frames waiting for the pipeline at most (≈ 0.5 s at 30 fps; normally none wait
/// long, since all but the newest are only decoded).
const QUEUE: usize = 16;
use crate::core::START_BITRATE_BPS;

/// What came out of the pipeline for one input.
#[derive(Debug)]
pub struct PipelineResult {
    pub room: RoomId,
    pub output: VideoCodec,
    pub processed: Processed,
    /// From the frame entering the queue to its encoded result.
    pub latency: Duration,
}

#[derive(Debug)]
struct Control {
    params: BeautyParams,
    /// Follows the bandwidth estimate towards the customer.
    bitrate_bps: u32,
    keyframe: bool,
    /// Frames were dropped before the decoder.
    overflowed: bool,
    /// Content moderation of the agent's video, when nothing else decodes it.
    pictures: Option<Arc<dyn kefu_proto::PictureSink>>,
}

type Queued = (InputFrame, VideoCodec, Instant);

/// Handle to one room's pipeline thread; the thread ends when this is dropped.
#[derive(Debug)]
pub struct PipelineWorker {
    frames: SyncSender<Queued>,
    pending: Arc<AtomicUsize>,
    control: Arc<Mutex<Control>>,
}

impl PipelineWorker {
    pub fn spawn(
        room: RoomId,
        params: BeautyParams,
        vp8: Vp8Encoding,
        results: UnboundedSender<PipelineResult>,
    ) -> std::io::Result<Self> {
        let (frames, input) = sync_channel::<Queued>(QUEUE);
        let control = Arc::new(Mutex::new(Control {
            params,
            bitrate_bps: START_BITRATE_BPS,
            keyframe: false,
            overflowed: false,
            pictures: None,
        }));
        let pending = Arc::new(AtomicUsize::new(0));
        let (shared, waiting) = (Arc::clone(&control), Arc::clone(&pending));
        let name = format!("beauty-{}", room.as_str().get(..8).unwrap_or(room.as_str()));
        kefu_beauty::set_single_threaded();
        std::thread::Builder::new().name(name).spawn(move || {
            let mut pipeline: Option<BeautyPipeline> = None;
            while let Ok((frame, output, queued)) = input.recv() {
                let newest = waiting.fetch_sub(1, Ordering::AcqRel) <= 1;
                let (params, bitrate, keyframe, overflowed, pictures) = {
                    // A panic elsewhere leaves plain data behind: still usable.
                    let mut c = shared.lock().unwrap_or_else(|p| p.into_inner());
                    (
                        c.params,
                        c.bitrate_bps,
                        std::mem::take(&mut c.keyframe),
                        std::mem::take(&mut c.overflowed),
                        c.pictures.clone(),
                    )
                };
                let p = match pipeline.as_mut() {
                    Some(p) if p.output == output => p,
                    _ => {
                        info!(%room, input = ?frame.codec, ?output, "beauty pipeline started");
                        pipeline.insert(BeautyPipeline::new(output, params, bitrate).with_vp8(vp8))
                    }
                };
                p.set_params(params);
                p.set_bitrate(bitrate);
                p.set_picture_sink(pictures);
                if keyframe {
                    p.force_keyframe();
                }
                if overflowed {
                    p.resync();
                }
                match p.process_with(&frame, newest) {
                    Ok(processed) => {
                        let result = PipelineResult {
                            room: room.clone(),
                            output,
                            processed,
                            latency: queued.elapsed(),
                        };
                        if results.send(result).is_err() {
                            return; // the driver is gone
                        }
                    }
                    Err(e) => {
                        warn!(%room, "beauty pipeline failed: {e}; restarting it");
                        pipeline = None;
                    }
                }
            }
        })?;
        Ok(Self {
            frames,
            pending,
            control,
        })
    }

    /// Queues a frame; false when the queue was full and the frame was dropped (the
    /// pipeline then resynchronises on the next keyframe).
    pub fn offer(&self, frame: InputFrame, output: VideoCodec) -> bool {
        self.pending.fetch_add(1, Ordering::AcqRel);
        match self.frames.try_send((frame, output, Instant::now())) {
            Ok(()) => true,
            Err(e) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                if matches!(e, TrySendError::Full(_)) {
                    self.control
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .overflowed = true;
                }
                false
            }
        }
    }

    pub fn set_params(&self, params: BeautyParams) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .params = params;
    }

    /// Hands the agent's decoded pictures to moderation (`None`: stop).
    pub fn set_picture_sink(&self, sink: Option<Arc<dyn kefu_proto::PictureSink>>) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pictures = sink;
    }

    pub fn set_bitrate(&self, bps: u32) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bitrate_bps = bps;
    }

    pub fn request_keyframe(&self) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keyframe = true;
    }
}
