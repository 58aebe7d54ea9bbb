//! The quorum lease of this node: a follower holds quorum while the leader's
//! appends reach it, the leader while a majority of voters answers it. A node
//! that has been without quorum for a lease (`node-timeout`) applies
//! `no-quorum-policy` to itself — by default it stops every resource it runs,
//! so that by the time the majority fences it and recovers its resources,
//! nothing runs twice (ARCHITECTURE.md, "a node cut off from the majority").

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ha_raft_store::{Command, NodeState};
use ha_scheduler::transition::{Action, ActionKind, Transition};

use crate::executor::Executor;
use crate::server::Node;

/// When this node last heard from a leader that replicates to it.
#[derive(Clone, Default)]
pub struct QuorumLease {
    last: Arc<Mutex<Option<Instant>>>,
}

impl QuorumLease {
    pub fn heard_from_leader(&self) {
        // Nothing that can panic runs under this lock: a poisoned one is
        // recovered, never skipped (a skipped update would read as silence).
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    pub fn heard_within(&self, d: Duration) -> bool {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() <= d)
    }
}

/// Whether this node heard a leader's appends within `d`.
pub fn heard_within(node: &Node, d: Duration) -> bool {
    node.quorum.heard_within(d)
}

/// `node-timeout` when the configuration does not set it.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(1600);

/// The `node-timeout` cluster property, checked
/// ([`ha_scheduler::options::node_timeout`]: 500 ms..=120 s); `None` when
/// not set. The error names the property.
pub fn node_timeout_property(
    config: &ha_scheduler::model::Config,
) -> Result<Option<Duration>, String> {
    ha_scheduler::options::node_timeout(config).map_err(|e| e.to_string())
}

/// The cluster's node-timeout: one value for the whole cluster, the
/// replicated `node-timeout` property (default [`DEFAULT_NODE_TIMEOUT`]);
/// a node's own `node_timeout_ms` (its TOML) counts only before any
/// configuration was loaded (`config_epoch` 0). An invalid value (only a
/// configuration older than the check can hold one) counts as unset.
pub fn cluster_node_timeout(
    config: &ha_scheduler::model::Config,
    config_epoch: u64,
    before_config: Duration,
) -> Duration {
    match node_timeout_property(config) {
        Ok(Some(d)) => d,
        _ if config_epoch == 0 => before_config,
        _ => DEFAULT_NODE_TIMEOUT,
    }
}

/// This node's view of the cluster's node-timeout ([`cluster_node_timeout`]).
pub fn node_timeout(node: &Node) -> Duration {
    node.sm
        .read(|s| cluster_node_timeout(&s.config, s.config_epoch, node.node_timeout))
}

/// Whether this node is in the majority now.
pub fn has_quorum(node: &Node) -> bool {
    let (sole_voter, leader) = {
        let metrics = node.raft.get().metrics();
        let m = metrics.borrow();
        (
            m.membership_config.membership().voter_ids().eq([node.id]),
            m.current_leader == Some(node.id),
        )
    };
    // The only voter is the whole cluster (a one-node cluster, a two-node
    // survivor whose Raft was just restarted in place and is not leading
    // yet): nothing to lose.
    if sole_voter {
        return true;
    }
    let lease = node_timeout(node);
    if leader {
        crate::dc::members(node, lease, Instant::now()).have_quorum()
    } else {
        node.quorum.heard_within(lease)
    }
}

/// What `no-quorum-policy` asks of a node without quorum.
fn stops_without_quorum(config: &ha_scheduler::model::Config) -> bool {
    !matches!(
        config
            .properties
            .get("no-quorum-policy")
            .map(String::as_str),
        Some("ignore") | Some("freeze")
    )
}

/// Watches the lease; stops this node's resources once it has expired.
pub async fn watch(node: Node, executor: Arc<Executor>) {
    let mut without_since: Option<Instant> = None;
    let mut stopped = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let started = Instant::now();
    // How often this node had been declared lost when this run of the
    // daemon last saw it online (before that, being offline is just not
    // having rejoined yet).
    let mut online_at: Option<u64> = None;
    loop {
        tick.tick().await;
        if has_quorum(&node) {
            without_since = None;
            let (me, lost_count) = node.sm.read(|s| {
                s.status
                    .nodes
                    .get(&node.name)
                    .map(|n| (Some(n.membership), n.declared_lost))
                    .unwrap_or((None, 0))
            });
            // Declared lost by the DC (down without fencing, unclean,
            // fenced) since this node last saw itself online: the cluster
            // recovers its resources elsewhere, so it stops them at once —
            // a node frozen past the timeout whose first news after waking
            // is the leader's append, not its lease running out, and which
            // the DC may already have re-joined. Then it rejoins like after
            // a quorum loss (refused while unclean: then it is fenced).
            if online_at.is_some_and(|seen| lost_count > seen) && !stopped {
                tracing::error!(
                    "the DC declared this node lost while it runs: stopping its resources"
                );
                stop_local_resources(&node, &executor, "declared lost").await;
                stopped = true;
                online_at = None;
            } else if me == Some(ha_scheduler::model::Membership::Online) {
                online_at = Some(lost_count);
            }
            if stopped {
                // Back in the majority: what ran here was stopped behind the
                // cluster's back; forget it (probes find the truth). Refused
                // while unclean: then it is fenced first.
                stopped = false;
                let cmd = Command::SetNodeState {
                    node: node.name.clone(),
                    state: NodeState::Joined,
                };
                if let Err(e) = node.propose(cmd).await {
                    tracing::warn!("rejoin after quorum loss: {e}");
                }
            }
            continue;
        }
        // Before the first contact there is nothing to lose.
        if started.elapsed() < node_timeout(&node) * 2 {
            continue;
        }
        // has_quorum() already allows node-timeout since the last contact:
        // that is the lease.
        let since = *without_since.get_or_insert_with(Instant::now);
        if stopped {
            continue;
        }
        let config = node.sm.read(|s| s.config.clone());
        if crate::two_node::active(&node) {
            continue; // two-node mode: the takeover decides who stops
        }
        if !stops_without_quorum(&config) {
            continue;
        }
        stopped = true;
        tracing::error!(
            "no quorum (lease of {:?} expired {:?} ago): no-quorum-policy stops this node's resources",
            node_timeout(&node),
            since.elapsed()
        );
        stop_local_resources(&node, &executor, "no quorum").await;
    }
}

