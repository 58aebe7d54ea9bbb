//! The designated controller (DC) as a pure state machine. It runs on the
//! Raft leader; [`Dc::step`] takes the time, one [`Input`] and a [`View`] of
//! the replicated state and returns the [`Effect`]s the runtime executes:
//! DC writes (membership, fencing records), in-flight queries, planning
//! requests, dispatches and fencing. Every write and dispatch carries the
//! term this DC leads in — the fencing token that apply and the executors
//! check. Loss detection is decided here and nowhere else.

use std::collections::{BTreeMap, BTreeSet};

use ha_scheduler::model::{Config, FencingEvent, Membership, Status};
use ha_scheduler::transition::{Action, ActionKind, Transition};

use crate::{Design, Millis};

/// Pacemaker's execution status of an operation that has not finished
/// (`PCMK_EXEC_PENDING`): recorded before the agent runs.
pub const OP_STATUS_PENDING: i32 = -1;
/// The rc recorded with a pending operation (`PCMK_OCF_UNKNOWN`).
pub const RC_PENDING: i32 = 193;
/// The stop timeout assumed when neither the operation nor `op_defaults` set one.
pub const DEFAULT_OP_TIMEOUT_MS: u64 = 20_000;

/// Without fencing, a lost node is `Down` this long after node-timeout plus
/// its largest stop timeout (its lease counts from its own last contact).
pub const DOWN_MARGIN_MS: Millis = 500;

/// The transient node attribute holding the executor process a `Joined` named.
pub const BOOT_ATTR: &str = "#executor-boot";

/// A DC that has not stepped for this long stalled (it steps every tick,
/// 100 ms): the silence of others during the gap does not count.
pub const STALL_MS: Millis = 500;

/// A DC that must itself be fenced asks another member to take over as DC
/// at most this often (until one does, or the plan no longer fences it).
pub const HAND_OVER_MS: Millis = 5_000;

/// Timing of the DC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcSettings {
    /// A member that has not answered for this long is lost.
    pub node_timeout_ms: Millis,
    /// At most this many actions in flight per node.
    pub node_action_limit: usize,
    /// Plan at least this often without a state change.
    pub replan_ms: Millis,
    /// A failed dispatch or fencing is retried after this long.
    pub retry_ms: Millis,
    /// An unreflected membership write is proposed again after this long.
    pub repropose_ms: Millis,
    /// Members that answered nothing are re-asked for their in-flight work this often.
    pub query_ms: Millis,
}

impl Default for DcSettings {
    fn default() -> Self {
        DcSettings {
            node_timeout_ms: 1600,
            node_action_limit: 16,
            replan_ms: 1000,
            retry_ms: 2000,
            repropose_ms: 1000,
            query_ms: 500,
        }
    }
}

/// A Raft member as the leader's membership names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub voter: bool,
}

/// What the DC reads of the world at one step (all of it replicated state
/// or Raft metrics; nothing it could have to wait for).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// This node's name.
    pub me: &'a str,
    pub config: &'a Config,
    pub status: &'a Status,
    /// Bumped by every applied change of config or status: plans are tied to it.
    pub state_version: u64,
    /// The Raft membership.
    pub members: &'a [Member],
    /// `Some(term)` while this node is the Raft leader of `term`.
    pub leader_term: Option<u64>,
    /// Two-node mode: this side's delay in the fence race
    /// ([`crate::two_node::fence_delay`]). The DC fences its peer no sooner
    /// than the race would, so that it never fences at the same time as a
    /// peer that is racing to fence it.
    pub two_node_fence_delay_ms: Option<Millis>,
}

/// An operation an executor is running now (its answer to [`Effect::QueryInFlight`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InFlightOp {
    /// The resource instance (`rsc`, `rsc:N`).
    pub rsc: String,
    pub operation: String,
}

/// What happened since the last step.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Time passed.
    Tick,
    /// `node` answered (heartbeat reply, RPC answer). `boot` identifies its
    /// process: a new value means it restarted and knows nothing it ran.
    Heard { node: String, boot: u64 },
    /// `node`'s executor answered the in-flight query of this DC.
    InFlight {
        node: String,
        boot: u64,
        ops: Vec<InFlightOp>,
    },
    /// The scheduler's transition for the state of version `based_on`.
    Planned {
        based_on: u64,
        transition: Transition,
    },
    /// A dispatched action ended: `ok` when its result was recorded.
    ActionDone { action: ActionKey, ok: bool },
    /// A fencing this DC asked for ended (the event to record).
    FenceDone { event: FencingEvent },
    /// This node's executor stopped everything it ran ([`Effect::StopAllHere`]).
    StoppedAllHere,
}

/// Identifies a dispatched action: kind, resource, node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionKey {
    pub kind: String,
    pub rsc: String,
    pub node: String,
}

impl ActionKey {
    pub fn of(a: &Action) -> ActionKey {
        ActionKey {
            kind: a.kind.name(),
            rsc: a.rsc.clone().unwrap_or_default(),
            node: a.node.clone(),
        }
    }
}

/// The membership changes the DC writes (mapped by the runtime onto the
/// replicated state's node states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Answered again: online, history forgotten (probes find what runs).
    Joined,
    /// Lost with fencing enabled: must be fenced before its resources move.
    Unclean,
    /// Lost with fencing disabled, once it cannot run anything any more.
    Down,
    /// Answered all along but its executor restarted: its recurring
    /// monitors ended with the old process (their records are deleted so
    /// they are scheduled again); what it ran is kept (the agents outlive
    /// the daemon), so nothing it runs, orphans included, is forgotten.
    Restarted,
}

/// A write only the DC makes.
#[derive(Debug, Clone, PartialEq)]
pub enum DcWrite {
    /// `boot`: with `Joined`, the executor process that answered (kept in
    /// the status as the transient attribute [`BOOT_ATTR`], so that any DC
    /// sees when a node's executor restarted and knows nothing it ran).
    NodeState {
        node: String,
        state: MemberState,
        boot: Option<u64>,
    },
    Fencing {
        event: FencingEvent,
    },
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write through Raft on this node only (never forwarded), tagged with
    /// `term`; apply rejects it unless the entry's term is `term`.
    Propose { term: u64, write: DcWrite },
    /// Ask `node`'s executor what it is running (a new DC's collection round).
    QueryInFlight { term: u64, node: String },
    /// Run the scheduler (off the runtime) on the state of `based_on` and
    /// answer [`Input::Planned`].
    Plan { based_on: u64 },
    /// Send `action` to its node's executor, with this DC's term; answer
    /// [`Input::ActionDone`].
    Dispatch { term: u64, action: Action },
    /// Fence `target` once this node has confirmed it still leads `term`;
    /// answer [`Input::FenceDone`].
    Fence { term: u64, target: String },
    /// The replicated state says this very node is unclean (an earlier DC
    /// lost it): nobody fences the DC, so it stops everything it runs
    /// itself and answers [`Input::StoppedAllHere`]; then it records itself
    /// `Down` (nothing it held runs any more, as after a fencing).
    StopAllHere { term: u64 },
    /// The plan fences this very node (a stop failed here): a DC does not
    /// fence itself (its fencer would die with it, and nothing would record
    /// the outcome), so it asks `to` to stand for election (as Pacemaker's
    /// DC hands over before its own fencing); the new DC, planning on the
    /// same replicated state, fences this node.
    HandOver { term: u64, to: String },
}

