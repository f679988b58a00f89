//! Test helper for the browser suites: records a face check for an agent through the
//! face engine's internal interface (the library API), since kefu has no HTTP route to
//! it and the real engine is a later issue. Never shipped in the `kefu` binary.
//!
//! Usage: `kefu-test-verify LOGIN [passed|failed]`, with the same `KEFU_…` environment
//! (data folder or database URL) as the server under test.

use kefu_signaling::KefuConfig;
use kefu_signaling::clock::now_ms;
use kefu_signaling::store::Store;
use kefu_signaling::verification::{CheckOutcome, record_verification};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let login = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: kefu-test-verify LOGIN [passed|failed]"))?;
    let passed = match args.next().as_deref() {
        None | Some("passed") => true,
        Some("failed") => false,
        Some(other) => anyhow::bail!("unknown outcome {other}"),
    };
    let config = KefuConfig::load(None)?;
    let store = Store::open(&config.database, &config.data_dir).await?;
    let (user, _) = store
        .user_by_login(&login)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {login}"))?;
    record_verification(&store, &user, CheckOutcome { passed }, now_ms()).await?;
    store.close().await;
    println!(
        "recorded a {} check for {login}",
        if passed { "passed" } else { "failed" }
    );
    Ok(())
}
