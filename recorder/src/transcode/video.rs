//! The composite picture: the agent fills the frame, the customer sits in an inset at
//! the bottom right. A party without a recent picture (camera off, not yet decoded)
//! gets a placeholder tile. Decoded pictures are scaled to their tile once, when they
//! arrive, so composing an output frame is only plane copies.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame;
use ffmpeg_next as ffmpeg;

use super::{PacketSink, Settings, TranscodeError};
use kefu_proto::{Codec, I420Picture, PictureSink, Side};
use std::sync::Arc;

/// A picture older than this counts as "camera off".
const STALE_AFTER_US: i64 = 1_000_000;
const BACKGROUND: [u8; 3] = [24, 128, 128];
const PLACEHOLDER_BG: [u8; 3] = [60, 128, 128];
const PLACEHOLDER_FG: [u8; 3] = [130, 128, 128];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The largest even-sized rectangle of aspect `src_w:src_h` centred in `self`.
    fn fit(self, src_w: u32, src_h: u32) -> Rect {
        let (sw, sh) = (u64::from(src_w.max(1)), u64::from(src_h.max(1)));
        let (bw, bh) = (u64::from(self.w), u64::from(self.h));
        let (w, h) = if bw * sh <= bh * sw {
            (bw, bw * sh / sw)
        } else {
            (bh * sw / sh, bh)
        };
        let (w, h) = ((w as u32).max(2) & !1, (h as u32).max(2) & !1);
        Rect {
            x: (self.x + (self.w - w) / 2) & !1,
            y: (self.y + (self.h - h) / 2) & !1,
            w,
            h,
        }
    }
}

/// Where each party goes on a `width`×`height` canvas.
pub(crate) fn layout(width: u32, height: u32) -> [Rect; 2] {
    let (iw, ih) = ((width / 4) & !1, (height / 4) & !1);
    let margin = (width / 64) & !1;
    [
        Rect {
            x: 0,
            y: 0,
            w: width,
            h: height,
        },
        Rect {
            x: width - iw - margin,
            y: height - ih - margin,
            w: iw,
            h: ih,
        },
    ]
}

struct PartyVideo {
    decoder: Option<(Codec, ffmpeg::decoder::Video)>,
    decoded: frame::Video,
    /// (source format, width, height) → the tile's scaler.
    scaler: Option<((Pixel, u32, u32), scaling::Context, Rect)>,
    tile: Option<(frame::Video, Rect)>,
    last_picture_us: Option<i64>,
    /// After loss or a decode error, wait for a keyframe rather than decode garbage.
    waiting_for_keyframe: bool,
}

impl PartyVideo {
    fn new() -> Self {
        Self {
            decoder: None,
            decoded: frame::Video::empty(),
            scaler: None,
            tile: None,
            last_picture_us: None,
            waiting_for_keyframe: true,
        }
    }
}

/// Decoders, the canvas and the H.264 encoder of one video recording.
pub(crate) struct VideoComposer {
    settings: Settings,
    areas: [Rect; 2],
    parties: [PartyVideo; 2],
    canvas: frame::Video,
    pub(crate) encoder: ffmpeg::encoder::Video,
    next_frame: i64,
    pub(crate) decode_errors: u64,
    /// Content moderation, handed the decoded pictures it asks for (so a screened
    /// call's video is decoded once, here).
    pub(crate) pictures: Option<Arc<dyn PictureSink>>,
}