/// Stops every resource this node runs — by the replicated state it last
/// saw, and whatever its executor has in flight — all at once, without
/// recording (nothing can be committed without quorum) and without waiting
/// for the per-resource locks ([`Executor::stop_all_now`]); its recurring
/// monitors end.
pub async fn stop_local_resources(node: &Node, executor: &Arc<Executor>, why: &str) {
    let (config, mut status) = node.sm.read(|s| (s.config.clone(), s.status.clone()));
    status.have_quorum = false;
    let here = ha_scheduler::current_placement(&config, &status, crate::dc::now_secs());
    let mut mine: Vec<String> = here
        .resources
        .iter()
        .filter(|(_, p)| p.nodes.iter().any(|n| n == &node.name))
        .map(|(k, _)| k.split('@').next().unwrap_or(k).to_string())
        .collect();
    mine.extend(
        executor
            .in_flight()
            .into_iter()
            .filter(|o| o.action != "notify")
            .map(|o| o.key),
    );
    // What the executor itself started: the replicated history of a node
    // declared lost is wiped, its own record is not.
    let started = executor.started();
    mine.extend(started.iter().map(|(k, _)| k.clone()));
    mine.sort();
    mine.dedup();
    tracing::error!(
        resources = mine.len(),
        "{why}: stopping this node's resources"
    );
    let empty = Transition::default();
    let mut stops = Vec::new();
    for rsc in mine {
        let action = Action {
            id: 0,
            kind: ActionKind::Stop,
            rsc: Some(rsc.clone()),
            node: node.name.clone(),
            reason: why.into(),
        };
        let req = crate::dc::exec_request(&config, &empty, &action).or_else(|e| {
            // Not configured (any more): stopped as it was started.
            started
                .iter()
                .find(|(k, _)| *k == rsc)
                .map(|(k, s)| s.request(k, "stop", 0))
                .ok_or(e)
        });
        match req {
            Ok(req) if req.class != "stonith" => stops.push(req),
            Ok(_) => {}
            Err(e) => tracing::warn!(resource = %rsc, "cannot stop ({why}): {e}"),
        }
    }
    for (rsc, r) in executor.stop_all_now(stops).await {
        tracing::warn!(resource = %rsc, rc = r.rc, "stopped ({why})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_scheduler::model::{Config, Membership, OpRecord, ResourceHistory, Status};

    fn setup(extra: &str) -> (Config, Status) {
        let c = ha_scheduler::crm::read_crm(&format!(
            "node a\nnode b\nnode c\n\
             primitive db ocf:heartbeat:Dummy op stop timeout=45s interval=0\n\
             primitive web ocf:heartbeat:Dummy\n{extra}"
        ))
        .unwrap();
        let mut st = Status::default();
        for n in ["a", "b", "c"] {
            st.nodes.entry(n.to_string()).or_default().membership = Membership::Online;
        }
        for (n, rsc) in [("a", "db"), ("a", "web"), ("b", "web")] {
            st.nodes.get_mut(n).unwrap().history.insert(
                rsc.to_string(),
                ResourceHistory {
                    class: "ocf".into(),
                    provider: Some("heartbeat".into()),
                    agent: "Dummy".into(),
                    ops: vec![OpRecord {
                        id: format!("{rsc}_last_0"),
                        operation: "start".into(),
                        call_id: 1,
                        expected_rc: Some(0),
                        ..Default::default()
                    }],
                },
            );
        }
        (c, st)
    }

    #[test]
    fn node_timeout_is_one_checked_cluster_property() {
        let (c, _) = setup("property node-timeout=2s\n");
        assert_eq!(
            node_timeout_property(&c).unwrap(),
            Some(Duration::from_secs(2))
        );
        let own = Duration::from_millis(900);
        assert_eq!(cluster_node_timeout(&c, 3, own), Duration::from_secs(2));
        // Without the property: the node's own value only before any
        // configuration, the cluster default after.
        let (c, _) = setup("");
        assert_eq!(node_timeout_property(&c).unwrap(), None);
        assert_eq!(cluster_node_timeout(&c, 0, own), own);
        assert_eq!(cluster_node_timeout(&c, 1, own), DEFAULT_NODE_TIMEOUT);
        // A configuration with a bad value is refused as a whole, the
        // property named.
        let bad = ha_scheduler::crm::read_crm("node a\nproperty node-timeout=100ms\n");
        let err = bad.unwrap_err().to_string();
        assert!(
            err.contains("node-timeout") && err.contains("'100ms' is outside 500ms..=120s"),
            "{err}"
        );
    }
}
