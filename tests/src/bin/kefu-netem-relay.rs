//! The impairment relay as a process, for the browser tests: prints
//! `relay: udp 127.0.0.1:PORT`, then reads commands from stdin (one per line, see
//! `kefu_tests::netem_relay::Command`) and answers each with one line: `ok`, the stats
//! JSON, or `error: …`. Ends when stdin closes. With `NETEM_CAPTURE_DIR` set, the first
//! datagrams of each kind are kept there as files (fuzzing seeds).

use kefu_tests::netem_relay::{self, Command};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let upstream = match std::env::args().nth(1) {
        Some(a) => Some(a.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream {a:?}: {e}"),
            )
        })?),
        None => None,
    };
    let capture = match std::env::var_os("NETEM_CAPTURE_DIR") {
        Some(dir) => Some(netem_relay::Capture::new(dir, 12)?),
        None => None,
    };
    let relay = netem_relay::start_capturing(upstream, capture).await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("relay: udp {}\n", relay.addr).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match Command::parse(&line) {
            Ok(cmd) => relay.send(cmd).await,
            Err(e) => Err(e),
        };
        let text = match answer {
            Ok(text) => text,
            Err(e) => format!("error: {e}"),
        };
        out.write_all(format!("{text}\n").as_bytes()).await?;
        out.flush().await?;
    }
    Ok(())
}
