//! Helpers shared by the integration tests and the benchmarks: entries and
//! commands, cluster states of a given size, and a single-node Raft over the
//! store (its network is never used: there is no other node).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ha_raft_store::types::{Entry, LogId, Raft};
use ha_raft_store::{ClusterState, Command, Compaction, NodeState, OpUpdate, TypeConfig};
use ha_scheduler::model::{
    Config, FencingEvent, Membership, NodeConfig, NodeStatus, OpConfig, OpRecord, Primitive,
    Resource, ResourceHistory,
};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, RaftNetwork, RaftNetworkFactory};

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub fn entry(term: u64, index: u64, cmd: Command) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(cmd),
    }
}

pub fn op_update(node: &str, rsc: &str, call_id: i64, rc: i32) -> OpUpdate {
    OpUpdate {
        node: node.to_string(),
        resource: rsc.to_string(),
        class: "ocf".to_string(),
        provider: Some("heartbeat".to_string()),
        agent: "Dummy".to_string(),
        op: OpRecord {
            id: format!("{rsc}_monitor_10000"),
            operation: "monitor".to_string(),
            interval_ms: 10000,
            call_id,
            rc,
            op_status: 0,
            expected_rc: Some(0),
            last_rc_change: Some(1_700_000_000 + call_id),
            op_digest: Some("f2317cad3d54cec5d7d7aa7d0bf35cf8".to_string()),
            ..Default::default()
        },
    }
}

pub fn small_config(k: u64) -> Config {
    let mut c = Config {
        nodes: (1..=3)
            .map(|i| NodeConfig {
                id: format!("n{i}"),
                name: format!("n{i}"),
                ..Default::default()
            })
            .collect(),
        resources: (0..(k % 5 + 1))
            .map(|i| primitive(&format!("r{i}")))
            .collect(),
        ..Default::default()
    };
    c.properties.insert("seq".to_string(), k.to_string());
    c
}

pub fn primitive(id: &str) -> Resource {
    Resource::Primitive(Primitive {
        id: id.to_string(),
        class: "ocf".to_string(),
        provider: Some("heartbeat".to_string()),
        agent: "IPaddr2".to_string(),
        params: BTreeMap::from([
            ("ip".to_string(), "192.0.2.10".to_string()),
            ("cidr_netmask".to_string(), "24".to_string()),
        ]),
        meta: BTreeMap::new(),
        utilization: BTreeMap::new(),
        ops: vec![
            OpConfig {
                id: format!("{id}-monitor-10s"),
                name: "monitor".to_string(),
                interval_ms: 10_000,
                attrs: BTreeMap::from([("timeout".to_string(), "20s".to_string())]),
            },
            OpConfig {
                id: format!("{id}-start-0"),
                name: "start".to_string(),
                interval_ms: 0,
                attrs: BTreeMap::from([("timeout".to_string(), "20s".to_string())]),
            },
        ],
    })
}

/// The k-th command of the test workload (k from 1). Deterministic given k
/// and the state it is applied to; every command is accepted and bumps
/// exactly one counter, so `config_epoch + status_version` counts them.
pub fn workload(k: u64, state: &ClusterState) -> Command {
    let node = format!("n{}", k % 3 + 1);
    match k % 8 {
        0 => Command::ApplyConfig {
            base_epoch: state.config_epoch,
            config: small_config(k),
        },
        1..=3 => Command::RecordOps {
            ops: vec![
                op_update(&node, &format!("r{}", k % 7), k as i64, (k % 4 == 0) as i32),
                op_update(&node, &format!("r{}", k % 5), k as i64, 0),
            ],
        },
        4 => Command::SetNodeAttributes {
            node,
            transient: BTreeMap::from([("seq".to_string(), Some(k.to_string()))]),
            permanent: BTreeMap::new(),
        },
        5 => Command::RecordFencing {
            event: FencingEvent {
                target: node,
                action: "reboot".to_string(),
                device: Some("ipmi".to_string()),
                succeeded: k % 2 == 0,
                time: k as i64,
                origin: None,
                ..Default::default()
            },
        },
        6 => Command::ClearFailures {
            resource: format!("r{}", k % 7),
            node: (k % 3 == 0).then_some(node),
        },
        _ => Command::SetNodeState {
            node,
            state: [NodeState::Joined, NodeState::Unclean, NodeState::Offline][(k % 3) as usize],
        },
    }
}

