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
        if let Ok(mut l) = self.last.lock() {
            *l = Some(Instant::now());
        }
    }

    pub fn heard_within(&self, d: Duration) -> bool {
        self.last
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|t| t.elapsed() <= d)
    }
}

/// Whether this node heard a leader's appends within `d`.
pub fn heard_within(node: &Node, d: Duration) -> bool {
    node.quorum.heard_within(d)
}

/// Whether this node is in the majority now.
pub fn has_quorum(node: &Node) -> bool {
    let leader = node.raft.metrics().borrow().current_leader == Some(node.id);
    if leader {
        crate::dc::members(node, node.node_timeout, Instant::now()).have_quorum()
    } else {
        node.quorum.heard_within(node.node_timeout)
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
    loop {
        tick.tick().await;
        if has_quorum(&node) {
            without_since = None;
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
        if started.elapsed() < node.node_timeout * 2 {
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
            node.node_timeout,
            since.elapsed()
        );
        stop_local_resources(&node, &executor, "no quorum").await;
    }
}

/// Stops every resource this node runs by the replicated state it last
/// saw, without recording (nothing can be committed without quorum); its
/// recurring monitors end.
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
    mine.sort();
    mine.dedup();
    tracing::error!(
        resources = mine.len(),
        "{why}: stopping this node's resources"
    );
    let empty = Transition::default();
    for rsc in mine {
        let action = Action {
            id: 0,
            kind: ActionKind::Stop,
            rsc: Some(rsc.clone()),
            node: node.name.clone(),
            reason: why.into(),
        };
        match crate::dc::exec_request(&config, &empty, &action) {
            Ok(req) if req.class != "stonith" => {
                let r = executor.run_unrecorded(req).await;
                tracing::warn!(resource = %rsc, rc = r.rc, "stopped ({why})");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(resource = %rsc, "cannot stop ({why}): {e}"),
        }
    }
}