impl VideoComposer {
    pub(crate) fn new(settings: Settings, global_header: bool) -> Result<Self, TranscodeError> {
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or_else(|| TranscodeError::Codec("libx264 is not available".into()))?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(codec_err("H.264 encoder"))?;
        enc.set_width(settings.width);
        enc.set_height(settings.height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base((1, settings.fps as i32));
        enc.set_frame_rate(Some((settings.fps as i32, 1)));
        // One keyframe per second: each fragment starts on one, so every second seeks.
        enc.set_gop(settings.fps);
        enc.set_max_b_frames(0);
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ffmpeg::Dictionary::new();
        opts.set("preset", "ultrafast");
        opts.set("tune", "zerolatency");
        opts.set("crf", &settings.crf.to_string());
        opts.set("threads", "1");
        let encoder = enc.open_with(opts).map_err(codec_err("H.264 encoder"))?;
        let mut canvas = frame::Video::new(Pixel::YUV420P, settings.width, settings.height);
        fill(
            &mut canvas,
            Rect {
                x: 0,
                y: 0,
                w: settings.width,
                h: settings.height,
            },
            BACKGROUND,
        );
        Ok(Self {
            areas: layout(settings.width, settings.height),
            settings,
            parties: [PartyVideo::new(), PartyVideo::new()],
            canvas,
            encoder,
            next_frame: 0,
            decode_errors: 0,
            pictures: None,
        })
    }

    /// Decodes one frame of `party` shown from `at_us` on. Bad input is counted and
    /// skipped up to the next keyframe, never fatal.
    pub(crate) fn decode(
        &mut self,
        party: Side,
        codec: Codec,
        data: &[u8],
        keyframe: bool,
        contiguous: bool,
        at_us: i64,
    ) {
        let area = self.areas[party.index()];
        let p = &mut self.parties[party.index()];
        if !contiguous {
            p.waiting_for_keyframe = true;
        }
        if p.waiting_for_keyframe && !keyframe {
            return;
        }
        if p.decoder.as_ref().is_none_or(|(c, _)| *c != codec) {
            match open_decoder(codec) {
                Ok(d) => p.decoder = Some((codec, d)),
                Err(e) => {
                    tracing::warn!("cannot open a {codec:?} decoder: {e}");
                    self.decode_errors += 1;
                    return;
                }
            }
        }
        let Some((_, decoder)) = p.decoder.as_mut() else {
            return;
        };
        p.waiting_for_keyframe = false;
        if decoder.send_packet(&ffmpeg::Packet::copy(data)).is_err() {
            p.waiting_for_keyframe = true;
            self.decode_errors += 1;
            return;
        }
        while decoder.receive_frame(&mut p.decoded).is_ok() {
            let src = (p.decoded.format(), p.decoded.width(), p.decoded.height());
            if src.1 == 0 || src.2 == 0 {
                continue;
            }
            if let Some(sink) = &self.pictures
                && sink.decoded(party)
            {
                match packed_i420(&p.decoded, party) {
                    Some(picture) => sink.offer(picture),
                    None => sink.skipped(party),
                }
            }
            // A new resolution (or the first picture) gets a new scaler.
            if p.scaler.as_ref().is_none_or(|(key, _, _)| *key != src) {
                let rect = area.fit(src.1, src.2);
                match scaling::Context::get(
                    src.0,
                    src.1,
                    src.2,
                    Pixel::YUV420P,
                    rect.w,
                    rect.h,
                    scaling::Flags::BILINEAR,
                ) {
                    Ok(s) => p.scaler = Some((src, s, rect)),
                    Err(e) => {
                        tracing::warn!("no scaler for {src:?}: {e}");
                        self.decode_errors += 1;
                        continue;
                    }
                }
            }
            let Some((_, scaler, rect)) = p.scaler.as_mut() else {
                continue;
            };
            let rect = *rect;
            let tile = match p.tile.take() {
                Some((t, r)) if r == rect => t,
                _ => frame::Video::new(Pixel::YUV420P, rect.w, rect.h),
            };
            let mut tile = tile;
            if scaler.run(&p.decoded, &mut tile).is_err() {
                self.decode_errors += 1;
                continue;
            }
            p.tile = Some((tile, rect));
            p.last_picture_us = Some(at_us);
        }
    }

    /// Timestamp (µs) of the next output frame.
    pub(crate) fn next_frame_us(&self) -> i64 {
        self.next_frame * 1_000_000 / i64::from(self.settings.fps)
    }

    /// Composes and encodes the next output frame; packets go to `out`.
    pub(crate) fn encode_next(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        let now = self.next_frame_us();
        for party in Side::ALL {
            let area = self.areas[party.index()];
            let p = &self.parties[party.index()];
            let fresh = p.last_picture_us.is_some_and(|t| now - t <= STALE_AFTER_US);
            match (&p.tile, fresh) {
                (Some((tile, rect)), true) => {
                    if *rect != area {
                        fill(&mut self.canvas, area, BACKGROUND);
                    }
                    blit(&mut self.canvas, tile, *rect);
                }
                _ => placeholder(&mut self.canvas, area),
            }
        }
        self.canvas.set_pts(Some(self.next_frame));
        self.next_frame += 1;
        self.encoder
            .send_frame(&self.canvas)
            .map_err(codec_err("H.264 encoder"))?;
        self.drain(out)
    }

    pub(crate) fn flush(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        self.encoder
            .send_eof()
            .map_err(codec_err("H.264 encoder"))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut PacketSink<'_>) -> Result<(), TranscodeError> {
        super::drain_encoder(&mut self.encoder, true, out)
    }
}

/// A decoded picture as packed I420 (browsers send 4:2:0; another format is not
/// handed over and that sample is skipped).
fn packed_i420(frame: &frame::Video, side: Side) -> Option<I420Picture> {
    if !matches!(frame.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
        return None;
    }
    let plane = |i| (frame.data(i), frame.stride(i));
    I420Picture::pack(
        [plane(0), plane(1), plane(2)],
        frame.width(),
        frame.height(),
        side,
        kefu_proto::PictureSource::Recorder,
    )
}

fn open_decoder(codec: Codec) -> Result<ffmpeg::decoder::Video, ffmpeg::Error> {
    let id = match codec {
        Codec::Vp8 => ffmpeg::codec::Id::VP8,
        Codec::H264 => ffmpeg::codec::Id::H264,
        Codec::Opus => return Err(ffmpeg::Error::DecoderNotFound),
    };
    let found = ffmpeg::decoder::find(id).ok_or(ffmpeg::Error::DecoderNotFound)?;
    ffmpeg::codec::context::Context::new_with_codec(found)
        .decoder()
        .video()
}

pub(crate) fn codec_err(what: &'static str) -> impl Fn(ffmpeg::Error) -> TranscodeError {
    move |e| TranscodeError::Codec(format!("{what}: {e}"))
}

/// Copies a YUV420P `tile` into `canvas` at `at`.
fn blit(canvas: &mut frame::Video, tile: &frame::Video, at: Rect) {
    for plane in 0..3 {
        let shift = u32::from(plane > 0);
        let (x, y, w, h) = (at.x >> shift, at.y >> shift, at.w >> shift, at.h >> shift);
        let (src_stride, dst_stride) = (tile.stride(plane), canvas.stride(plane));
        let src = tile.data(plane);
        let dst = canvas.data_mut(plane);
        for row in 0..h as usize {
            let s = row * src_stride;
            let d = (y as usize + row) * dst_stride + x as usize;
            if let (Some(from), Some(to)) =
                (src.get(s..s + w as usize), dst.get_mut(d..d + w as usize))
            {
                to.copy_from_slice(from);
            }
        }
    }
}

fn fill(canvas: &mut frame::Video, at: Rect, yuv: [u8; 3]) {
    for (plane, value) in yuv.iter().enumerate() {
        let shift = u32::from(plane > 0);
        let (x, y, w, h) = (at.x >> shift, at.y >> shift, at.w >> shift, at.h >> shift);
        let stride = canvas.stride(plane);
        let dst = canvas.data_mut(plane);
        for row in 0..h as usize {
            let d = (y as usize + row) * stride + x as usize;
            if let Some(to) = dst.get_mut(d..d + w as usize) {
                to.fill(*value);
            }
        }
    }
}

/// A grey tile with a head-and-shoulders silhouette: "camera off".
fn placeholder(canvas: &mut frame::Video, at: Rect) {
    fill(canvas, at, PLACEHOLDER_BG);
    let stride = canvas.stride(0);
    let luma = canvas.data_mut(0);
    let (cx, r) = (at.x as i64 + at.w as i64 / 2, at.h as i64 / 7);
    let head_y = at.y as i64 + at.h as i64 * 2 / 5;
    let body_y = at.y as i64 + at.h as i64 * 7 / 8;
    for row in at.y as i64..(at.y + at.h) as i64 {
        for col in at.x as i64..(at.x + at.w) as i64 {
            let (dx, dy) = (col - cx, row - head_y);
            let in_head = dx * dx + dy * dy <= r * r;
            let (bx, by) = (col - cx, row - body_y);
            let in_body = by <= 0 && bx * bx * 4 + by * by * 9 <= 4 * 9 * r * r;
            if (in_head || in_body)
                && let Some(px) = luma.get_mut(row as usize * stride + col as usize)
            {
                *px = PLACEHOLDER_FG[0];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let area = Rect {
            x: 0,
            y: 0,
            w: 1280,
            h: 720,
        };
        assert_eq!(
            area.fit(640, 480),
            Rect {
                x: 160,
                y: 0,
                w: 960,
                h: 720
            }
        );
        assert_eq!(area.fit(1920, 1080), area);
        let inset = layout(1280, 720)[1];
        assert_eq!(
            inset,
            Rect {
                x: 1280 - 320 - 20,
                y: 720 - 180 - 20,
                w: 320,
                h: 180
            }
        );
        let portrait = inset.fit(360, 640);
        assert!(portrait.h == 180 && portrait.w < 320 && portrait.w.is_multiple_of(2));
    }
}