/// The DC's own memory; everything else is in the [`View`].
#[derive(Debug, Clone)]
pub struct Dc {
    design: Design,
    settings: DcSettings,
    term: Option<u64>,
    since: Millis,
    heard: BTreeMap<String, Millis>,
    boots: BTreeMap<String, u64>,
    /// Members that answered the in-flight query, and what they run.
    collected: BTreeMap<String, BTreeSet<InFlightOp>>,
    last_query: Millis,
    inflight: BTreeMap<ActionKey, Millis>,
    fencing: BTreeSet<String>,
    /// Two-node mode: when the plan first asked to fence each target.
    fence_wanted: BTreeMap<String, Millis>,
    /// This node is unclean: asked to stop everything here / it did.
    self_stop: Option<bool>,
    /// When this DC last asked another member to take over (it must be fenced).
    handed_over: Option<Millis>,
    retry_after: BTreeMap<ActionKey, Millis>,
    proposed: BTreeMap<String, (MemberState, Millis)>,
    last_step: Option<Millis>,
    plan_outstanding: Option<(u64, Millis)>,
    planned_version: Option<u64>,
    last_plan: Millis,
    transition: Option<(u64, Transition)>,
}

impl Dc {
    pub fn new(design: Design, settings: DcSettings) -> Dc {
        Dc {
            design,
            settings,
            term: None,
            since: 0,
            heard: BTreeMap::new(),
            boots: BTreeMap::new(),
            collected: BTreeMap::new(),
            last_query: 0,
            inflight: BTreeMap::new(),
            fencing: BTreeSet::new(),
            fence_wanted: BTreeMap::new(),
            self_stop: None,
            handed_over: None,
            retry_after: BTreeMap::new(),
            proposed: BTreeMap::new(),
            last_step: None,
            plan_outstanding: None,
            planned_version: None,
            last_plan: 0,
            transition: None,
        }
    }

    pub fn settings(&self) -> &DcSettings {
        &self.settings
    }

    /// The cluster's node-timeout changed (it lives in the replicated configuration).
    pub fn set_node_timeout(&mut self, ms: Millis) {
        self.settings.node_timeout_ms = ms;
    }

    /// Actions dispatched by this DC and not answered yet.
    pub fn in_flight(&self) -> impl Iterator<Item = &ActionKey> {
        self.inflight.keys()
    }

    /// One step: `now` is the runtime's monotonic time.
    pub fn step(&mut self, now: Millis, input: Input, view: &View<'_>) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(term) = view.leader_term else {
            if self.term.is_some() {
                *self = Dc::new(self.design, self.settings.clone());
            }
            return out;
        };
        if self.term != Some(term) {
            // A new DC knows nothing its predecessor did: it starts from the
            // replicated state and first asks every executor what runs.
            *self = Dc::new(self.design, self.settings.clone());
            self.term = Some(term);
            self.since = now;
            self.last_query = now;
            if self.design.pending_ops {
                for m in view.members {
                    out.push(Effect::QueryInFlight {
                        term,
                        node: m.name.clone(),
                    });
                }
            }
        }
        // This DC did not run for a while (SIGSTOP, a stalled runtime): the
        // silence it saw is its own, so nobody is blamed for it.
        if let Some(last) = self.last_step.filter(|_| self.design.fencing_tokens) {
            let gap = now.saturating_sub(last);
            if gap > STALL_MS {
                for t in self.heard.values_mut() {
                    *t += gap;
                }
                self.since += gap;
            }
        }
        self.last_step = Some(now);
        self.heard.insert(view.me.to_string(), now);
        match input {
            Input::Tick => {}
            Input::Heard { node, boot } => self.heard_from(now, node, boot),
            Input::InFlight { node, boot, ops } => {
                self.heard_from(now, node.clone(), boot);
                self.collected.insert(node, ops.into_iter().collect());
            }
            Input::Planned {
                based_on,
                transition,
            } => {
                if self.plan_outstanding.is_some_and(|(v, _)| v == based_on) {
                    self.plan_outstanding = None;
                }
                self.transition = Some((based_on, transition));
            }
            Input::ActionDone { action, ok } => {
                self.inflight.remove(&action);
                if !ok {
                    self.retry_after
                        .insert(action, now + self.settings.retry_ms);
                }
            }
            Input::StoppedAllHere => {
                if self.self_stop.is_some() {
                    self.self_stop = Some(true);
                }
            }
            Input::FenceDone { event } => {
                self.fencing.remove(&event.target);
                if !event.succeeded {
                    self.retry_after.insert(
                        ActionKey {
                            kind: ActionKind::Fence.name(),
                            rsc: String::new(),
                            node: event.target.clone(),
                        },
                        now + self.settings.retry_ms,
                    );
                }
                out.push(Effect::Propose {
                    term,
                    write: DcWrite::Fencing { event },
                });
            }
        }
        self.retry_after.retain(|_, t| *t > now);

        // 0. Is this very node unclean? Then it stops what it runs first.
        let me_unclean = view
            .status
            .nodes
            .get(view.me)
            .is_some_and(|s| s.membership == Membership::Unclean);
        if me_unclean {
            match self.self_stop {
                None => {
                    self.self_stop = Some(false);
                    out.push(Effect::StopAllHere { term });
                }
                Some(true) => {
                    if self
                        .proposed
                        .get(view.me)
                        .is_none_or(|(_, at)| now >= at + self.settings.repropose_ms)
                    {
                        self.proposed
                            .insert(view.me.to_string(), (MemberState::Down, now));
                        out.push(Effect::Propose {
                            term,
                            write: DcWrite::NodeState {
                                node: view.me.to_string(),
                                state: MemberState::Down,
                                boot: None,
                            },
                        });
                    }
                }
                Some(false) => {}
            }
            return out;
        }
        self.self_stop = None;

