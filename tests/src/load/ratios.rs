//! The goal table: each kefu build's forwarded packets per busy core against the
//! kernel floors ([`super::floor`]), Janus, and the other build. Issue 18's goal is
//! kefu ≥ [`GOAL`] × the per-packet (`recv_from` + `send_to`) relay's packets per busy
//! core, measured in the same run on the same machine, so the ratio does not depend on
//! how fast the machine is that day.

use serde::Serialize;

use super::floor::{FloorReport, Relay};
use super::{Figure, JANUS, KEFU, KEFU_BEFORE, RunReport, mean_of};

/// kefu's packets per busy core ÷ the per-packet relay's, at least.
pub const GOAL: f64 = 0.5;

/// One kefu build's means and ratios.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KefuRatios {
    pub sfu: &'static str,
    pub runs: usize,
    /// Mean over its runs.
    pub packets_per_busy_core: f64,
    /// ÷ the `recv_from` + `send_to` relay's: the goal ratio.
    pub per_packet_floor: Option<f64>,
    pub goal_met: Option<bool>,
    /// ÷ the UDP GSO relay's.
    pub gso_floor: Option<f64>,
    /// ÷ Janus's mean.
    pub janus: Option<f64>,
    /// This build ÷ the before build (the current build's row only).
    pub over_before: Option<f64>,
    /// Mean over its runs.
    pub delay_p99_ms: f64,
    /// This build's p99 ÷ the before build's (the current build's row only).
    pub delay_p99_over_before: Option<f64>,
}

const PER_CORE: Figure = |r| r.packets_per_busy_core;
const DELAY_P99: Figure = |r| r.delivery.delay_p99_ms;

/// A row for each kefu build that ran, the before build first.
pub fn kefu_ratios(reports: &[RunReport], floors: &[FloorReport]) -> Vec<KefuRatios> {
    let floor = |relay: Relay| {
        floors
            .iter()
            .find(|f| f.relay == relay && f.usable())
            .map(|f| f.packets_per_busy_core)
    };
    let (per_packet, gso) = (floor(Relay::PerPacket), floor(Relay::Gso));
    let janus = mean_of(reports, JANUS, PER_CORE);
    let before = mean_of(reports, KEFU_BEFORE, PER_CORE);
    let before_p99 = mean_of(reports, KEFU_BEFORE, DELAY_P99);
    let mut rows = Vec::new();
    for sfu in [KEFU_BEFORE, KEFU] {
        let Some(per_core) = mean_of(reports, sfu, PER_CORE) else {
            continue;
        };
        let p99 = mean_of(reports, sfu, DELAY_P99).unwrap_or(f64::NAN);
        let is_after = sfu == KEFU;
        let goal_ratio = divide(per_core, per_packet);
        rows.push(KefuRatios {
            sfu,
            runs: reports.iter().filter(|r| r.sfu == sfu).count(),
            packets_per_busy_core: per_core,
            per_packet_floor: goal_ratio,
            goal_met: goal_ratio.map(|r| r >= GOAL),
            gso_floor: divide(per_core, gso),
            janus: divide(per_core, janus),
            over_before: divide(per_core, before.filter(|_| is_after)),
            delay_p99_ms: p99,
            delay_p99_over_before: divide(p99, before_p99.filter(|_| is_after)),
        });
    }
    rows
}

/// `a ÷ b`, when there is a `b` to divide by.
fn divide(a: f64, b: Option<f64>) -> Option<f64> {
    b.filter(|b| *b > 0.0 && b.is_finite()).map(|b| a / b)
}

