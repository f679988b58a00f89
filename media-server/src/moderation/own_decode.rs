//! Moderation's own decoder, for calls nothing else decodes (recording off): the
//! SFU's tap for the room, both parties' video decoded on a thread of its own, the
//! pictures offered to the room's screen like the recorder's would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use kefu_beauty::I420Ref;
use kefu_proto::{
    Codec, FrameSink, I420Picture, PictureSink, PictureSource, RoomId, Side, TapFrame, VideoCodec,
};
use tracing::debug;

use crate::pipeline::codec::Decoder;

/// Frames waiting for the decoder at most (≈ 1 s of both parties' video).
const QUEUE: usize = 64;

#[derive(Debug)]
pub struct OwnDecoder {
    frames: SyncSender<TapFrame>,
    dropped: Arc<AtomicU64>,
}

struct Stream {
    decoder: Option<Decoder>,
    waiting_for_keyframe: bool,
}

impl OwnDecoder {
    /// Starts decoding `room`'s video for `pictures`; the thread ends when the SFU lets
    /// go of this tap.
    pub fn spawn(room: &RoomId, pictures: Arc<dyn PictureSink>) -> std::io::Result<Arc<Self>> {
        let (frames, input) = sync_channel::<TapFrame>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let name = format!("screen-{}", room.as_str().get(..8).unwrap_or(room.as_str()));
        std::thread::Builder::new().name(name).spawn(move || {
            let mut streams = [Side::Agent, Side::Customer].map(|_| Stream {
                decoder: None,
                waiting_for_keyframe: true,
            });
            while let Ok(frame) = input.recv() {
                let codec = match frame.codec {
                    Codec::Vp8 => VideoCodec::Vp8,
                    Codec::H264 => VideoCodec::H264,
                    Codec::Opus => continue,
                };
                let stream = &mut streams[frame.side.index()];
                if pictures.decoded_elsewhere(frame.side) {
                    // Back on this decoder later: it starts again from a keyframe
                    // (the SFU asks the agent for one when the pipeline goes).
                    stream.waiting_for_keyframe = true;
                    continue;
                }
                decode(stream, codec, &frame, pictures.as_ref());
            }
        })?;
        Ok(Arc::new(Self { frames, dropped }))
    }

    /// Frames lost to a full queue.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl FrameSink for OwnDecoder {
    fn try_send(&self, frame: TapFrame) -> bool {
        if !frame.codec.is_video() {
            return true; // audio is nothing to screen
        }
        match self.frames.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

fn decode(s: &mut Stream, codec: VideoCodec, frame: &TapFrame, pictures: &dyn PictureSink) {
    if !frame.contiguous {
        s.waiting_for_keyframe = true;
    }
    if s.waiting_for_keyframe && !frame.keyframe {
        return;
    }
    if s.decoder.as_ref().is_none_or(|d| d.codec() != codec) {
        match Decoder::new(codec) {
            Ok(d) => s.decoder = Some(d),
            Err(e) => {
                debug!("no {codec:?} decoder for moderation: {e}");
                return;
            }
        }
    }
    let Some(decoder) = s.decoder.as_mut() else {
        return;
    };
    s.waiting_for_keyframe = false;
    if decoder.send(&frame.data).is_err() {
        s.waiting_for_keyframe = true;
        return;
    }
    loop {
        match decoder.next_picture() {
            Ok(Some(picture)) => {
                if pictures.decoded(frame.side) {
                    match packed(&picture, frame.side, PictureSource::OwnDecoder) {
                        Some(p) => pictures.offer(p),
                        None => pictures.skipped(frame.side),
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                s.waiting_for_keyframe = true;
                break;
            }
        }
    }
}

/// A decoder's strided planes as packed I420 (also the beauty pipeline's hand-over).
pub(crate) fn packed(p: &I420Ref<'_>, side: Side, source: PictureSource) -> Option<I420Picture> {
    I420Picture::pack(
        [(p.y, p.y_stride), (p.u, p.u_stride), (p.v, p.v_stride)],
        p.width as u32,
        p.height as u32,
        side,
        source,
    )
}
