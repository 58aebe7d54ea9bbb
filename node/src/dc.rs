//! The DC loop: on the Raft leader, on every state change (and every tick),
//! bring the replicated node membership up to date with who answers, run
//! the scheduler on the replicated state, and dispatch the transition's
//! ready actions (those no other planned action must precede) to the
//! target nodes' executors. Results come back through Raft, which wakes the
//! loop to re-plan: a transition is never followed blindly after the state
//! changed under it. A new leader starts from the replicated state.
//!
//! Fencing tokens: the DC is the leader of one Raft term; everything it
//! writes is a [`Command::Dc`] of that term, committed on this node only
//! (never forwarded: apply refuses it once another leader wrote), and every
//! request to an executor carries the term. A new DC first asks every
//! executor what is in flight (the previous DC's actions) and dispatches
//! nothing for those resources until they have finished.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_raft_store::{Command, NodeState, OpUpdate};
use ha_scheduler::model::{Config, Membership, OpRecord, Role, Status};
use ha_scheduler::transition::{Action, ActionKind, Transition};
use tokio::sync::mpsc;

use crate::executor::{
    ExecReply, ExecRequest, Executor, InFlightOp, InFlightReply, InFlightRequest,
};
use crate::network::split_member;
use crate::server::Node;

/// Settings of the DC loop.
#[derive(Debug, Clone)]
pub struct DcSettings {
    /// A node that has not answered the leader for this long is lost.
    pub node_timeout: Duration,
    /// At most this many actions in flight per node.
    pub node_action_limit: usize,
    /// How often membership is checked (who answers).
    pub tick: Duration,
    /// Re-plan at least this often without a state change (failure-timeout,
    /// date rules, retries).
    pub replan: Duration,
}

impl Default for DcSettings {
    fn default() -> Self {
        DcSettings {
            node_timeout: Duration::from_millis(1600),
            node_action_limit: 16,
            tick: Duration::from_millis(100),
            replan: Duration::from_millis(1000),
        }
    }
}

/// Counters the DC keeps (shown by `hactl status --output json`).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DcStats {
    pub transitions: u64,
    pub dispatched: u64,
    pub failed_dispatches: u64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The Raft members as the leader sees them.
pub(crate) struct Members {
    /// Name -> gRPC address.
    pub addrs: BTreeMap<String, String>,
    /// This node and the members that answered within the timeout.
    pub up: BTreeSet<String>,
    /// This node and the members that answered since the instant asked for.
    pub heard: BTreeSet<String>,
    pub voters_up: usize,
    pub voters: usize,
}

impl Members {
    pub fn have_quorum(&self) -> bool {
        self.voters_up * 2 > self.voters
    }
}

/// Who is up (answered within `within`) and who has answered since
/// `since`, from this node's Raft metrics and liveness, in one pass.
pub(crate) fn members(node: &Node, within: Duration, since: Instant) -> Members {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voter_ids: BTreeSet<u64> = membership.voter_ids().collect();
    let mut out = Members {
        addrs: BTreeMap::new(),
        up: BTreeSet::new(),
        heard: BTreeSet::new(),
        voters_up: 0,
        voters: voter_ids.len(),
    };
    for (id, n) in membership.nodes() {
        let (name, addr) = split_member(&n.addr);
        out.addrs.insert(name.to_string(), addr.to_string());
        let me = *id == node.id;
        if me || node.liveness.seen_since(*id, since) {
            out.heard.insert(name.to_string());
        }
        if me || node.liveness.alive(*id, within) {
            out.up.insert(name.to_string());
            if voter_ids.contains(id) {
                out.voters_up += 1;
            }
        }
    }
    out
}

