//! The pipeline with real codecs: a noisy face photo encoded with libvpx goes in, the
//! customer's codec comes out, and is decoded back and measured.

use std::sync::Arc;

use ffmpeg_next as ffmpeg;
use kefu_beauty::{BeautyParams, Preset};

use super::*;

const W: u32 = 640;
const H: u32 = 480;

/// Luma of the astronaut photo at 640×480 with deterministic noise, `n` frames,
/// encoded as VP8 (keyframe first, then every 30).
fn agent_stream(n: usize) -> Vec<InputFrame> {
    codec::init();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-data/astronaut.png");
    let mut ictx =
        ffmpeg::format::input(path).expect("test-data/astronaut.png (deploy/fetch-test-data.sh)");
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .expect("image stream");
    let idx = stream.index();
    let ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).expect("params");
    let mut dec = ctx.decoder().video().expect("png decoder");
    let mut rgb = ffmpeg::frame::Video::empty();
    for (s, p) in ictx.packets() {
        if s.index() == idx {
            dec.send_packet(&p).expect("png");
        }
    }
    dec.send_eof().expect("eof");
    dec.receive_frame(&mut rgb).expect("picture");
    let mut scaler = ffmpeg::software::scaling::Context::get(
        rgb.format(),
        rgb.width(),
        rgb.height(),
        ffmpeg::format::Pixel::YUV420P,
        W,
        H,
        ffmpeg::software::scaling::Flags::BILINEAR,
    )
    .expect("scaler");
    let mut yuv = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, W, H);
    scaler.run(&rgb, &mut yuv).expect("scale");

    let codec = ffmpeg::encoder::find_by_name("libvpx").expect("libvpx");
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .expect("ctx");
    enc.set_width(W);
    enc.set_height(H);
    enc.set_format(ffmpeg::format::Pixel::YUV420P);
    enc.set_time_base((1, 30));
    enc.set_bit_rate(2_000_000);
    enc.set_gop(30);
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("deadline", "realtime");
    opts.set("cpu-used", "8");
    opts.set("lag-in-frames", "0");
    let mut enc = enc.open_with(opts).expect("open");
    let clean: Vec<u8> = yuv.data(0).to_vec();
    let mut out = Vec::new();
    let mut packet = ffmpeg::Packet::empty();
    let mut seed = 7u32;
    for i in 0..n {
        // Fresh sensor noise every frame (±12 levels), as a cheap webcam gives.
        let y = yuv.data_mut(0);
        for (k, px) in y.iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 24) as i32 % 25) - 12;
            *px = (i32::from(clean[k]) + noise).clamp(0, 255) as u8;
        }
        yuv.set_pts(Some(i as i64));
        enc.send_frame(&yuv).expect("encode");
        while enc.receive_packet(&mut packet).is_ok() {
            out.push(InputFrame {
                codec: VideoCodec::Vp8,
                rtp_time: 1000 + i as u64 * 3000,
                keyframe: packet.is_key(),
                contiguous: true,
                data: Arc::from(packet.data().unwrap_or(&[])),
            });
        }
    }
    out
}

/// Decodes output frames and returns the mean squared Laplacian of luma on the cheek.
fn face_hf_energy(codec: VideoCodec, frames: &[OutputFrame]) -> (usize, f64) {
    let mut dec = codec::Decoder::new(codec).expect("decoder");
    let (mut pictures, mut total) = (0, 0.0);
    for f in frames {
        dec.send(&f.data).expect("our output decodes");
        while let Some(picture) = dec.next_picture().expect("an I420 picture") {
            pictures += 1;
            // The astronaut's cheek at 640×480 (x 186–210, y 118–138 at 512×512).
            let mut e = 0.0;
            let mut count = 0.0;
            for y in 111..129 {
                for x in 233..262 {
                    let at = |dx: isize, dy: isize| {
                        f64::from(
                            picture.y[(y as isize + dy) as usize * picture.y_stride
                                + (x as isize + dx) as usize],
                        )
                    };
                    let lap = 4.0 * at(0, 0) - at(-1, 0) - at(1, 0) - at(0, -1) - at(0, 1);
                    e += lap * lap;
                    count += 1.0;
                }
            }
            total += e / count;
        }
    }
    (pictures, total / pictures.max(1) as f64)
}

fn run(
    output: VideoCodec,
    params: BeautyParams,
    input: &[InputFrame],
) -> (BeautyPipeline, Vec<OutputFrame>) {
    let mut p = BeautyPipeline::new(output, params, 2_000_000);
    let mut frames = Vec::new();
    for f in input {
        frames.extend(p.process(f).expect("process").frames);
    }
    (p, frames)
}