        // 1. Membership: make the replicated status match who answers.
        let changes = self.membership_changes(now, view);
        if !changes.is_empty() {
            for (node, state) in changes {
                let due = match self.proposed.get(&node) {
                    Some((s, at)) => *s != state || now >= at + self.settings.repropose_ms,
                    None => true,
                };
                if due {
                    self.proposed.insert(node.clone(), (state, now));
                    let boot = match state {
                        MemberState::Joined | MemberState::Restarted => {
                            self.boots.get(&node).copied()
                        }
                        _ => None,
                    };
                    out.push(Effect::Propose {
                        term,
                        write: DcWrite::NodeState { node, state, boot },
                    });
                }
            }
            return out; // plan on the state that reflects them
        }
        self.proposed.clear();

        // 2. The collection round: a new DC plans only after every member
        //    said what it runs (or could not for the grace period).
        if self.design.pending_ops {
            let grace_over = now >= self.since + 2 * self.settings.node_timeout_ms;
            let missing: Vec<&Member> = view
                .members
                .iter()
                .filter(|m| !self.collected.contains_key(&m.name))
                .collect();
            if !missing.is_empty() && now >= self.last_query + self.settings.query_ms {
                self.last_query = now;
                for m in &missing {
                    out.push(Effect::QueryInFlight {
                        term,
                        node: m.name.clone(),
                    });
                }
            }
            // Members still running what they reported are asked again.
            let busy: Vec<String> = self
                .collected
                .iter()
                .filter(|(_, ops)| !ops.is_empty())
                .map(|(n, _)| n.clone())
                .collect();
            if !busy.is_empty() && now >= self.last_query + self.settings.query_ms {
                self.last_query = now;
                for n in busy {
                    out.push(Effect::QueryInFlight { term, node: n });
                }
            }
            if !missing.is_empty() && !grace_over {
                return out;
            }
        } else if now < self.since + 2 * self.settings.node_timeout_ms
            && view
                .members
                .iter()
                .any(|m| !self.heard.contains_key(&m.name))
        {
            return out;
        }

        // 3. Dispatch from a plan of the current state.
        if let Some((based_on, t)) = self.transition.take() {
            if based_on == view.state_version {
                self.planned_version = Some(based_on);
                self.dispatch(now, term, &t, view, &mut out);
            }
        }

        // 4. Plan when the state changed (or periodically).
        let outstanding = self
            .plan_outstanding
            .is_some_and(|(_, at)| now < at + 30_000);
        if !outstanding
            && (self.planned_version != Some(view.state_version)
                || now >= self.last_plan + self.settings.replan_ms)
        {
            self.plan_outstanding = Some((view.state_version, now));
            self.last_plan = now;
            out.push(Effect::Plan {
                based_on: view.state_version,
            });
        }
        out
    }

    fn heard_from(&mut self, now: Millis, node: String, boot: u64) {
        if let Some(old) = self.boots.insert(node.clone(), boot) {
            if old != boot {
                // Restarted: what it ran for this DC is lost with it.
                self.collected.remove(&node);
                self.inflight.retain(|k, _| k.node != node);
            }
        }
        self.heard.insert(node, now);
    }

    /// Whether `node`'s executor is another process than the one its
    /// last `Joined` named (it restarted and knows nothing it ran).
    fn restarted(&self, node: &str, view: &View<'_>) -> bool {
        // 0: the runtime does not know executor processes apart.
        let Some(boot) = self.boots.get(node).filter(|b| **b != 0) else {
            return false;
        };
        let recorded = view
            .status
            .nodes
            .get(node)
            .and_then(|s| s.transient_attributes.get(BOOT_ATTR));
        recorded.is_none_or(|b| *b != boot.to_string())
    }

    /// Whether `node` answered within node-timeout.
    pub fn is_up(&self, now: Millis, node: &str) -> bool {
        self.heard
            .get(node)
            .is_some_and(|t| now <= t + self.settings.node_timeout_ms)
    }

    /// How long `node` has been silent, counted from the last answer this
    /// DC heard, or from when it became DC for a member never heard.
    fn silent_for(&self, now: Millis, node: &str) -> Millis {
        now.saturating_sub(*self.heard.get(node).unwrap_or(&self.since))
    }

    /// The one decision that a node is lost, and as what.
    fn lost_as(&self, now: Millis, node: &str, view: &View<'_>) -> Option<MemberState> {
        let silent = self.silent_for(now, node);
        let timeout = self.settings.node_timeout_ms;
        // A member never heard gets the grace of a join round first.
        let heard = self.heard.contains_key(node);
        if silent <= timeout || (!heard && now < self.since + 2 * timeout) {
            return None;
        }
        if stonith_enabled(view.config) {
            return Some(MemberState::Unclean);
        }
        let wait = if self.design.down_after_stops {
            // Its lease stops everything it runs at node-timeout (counted
            // from its own last contact, up to a heartbeat later than ours);
            // the slowest stop is over after that.
            largest_stop_timeout_ms(view.config) + DOWN_MARGIN_MS
        } else {
            0
        };
        (silent > timeout + wait).then_some(MemberState::Down)
    }

    fn membership_changes(&mut self, now: Millis, view: &View<'_>) -> Vec<(String, MemberState)> {
        let mut out = Vec::new();
        let members: BTreeSet<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
        for n in &view.config.nodes {
            let name = n.name.as_str();
            let membership = view
                .status
                .nodes
                .get(name)
                .map(|s| s.membership)
                .unwrap_or(Membership::Offline);
            let up = members.contains(name) && self.is_up(now, name);
            let state = match (up, membership) {
                (true, Membership::Offline | Membership::Pending) => Some(MemberState::Joined),
                (true, Membership::Online) if self.restarted(name, view) => {
                    Some(MemberState::Restarted)
                }
                (false, Membership::Online | Membership::Pending) => self.lost_as(now, name, view),
                _ => None,
            };
            if let Some(s) = state {
                out.push((name.to_string(), s));
            }
        }
        out
    }

    fn busy_resources(&self, view: &View<'_>) -> BTreeSet<String> {
        let mut busy: BTreeSet<String> = self.inflight.keys().map(|k| k.rsc.clone()).collect();
        busy.extend(self.fencing.iter().map(|t| format!("fence:{t}")));
        if self.design.pending_ops {
            for ops in self.collected.values() {
                busy.extend(ops.iter().map(|o| o.rsc.clone()));
            }
            for ns in view.status.nodes.values() {
                for (rsc, h) in &ns.history {
                    if h.ops.iter().any(|o| o.op_status == OP_STATUS_PENDING) {
                        busy.insert(rsc.clone());
                    }
                }
            }
        }
        busy
    }

    fn dispatch(
        &mut self,
        now: Millis,
        term: u64,
        t: &Transition,
        view: &View<'_>,
        out: &mut Vec<Effect>,
    ) {
        let busy = self.busy_resources(view);
        // What is busy, by primitive: what is ordered after it waits, and a
        // clone promotes only after all its instances started (Pacemaker's
        // implicit clone start -> promote: while one instance's operation
        // runs, its promotion scores are not all in).
        let busy_bases: BTreeSet<&str> = if self.design.ordered_dispatch {
            busy.iter().map(|b| instance_base(b)).collect()
        } else {
            BTreeSet::new()
        };
        let held = ordered_after(view.config, &busy_bases);
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for k in self.inflight.keys() {
            *per_node.entry(k.node.clone()).or_default() += 1;
        }
        let mut started: BTreeSet<String> = BTreeSet::new();
        // One action at a time per primitive and node, whatever the instance:
        // an anonymous clone's probe as `c:0` finds the copy a start as `c:1`
        // made meanwhile, which the next plan stops as a move, and so on
        // (seen in the namespace lab: 140 stops of conntrackd in 48 s).
        let mut busy_on: BTreeSet<(String, String)> = self
            .inflight
            .keys()
            .map(|k| (instance_base(&k.rsc).to_string(), k.node.clone()))
            .collect();
        for a in ready_actions(t) {
            let key = ActionKey::of(a);
            let on = (instance_base(&key.rsc).to_string(), key.node.clone());
            if self.inflight.contains_key(&key)
                || self.retry_after.contains_key(&key)
                || busy.contains(&key.rsc) && a.kind != ActionKind::Fence
                || started.contains(&key.rsc) && a.kind != ActionKind::Fence
                || busy_on.contains(&on) && a.kind != ActionKind::Fence
                || held.contains(instance_base(&key.rsc)) && a.kind != ActionKind::Fence
                || a.kind == ActionKind::Promote && busy_bases.contains(instance_base(&key.rsc))
            {
                continue;
            }
            if a.kind == ActionKind::Fence {
                if a.node == view.me {
                    // The DC is up: it is not fenced by itself, but by the
                    // DC it hands over to.
                    let due = self.handed_over.is_none_or(|t| now >= t + HAND_OVER_MS);
                    if let Some(to) = self.hand_over_to(now, view).filter(|_| due) {
                        self.handed_over = Some(now);
                        out.push(Effect::HandOver { term, to });
                    }
                    continue;
                }
                if self.fencing.contains(&a.node) {
                    continue;
                }
                if let Some(delay) = view.two_node_fence_delay_ms {
                    let since = *self.fence_wanted.entry(a.node.clone()).or_insert(now);
                    if now < since + delay {
                        continue;
                    }
                }
                self.fence_wanted.remove(&a.node);
                self.fencing.insert(a.node.clone());
                out.push(Effect::Fence {
                    term,
                    target: a.node.clone(),
                });
                continue;
            }
            let online = view
                .status
                .nodes
                .get(&a.node)
                .is_some_and(|s| s.membership == Membership::Online);
            if !online || !self.is_up(now, &a.node) {
                continue;
            }
            let count = per_node.entry(a.node.clone()).or_default();
            if *count >= self.settings.node_action_limit {
                continue;
            }
            *count += 1;
            started.insert(key.rsc.clone());
            busy_on.insert(on);
            self.inflight.insert(key, now);
            out.push(Effect::Dispatch {
                term,
                action: a.clone(),
            });
        }
    }
}

