//! The nodes of a cluster as the registry shows them, and where a new call's media
//! goes: the live media node with the lowest load per core, counting the calls placed
//! there since its last heartbeat (its CPU figure does not show them yet). Pure: the
//! registry (`cluster::redis::RedisNodes`) feeds it.

use serde::{Deserialize, Serialize};

/// What a node reports with each heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeLoad {
    /// Cores this process kept busy over the last heartbeat period.
    pub cpu_cores: f64,
    /// Cores the machine has.
    pub cores: u32,
    /// Calls whose media runs here.
    pub calls: u32,
    /// Agent streams through the beauty pipeline (decode → filter → encode here).
    pub pipeline_streams: u32,
    /// Streams moderation screens here.
    pub screened_streams: u32,
}

/// A node's registry entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    /// `all`, `signaling` or `media`.
    pub role: String,
    /// Where other nodes reach its control API (media nodes).
    pub internal_url: String,
    /// Draining: it takes no new calls.
    pub draining: bool,
    pub load: NodeLoad,
    /// kefu's version, for rolling upgrades.
    pub version: String,
    /// Unix ms of the heartbeat.
    pub seen_ms: i64,
}

impl NodeInfo {
    /// Whether rooms may be placed here: a media node (role `all` drives its own SFU
    /// and serves no control API to other nodes).
    pub fn takes_rooms(&self) -> bool {
        self.role == "media"
    }
}

/// Rough cost of one more call on a node, in cores, before its CPU figure shows it:
/// forwarding and recording a call ≈ 0.05 core; a beautified agent stream ≈ 0.2
/// core (issue 16's figure); a screened stream ≈ 0.02 core (BENCHMARKS.md).
const CALL_CORES: f64 = 0.05;
const PIPELINE_CORES: f64 = 0.2;
const SCREENED_CORES: f64 = 0.02;
/// A call placed but not yet in a heartbeat: assume it is beautified.
const PLACED_CORES: f64 = CALL_CORES + PIPELINE_CORES;

/// The node's load as a share of its cores: its measured CPU or the estimate from
/// what it runs, whichever is higher, plus the calls placed since its heartbeat.
pub fn load_share(node: &NodeInfo, placed_since_heartbeat: u32) -> f64 {
    let l = &node.load;
    let estimate = f64::from(l.calls) * CALL_CORES
        + f64::from(l.pipeline_streams) * PIPELINE_CORES
        + f64::from(l.screened_streams) * SCREENED_CORES;
    let busy = l.cpu_cores.max(estimate) + f64::from(placed_since_heartbeat) * PLACED_CORES;
    busy / f64::from(l.cores.max(1))
}

/// The media node a new call goes to: live, not draining, least loaded per core;
/// ties go to fewer calls, then the lower id (so the choice is stable).
pub fn choose_media_node(nodes: &[(NodeInfo, u32)]) -> Option<&NodeInfo> {
    nodes
        .iter()
        .filter(|(n, _)| n.takes_rooms() && !n.draining)
        .min_by(|(a, pa), (b, pb)| {
            load_share(a, *pa)
                .total_cmp(&load_share(b, *pb))
                .then(a.load.calls.cmp(&b.load.calls))
                .then(a.id.cmp(&b.id))
        })
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, role: &str, cores: u32, cpu: f64, calls: u32) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            role: role.into(),
            internal_url: format!("http://{id}:8081"),
            draining: false,
            load: NodeLoad {
                cpu_cores: cpu,
                cores,
                calls,
                pipeline_streams: 0,
                screened_streams: 0,
            },
            version: "test".into(),
            seen_ms: 0,
        }
    }

    #[test]
    fn the_least_loaded_media_node_per_core_wins() {
        let nodes = vec![
            (node("m1", "media", 2, 1.0, 4), 0),
            (node("m2", "media", 8, 2.0, 9), 0),
            (node("s1", "signaling", 16, 0.0, 0), 0),
        ];
        assert_eq!(
            choose_media_node(&nodes).map(|n| n.id.as_str()),
            Some("m2"),
            "2/8 < 1/2"
        );
    }

    #[test]
    fn calls_placed_since_the_heartbeat_count_so_a_burst_spreads() {
        let mut nodes = vec![
            (node("m1", "media", 2, 0.0, 0), 0),
            (node("m2", "media", 2, 0.0, 0), 0),
        ];
        let mut placed = Vec::new();
        for _ in 0..4 {
            let id = choose_media_node(&nodes)
                .map(|n| n.id.clone())
                .expect("a node");
            nodes
                .iter_mut()
                .filter(|(n, _)| n.id == id)
                .for_each(|(_, p)| *p += 1);
            placed.push(id);
        }
        assert_eq!(placed, ["m1", "m2", "m1", "m2"]);
    }

    #[test]
    fn what_runs_there_counts_before_the_cpu_figure_shows_it() {
        let mut busy = node("m1", "media", 2, 0.0, 1);
        busy.load.pipeline_streams = 1;
        let idle = node("m2", "media", 2, 0.1, 0);
        assert!(load_share(&busy, 0) > load_share(&idle, 0));
        let nodes = vec![(busy, 0), (idle, 0)];
        assert_eq!(choose_media_node(&nodes).map(|n| n.id.as_str()), Some("m2"));
    }

    #[test]
    fn draining_and_signaling_only_nodes_take_no_calls() {
        let mut draining = node("m1", "media", 8, 0.0, 0);
        draining.draining = true;
        let nodes = vec![(draining, 0), (node("s1", "signaling", 8, 0.0, 0), 0)];
        assert_eq!(choose_media_node(&nodes), None);
        let nodes = vec![(node("m1", "media", 2, 1.9, 3), 0)];
        assert_eq!(
            choose_media_node(&nodes).map(|n| n.id.as_str()),
            Some("m1"),
            "a busy node is still a node"
        );
        let nodes = vec![(node("a1", "all", 8, 0.0, 0), 0)];
        assert_eq!(
            choose_media_node(&nodes),
            None,
            "a single node drives only its own SFU"
        );
    }
}