/// The membership changes that make the replicated status match who is up.
/// `lost`: the nodes this DC may declare lost (heard from, then silent for
/// node-timeout; or never heard from once its grace period is over); with
/// STONITH they become `Unclean` (fenced before anything they ran is
/// recovered). Without STONITH a lost node becomes `Down` only when it is
/// also in `long_silent`: silent for [`crate::quorum::down_after`] (its
/// lease plus the stops it runs on losing quorum). An unclean node stays
/// unclean until fenced.
pub fn membership_changes(
    config: &Config,
    status: &Status,
    up: &BTreeSet<String>,
    lost: &BTreeSet<String>,
    long_silent: &BTreeSet<String>,
) -> Vec<Command> {
    let stonith = crate::fencer::stonith_enabled(config);
    let mut out = Vec::new();
    for n in &config.nodes {
        let membership = status
            .nodes
            .get(&n.name)
            .map(|s| s.membership)
            .unwrap_or(Membership::Offline);
        let is_up = up.contains(&n.name);
        let state = match (is_up, membership) {
            (true, Membership::Offline | Membership::Pending) => Some(NodeState::Joined),
            (false, Membership::Online | Membership::Pending)
                if stonith && lost.contains(&n.name) =>
            {
                Some(NodeState::Unclean)
            }
            (false, Membership::Online | Membership::Pending)
                if lost.contains(&n.name) && long_silent.contains(&n.name) =>
            {
                Some(NodeState::Down)
            }
            _ => None,
        };
        if let Some(state) = state {
            out.push(Command::SetNodeState {
                node: n.name.clone(),
                state,
            });
        }
    }
    out
}

/// The executor request for `action` (not fencing), from the configuration.
pub fn exec_request(
    config: &Config,
    t: &Transition,
    action: &Action,
) -> Result<ExecRequest, String> {
    let rsc = action
        .rsc
        .as_deref()
        .ok_or_else(|| "an action without a resource".to_string())?;
    let p = config
        .primitive(rsc)
        .ok_or_else(|| format!("resource '{rsc}' is not in the configuration"))?;
    if rsc.contains(':') && p.clone.is_none() {
        // `rsc:N` of a clone no longer configured (an orphan), not this primitive
        return Err(format!("'{rsc}' is not an instance of a configured clone"));
    }
    let prim = p.primitive;
    let key = if p.anonymous_clone() {
        prim.id.clone()
    } else {
        rsc.to_string()
    };
    let (name, interval_ms) = match &action.kind {
        ActionKind::Monitor { interval_ms } => ("monitor".to_string(), *interval_ms),
        k => (k.name(), 0),
    };
    let op = prim
        .ops
        .iter()
        .find(|o| o.name == name && o.interval_ms == interval_ms);
    let timeout_ms = op
        .and_then(|o| o.attrs.get("timeout"))
        .or_else(|| config.op_defaults.get("timeout"))
        .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
        .filter(|&ms| ms > 0)
        .unwrap_or(20_000);
    let promoted_monitor = op
        .and_then(|o| o.attrs.get("role"))
        .and_then(|r| Role::parse(r))
        == Some(Role::Promoted);
    let expected_rc = match (&action.kind, interval_ms) {
        (ActionKind::Monitor { .. }, 0) => 7,
        (ActionKind::Monitor { .. }, _) if promoted_monitor => 8,
        _ => 0,
    };
    let mut meta = BTreeMap::new();
    let eff = p.effective_meta(config);
    for (k, v) in &eff {
        meta.insert(k.replace('-', "_"), v.clone());
    }
    if let Some(c) = p.clone {
        let get = |k: &str, d: usize| -> String {
            c.meta.get(k).cloned().unwrap_or_else(|| d.to_string())
        };
        let clone_max = get("clone-max", config.nodes.len());
        let promoted_max = c
            .meta
            .get("promoted-max")
            .or_else(|| c.meta.get("master-max"))
            .cloned()
            .unwrap_or_else(|| "1".into());
        let promoted_node_max = c
            .meta
            .get("promoted-node-max")
            .or_else(|| c.meta.get("master-node-max"))
            .cloned()
            .unwrap_or_else(|| "1".into());
        meta.insert("clone_max".into(), clone_max);
        meta.insert("clone_node_max".into(), get("clone-node-max", 1));
        meta.insert(
            "notify".into(),
            c.meta
                .get("notify")
                .cloned()
                .unwrap_or_else(|| "false".into()),
        );
        meta.insert(
            "globally_unique".into(),
            c.meta
                .get("globally-unique")
                .cloned()
                .unwrap_or_else(|| "false".into()),
        );
        if c.promotable {
            meta.insert("promoted_max".into(), promoted_max.clone());
            meta.insert("promoted_node_max".into(), promoted_node_max.clone());
            meta.insert("master_max".into(), promoted_max);
            meta.insert("master_node_max".into(), promoted_node_max);
        }
        let instance = rsc.rsplit_once(':').map(|(_, n)| n).unwrap_or("0");
        meta.insert("clone".into(), instance.to_string());
    }
    let (migrate_source, migrate_target) = match action.kind {
        ActionKind::MigrateTo | ActionKind::MigrateFrom => {
            let other = t.actions.iter().find(|a| {
                a.rsc == action.rsc
                    && matches!(
                        (&action.kind, &a.kind),
                        (ActionKind::MigrateTo, ActionKind::MigrateFrom)
                            | (ActionKind::MigrateFrom, ActionKind::MigrateTo)
                    )
            });
            let other = other.map(|a| a.node.clone());
            if action.kind == ActionKind::MigrateTo {
                (Some(action.node.clone()), other)
            } else {
                (other, Some(action.node.clone()))
            }
        }
        _ => (None, None),
    };
    if let Some(s) = &migrate_source {
        meta.insert("migrate_source".into(), s.clone());
    }
    if let Some(t) = &migrate_target {
        meta.insert("migrate_target".into(), t.clone());
    }
    Ok(ExecRequest {
        key,
        class: prim.class.clone(),
        provider: prim.provider.clone(),
        agent: prim.agent.clone(),
        action: name,
        interval_ms,
        timeout_ms,
        params: prim.params.clone(),
        meta,
        expected_rc,
        migrate_source,
        migrate_target,
        dc_term: 0,
    })
}