impl Dc {
    /// The member a DC that must be fenced hands over to: a voter other
    /// than this node, online and heard from (the first by name).
    fn hand_over_to(&self, now: Millis, view: &View<'_>) -> Option<String> {
        view.members
            .iter()
            .filter(|m| m.voter && m.name != view.me)
            .filter(|m| {
                view.status
                    .nodes
                    .get(&m.name)
                    .is_some_and(|s| s.membership == Membership::Online)
                    && self.is_up(now, &m.name)
            })
            .map(|m| m.name.clone())
            .next()
    }
}

/// The actions of `t` nothing planned must precede (notifications are sent
/// around the action they belong to).
pub fn ready_actions(t: &Transition) -> Vec<&Action> {
    let blocked: BTreeSet<usize> = t.edges.iter().map(|&(_, b)| b).collect();
    t.actions
        .iter()
        .filter(|a| !blocked.contains(&a.id) && a.kind != ActionKind::Notify)
        .collect()
}

/// The primitive an instance name (`rsc`, `rsc:N`) belongs to.
pub fn instance_base(rsc: &str) -> &str {
    match rsc.rsplit_once(':') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => rsc,
    }
}

/// Which primitive must follow which: a group's member order and order
/// constraints (pairs and sets; a group or clone named in one stands for
/// its primitives). Kinds and actions are not told apart: waiting is always
/// safe, only slower.
pub struct OrderGraph<'a> {
    next: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> OrderGraph<'a> {
    pub fn of(config: &'a Config) -> OrderGraph<'a> {
        use ha_scheduler::model::{OrderForm, Resource};
        fn walk<'a>(
            r: &'a Resource,
            prims_of: &mut BTreeMap<&'a str, Vec<&'a str>>,
            next: &mut BTreeMap<&'a str, BTreeSet<&'a str>>,
        ) {
            let ids: Vec<&str> = primitives(r).iter().map(|p| p.id.as_str()).collect();
            match r {
                Resource::Primitive(p) => {
                    prims_of.insert(&p.id, ids);
                }
                Resource::Group(g) => {
                    let ordered = g
                        .meta
                        .get("ordered")
                        .map(|v| ha_scheduler::cib::is_true(v))
                        .unwrap_or(true);
                    if ordered {
                        for w in g.members.windows(2) {
                            next.entry(&w[0].id).or_default().insert(&w[1].id);
                        }
                    }
                    for m in &g.members {
                        prims_of.insert(&m.id, vec![&m.id]);
                    }
                    prims_of.insert(&g.id, ids);
                }
                Resource::Clone(c) => {
                    walk(&c.child, prims_of, next);
                    prims_of.insert(&c.id, ids);
                }
            }
        }
        fn link<'a>(
            next: &mut BTreeMap<&'a str, BTreeSet<&'a str>>,
            from: &[&'a str],
            to: &[&'a str],
        ) {
            for &f in from {
                for &t in to {
                    if f != t {
                        next.entry(f).or_default().insert(t);
                    }
                }
            }
        }
        let mut prims_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for r in &config.resources {
            walk(r, &mut prims_of, &mut next);
        }
        let expand = |id: &str| -> Vec<&'a str> { prims_of.get(id).cloned().unwrap_or_default() };
        for o in &config.constraints.orders {
            match &o.form {
                OrderForm::Pair { first, then, .. } => {
                    link(&mut next, &expand(first), &expand(then));
                }
                OrderForm::Sets(sets) => {
                    let mut prev: Option<Vec<&str>> = None;
                    for set in sets {
                        let members: Vec<Vec<&str>> =
                            set.resources.iter().map(|id| expand(id)).collect();
                        if set.sequential.unwrap_or(true) {
                            for w in members.windows(2) {
                                link(&mut next, &w[0], &w[1]);
                            }
                        }
                        let all: Vec<&str> = members.concat();
                        if let Some(p) = &prev {
                            link(&mut next, p, &all);
                        }
                        prev = Some(all);
                    }
                }
            }
        }
        OrderGraph { next }
    }

    /// The primitives `rsc` is ordered after (directly or through others).
    pub fn before(&self, rsc: &str) -> BTreeSet<String> {
        let mut prev: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (&f, ts) in &self.next {
            for &t in ts {
                prev.entry(t).or_default().push(f);
            }
        }
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut todo = vec![rsc];
        let mut seen: BTreeSet<&str> = BTreeSet::from([rsc]);
        while let Some(r) = todo.pop() {
            for &f in prev.get(r).into_iter().flatten() {
                found.insert(f.to_string());
                if seen.insert(f) {
                    todo.push(f);
                }
            }
        }
        found
    }

    /// The primitives ordered after (directly or through others) any of
    /// `from` (primitive ids).
    pub fn after<'b>(&self, from: impl IntoIterator<Item = &'b str>) -> BTreeSet<String> {
        let mut held: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<&str> = from.into_iter().collect();
        let mut seen: BTreeSet<&str> = todo.iter().copied().collect();
        while let Some(r) = todo.pop() {
            for &t in self.next.get(r).into_iter().flatten() {
                held.insert(t.to_string());
                if seen.insert(t) {
                    todo.push(t);
                }
            }
        }
        held
    }
}