/// Replays the workload from scratch: the state after commands `1..=upto`,
/// and the commands themselves (index k-1 holds command k).
pub fn replay(upto: u64) -> (ClusterState, Vec<Command>) {
    let mut s = ClusterState::default();
    let mut cmds = Vec::new();
    for k in 1..=upto {
        let c = workload(k, &s);
        cmds.push(c.clone());
        let _ = s.apply(c);
    }
    (s, cmds)
}

/// A state of `nodes` nodes and `resources` primitives, each resource with
/// history on three nodes (started + monitored on one, probed on two).
pub fn big_state(nodes: usize, resources: usize) -> ClusterState {
    let names: Vec<String> = (0..nodes).map(|i| format!("node{i:03}")).collect();
    let config = Config {
        nodes: names
            .iter()
            .map(|n| NodeConfig {
                id: n.clone(),
                name: n.clone(),
                attributes: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
                utilization: BTreeMap::from([("cpu".to_string(), "16".to_string())]),
                score: None,
            })
            .collect(),
        resources: (0..resources)
            .map(|i| primitive(&format!("rsc{i:05}")))
            .collect(),
        ..Default::default()
    };
    let mut status = ha_scheduler::model::Status {
        have_quorum: true,
        dc: Some(names[0].clone()),
        ..Default::default()
    };
    for n in &names {
        status.nodes.insert(
            n.clone(),
            NodeStatus {
                membership: Membership::Online,
                ..Default::default()
            },
        );
    }
    for i in 0..resources {
        let rsc = format!("rsc{i:05}");
        for j in 0..3 {
            let n = &names[(i + j) % nodes];
            let mut ops = Vec::new();
            let mut o = op_update(n, &rsc, i as i64, 0).op;
            if j == 0 {
                o.id = format!("{rsc}_last_0");
                o.operation = "start".to_string();
                o.interval_ms = 0;
                ops.push(o.clone());
                o.id = format!("{rsc}_monitor_10000");
                o.operation = "monitor".to_string();
                o.interval_ms = 10000;
                ops.push(o);
            } else {
                o.id = format!("{rsc}_last_0");
                o.interval_ms = 0;
                o.rc = 7;
                o.expected_rc = Some(7);
                ops.push(o);
            }
            if let Some(ns) = status.nodes.get_mut(n) {
                ns.history.insert(
                    rsc.clone(),
                    ResourceHistory {
                        class: "ocf".to_string(),
                        provider: Some("heartbeat".to_string()),
                        agent: "IPaddr2".to_string(),
                        ops,
                    },
                );
            }
        }
    }
    ClusterState {
        config,
        status,
        config_epoch: 1,
        status_version: 1,
    }
}

// -- single-node Raft

/// A network for a cluster of one: never called.
#[derive(Clone, Default)]
pub struct NoNetwork;

fn unreachable<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(
        "single-node test cluster",
    )))
}

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoNetwork;
    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Self::Network {
        NoNetwork
    }
}

impl RaftNetwork<TypeConfig> for NoNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }
    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

/// Starts a one-node Raft over the store in `dir`, initializing it on first
/// use, and waits until it leads with everything in its log applied.
pub async fn single_node(
    dir: &Path,
    compaction: Compaction,
) -> (
    Raft,
    ha_raft_store::LogStore,
    ha_raft_store::StateMachineStore,
) {
    let (log, sm) = ha_raft_store::open(dir).expect("open store");
    let config = compaction.apply_to(openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 100,
        election_timeout_max: 200,
        ..Default::default()
    });
    let config = std::sync::Arc::new(config.validate().expect("raft config"));
    let raft = Raft::new(1, config, NoNetwork, log.clone(), sm.clone())
        .await
        .expect("start raft");
    if !raft.is_initialized().await.expect("is_initialized") {
        let members = BTreeMap::from([(1u64, BasicNode::new("127.0.0.1:1"))]);
        raft.initialize(members).await.expect("initialize");
    }
    raft.wait(Some(Duration::from_secs(10)))
        .state(openraft::ServerState::Leader, "leader")
        .await
        .expect("becomes leader");
    // Commit (and so apply) everything already in the log.
    raft.ensure_linearizable().await.expect("linearizable");
    let last = raft.metrics().borrow().last_log_index;
    raft.wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(last, "applied")
        .await
        .expect("applies its log");
    (raft, log, sm)
}
