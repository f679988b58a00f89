//! The real open_nsfw model on the benign test images, and what a missing or broken
//! model does (fails at load; nothing passes by default).

mod support;

use kefu_vision::engine::PHOTO_LIMITS;
use kefu_vision::{NudityClassifier, OpenNsfw, Picture};
use support::repo;

/// The moderation policy's default threshold (issue 15).
const THRESHOLD: f32 = 0.8;

fn benign_pictures() -> Vec<(String, Picture)> {
    let mut out = Vec::new();
    for dir in ["test-data", "test-data/faces"] {
        let entries =
            std::fs::read_dir(repo().join(dir)).expect("test-data (deploy/install-deps.sh)");
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).expect("read");
            let pic = Picture::decode(&bytes, PHOTO_LIMITS).expect("decodes");
            out.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                pic,
            ));
        }
    }
    out
}

#[test]
fn every_benign_test_image_scores_below_the_threshold_and_scores_are_stable() {
    let mut model = OpenNsfw::load(&repo().join("models")).expect("open_nsfw loads");
    let pictures = benign_pictures();
    assert!(pictures.len() >= 10, "{} pictures", pictures.len());
    for (name, pic) in &pictures {
        let a = model.nsfw_score(pic).expect("scores");
        let b = model.nsfw_score(pic).expect("scores");
        println!("{name}: {a:.4}");
        assert!((0.0..THRESHOLD).contains(&a), "{name} scored {a}");
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{name}: the same picture, the same score"
        );
    }
}

#[test]
fn a_missing_or_corrupt_model_fails_at_load() {
    let dir = std::env::temp_dir().join(format!("kefu-nsfw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let missing = OpenNsfw::load(&dir).expect_err("no model file");
    assert!(missing.to_string().contains("open_nsfw.onnx"), "{missing}");
    std::fs::write(dir.join("open_nsfw.onnx"), b"not an onnx model").expect("write");
    let corrupt = OpenNsfw::load(&dir).expect_err("a corrupt file");
    assert!(corrupt.to_string().contains("open_nsfw.onnx"), "{corrupt}");
    // A real model of another kind is refused too: it does not answer like open_nsfw.
    std::fs::copy(
        repo().join("models/face_detection_yunet_2023mar.onnx"),
        dir.join("open_nsfw.onnx"),
    )
    .expect("copy");
    assert!(OpenNsfw::load(&dir).is_err(), "YuNet is not open_nsfw");
    let _ = std::fs::remove_dir_all(&dir);
}