/// The goal table; empty when no kefu build ran.
pub fn markdown(rows: &[KefuRatios]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nGoal: kefu's forwarded packets per busy core ≥ {GOAL} × the `recv_from` + \
         `send_to` relay's (means of the runs; — where there is nothing to divide by).\n\n\
         | kefu build | runs | pkt/s per busy core | ÷ recv_from + send_to relay (goal ≥ {GOAL}) | \
         ÷ GSO relay | ÷ Janus | ÷ kefu (before) | delay p99 ms | p99 ÷ kefu (before) |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let goal = match (r.per_packet_floor, r.goal_met) {
            (Some(ratio), Some(met)) => {
                format!("{ratio:.2} ({})", if met { "met" } else { "not met" })
            }
            _ => "—".to_string(),
        };
        out += &format!(
            "| {} | {} | {:.0} | {goal} | {} | {} | {} | {:.2} | {} |\n",
            r.sfu,
            r.runs,
            r.packets_per_busy_core,
            cell(r.gso_floor),
            cell(r.janus),
            cell(r.over_before),
            r.delay_p99_ms,
            cell(r.delay_p99_over_before),
        );
    }
    out
}

fn cell(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::floor::FloorLoad;
    use crate::load::media::Delivery;
    use crate::load::{floor_load, markdown as report_markdown};

    fn run(sfu: &'static str, per_core: f64, p99_ms: f64) -> RunReport {
        RunReport {
            sfu,
            calls: 40,
            window_secs: 20.0,
            setup_secs: 3.0,
            delivery: Delivery {
                streams: 160,
                sent_audio: 4000,
                received_audio: 4000,
                sent_video_frames: 6000,
                received_video_frames: 6000,
                // 4000 audio packets + 6000 frames of 4 packets.
                window_packets: 28_000,
                window_bytes: 28_000 * 761,
                delay_p50_ms: 0.4,
                delay_p99_ms: p99_ms,
                ..Delivery::default()
            },
            forwarded_pps: 14_000.0,
            forwarded_mbps: 85.0,
            sfu_cores: 14_000.0 / per_core,
            sfu_peak_rss_mib: 100.0,
            client_cores: 0.3,
            packets_per_busy_core: per_core,
            millicores_per_stream: 1.2,
            sfu_user_us_per_packet: 8.0,
            sfu_kernel_us_per_packet: 5.0,
        }
    }

    fn floor(relay: Relay, per_core: f64) -> FloorReport {
        let load = FloorLoad {
            pps: 14_000.0,
            packet_bytes: 801,
            burst: 4,
        };
        FloorReport {
            relayed: 280_000,
            received: 280_000,
            sends: 70_000,
            window_secs: 20.0,
            cores: 0.05,
            packets_per_busy_core: per_core,
            user_us_per_packet: 0.2,
            kernel_us_per_packet: 3.8,
            measurable: true,
            unavailable: None,
            ..FloorReport::unavailable(relay, load, "")
        }
    }

    fn side_by_side() -> (Vec<RunReport>, Vec<FloorReport>) {
        let runs = vec![
            run(KEFU_BEFORE, 70_000.0, 2.5),
            run(KEFU, 120_000.0, 1.0),
            run(JANUS, 35_000.0, 1.4),
            run(KEFU_BEFORE, 74_000.0, 2.7),
            run(KEFU, 130_000.0, 1.2),
            run(JANUS, 40_000.0, 1.2),
        ];
        let floors = vec![
            floor(Relay::PerPacket, 250_000.0),
            floor(Relay::Batched, 260_000.0),
            floor(Relay::Gso, 500_000.0),
        ];
        (runs, floors)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn each_build_is_divided_by_the_floors_janus_and_the_other_build() {
        let (runs, floors) = side_by_side();
        let rows = kefu_ratios(&runs, &floors);
        assert_eq!(rows.len(), 2);
        let (before, after) = (&rows[0], &rows[1]);
        assert_eq!((before.sfu, after.sfu), (KEFU_BEFORE, KEFU));
        assert_eq!((before.runs, after.runs), (2, 2));
        assert!((before.packets_per_busy_core - 72_000.0).abs() < 1e-9);
        assert!(close(before.per_packet_floor, 72_000.0 / 250_000.0));
        assert_eq!(before.goal_met, Some(false));
        assert!(close(before.gso_floor, 72_000.0 / 500_000.0));
        assert!(close(before.janus, 72_000.0 / 37_500.0));
        assert_eq!(before.over_before, None);
        assert_eq!(before.delay_p99_over_before, None);

        assert!(close(after.per_packet_floor, 125_000.0 / 250_000.0));
        assert_eq!(after.goal_met, Some(true));
        assert!(close(after.gso_floor, 0.25));
        assert!(close(after.janus, 125_000.0 / 37_500.0));
        assert!(close(after.over_before, 125_000.0 / 72_000.0));
        assert!((after.delay_p99_ms - 1.1).abs() < 1e-9);
        assert!(close(after.delay_p99_over_before, 1.1 / 2.6));
    }

    #[test]
    fn a_missing_or_unmeasurable_divisor_leaves_its_ratio_out() {
        let (runs, mut floors) = side_by_side();
        floors[0].measurable = false;
        floors[2] = FloorReport::unavailable(
            Relay::Gso,
            FloorLoad {
                pps: 14_000.0,
                packet_bytes: 801,
                burst: 4,
            },
            "no GSO",
        );
        let only_after: Vec<RunReport> = runs.into_iter().filter(|r| r.sfu == KEFU).collect();
        let rows = kefu_ratios(&only_after, &floors);
        assert_eq!(rows.len(), 1);
        let after = &rows[0];
        assert_eq!(after.per_packet_floor, None);
        assert_eq!(after.goal_met, None);
        assert_eq!(after.gso_floor, None);
        assert_eq!(after.janus, None);
        assert_eq!(after.over_before, None);
        assert!(kefu_ratios(&[], &floors).is_empty());
    }

    #[test]
    fn the_report_shows_both_builds_every_floor_and_the_goal() {
        let (runs, floors) = side_by_side();
        let md = report_markdown(&runs, &floors);
        assert!(md.contains("| kefu (before) | "), "{md}");
        assert!(md.contains("| kefu | "), "{md}");
        assert!(
            md.contains("recvmmsg (≤ 32) + UDP GSO sendmsg | 500000 |"),
            "{md}"
        );
        assert!(md.contains("in bursts of 4 back to back"), "{md}");
        assert!(
            md.contains("÷ recv_from + send_to relay (goal ≥ 0.5)"),
            "{md}"
        );
        // before: 72 000 ÷ 250 000; after: 125 000 ÷ 250 000, ÷ before 1.74, p99 0.42.
        assert!(
            md.contains(
                "| kefu (before) | 2 | 72000 | 0.29 (not met) | 0.14 | 1.92 | — | 2.60 | — |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| kefu | 2 | 125000 | 0.50 (met) | 0.25 | 3.33 | 1.74 | 1.10 | 0.42 |"),
            "{md}"
        );
        // The packets per send column: 280 000 in 70 000 sends.
        assert!(md.contains("| 4.0 | 280000 / 280000 |"), "{md}");
    }

    #[test]
    fn an_unavailable_floor_is_said_so() {
        let (runs, mut floors) = side_by_side();
        floors[2] = FloorReport::unavailable(
            Relay::Gso,
            FloorLoad {
                pps: 14_000.0,
                packet_bytes: 801,
                burst: 4,
            },
            "no GSO here",
        );
        let md = report_markdown(&runs, &floors);
        assert!(
            md.contains("UDP GSO sendmsg | unavailable: no GSO here |"),
            "{md}"
        );
        assert!(
            md.contains("| kefu | 2 | 125000 | 0.50 (met) | — |"),
            "{md}"
        );
    }

    #[test]
    fn the_floor_is_fed_like_the_kefu_runs() {
        let (runs, _) = side_by_side();
        let load = floor_load(&runs).expect("kefu ran");
        assert!((load.pps - 14_000.0).abs() < 1e-9);
        assert_eq!(load.packet_bytes, 761 + 40);
        // 24 000 video packets in 6000 frames.
        assert_eq!(load.burst, 4);
        let janus_only: Vec<RunReport> = runs.into_iter().filter(|r| r.sfu == JANUS).collect();
        assert_eq!(floor_load(&janus_only), None);
    }
}
