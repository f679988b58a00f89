//! The load benchmark's machinery, in miniature: one call through kefu (as "before" and
//! as the build under test: the same binary here) and one through Janus, in the
//! benchmark's own network namespace, and everything sent is counted at the other end.
//! The benchmark's figures themselves live in BENCHMARKS.md (`make bench`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn the_load_tool_measures_kefu_and_janus_side_by_side() {
    let load = PathBuf::from(env!("CARGO_BIN_EXE_kefu-load"));
    let kefu = load.with_file_name("kefu");
    assert!(
        kefu.exists(),
        "{} is missing: build the workspace first (make build)",
        kefu.display()
    );
    let work = tempfile::tempdir().expect("temp dir");
    let json = work.path().join("runs.json");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/bench-sfu.sh");
    let output = Command::new(script)
        .env("BENCH_SFU_KEFU", &kefu)
        // The "before" build: the same binary (building the real one takes minutes).
        .env("BENCH_SFU_KEFU_BEFORE", &kefu)
        .env("BENCH_SFU_LOAD", &load)
        .env("BENCH_SFU_WORK_DIR", work.path())
        .args(["--calls", "1", "--seconds", "3", "--warmup", "1", "--json"])
        .arg(&json)
        .output()
        .expect("bench-sfu.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench-sfu.sh failed:\n{stdout}\n{stderr}"
    );

    let all: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("runs JSON")).expect("JSON");
    let runs = all["runs"].as_array().expect("runs");
    let sfus: Vec<&str> = runs.iter().filter_map(|r| r["sfu"].as_str()).collect();
    assert_eq!(sfus, ["kefu (before)", "kefu", "janus"]);
    for run in runs {
        let sfu = &run["sfu"];
        let d = &run["delivery"];
        let count = |k: &str| d[k].as_u64().unwrap_or(0);
        // One call: two publishers, each received by the other party, audio and video.
        assert_eq!(count("streams"), 4, "{sfu}: {run}");
        // 3 s of 20 ms audio and 30 fps video from two publishers.
        assert!(count("sent_audio") >= 250, "{sfu}: {run}");
        assert!(count("sent_video_frames") >= 150, "{sfu}: {run}");
        // On loopback nothing should go missing; a little slack for a busy machine.
        assert!(
            count("received_audio") * 100 >= count("sent_audio") * 95,
            "{sfu}: {run}"
        );
        assert!(
            count("received_video_frames") * 100 >= count("sent_video_frames") * 95,
            "{sfu}: {run}"
        );
        assert!(count("delay_samples") > 0, "{sfu}: {run}");
        assert!(
            run["forwarded_pps"].as_f64().unwrap_or(0.0) > 100.0,
            "{sfu}: {run}"
        );
        assert!(
            run["sfu_cores"].as_f64().unwrap_or(0.0) > 0.0,
            "{sfu}: {run}"
        );
        let user = run["sfu_user_us_per_packet"].as_f64().unwrap_or(-1.0);
        let kernel = run["sfu_kernel_us_per_packet"].as_f64().unwrap_or(-1.0);
        assert!(
            user >= 0.0 && kernel >= 0.0 && user + kernel > 0.0,
            "{sfu}: {run}"
        );
    }
    // The kernel's floors ran at kefu's rate and relayed what they were offered.
    let floors = all["floors"].as_array().expect("floors");
    let relays: Vec<&str> = floors.iter().filter_map(|f| f["relay"].as_str()).collect();
    assert_eq!(relays, ["per_packet", "batched", "gso"]);
    // Fed at the mean rate of the two kefu runs.
    let pps = |i: usize| runs[i]["forwarded_pps"].as_f64().unwrap_or(0.0);
    let kefu_pps = (pps(0) + pps(1)) / 2.0;
    for floor in floors {
        if floor["unavailable"].is_string() {
            // No UDP GSO in this kernel: said, not measured.
            assert_eq!(floor["relay"], "gso", "{floor}");
            continue;
        }
        assert!(
            (floor["offered_pps"].as_f64().unwrap_or(0.0) - kefu_pps).abs() < 1e-6,
            "{floor}"
        );
        let relayed = floor["relayed"].as_u64().unwrap_or(0) as f64;
        assert!(relayed >= kefu_pps * 3.0 * 0.8, "{floor}");
        assert_eq!(floor["relayed"], floor["received"], "{floor}");
    }
    // The goal ratios: one row per kefu build, the build under test against its before.
    let ratios = all["ratios"].as_array().expect("ratios");
    let rows: Vec<&str> = ratios.iter().filter_map(|r| r["sfu"].as_str()).collect();
    assert_eq!(rows, ["kefu (before)", "kefu"]);
    assert!(
        ratios[1]["over_before"].as_f64().is_some_and(|r| r > 0.0),
        "{}",
        ratios[1]
    );
    assert!(stdout.contains("Kernel floor"), "{stdout}");
    assert!(
        stdout.contains("| kefu / Janus"),
        "ratios printed:\n{stdout}"
    );
}