/// The stop of an orphan (a resource no longer configured, still active
/// by its history): the agent comes from `node`'s history of it, which
/// keeps class, provider and type. Parameters are empty: Pacemaker stops an
/// orphan with the parameters recorded in its last operation's digest; our
/// history records no parameters. `None` for anything but a stop, or
/// without a history on that node.
pub fn orphan_stop_request(
    config: &Config,
    status: &Status,
    action: &Action,
) -> Option<ExecRequest> {
    let rsc = action.rsc.as_deref()?;
    if action.kind != ActionKind::Stop {
        return None;
    }
    let h = status.nodes.get(&action.node)?.history.get(rsc)?;
    let timeout_ms = config
        .op_defaults
        .get("timeout")
        .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
        .filter(|&ms| ms > 0)
        .unwrap_or(20_000);
    Some(ExecRequest {
        key: rsc.to_string(),
        class: h.class.clone(),
        provider: h.provider.clone(),
        agent: h.agent.clone(),
        action: "stop".into(),
        interval_ms: 0,
        timeout_ms,
        params: BTreeMap::new(),
        meta: BTreeMap::new(),
        expected_rc: 0,
        migrate_source: None,
        migrate_target: None,
        dc_term: 0,
    })
}

/// Clone notifications around `req` (run on `node`): the nodes to notify
/// (every node with an active instance of the clone, and `node`) and the
/// `notify_*` meta of the pre- and post-notification, as Pacemaker sets
/// them; `None` when the clone does not ask for notifications.
pub fn notifications(
    config: &Config,
    status: &Status,
    rsc: &str,
    node: &str,
    req: &ExecRequest,
) -> Option<(Vec<String>, BTreeMap<String, String>)> {
    let p = config.primitive(rsc)?;
    let clone = p.clone?;
    let wanted = clone
        .meta
        .get("notify")
        .is_some_and(|v| ha_scheduler::cib::is_true(v));
    if !wanted || !matches!(req.action.as_str(), "start" | "stop" | "promote" | "demote") {
        return None;
    }
    let now = ha_scheduler::current_placement(config, status, now_secs());
    let base = &p.primitive.id;
    let mut active: Vec<(String, String)> = Vec::new();
    let mut promoted: Vec<(String, String)> = Vec::new();
    for (key, placed) in &now.resources {
        let kb = key.split(['@', ':']).next().unwrap_or(key);
        if kb != base {
            continue;
        }
        let inst = key.split('@').next().unwrap_or(key).to_string();
        for n in &placed.nodes {
            active.push((inst.clone(), n.clone()));
            if placed.role == Role::Promoted {
                promoted.push((inst.clone(), n.clone()));
            }
        }
    }
    let mut nodes: BTreeSet<String> = active.iter().map(|(_, n)| n.clone()).collect();
    nodes.insert(node.to_string());
    let join = |v: &[(String, String)], f: fn(&(String, String)) -> &String| {
        v.iter().map(f).cloned().collect::<Vec<_>>().join(" ")
    };
    let mut meta = BTreeMap::new();
    meta.insert("notify_operation".to_string(), req.action.clone());
    for op in ["start", "stop", "promote", "demote"] {
        let (r, u) = if op == req.action {
            (req.key.clone(), node.to_string())
        } else {
            (String::new(), String::new())
        };
        meta.insert(format!("notify_{op}_resource"), r);
        meta.insert(format!("notify_{op}_uname"), u);
    }
    meta.insert("notify_active_resource".into(), join(&active, |a| &a.0));
    meta.insert("notify_active_uname".into(), join(&active, |a| &a.1));
    for prefix in ["promoted", "master"] {
        meta.insert(
            format!("notify_{prefix}_resource"),
            join(&promoted, |a| &a.0),
        );
        meta.insert(format!("notify_{prefix}_uname"), join(&promoted, |a| &a.1));
    }
    Some((nodes.into_iter().collect(), meta))
}