#[test]
fn beauty_on_removes_noise_from_the_face_and_every_frame_comes_out() {
    let input = agent_stream(20);
    let (off, plain) = run(VideoCodec::Vp8, Preset::None.params(), &input);
    let (on, smoothed) = run(VideoCodec::Vp8, Preset::Natural.params(), &input);
    assert_eq!(off.stats().encoded, 20);
    assert_eq!(on.stats().encoded, 20);
    assert!(smoothed[0].keyframe, "the stream starts on a keyframe");
    // RFC 6386 §9.1: bits 1–3 of the frame tag hold the version; 0 (what browsers
    // send) unless configured otherwise.
    assert!(
        smoothed.iter().all(|f| (f.data[0] >> 1) & 7 == 0),
        "every frame is VP8 version 0"
    );
    let (n_off, e_off) = face_hf_energy(VideoCodec::Vp8, &plain);
    let (n_on, e_on) = face_hf_energy(VideoCodec::Vp8, &smoothed);
    eprintln!("cheek high-frequency energy: beauty off {e_off:.0}, on {e_on:.0}");
    assert_eq!((n_off, n_on), (20, 20));
    assert!(
        e_on < 0.7 * e_off,
        "face high-frequency energy: beauty on {e_on:.0}, off {e_off:.0}"
    );
}

#[test]
fn vp8_version_1_comes_out_when_configured() {
    let input = agent_stream(5);
    let mut p = BeautyPipeline::new(VideoCodec::Vp8, Preset::Natural.params(), 1_000_000)
        .with_vp8_version(Vp8Version::Simple);
    let mut out = Vec::new();
    for f in &input {
        out.extend(p.process(f).expect("process").frames);
    }
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|f| (f.data[0] >> 1) & 7 == 1), "version 1");
    assert_eq!(face_hf_energy(VideoCodec::Vp8, &out).0, 5, "and it decodes");
}

#[test]
fn h264_comes_out_when_the_customer_negotiated_it() {
    let input = agent_stream(10);
    let (p, out) = run(VideoCodec::H264, Preset::Natural.params(), &input);
    assert_eq!(p.stats().encoded, 10);
    assert!(out[0].keyframe);
    // Annex B with SPS at the start of the keyframe.
    assert!(out[0].data.starts_with(&[0, 0, 0, 1]) || out[0].data.starts_with(&[0, 0, 1]));
    let (pictures, _) = face_hf_energy(VideoCodec::H264, &out);
    assert_eq!(pictures, 10);
}

#[test]
fn a_corrupt_frame_is_skipped_and_the_stream_recovers_at_the_next_keyframe() {
    let mut input = agent_stream(40);
    let mut p = BeautyPipeline::new(VideoCodec::Vp8, Preset::Natural.params(), 1_000_000);
    // Frame 5 is garbage, and frames after it depend on it.
    let mut garbage: Vec<u8> = input[5].data.to_vec();
    for b in garbage.iter_mut().skip(3) {
        *b ^= 0x5a;
    }
    garbage.truncate(garbage.len() / 2);
    input[5].data = Arc::from(garbage);
    input[5].contiguous = false;
    let mut asked = false;
    let mut out_after_keyframe = 0;
    for (i, f) in input.iter().enumerate() {
        let r = p.process(f).expect("never an error for bad input");
        if (5..30).contains(&i) {
            asked |= r.need_keyframe;
            assert!(
                r.frames.is_empty() || i == 5,
                "frame {i}: nothing while waiting for a keyframe"
            );
        }
        if i >= 30 {
            out_after_keyframe += r.frames.len();
        }
    }
    assert!(asked, "a keyframe was asked for");
    assert_eq!(
        out_after_keyframe, 10,
        "frames 30–39 (from the next keyframe) come out"
    );
    assert!(p.stats().skipped_waiting_for_keyframe >= 20);
}

#[test]
fn a_pli_makes_the_next_output_a_keyframe_and_settings_apply_at_once() {
    let input = agent_stream(6);
    let mut p = BeautyPipeline::new(VideoCodec::Vp8, Preset::Smooth.params(), 1_000_000);
    let first = p.process(&input[0]).expect("ok").frames;
    assert!(first[0].keyframe);
    let second = p.process(&input[1]).expect("ok").frames;
    assert!(!second[0].keyframe);
    p.force_keyframe();
    let third = p.process(&input[2]).expect("ok").frames;
    assert!(third[0].keyframe, "PLI → keyframe from our encoder");
    p.set_params(Preset::None.params());
    let fourth = p.process(&input[3]).expect("ok").frames;
    assert_eq!(fourth.len(), 1);
}