/// The primitives ordered after any of the `busy` primitives
/// ([`OrderGraph`]; the graph is built only when something is busy). Their
/// actions wait while a busy operation runs: the scheduler counts a pending
/// start as done, so a plan made meanwhile would start what must follow it.
pub fn ordered_after(config: &Config, busy: &BTreeSet<&str>) -> BTreeSet<String> {
    if busy.is_empty() {
        return BTreeSet::new();
    }
    OrderGraph::of(config).after(busy.iter().copied())
}

/// `stonith-enabled` (default true), as Pacemaker reads it.
pub fn stonith_enabled(config: &Config) -> bool {
    config
        .properties
        .get("stonith-enabled")
        .is_none_or(|v| ha_scheduler::cib::is_true(v))
}

/// The largest stop timeout of any configured primitive (its `stop` op's
/// `timeout`, else `op_defaults`, else 20 s): the longest a lease stop can take.
pub fn largest_stop_timeout_ms(config: &Config) -> Millis {
    let default = config
        .op_defaults
        .get("timeout")
        .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
        .filter(|&ms| ms > 0)
        .unwrap_or(DEFAULT_OP_TIMEOUT_MS);
    let mut max = 0;
    let mut any = false;
    for r in &config.resources {
        for p in primitives(r) {
            any = true;
            let t = p
                .ops
                .iter()
                .find(|o| o.name == "stop")
                .and_then(|o| o.attrs.get("timeout"))
                .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
                .filter(|&ms| ms > 0)
                .unwrap_or(default);
            max = max.max(t);
        }
    }
    if any {
        max
    } else {
        0
    }
}

fn primitives(r: &ha_scheduler::model::Resource) -> Vec<&ha_scheduler::model::Primitive> {
    use ha_scheduler::model::Resource;
    match r {
        Resource::Primitive(p) => vec![p],
        Resource::Group(g) => g.members.iter().collect(),
        Resource::Clone(c) => primitives(&c.child),
    }
}

/// Who sent a write, as the runtime authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    /// The DC of this (leader) node, through [`Effect::Propose`].
    LeaderDc,
    /// A node's certificate (its executor, or an agent calling `crm_attribute`).
    Node(&'a str),
    /// An admin or operator client certificate.
    Client,
}

