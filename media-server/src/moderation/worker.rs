//! The classifier thread: samples in through a bounded queue, verdicts to their
//! room's screen. A classifier error or panic costs one sample, never the thread.

use std::panic::AssertUnwindSafe;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use kefu_vision::{NudityClassifier, Picture};
use tracing::{error, warn};

use super::{Sample, Shared};

pub(super) fn spawn(
    input: Receiver<Sample>,
    mut classifier: Box<dyn NudityClassifier>,
    shared: Weak<Shared>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("kefu-moderation".into())
        .spawn(move || {
            kefu_vision::set_single_threaded();
            while let Ok(sample) = input.recv() {
                let side = sample.picture.side;
                let scored = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let p = &sample.picture;
                    let picture = Picture::from_i420(p.width, p.height, &p.data)?;
                    let score = classifier.nsfw_score(&picture)?;
                    Ok::<_, kefu_vision::VisionError>((picture, score))
                }));
                let Some(shared) = shared.upgrade() else {
                    return; // moderation is gone
                };
                shared.pending.fetch_sub(1, Ordering::AcqRel);
                match scored {
                    Ok(Ok((picture, score))) => {
                        shared.counters.classified.inc();
                        // The verdict's own work (policy, evidence JPEGs) must not take
                        // the thread down either: moderation would go blind silently.
                        let judged = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            sample.screen.verdict(side, score, &picture, sample.taken)
                        }));
                        if judged.is_err() {
                            error!("moderation panicked judging a sample; going on");
                            shared.counters.errors.inc();
                        }
                    }
                    Ok(Err(e)) => {
                        warn!("moderation sample not classified: {e}");
                        shared.counters.errors.inc();
                        sample.screen.sample_failed(side, sample.taken);
                    }
                    Err(_) => {
                        warn!("the classifier panicked on a sample; going on");
                        shared.counters.errors.inc();
                        sample.screen.sample_failed(side, sample.taken);
                    }
                }
            }
        })
        .map(|_| ())
}
