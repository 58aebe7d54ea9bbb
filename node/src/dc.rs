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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_raft_store::{ClusterState, Command, NodeState, OpUpdate};
use ha_scheduler::model::{Config, OpRecord, Role, Status};
use ha_scheduler::transition::{Action, ActionKind, Transition};
use tokio::sync::mpsc;

use ha_controller::dc::{
    ActionKey, Dc, DcSettings as ControllerSettings, DcWrite, Effect,
    InFlightOp as ControllerInFlightOp, Input, Member, MemberState, View,
};
use ha_controller::Design;
use ha_scheduler::model::FencingEvent;

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
    let m = node.raft.get().metrics().borrow().clone();
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
/// by its history), or the demote before it of a promoted one: the agent
/// comes from `node`'s history of it, which keeps class, provider and
/// type. Parameters are empty here: the node's executor runs it with the
/// parameters it was started with (`stop_params`, as Pacemaker's
/// controller does). `None` for anything but a stop or demote, or without
/// a history on that node.
pub fn orphan_stop_request(
    config: &Config,
    status: &Status,
    action: &Action,
) -> Option<ExecRequest> {
    let rsc = action.rsc.as_deref()?;
    if !matches!(action.kind, ActionKind::Stop | ActionKind::Demote) {
        return None;
    }
    // An orphan copy numbered by the scheduler (`RSC:N`, an anonymous
    // clone's) is recorded under its history id.
    let history = &status.nodes.get(&action.node)?.history;
    let (key, h) = history.get_key_value(rsc).or_else(|| {
        let (base, _) = rsc.rsplit_once(':')?;
        history.get_key_value(base)
    })?;
    let timeout_ms = config
        .op_defaults
        .get("timeout")
        .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
        .filter(|&ms| ms > 0)
        .unwrap_or(20_000);
    Some(ExecRequest {
        key: key.clone(),
        class: h.class.clone(),
        provider: h.provider.clone(),
        agent: h.agent.clone(),
        action: action.kind.name(),
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
    // Active and not promoted: what ocf:linbit:drbd reads (as `slave`) to
    // find its peer.
    let unpromoted: Vec<(String, String)> = active
        .iter()
        .filter(|a| !promoted.contains(a))
        .cloned()
        .collect();
    for prefix in ["unpromoted", "slave"] {
        meta.insert(
            format!("notify_{prefix}_resource"),
            join(&unpromoted, |a| &a.0),
        );
        meta.insert(
            format!("notify_{prefix}_uname"),
            join(&unpromoted, |a| &a.1),
        );
    }
    Some((nodes.into_iter().collect(), meta))
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
    let mut client = crate::pb::executor_client::ExecutorClient::new(ch)
        .max_decoding_message_size(crate::gate::limits::REPLY);
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

/// Asks `target` to stand for election in `term` (this DC must be fenced).
async fn hand_over(
    node: &Node,
    target: &str,
    addr: Option<&str>,
    term: u64,
) -> Result<String, String> {
    let addr = addr.ok_or_else(|| format!("no address known for {target}"))?;
    let ch = node.channels.get(addr).map_err(|e| e.to_string())?;
    let mut client = crate::pb::raft_client::RaftClient::new(ch);
    let mut r = tonic::Request::new(crate::pb::HandOverRequest { term });
    r.set_timeout(Duration::from_secs(2));
    let reply = client
        .hand_over(r)
        .await
        .map_err(|s| format!("{target}: {}", s.message()))?;
    Ok(reply.into_inner().detail)
}

/// The controller's settings from the loop's.
fn controller_settings(settings: &DcSettings) -> ControllerSettings {
    ControllerSettings {
        node_timeout_ms: settings.node_timeout.as_millis() as u64,
        node_action_limit: settings.node_action_limit,
        replan_ms: settings.replan.as_millis() as u64,
        ..ControllerSettings::default()
    }
}

/// The replicated state's node state for a controller membership write.
fn node_state(state: MemberState) -> Option<NodeState> {
    match state {
        MemberState::Joined => Some(NodeState::Joined),
        MemberState::Unclean => Some(NodeState::Unclean),
        MemberState::Down => Some(NodeState::Down),
        // Executor processes are not told apart here yet (boot 0).
        MemberState::Restarted => None,
    }
}

/// Runs the DC: the runtime of [`ha_controller::dc::Dc`]. It feeds the
/// controller the time, who answers, the executors' in-flight reports,
/// the scheduler's plans (computed off the runtime) and the results of
/// dispatches and fencing, and executes the effects it returns: DC writes
/// of its term (never forwarded), in-flight queries, dispatches with clone
/// notifications, fencing after a leadership check, and the unclean DC's
/// own stop.
pub async fn run(
    node: Node,
    executor: Arc<Executor>,
    settings: DcSettings,
    stats: Arc<std::sync::Mutex<DcStats>>,
) {
    let mut versions = node.sm.subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel::<Planned>();
    let mut dc = Dc::new(Design::default(), controller_settings(&settings));
    let clock = Instant::now();
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last plan and the state it was made on: a dispatch is only ever
    // of a plan of the current state, and takes its configuration and the
    // other half of a migration from there (no copy of the state per action).
    let mut last_plan: Option<Arc<(ClusterState, Transition)>> = None;
    let mut leading: Option<u64> = None;
    loop {
        let input = tokio::select! {
            r = versions.changed() => { if r.is_err() { return } Planned::Input(Input::Tick) }
            Some(i) = rx.recv() => i,
            _ = tick.tick() => Planned::Input(Input::Tick),
        };
        let input = match input {
            Planned::Input(i) => i,
            Planned::Plan {
                based_on,
                state,
                transition,
            } => {
                last_plan = Some(Arc::new((*state, transition.clone())));
                Input::Planned {
                    based_on,
                    transition,
                }
            }
        };
        if let Input::Planned { .. } = &input {
            stats.lock().unwrap_or_else(|e| e.into_inner()).transitions += 1;
        }
        let now = clock.elapsed().as_millis() as u64;
        let term = node.leader_term();
        if term != leading {
            if let Some(t) = term {
                tracing::info!(term = t, "this node is the DC");
            }
            leading = term;
        }
        // A two-node takeover left the peer's fencing to record (this node
        // leads alone now): record it before anything else.
        if let (Some(t), Some(dir)) = (term, &node.data_dir) {
            let pending = crate::two_node::pending_fencing(dir);
            if let Ok(bytes) = std::fs::read(&pending) {
                match serde_json::from_slice::<ha_scheduler::model::FencingEvent>(&bytes) {
                    Ok(event) => match node
                        .propose_as_dc(t, Command::RecordFencing { event })
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
        let node_timeout = node.sm.read(|st| {
            crate::quorum::cluster_node_timeout(&st.config, st.config_epoch, settings.node_timeout)
        });
        dc.set_node_timeout(node_timeout.as_millis() as u64);
        // Who answered since the last tick (the controller times silence)
        // and who answered within node-timeout (quorum).
        let recent = Instant::now()
            .checked_sub(settings.tick + settings.tick / 2)
            .unwrap_or(clock);
        let m = members(&node, node_timeout, recent);
        let quorum = m.have_quorum();
        // Two-node mode without the peer: nothing can be committed; the
        // takeover (two_node) fences the peer first.
        let alone = !quorum && crate::two_node::active(&node);
        let view_term = if alone { None } else { term };
        let member_list: Vec<Member> = m
            .addrs
            .keys()
            .map(|n| Member {
                name: n.clone(),
                voter: true,
            })
            .collect();
        let mut inputs: Vec<Input> = m
            .heard
            .iter()
            .filter(|n| **n != node.name)
            .map(|n| Input::Heard {
                node: n.clone(),
                boot: 0,
            })
            .collect();
        inputs.push(input);
        let mut effects = Vec::new();
        for input in inputs {
            let e = node.sm.read(|st| {
                let view = View {
                    me: &node.name,
                    config: &st.config,
                    status: &st.status,
                    state_version: st.config_epoch + st.status_version,
                    members: &member_list,
                    leader_term: view_term,
                    two_node_fence_delay_ms: None,
                };
                dc.step(now, input, &view)
            });
            effects.extend(e);
        }
        for e in effects {
            run_effect(
                &node,
                &executor,
                &tx,
                &stats,
                &m.addrs,
                last_plan.clone(),
                quorum,
                e,
            );
        }
    }
}

/// What comes back to the loop: a controller input, or a plan with the
/// state it was made on.
enum Planned {
    Input(Input),
    Plan {
        based_on: u64,
        state: Box<ClusterState>,
        transition: Transition,
    },
}

/// Executes one effect of the controller; results come back on `tx`.
#[allow(clippy::too_many_arguments)]
fn run_effect(
    node: &Node,
    executor: &Arc<Executor>,
    tx: &mpsc::UnboundedSender<Planned>,
    stats: &Arc<std::sync::Mutex<DcStats>>,
    addrs: &BTreeMap<String, String>,
    plan: Option<Arc<(ClusterState, Transition)>>,
    quorum: bool,
    effect: Effect,
) {
    let (node, executor, tx) = (node.clone(), executor.clone(), tx.clone());
    match effect {
        Effect::Propose { term, write } => {
            let cmd = match write {
                DcWrite::NodeState { node: n, state, .. } => match node_state(state) {
                    Some(state) => Command::SetNodeState { node: n, state },
                    None => return,
                },
                DcWrite::Fencing { event } => Command::RecordFencing { event },
            };
            tracing::info!("DC write: {cmd:?}");
            tokio::spawn(async move {
                match node.propose_as_dc(term, cmd).await {
                    Ok(ha_raft_store::Response::Applied(_)) => {}
                    Ok(ha_raft_store::Response::Rejected(e)) => {
                        tracing::warn!("DC write refused: {e}")
                    }
                    Err(e) => tracing::warn!("cannot record a DC write: {e}"),
                }
            });
        }
        Effect::QueryInFlight { term, node: target } => {
            let addr = addrs.get(&target).cloned();
            tokio::spawn(async move {
                match ask_in_flight(&node, &executor, &target, addr.as_deref(), term).await {
                    Ok(ops) => {
                        // This DC's own dispatches it tracks itself.
                        let ops: Vec<ControllerInFlightOp> = ops
                            .into_iter()
                            .filter(|o| o.dc_term != term)
                            .map(|o| ControllerInFlightOp {
                                rsc: base_of(&o.key).to_string(),
                                operation: o.action,
                            })
                            .collect();
                        if !ops.is_empty() {
                            let what: Vec<String> = ops
                                .iter()
                                .map(|o| format!("{} {}", o.operation, o.rsc))
                                .collect();
                            tracing::info!(node = %target, "in flight for an earlier DC (busy until done): {}", what.join(", "));
                        }
                        let _ = tx.send(Planned::Input(Input::InFlight {
                            node: target,
                            boot: 0,
                            ops,
                        }));
                    }
                    Err(e) => tracing::debug!(node = %target, "in flight: {e}"),
                }
            });
        }
        Effect::Plan { based_on } => {
            let me = node.name.clone();
            let state = node.sm.state();
            // The scheduler is CPU-bound (a large clone keeps it busy): off
            // the runtime's workers, or heartbeats and leases stall on every
            // node (issue 12, hole 8).
            tokio::spawn(async move {
                let planned = tokio::task::spawn_blocking(move || {
                    let mut status = state.status.clone();
                    status.have_quorum = quorum;
                    status.dc = Some(me);
                    let t = ha_scheduler::schedule(&state.config, &status, now_secs());
                    (state, t)
                })
                .await;
                match planned {
                    Ok((state, transition)) => {
                        let _ = tx.send(Planned::Plan {
                            based_on,
                            state: Box::new(state),
                            transition,
                        });
                    }
                    Err(e) => tracing::error!("the scheduler failed: {e}"),
                }
            });
        }
        Effect::Dispatch { term, action } => {
            let key = ActionKey::of(&action);
            // The controller dispatches only from a plan of the current state.
            let Some(plan) = plan else {
                let _ = tx.send(Planned::Input(Input::ActionDone {
                    action: key,
                    ok: false,
                }));
                return;
            };
            let (state, t) = &*plan;
            let (config, status) = (&state.config, &state.status);
            let req = exec_request(config, t, &action)
                .or_else(|e| orphan_stop_request(config, status, &action).ok_or(e));
            let req = match req {
                Ok(r) => ExecRequest { dc_term: term, ..r },
                Err(e) => {
                    tracing::warn!("cannot run {} of {}: {e}", key.kind, key.rsc);
                    let _ = tx.send(Planned::Input(Input::ActionDone {
                        action: key,
                        ok: false,
                    }));
                    return;
                }
            };
            stats.lock().unwrap_or_else(|e| e.into_inner()).dispatched += 1;
            tracing::info!(action = %action.kind.name(), resource = %key.rsc, node = %action.node, reason = %action.reason, "dispatch");
            let notify = notifications(config, status, &key.rsc, &action.node, &req);
            let addrs = addrs.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let target = action.node.clone();
                let addr = addrs.get(&target).cloned();
                if let Some((peers, meta)) = &notify {
                    notify_peers(&node, &executor, &addrs, peers, meta, &req, "pre").await;
                }
                let result =
                    dispatch(&node, &executor, &target, addr.as_deref(), req.clone()).await;
                if let (Some((peers, meta)), Ok(_)) = (&notify, &result) {
                    notify_peers(&node, &executor, &addrs, peers, meta, &req, "post").await;
                }
                let ok = match result {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(node = %target, "dispatch failed: {e}");
                        stats
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .failed_dispatches += 1;
                        false
                    }
                };
                let _ = tx.send(Planned::Input(Input::ActionDone { action: key, ok }));
            });
        }
        Effect::Fence { term, target } => {
            tokio::spawn(async move {
                // Only a DC that still leads fences (a read-index round).
                let leads = node.raft.get().ensure_linearizable().await.is_ok()
                    && node.leader_term() == Some(term);
                let event = if leads {
                    let config = node.sm.read(|s| s.config.clone());
                    tracing::warn!(target = %target, "fencing");
                    let (action, report) =
                        crate::fencer::fence(&config, &target, None, false).await;
                    if report.succeeded {
                        tracing::warn!(target = %target, "fenced: {}", report.summary());
                    } else {
                        tracing::error!(target = %target, "fencing failed: {}", report.summary());
                    }
                    crate::fencer::event(&node.name, action, &report)
                } else {
                    tracing::warn!(target = %target, "not fencing: this node no longer leads term {term}");
                    FencingEvent {
                        target: target.clone(),
                        action: "reboot".into(),
                        succeeded: false,
                        time: now_secs(),
                        origin: Some(node.name.clone()),
                        reason: Some(format!("the DC of term {term} was deposed")),
                        ..Default::default()
                    }
                };
                let _ = tx.send(Planned::Input(Input::FenceDone { event }));
            });
        }
        Effect::HandOver { term, to } => {
            let addr = addrs.get(&to).cloned();
            tokio::spawn(async move {
                tracing::warn!(to = %to, term, "the plan fences this node, the DC: asking {to} to take over as DC (a DC does not fence itself)");
                match hand_over(&node, &to, addr.as_deref(), term).await {
                    Ok(detail) => tracing::warn!(to = %to, "{detail}"),
                    Err(e) => tracing::warn!(to = %to, "hand-over refused: {e}"),
                }
            });
        }
        Effect::StopAllHere { .. } => {
            tokio::spawn(async move {
                tracing::error!("the replicated state says this node (the DC) is unclean: stopping everything it runs");
                crate::quorum::stop_local_resources(&node, &executor, "this DC is unclean").await;
                let _ = tx.send(Planned::Input(Input::StoppedAllHere));
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
    let mut client = crate::pb::executor_client::ExecutorClient::new(ch)
        .max_decoding_message_size(crate::gate::limits::REPLY);
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
        // A promoted orphan is demoted before its stop, the same way.
        let mut demote = stop("old");
        demote.kind = ActionKind::Demote;
        let req = orphan_stop_request(&config, &status, &demote).unwrap();
        assert_eq!(
            (req.agent.as_str(), req.action.as_str()),
            ("Dummy", "demote")
        );
        // only stops and demotes, only with a history there
        let mut start = stop("old");
        start.kind = ActionKind::Start;
        assert!(orphan_stop_request(&config, &status, &start).is_none());
        assert!(orphan_stop_request(&config, &status, &stop("never")).is_none());
    }
}

#[cfg(test)]
mod notify_tests {
    use super::*;
    use ha_scheduler::model::{Membership, NodeStatus, OpRecord, ResourceHistory};

    fn history(rc: i32) -> ResourceHistory {
        ResourceHistory {
            class: "ocf".into(),
            provider: Some("linbit".into()),
            agent: "drbd".into(),
            ops: vec![OpRecord {
                id: "d_last_0".into(),
                operation: if rc == 8 { "promote" } else { "start" }.into(),
                rc: 0,
                expected_rc: Some(0),
                ..OpRecord::default()
            }],
        }
    }

    /// The notification variables ocf:linbit:drbd reads: the operation,
    /// who is promoted (`master`) and who is active but not (`slave`).
    #[test]
    fn a_notification_names_the_promoted_and_unpromoted_copies() {
        let config = ha_scheduler::crm::read_crm(
            "node n1\nnode n2\nproperty stonith-enabled=false\n\
             primitive d ocf:linbit:drbd params drbd_resource=r0\n\
             clone ms d meta promotable=true notify=true clone-max=2\n",
        )
        .unwrap();
        let mut status = Status::default();
        for (n, rc) in [("n1", 8), ("n2", 0)] {
            let mut ns = NodeStatus {
                membership: Membership::Online,
                ..NodeStatus::default()
            };
            ns.history.insert("d".into(), history(rc));
            status.nodes.insert(n.into(), ns);
        }
        let req = crate::stop_params::Started {
            class: "ocf".into(),
            provider: Some("linbit".into()),
            agent: "drbd".into(),
            params: BTreeMap::new(),
            meta: BTreeMap::new(),
        }
        .request("d", "start", 0);
        let (nodes, meta) = notifications(&config, &status, "d:1", "n2", &req).unwrap();
        assert_eq!(nodes, ["n1", "n2"]);
        assert_eq!(meta["notify_operation"], "start");
        assert_eq!(meta["notify_start_uname"], "n2");
        assert_eq!(meta["notify_promote_uname"], "");
        assert_eq!(meta["notify_master_uname"], meta["notify_promoted_uname"]);
        assert_eq!(meta["notify_slave_uname"], meta["notify_unpromoted_uname"]);
        let active: Vec<&str> = meta["notify_active_uname"].split(' ').collect();
        assert_eq!(active.len(), 2, "{meta:?}");
        assert_eq!(meta["notify_master_uname"], "n1", "{meta:?}");
        assert_eq!(meta["notify_slave_uname"], "n2", "{meta:?}");
    }
}