/// What a write changes, for [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteKind<'a> {
    /// Operation results of these nodes.
    Ops(Vec<&'a str>),
    /// Attributes of this node.
    Attributes(&'a str),
    /// Membership or fencing history.
    MembershipOrFencing,
    /// Configuration and operator commands.
    Admin,
}

/// Why [`authorize`] refused a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

/// A node may record only its own operations and attributes; membership
/// and fencing are written by the leader's DC alone; admin writes come from
/// client certificates (whose role the runtime checks). This is the
/// simulator's model of the rule; the daemon enforces it on its typed
/// commands in `node/src/authz.rs` (`node_may_propose`), which also lets a
/// node record its own rejoin.
pub fn authorize(design: Design, origin: &Origin<'_>, write: &WriteKind<'_>) -> Result<(), Denied> {
    if !design.commands_bound_to_node {
        return Ok(());
    }
    match (origin, write) {
        (Origin::LeaderDc, _) => Ok(()),
        (Origin::Node(me), WriteKind::Ops(nodes)) => match nodes.iter().find(|n| *n != me) {
            Some(other) => Err(Denied(format!(
                "node '{me}' may record only its own operations, not those of '{other}'"
            ))),
            None => Ok(()),
        },
        (Origin::Node(me), WriteKind::Attributes(n)) if n == me => Ok(()),
        (Origin::Node(me), WriteKind::Attributes(n)) => Err(Denied(format!(
            "node '{me}' may set only its own attributes, not those of '{n}'"
        ))),
        (Origin::Node(me), WriteKind::MembershipOrFencing) => Err(Denied(format!(
            "node '{me}' may not change membership or record fencing: only the DC does"
        ))),
        (Origin::Node(me), WriteKind::Admin) => Err(Denied(format!(
            "node '{me}' may not change the configuration: that needs an admin certificate"
        ))),
        (Origin::Client, WriteKind::MembershipOrFencing) => Err(Denied(
            "membership and fencing are recorded by the DC alone".into(),
        )),
        (Origin::Client, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_scheduler::model::NodeStatus;

    fn config(stonith: bool) -> Config {
        ha_scheduler::crm::read_crm(&format!(
            "node n1\nnode n2\nprimitive r1 ocf:heartbeat:Dummy op stop timeout=7s\n\
             property stonith-enabled={stonith}\n"
        ))
        .expect("config")
    }

    fn members() -> Vec<Member> {
        ["n1", "n2"]
            .iter()
            .map(|n| Member {
                name: n.to_string(),
                voter: true,
            })
            .collect()
    }

    fn online(nodes: &[&str]) -> Status {
        let mut s = Status::default();
        for n in nodes {
            let mut ns = NodeStatus {
                membership: Membership::Online,
                ..Default::default()
            };
            ns.transient_attributes.insert(BOOT_ATTR.into(), "1".into());
            s.nodes.insert(n.to_string(), ns);
        }
        s
    }

    fn view<'a>(c: &'a Config, s: &'a Status, m: &'a [Member], v: u64) -> View<'a> {
        View {
            me: "n1",
            config: c,
            status: s,
            state_version: v,
            members: m,
            leader_term: Some(3),
            two_node_fence_delay_ms: None,
        }
    }

    fn query(node: &str) -> Effect {
        Effect::QueryInFlight {
            term: 3,
            node: node.into(),
        }
    }

    #[test]
    fn a_new_dc_asks_every_member_then_joins_them_with_their_boot() {
        let (c, s, m) = (config(true), Status::default(), members());
        let mut dc = Dc::new(Design::default(), DcSettings::default());
        let joined = |node: &str, boot: Option<u64>| Effect::Propose {
            term: 3,
            write: DcWrite::NodeState {
                node: node.into(),
                state: MemberState::Joined,
                boot,
            },
        };
        // The DC itself is up from the start; n2 once it answers.
        assert_eq!(
            dc.step(0, Input::Tick, &view(&c, &s, &m, 1)),
            vec![query("n1"), query("n2"), joined("n1", None)]
        );
        let e = dc.step(
            10,
            Input::InFlight {
                node: "n2".into(),
                boot: 9,
                ops: vec![],
            },
            &view(&c, &s, &m, 1),
        );
        assert_eq!(e, vec![joined("n2", Some(9))]);
    }

    #[test]
    fn a_silent_member_is_unclean_after_node_timeout_with_fencing() {
        let (c, s, m) = (config(true), online(&["n1", "n2"]), members());
        let mut dc = Dc::new(Design::default(), DcSettings::default());
        dc.step(0, Input::Tick, &view(&c, &s, &m, 1));
        dc.step(
            50,
            Input::Heard {
                node: "n2".into(),
                boot: 1,
            },
            &view(&c, &s, &m, 1),
        );
        for t in (100..=1600).step_by(100) {
            let e = dc.step(t, Input::Tick, &view(&c, &s, &m, 1));
            assert!(
                !e.iter().any(|e| matches!(e, Effect::Propose { .. })),
                "t={t}: {e:?}"
            );
        }
        let e = dc.step(1700, Input::Tick, &view(&c, &s, &m, 1));
        assert_eq!(
            e,
            vec![Effect::Propose {
                term: 3,
                write: DcWrite::NodeState {
                    node: "n2".into(),
                    state: MemberState::Unclean,
                    boot: None
                },
            }]
        );
    }

    #[test]
    fn without_fencing_down_waits_for_the_largest_stop_timeout() {
        let (c, s, m) = (config(false), online(&["n1", "n2"]), members());
        let mut dc = Dc::new(Design::default(), DcSettings::default());
        dc.step(0, Input::Tick, &view(&c, &s, &m, 1));
        dc.step(
            50,
            Input::Heard {
                node: "n2".into(),
                boot: 1,
            },
            &view(&c, &s, &m, 1),
        );
        let proposes = |e: &[Effect]| e.iter().any(|e| matches!(e, Effect::Propose { .. }));
        let mut t = 100;
        while t <= 50 + 1600 + 7000 + DOWN_MARGIN_MS {
            assert!(
                !proposes(&dc.step(t, Input::Tick, &view(&c, &s, &m, 1))),
                "t={t}"
            );
            t += 100;
        }
        assert!(proposes(&dc.step(t, Input::Tick, &view(&c, &s, &m, 1))));
    }

    #[test]
    fn a_stalled_dc_blames_nobody_for_its_own_silence() {
        let (c, s, m) = (config(true), online(&["n1", "n2"]), members());
        let mut dc = Dc::new(Design::default(), DcSettings::default());
        dc.step(0, Input::Tick, &view(&c, &s, &m, 1));
        dc.step(
            50,
            Input::Heard {
                node: "n2".into(),
                boot: 1,
            },
            &view(&c, &s, &m, 1),
        );
        // SIGSTOP for 2.6 s: the next step comes late.
        let e = dc.step(2700, Input::Tick, &view(&c, &s, &m, 1));
        assert!(
            !e.iter().any(|e| matches!(e, Effect::Propose { .. })),
            "{e:?}"
        );
    }

    #[test]
    fn a_plan_of_an_older_state_is_not_dispatched_and_dispatches_carry_the_term() {
        let (c, m) = (config(true), members());
        let s = online(&["n1", "n2"]);
        let mut dc = collected_dc(Design::default(), &view(&c, &s, &m, 5));
        let t = ha_scheduler::schedule(&c, &s, 0);
        assert!(!t.actions.is_empty());
        let e = dc.step(20, planned(4, &t), &view(&c, &s, &m, 5));
        assert!(
            !e.iter().any(|e| matches!(e, Effect::Dispatch { .. })),
            "{e:?}"
        );
        let e = dc.step(
            30,
            Input::Planned {
                based_on: 5,
                transition: t,
            },
            &view(&c, &s, &m, 5),
        );
        assert!(
            e.iter()
                .any(|e| matches!(e, Effect::Dispatch { term: 3, .. })),
            "{e:?}"
        );
        assert!(e
            .iter()
            .all(|e| !matches!(e, Effect::Dispatch { term, .. } if *term != 3)));
    }

    #[test]
    fn in_two_node_mode_the_dc_fences_its_peer_no_sooner_than_the_race() {
        let (c, m) = (config(true), members());
        let mut s = online(&["n1", "n2"]);
        if let Some(ns) = s.nodes.get_mut("n2") {
            ns.membership = Membership::Unclean;
        }
        let mut v = view(&c, &s, &m, 5);
        v.two_node_fence_delay_ms = Some(5000);
        let mut dc = Dc::new(Design::default(), DcSettings::default());
        dc.step(0, Input::Tick, &v);
        for n in ["n1", "n2"] {
            let input = Input::InFlight {
                node: n.into(),
                boot: 1,
                ops: vec![],
            };
            dc.step(10, input, &v);
        }
        let mut quorate = s.clone();
        quorate.have_quorum = true;
        let t = ha_scheduler::schedule(&c, &quorate, 0);
        assert!(
            t.actions.iter().any(|a| a.kind == ActionKind::Fence),
            "{t:?}"
        );
        let fences = |e: &[Effect]| {
            e.iter()
                .filter(|e| matches!(e, Effect::Fence { .. }))
                .count()
        };
        assert_eq!(fences(&dc.step(20, planned(5, &t), &v)), 0);
        assert_eq!(fences(&dc.step(4000, planned(5, &t), &v)), 0);
        let e = dc.step(5020, planned(5, &t), &v);
        assert_eq!(
            e.iter()
                .filter(|e| matches!(e, Effect::Fence { .. }))
                .cloned()
                .collect::<Vec<_>>(),
            vec![Effect::Fence {
                term: 3,
                target: "n2".into()
            }]
        );
    }

    /// The scheduler's plan `t`, made from state version `based_on`.
    fn planned(based_on: u64, t: &Transition) -> Input {
        Input::Planned {
            based_on,
            transition: t.clone(),
        }
    }

    /// A DC of `design` that both members answered (nothing in flight), at t=10.
    #[test]
    fn a_dc_whose_plan_fences_itself_hands_over_instead_and_fences_nothing() {
        let (c, m) = (config(true), members());
        let s = online(&["n1", "n2"]);
        let v = view(&c, &s, &m, 5);
        let mut dc = collected_dc(Design::default(), &v);
        // A stop failed on the DC (n1): the plan fences n1.
        let t = Transition {
            actions: vec![Action {
                id: 0,
                kind: ActionKind::Fence,
                rsc: None,
                node: "n1".into(),
                reason: "r1 failed there".into(),
            }],
            ..Default::default()
        };
        let hand_overs = |e: &[Effect]| {
            e.iter()
                .filter(|e| matches!(e, Effect::HandOver { .. } | Effect::Fence { .. }))
                .cloned()
                .collect::<Vec<_>>()
        };
        let want = vec![Effect::HandOver {
            term: 3,
            to: "n2".into(),
        }];
        assert_eq!(hand_overs(&dc.step(20, planned(5, &t), &v)), want);
        // Not again until HAND_OVER_MS has passed.
        assert_eq!(hand_overs(&dc.step(1000, planned(5, &t), &v)), vec![]);
        let heard = || Input::Heard {
            node: "n2".into(),
            boot: 1,
        };
        dc.step(HAND_OVER_MS, heard(), &v);
        assert_eq!(
            hand_overs(&dc.step(20 + HAND_OVER_MS, planned(5, &t), &v)),
            want
        );
        // Nobody to hand over to (n2 offline): nothing, and no self-fencing.
        let mut alone = s.clone();
        if let Some(ns) = alone.nodes.get_mut("n2") {
            ns.membership = Membership::Offline;
        }
        let v = view(&c, &alone, &m, 6);
        let mut dc = collected_dc(Design::default(), &v);
        assert_eq!(hand_overs(&dc.step(20, planned(6, &t), &v)), vec![]);
    }

    #[test]
    fn nothing_of_a_clone_is_dispatched_to_a_node_while_another_instance_acts_there() {
        let (c, m) = (config(false), members());
        let mut s = online(&["n1", "n2"]);
        s.have_quorum = true;
        let v = view(&c, &s, &m, 5);
        let mut dc = collected_dc(Design::default(), &v);
        let action = |id: usize, kind: ActionKind, rsc: &str| Action {
            id,
            kind,
            rsc: Some(rsc.into()),
            node: "n2".into(),
            reason: "test".into(),
        };
        let one = |a: Action| Transition {
            actions: vec![a],
            ..Default::default()
        };
        let dispatched = |e: &[Effect]| {
            e.iter()
                .filter_map(|e| match e {
                    Effect::Dispatch { action, .. } => Some(ActionKey::of(action)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let probe = action(0, ActionKind::Monitor { interval_ms: 0 }, "c:0");
        let e = dc.step(20, planned(5, &one(probe.clone())), &v);
        assert_eq!(dispatched(&e), vec![ActionKey::of(&probe)]);
        // The next plan starts the other instance on the same node: it
        // waits for the probe.
        let start = action(0, ActionKind::Start, "c:1");
        let e = dc.step(40, planned(5, &one(start.clone())), &v);
        assert_eq!(dispatched(&e), vec![]);
        // Elsewhere it would not wait.
        let mut elsewhere = action(0, ActionKind::Start, "c:2");
        elsewhere.node = "n1".into();
        let e = dc.step(50, planned(5, &one(elsewhere.clone())), &v);
        assert_eq!(dispatched(&e), vec![ActionKey::of(&elsewhere)]);
        dc.step(
            60,
            Input::ActionDone {
                action: ActionKey::of(&probe),
                ok: true,
            },
            &v,
        );
        let e = dc.step(70, planned(5, &one(start.clone())), &v);
        assert_eq!(dispatched(&e), vec![ActionKey::of(&start)]);
    }

    fn collected_dc(design: Design, v: &View<'_>) -> Dc {
        let mut dc = Dc::new(design, DcSettings::default());
        dc.step(0, Input::Tick, v);
        for n in ["n1", "n2"] {
            dc.step(
                10,
                Input::InFlight {
                    node: n.into(),
                    boot: 1,
                    ops: vec![],
                },
                v,
            );
        }
        dc
    }

    /// A group's first member has a pending start (recorded before its
    /// agent runs): the scheduler counts it as started and plans the rest
    /// of the group; the DC must not dispatch them until it finished.
    #[test]
    fn a_group_member_waits_while_the_member_before_it_starts() {
        let c = ha_scheduler::crm::read_crm(
            "node n1\nnode n2\nprimitive a ocf:heartbeat:Dummy\nprimitive b ocf:heartbeat:Dummy\n\
             primitive c ocf:heartbeat:Dummy\nprimitive d ocf:heartbeat:Dummy\n\
             group g a b\norder d-after-c inf: c d\nlocation g-pref g 100: n1\n\
             location cd-pref c 100: n1\nlocation d-pref d 100: n1\n\
             property stonith-enabled=false\n",
        )
        .expect("config");
        let m = members();
        let mut s = online(&["n1", "n2"]);
        s.have_quorum = true;
        // Every resource probed (not running) on both nodes; a and c's
        // starts on n1 begun, not finished.
        let history = |rsc: &str, pending: bool| {
            let mut ops = vec![ha_scheduler::model::OpRecord {
                id: format!("{rsc}_monitor_0"),
                operation: "monitor".into(),
                call_id: 1,
                rc: 7,
                expected_rc: Some(7),
                ..Default::default()
            }];
            if pending {
                ops.push(ha_scheduler::model::OpRecord {
                    id: format!("{rsc}_last_0"),
                    operation: "start".into(),
                    call_id: 2,
                    rc: RC_PENDING,
                    op_status: OP_STATUS_PENDING,
                    ..Default::default()
                });
            }
            ha_scheduler::model::ResourceHistory {
                class: "ocf".into(),
                provider: Some("heartbeat".into()),
                agent: "Dummy".into(),
                ops,
            }
        };
        for (node, ns) in s.nodes.iter_mut() {
            for rsc in ["a", "b", "c", "d"] {
                let pending = node == "n1" && (rsc == "a" || rsc == "c");
                ns.history.insert(rsc.into(), history(rsc, pending));
            }
        }
        let t = ha_scheduler::schedule(&c, &s, 0);
        let plan: Vec<String> = t
            .actions
            .iter()
            .map(|a| format!("{}_{}", a.kind.name(), a.rsc.clone().unwrap_or_default()))
            .collect();
        assert!(
            plan.contains(&"start_b".to_string()),
            "{plan:?} {:?} {:?}",
            t.placement,
            t.notes
        );
        assert!(plan.contains(&"start_d".to_string()), "{plan:?}");
        let dispatched = |design: Design| {
            let mut dc = collected_dc(design, &view(&c, &s, &m, 5));
            let e = dc.step(20, planned(5, &t), &view(&c, &s, &m, 5));
            let mut d: Vec<String> = e
                .iter()
                .filter_map(|e| match e {
                    Effect::Dispatch { action, .. } => Some(format!(
                        "{}_{}",
                        action.kind.name(),
                        action.rsc.clone().unwrap_or_default()
                    )),
                    _ => None,
                })
                .filter(|k| k.starts_with("start_"))
                .collect();
            d.sort();
            d
        };
        assert_eq!(dispatched(Design::default()), Vec::<String>::new());
        let open = Design::without("ordered_dispatch").expect("mechanism");
        assert_eq!(dispatched(open), vec!["start_b", "start_d"]);
    }

    /// node1's instance started and set its promotion score; node2's start
    /// is pending (its score not in yet): the scheduler promotes node1's
    /// instance, the DC waits until node2's start finished (Pacemaker
    /// promotes a clone after all its instances started).
    #[test]
    fn a_clone_is_not_promoted_while_one_of_its_instances_starts() {
        let c = ha_scheduler::crm::read_crm(
            "node n1\nnode n2\nprimitive t ocf:pacemaker:Stateful\n\
             clone ms t meta promotable=true promoted-max=1\nproperty stonith-enabled=false\n",
        )
        .expect("config");
        let m = members();
        let mut s = online(&["n1", "n2"]);
        s.have_quorum = true;
        let op = |operation: &str, call_id: i64, rc: i32, op_status: i32| {
            ha_scheduler::model::OpRecord {
                id: format!("t_{operation}_{call_id}"),
                operation: operation.into(),
                call_id,
                rc,
                expected_rc: Some(if operation == "monitor" { 7 } else { 0 }),
                op_status,
                ..Default::default()
            }
        };
        for (node, last) in [
            ("n1", op("start", 2, 0, 0)),
            ("n2", op("start", 2, RC_PENDING, OP_STATUS_PENDING)),
        ] {
            let ns = s.nodes.get_mut(node).expect("node");
            ns.history.insert(
                "t".into(),
                ha_scheduler::model::ResourceHistory {
                    class: "ocf".into(),
                    provider: Some("pacemaker".into()),
                    agent: "Stateful".into(),
                    ops: vec![op("monitor", 1, 7, 0), last],
                },
            );
        }
        s.nodes
            .get_mut("n1")
            .expect("n1")
            .transient_attributes
            .insert("master-t".into(), "5".into());
        let t = ha_scheduler::schedule(&c, &s, 0);
        assert!(
            t.actions.iter().any(|a| a.kind == ActionKind::Promote),
            "{:?}",
            t.actions
        );
        let promotes = |design: Design| {
            let mut dc = collected_dc(design, &view(&c, &s, &m, 5));
            dc.step(
                20,
                planned(5, &t),
                &view(&c, &s, &m, 5),
            )
            .iter()
            .filter(|e| matches!(e, Effect::Dispatch { action, .. } if action.kind == ActionKind::Promote))
            .count()
        };
        assert_eq!(promotes(Design::default()), 0);
        let open = Design::without("ordered_dispatch").expect("mechanism");
        assert_eq!(promotes(open), 1);
    }

    #[test]
    fn ordered_after_follows_groups_orders_and_sets_through_clones() {
        let c = ha_scheduler::crm::read_crm(
            "node n1\nprimitive p ocf:linbit:drbd\nclone ms p meta promotable=true\n\
             primitive fs ocf:heartbeat:Dummy\nprimitive ip ocf:heartbeat:Dummy\n\
             group serv fs ip\nprimitive x ocf:heartbeat:Dummy\nprimitive y ocf:heartbeat:Dummy\n\
             primitive z ocf:heartbeat:Dummy\n\
             order serv-after-ms inf: ms:promote serv:start\norder xyz inf: ip ( x y ) z\n",
        )
        .expect("config");
        let held = |busy: &[&str]| -> Vec<String> {
            let b: BTreeSet<&str> = busy.iter().map(|s| instance_base(s)).collect();
            ordered_after(&c, &b).into_iter().collect()
        };
        assert_eq!(held(&["p:1"]), vec!["fs", "ip", "x", "y", "z"]);
        assert_eq!(held(&["fs"]), vec!["ip", "x", "y", "z"]);
        assert_eq!(held(&["x"]), vec!["z"]);
        assert_eq!(held(&["z"]), Vec::<String>::new());
        assert_eq!(held(&["fence:n1"]), Vec::<String>::new());
        // The reverse: what a primitive waits for.
        let graph = OrderGraph::of(&c);
        let before = |r: &str| -> Vec<String> { graph.before(r).into_iter().collect() };
        assert_eq!(before("z"), vec!["fs", "ip", "p", "x", "y"]);
        assert_eq!(before("ip"), vec!["fs", "p"]);
        assert_eq!(before("p"), Vec::<String>::new());
    }
}
