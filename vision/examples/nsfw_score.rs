//! Prints open_nsfw's score of each picture given: `cargo run -p kefu-vision --example
//! nsfw_score -- models FILE…` (checking the preprocessing against the reference).

use kefu_vision::engine::PHOTO_LIMITS;
use kefu_vision::{NudityClassifier, OpenNsfw, Picture};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let models = args.next().unwrap_or_else(|| "models".into());
    let mut model = OpenNsfw::load(std::path::Path::new(&models))?;
    for path in args {
        let picture = Picture::decode(&std::fs::read(&path)?, PHOTO_LIMITS)?;
        println!("{path}: {}", model.nsfw_score(&picture)?);
    }
    Ok(())
}
