//! Prints what the engine measures on the test photos: detections, poses, quality,
//! pairwise similarities (docs/verification.md's calibration). `cargo run -p
//! kefu-vision --example calibrate -- models test-data/faces`.

use std::path::PathBuf;

use kefu_vision::engine::PHOTO_LIMITS;
use kefu_vision::{FaceEngine, Picture};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let models = PathBuf::from(args.next().unwrap_or_else(|| "models".into()));
    let faces = PathBuf::from(args.next().unwrap_or_else(|| "test-data/faces".into()));
    let mut engine = FaceEngine::load(&models)?;
    let mut names: Vec<_> = std::fs::read_dir(&faces)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    names.sort();
    let mut embs = Vec::new();
    for path in &names {
        let bytes = std::fs::read(path)?;
        let pic = Picture::decode(&bytes, PHOTO_LIMITS)?;
        let t = std::time::Instant::now();
        let found = engine.detect(&pic, 640)?;
        let dt = t.elapsed();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        println!(
            "{name}: {}x{} faces={} detect={dt:?}",
            pic.width(),
            pic.height(),
            found.len()
        );
        for f in &found {
            let pose = f.landmarks.pose();
            println!("  box w={:.0} score={:.3} pose={pose:?}", f.width, f.score);
        }
        if let Some(f) = found.first() {
            let t = std::time::Instant::now();
            let e = engine.embed(&pic, f, false)?;
            let m = engine.embed(&pic, f, true)?;
            println!(
                "  embed={:?} quality={:?}",
                t.elapsed() / 2,
                engine.photo_quality(&pic)?
            );
            embs.push((name.to_owned(), e, m));
        }
    }
    for (i, (a, ea, ma)) in embs.iter().enumerate() {
        for (b, eb, mb) in &embs[i + 1..] {
            println!(
                "{a} ~ {b}: cos={:.3} mirror(a)~b={:.3} a~mirror(b)={:.3}",
                ea.cosine(eb),
                ma.cosine(eb),
                ea.cosine(mb)
            );
        }
        println!("{a} ~ its own mirror: {:.3}", ea.cosine(ma));
    }
    Ok(())
}