/// The actions of `t` that can be dispatched now: nothing planned must
/// precede them, they are not notifications (those are sent around the
/// action they belong to).
pub fn ready_actions(t: &Transition) -> Vec<&Action> {
    let blocked: BTreeSet<usize> = t.edges.iter().map(|&(_, b)| b).collect();
    t.actions
        .iter()
        .filter(|a| !blocked.contains(&a.id))
        .filter(|a| a.kind != ActionKind::Notify)
        .collect()
}

fn action_key(a: &Action) -> String {
    format!(
        "{}|{}|{}",
        a.kind.name(),
        a.rsc.as_deref().unwrap_or(""),
        a.node
    )
}

/// A dispatched action finished (`ok`: its result is recorded).
struct Done {
    key: String,
    ok: bool,
}

/// A member's answer to "what is in flight" (asked by the DC of `term`).
struct InFlightAnswer {
    term: u64,
    node: String,
    ops: Result<Vec<InFlightOp>, String>,
}

/// The resource an in-flight executor key or an action's resource stands
/// for (clone instances `base:N` count as their base).
fn base_of(rsc: &str) -> &str {
    rsc.split(':').next().unwrap_or(rsc)
}

/// Asks `target` what its executor has in flight (this node's directly).
async fn ask_in_flight(
    node: &Node,
    executor: &Arc<Executor>,
    target: &str,
    addr: Option<&str>,
    term: u64,
) -> Result<Vec<InFlightOp>, String> {
    let req = InFlightRequest { dc_term: term };
    if target == node.name {
        return executor.in_flight_for(&req).map(|r| r.ops);
    }
    let addr = addr.ok_or_else(|| format!("no address known for {target}"))?;
    let ch = node.channels.get(addr).map_err(|e| e.to_string())?;
    let mut client =
        crate::pb::executor_client::ExecutorClient::new(ch).max_decoding_message_size(usize::MAX);
    let data = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    let mut r = tonic::Request::new(crate::pb::Bytes { data });
    r.set_timeout(Duration::from_secs(1));
    let reply = client
        .in_flight(r)
        .await
        .map_err(|s| format!("{target}: {}", s.message()))?;
    let reply: InFlightReply =
        serde_json::from_slice(&reply.into_inner().data).map_err(|e| e.to_string())?;
    Ok(reply.ops)
}