#[test]
fn behind_it_decodes_everything_but_encodes_only_the_newest_and_stays_clean() {
    let input = agent_stream(12);
    let mut p = BeautyPipeline::new(VideoCodec::Vp8, Preset::Natural.params(), 1_000_000);
    let mut out = Vec::new();
    for (i, f) in input.iter().enumerate() {
        // A burst: only every third frame is the newest in the queue.
        out.extend(p.process_with(f, i % 3 == 2 || i == 0).expect("ok").frames);
    }
    assert_eq!(
        p.stats().decoded,
        12,
        "every frame decoded (references intact)"
    );
    assert_eq!(p.stats().encoded, 5);
    assert_eq!(p.stats().not_encoded, 7);
    // What was encoded decodes to a clean picture: decoding from broken references
    // (frames dropped before the decoder) gave tens of times the unfiltered energy.
    let (pictures, energy) = face_hf_energy(VideoCodec::Vp8, &out);
    assert_eq!(pictures, 5);
    let (_, plain) = face_hf_energy(
        VideoCodec::Vp8,
        &run(VideoCodec::Vp8, Preset::None.params(), &input).1,
    );
    assert!(energy < 1.5 * plain, "{energy:.0} vs {plain:.0} unfiltered");

    // Frames lost before the decoder: wait for the next keyframe.
    p.resync();
    let r = p.process(&input[1]).expect("ok");
    assert!(r.frames.is_empty() && r.need_keyframe);
}

/// Bytes per output frame over `frames`, and whether any was a keyframe.
fn rate_and_keyframes(frames: &[OutputFrame]) -> (f64, bool) {
    let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
    (
        bytes as f64 / frames.len().max(1) as f64,
        frames.iter().any(|f| f.keyframe),
    )
}

/// `n` frames of the agent as a browser sends them: one keyframe, at the start.
fn browser_stream(n: usize) -> Vec<InputFrame> {
    let mut input = agent_stream(n);
    for f in input.iter_mut().skip(1) {
        f.keyframe = false;
    }
    input
}

/// Runs `input`, calling `set_bitrate` with `changes` (frame index, bps) on the way.
fn run_with_rates(
    codec: VideoCodec,
    input: &[InputFrame],
    changes: &[(usize, u32)],
) -> Vec<Vec<OutputFrame>> {
    let mut p = BeautyPipeline::new(codec, Preset::Natural.params(), 2_000_000);
    input
        .iter()
        .enumerate()
        .map(|(i, f)| {
            for (_, bps) in changes.iter().filter(|(at, _)| *at == i) {
                p.set_bitrate(*bps);
            }
            p.process(f).expect("process").frames
        })
        .collect()
}

#[test]
fn h264_follows_the_bandwidth_estimate_at_once_without_a_keyframe() {
    let out = run_with_rates(VideoCodec::H264, &browser_stream(120), &[(60, 300_000)]);
    // Rate control needs a few frames to settle on either side of the change.
    let (before, _) = rate_and_keyframes(&out[20..60].concat());
    let (after, key_after) = rate_and_keyframes(&out[60..].concat());
    let (settled, _) = rate_and_keyframes(&out[80..].concat());
    eprintln!("H.264: {before:.0} → {settled:.0} bytes per frame");
    assert!(
        settled < 0.4 * before,
        "{before:.0} → {settled:.0} bytes per frame"
    );
    assert!(after < 0.5 * before);
    assert!(!key_after, "no keyframe for a new rate");
}

#[test]
fn vp8_follows_big_moves_of_the_estimate_and_ignores_small_ones() {
    let changes = [
        (60, 300_000),    // congestion: down at once (a reopen, so one keyframe)
        (90, 330_000),    // +10 %: not worth a keyframe
        (100, 1_500_000), // recovery: only 150 frames after the last reopen
    ];
    let out = run_with_rates(VideoCodec::Vp8, &browser_stream(240), &changes);
    let keyframes: Vec<usize> = (1..out.len())
        .filter(|&i| out[i].iter().any(|f| f.keyframe))
        .collect();
    assert_eq!(
        keyframes,
        vec![60, 210],
        "a keyframe per reopen, none for +10 %"
    );
    let (before, _) = rate_and_keyframes(&out[20..60].concat());
    let (low, _) = rate_and_keyframes(&out[70..210].concat());
    let (high, _) = rate_and_keyframes(&out[215..].concat());
    eprintln!("VP8: {before:.0} → {low:.0} → {high:.0} bytes per frame");
    assert!(low < 0.4 * before, "{before:.0} → {low:.0} bytes per frame");
    assert!(high > 2.0 * low, "{low:.0} → {high:.0} bytes per frame");
}