/// Runs the DC loop until the process ends.
pub async fn run(
    node: Node,
    executor: Arc<Executor>,
    settings: DcSettings,
    stats: Arc<std::sync::Mutex<DcStats>>,
) {
    let mut versions = node.sm.subscribe();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    // action key -> (resource, node)
    let mut inflight: HashMap<String, (String, String)> = HashMap::new();
    let mut retry_after: HashMap<String, Instant> = HashMap::new();
    let mut leader_since: Option<Instant> = None;
    // The term this node leads in (its fencing token), once it leads.
    let mut leading_term: Option<u64> = None;
    let (answer_tx, mut answer_rx) = mpsc::unbounded_channel::<InFlightAnswer>();
    // Members that answered "what is in flight" in this term, what they
    // run for an earlier DC, and whom we are asking now.
    let mut answered: BTreeSet<String> = BTreeSet::new();
    let mut remote_in_flight: BTreeMap<String, Vec<InFlightOp>> = BTreeMap::new();
    let mut asking: BTreeSet<String> = BTreeSet::new();
    let mut last_ask = Instant::now();
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = true;
    let mut last_plan = Instant::now();
    let mut last_quorum = false;
    loop {
        tokio::select! {
            r = versions.changed() => { if r.is_err() { return } dirty = true; }
            Some(d) = done_rx.recv() => {
                dirty = true;
                inflight.remove(&d.key);
                if !d.ok {
                    retry_after.insert(d.key, Instant::now() + Duration::from_secs(2));
                }
                while let Ok(d) = done_rx.try_recv() {
                    inflight.remove(&d.key);
                    if !d.ok {
                        retry_after.insert(d.key, Instant::now() + Duration::from_secs(2));
                    }
                }
            }
            Some(a) = answer_rx.recv() => {
                asking.remove(&a.node);
                if Some(a.term) == leading_term {
                    match a.ops {
                        Ok(ops) => {
                            dirty = true;
                            answered.insert(a.node.clone());
                            // This DC's own dispatches are tracked in `inflight`.
                            let ops: Vec<InFlightOp> =
                                ops.into_iter().filter(|o| o.dc_term != a.term).collect();
                            if ops.is_empty() {
                                remote_in_flight.remove(&a.node);
                            } else {
                                if remote_in_flight.get(&a.node) != Some(&ops) {
                                    let what: Vec<String> =
                                        ops.iter().map(|o| format!("{} {}", o.action, o.key)).collect();
                                    tracing::info!(node = %a.node, "in flight for an earlier DC (busy until done): {}", what.join(", "));
                                }
                                remote_in_flight.insert(a.node, ops);
                            }
                        }
                        Err(e) => tracing::debug!(node = %a.node, "in flight: {e}"),
                    }
                }
            }
            _ = tick.tick() => {}
        }
        let Some(term) = node.leader_term() else {
            leader_since = None;
            leading_term = None;
            continue;
        };
        if leading_term != Some(term) {
            // A new leadership (possibly of this node again): start over.
            tracing::info!(term, "this node is the DC");
            leading_term = Some(term);
            leader_since = None;
            answered.clear();
            remote_in_flight.clear();
            last_ask = Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or(last_ask);
        }
        let since = *leader_since.get_or_insert_with(Instant::now);
        // A two-node takeover left the peer's fencing to record (this node
        // leads alone now): record it before anything else.
        if let Some(dir) = &node.data_dir {
            let pending = crate::two_node::pending_fencing(dir);
            if let Ok(bytes) = std::fs::read(&pending) {
                match serde_json::from_slice::<ha_scheduler::model::FencingEvent>(&bytes) {
                    Ok(event) => match node
                        .propose_as_dc(term, Command::RecordFencing { event })
                        .await
                    {
                        Ok(_) => {
                            let _ = std::fs::remove_file(&pending);
                        }
                        Err(e) => {
                            tracing::warn!("cannot record the takeover's fencing yet: {e}");
                            continue;
                        }
                    },
                    Err(e) => {
                        tracing::error!("{}: {e}; removed", pending.display());
                        let _ = std::fs::remove_file(&pending);
                    }
                }
            }
        }
        // One node-timeout for the cluster, from the replicated configuration.
        let node_timeout = node.sm.read(|st| {
            crate::quorum::cluster_node_timeout(&st.config, st.config_epoch, settings.node_timeout)
        });
        let Members {
            addrs,
            up,
            heard,
            voters_up,
            voters,
        } = members(&node, node_timeout, since);
        if voters_up * 2 <= voters && crate::two_node::active(&node) {
            // Two-node mode without the peer: nothing can be committed; the
            // takeover (two_node) fences the peer first.
            continue;
        }
        let grace_over = since.elapsed() > node_timeout * 2;
        // A new DC first hears from every member (Pacemaker's join round):
        // a node it has not heard from yet would look unseen, and unseen
        // nodes are fenced (startup-fencing).
        if !grace_over && addrs.keys().any(|n| !heard.contains(n)) {
            continue;
        }
        let lost: BTreeSet<String> = node.sm.read(|s| {
            s.config
                .nodes
                .iter()
                .map(|n| n.name.clone())
                .filter(|n| !up.contains(n) && (grace_over || heard.contains(n)))
                .collect()
        });
        // Without STONITH a lost node is Down (its resources recovered
        // elsewhere) only once it has had the time to stop them itself: its
        // lease, then its stops (quorum::down_after).
        let long_silent: BTreeSet<String> = node.sm.read(|s| {
            lost.iter()
                .filter(|n| {
                    let d = crate::quorum::down_after(&s.config, &s.status, n, node_timeout);
                    since.elapsed() >= d && !members(&node, d, since).up.contains(*n)
                })
                .cloned()
                .collect()
        });
        let changes = node
            .sm
            .read(|s| membership_changes(&s.config, &s.status, &up, &lost, &long_silent));
        if !changes.is_empty() {
            for c in changes {
                tracing::info!("membership: {c:?}");
                match node.propose_as_dc(term, c).await {
                    Ok(ha_raft_store::Response::Applied(_)) => {}
                    Ok(ha_raft_store::Response::Rejected(e)) => {
                        tracing::warn!("membership change refused: {e}")
                    }
                    Err(e) => tracing::warn!("cannot record a membership change: {e}"),
                }
            }
            continue; // the new state wakes us
        }
        // Before it plans, a new DC learns what every member's executor has
        // in flight (the previous DC's actions), and keeps asking those that
        // run something until it has finished.
        if last_ask.elapsed() >= Duration::from_millis(250) {
            last_ask = Instant::now();
            remote_in_flight.retain(|n, _| up.contains(n));
            for (target, addr) in &addrs {
                let wanted = !answered.contains(target) || remote_in_flight.contains_key(target);
                if !wanted || !up.contains(target) || !asking.insert(target.clone()) {
                    continue;
                }
                let (node2, exec, tx) = (node.clone(), executor.clone(), answer_tx.clone());
                let (target, addr) = (target.clone(), addr.clone());
                tokio::spawn(async move {
                    let ops = ask_in_flight(&node2, &exec, &target, Some(&addr), term).await;
                    let _ = tx.send(InFlightAnswer {
                        term,
                        node: target,
                        ops,
                    });
                });
            }
        }
        if !grace_over && addrs.keys().any(|n| !answered.contains(n)) {
            continue;
        }
        let quorum = voters_up * 2 > voters;
        if !dirty && quorum == last_quorum && last_plan.elapsed() < settings.replan {
            continue;
        }
        dirty = false;
        last_quorum = quorum;
        last_plan = Instant::now();
        let state = node.sm.state();
        let mut status = state.status.clone();
        status.have_quorum = quorum;
        status.dc = Some(node.name.clone());
        // The scheduler is CPU-bound (a large clone keeps it busy): off the
        // runtime's workers, or heartbeats and leases stall on every node
        // (issue 12, hole 8).
        let planned = tokio::task::spawn_blocking(move || {
            let t = ha_scheduler::schedule(&state.config, &status, now_secs());
            (state, status, t)
        })
        .await;
        let (state, status, t) = match planned {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("the scheduler failed: {e}");
                continue;
            }
        };
        if let Ok(mut s) = stats.lock() {
            s.transitions += 1;
        }
        let now = Instant::now();
        retry_after.retain(|_, t| *t > now);
        let busy: BTreeSet<String> = inflight.values().map(|(r, _)| r.clone()).collect();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for (_, n) in inflight.values() {
            *per_node.entry(n.clone()).or_default() += 1;
        }
        // What an earlier DC dispatched and is still running: busy.
        let mut busy_base: BTreeSet<String> = BTreeSet::new();
        for (n, ops) in &remote_in_flight {
            *per_node.entry(n.clone()).or_default() += ops.len();
            busy_base.extend(ops.iter().map(|o| base_of(&o.key).to_string()));
        }
        let mut started_rsc: BTreeSet<String> = BTreeSet::new();
        for a in ready_actions(&t) {
            let key = action_key(a);
            let rsc = a.rsc.clone().unwrap_or_default();
            if inflight.contains_key(&key)
                || retry_after.contains_key(&key)
                || busy.contains(&rsc)
                || busy_base.contains(base_of(&rsc))
                || started_rsc.contains(&rsc)
            {
                continue;
            }
            if a.kind == ActionKind::Fence {
                if a.node == node.name {
                    continue; // the DC is up: it is not fenced by itself
                }
                inflight.insert(
                    key.clone(),
                    (format!("fence:{}", a.node), node.name.clone()),
                );
                let done = done_tx.clone();
                let node2 = node.clone();
                let target = a.node.clone();
                tokio::spawn(async move {
                    let ok =
                        match crate::fencer::fence_and_record(&node2, term, &target, None, false)
                            .await
                        {
                            Ok(r) => r.succeeded,
                            Err(e) => {
                                tracing::error!(target = %target, "fencing not recorded: {e}");
                                false
                            }
                        };
                    let _ = done.send(Done { key, ok });
                });
                continue;
            }
            let online = state
                .status
                .nodes
                .get(&a.node)
                .is_some_and(|s| s.membership == Membership::Online);
            if !online || !up.contains(&a.node) {
                continue;
            }
            let count = per_node.entry(a.node.clone()).or_default();
            if *count >= settings.node_action_limit {
                continue;
            }
            let req = exec_request(&state.config, &t, a)
                .or_else(|e| orphan_stop_request(&state.config, &state.status, a).ok_or(e));
            let req = match req {
                Ok(r) => ExecRequest { dc_term: term, ..r },
                Err(e) => {
                    tracing::warn!("cannot run {key}: {e}");
                    continue;
                }
            };
            *count += 1;
            started_rsc.insert(rsc.clone());
            inflight.insert(key.clone(), (rsc.clone(), a.node.clone()));
            if let Ok(mut s) = stats.lock() {
                s.dispatched += 1;
            }
            tracing::info!(action = %a.kind.name(), resource = %rsc, node = %a.node, reason = %a.reason, "dispatch");
            let done = done_tx.clone();
            let node2 = node.clone();
            let exec = executor.clone();
            let addr = addrs.get(&a.node).cloned();
            let target = a.node.clone();
            let stats2 = stats.clone();
            let notify = notifications(&state.config, &status, &rsc, &a.node, &req);
            let addrs2 = addrs.clone();
            tokio::spawn(async move {
                if let Some((peers, meta)) = &notify {
                    notify_peers(&node2, &exec, &addrs2, peers, meta, &req, "pre").await;
                }
                let result = dispatch(&node2, &exec, &target, addr.as_deref(), req.clone()).await;
                if let (Some((peers, meta)), Ok(_)) = (&notify, &result) {
                    notify_peers(&node2, &exec, &addrs2, peers, meta, &req, "post").await;
                }
                let ok = match result {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(node = %target, "dispatch failed: {e}");
                        if let Ok(mut s) = stats2.lock() {
                            s.failed_dispatches += 1;
                        }
                        false
                    }
                };
                let _ = done.send(Done { key, ok });
            });
        }
    }
}

/// Sends a clone notification to each of `peers` (failures are logged,
/// not recorded: Pacemaker ignores them too).
async fn notify_peers(
    node: &Node,
    executor: &Arc<Executor>,
    addrs: &BTreeMap<String, String>,
    peers: &[String],
    meta: &BTreeMap<String, String>,
    req: &ExecRequest,
    kind: &str,
) {
    let mut n = req.clone();
    n.action = "notify".into();
    n.interval_ms = 0;
    n.expected_rc = 0;
    n.meta
        .extend(meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    n.meta.insert("notify_type".into(), kind.into());
    for p in peers {
        let addr = addrs.get(p).map(String::as_str);
        if let Err(e) = dispatch(node, executor, p, addr, n.clone()).await {
            tracing::warn!(node = %p, "{kind}-{} notification: {e}", req.action);
        }
    }
}

/// Runs `req` on `target`: stonith-class resources are the fencer's (their
/// start/stop/monitor only say the device is configured: answered here),
/// this node's executor directly, others' over gRPC.
async fn dispatch(
    node: &Node,
    executor: &Arc<Executor>,
    target: &str,
    addr: Option<&str>,
    req: ExecRequest,
) -> Result<ExecReply, String> {
    if req.class == "stonith" {
        let rc = if req.action == "monitor" && req.interval_ms == 0 {
            7
        } else {
            0
        };
        let rc = if req.action == "stop" { 0 } else { rc };
        let op = OpRecord {
            id: req.record_id(),
            operation: req.action.clone(),
            interval_ms: req.interval_ms,
            call_id: (now_secs() * 1000) + 1,
            rc,
            op_status: 0,
            expected_rc: Some(req.expected_rc),
            last_rc_change: Some(now_secs()),
            ..Default::default()
        };
        let cmd = Command::RecordOps {
            ops: vec![OpUpdate {
                node: target.to_string(),
                resource: req.key.clone(),
                class: req.class.clone(),
                provider: req.provider.clone(),
                agent: req.agent.clone(),
                op: op.clone(),
            }],
        };
        node.propose_as_dc(req.dc_term, cmd)
            .await?
            .into_result()
            .map_err(|e| e.to_string())?;
        return Ok(ExecReply { op });
    }
    if target == node.name {
        return executor.execute(req).await;
    }
    let addr = addr.ok_or_else(|| format!("no address known for {target}"))?;
    let ch = node.channels.get(addr).map_err(|e| e.to_string())?;
    let mut client =
        crate::pb::executor_client::ExecutorClient::new(ch).max_decoding_message_size(usize::MAX);
    let data = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    let mut r = tonic::Request::new(crate::pb::Bytes { data });
    r.set_timeout(Duration::from_millis(req.timeout_ms + 30_000));
    let reply = client
        .execute(r)
        .await
        .map_err(|s| format!("{target}: {}", s.message()))?;
    serde_json::from_slice(&reply.into_inner().data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod orphan_tests {
    use super::*;
    use ha_scheduler::model::{NodeStatus, ResourceHistory};

    fn stop(rsc: &str) -> Action {
        Action {
            id: 0,
            kind: ActionKind::Stop,
            rsc: Some(rsc.into()),
            node: "n1".into(),
            reason: "orphan".into(),
        }
    }

    /// An orphan's stop runs the agent its history names, with no
    /// parameters; `web:3` of a removed clone is not the primitive `web`.
    #[test]
    fn an_orphan_is_stopped_with_the_agent_of_its_history() {
        let config = ha_scheduler::crm::read_crm(
            "node n1\nprimitive web ocf:heartbeat:IPaddr2 params ip=10.0.0.1\n",
        )
        .unwrap();
        let mut status = Status::default();
        let mut ns = NodeStatus::default();
        for id in ["old", "web:3"] {
            ns.history.insert(
                id.into(),
                ResourceHistory {
                    class: "ocf".into(),
                    provider: Some("heartbeat".into()),
                    agent: "Dummy".into(),
                    ops: Vec::new(),
                },
            );
        }
        status.nodes.insert("n1".into(), ns);
        let t = Transition::default();
        for id in ["old", "web:3"] {
            assert!(exec_request(&config, &t, &stop(id)).is_err(), "{id}");
            let req = orphan_stop_request(&config, &status, &stop(id)).unwrap();
            assert_eq!(
                (req.key.as_str(), req.agent.as_str(), req.action.as_str()),
                (id, "Dummy", "stop")
            );
            assert!(req.params.is_empty());
        }
        assert_eq!(
            exec_request(&config, &t, &stop("web")).unwrap().agent,
            "IPaddr2"
        );
        // only stops, only with a history there
        let mut start = stop("old");
        start.kind = ActionKind::Start;
        assert!(orphan_stop_request(&config, &status, &start).is_none());
        assert!(orphan_stop_request(&config, &status, &stop("never")).is_none());
    }
}
