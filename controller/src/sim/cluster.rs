//! The simulated cluster: nodes (Raft model, DC, lease, two-node logic,
//! executor, agents), the network, fence devices, the event loop, and the
//! checkers run after every event.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ha_scheduler::model::{Config, FencingEvent, Membership, OpRecord, ResourceHistory, Status};
use ha_scheduler::transition::{Action, ActionKind, Transition};

use super::check::{Invariant, Violation};
use super::rng::Rng;
use crate::dc::{
    self, ActionKey, Dc, DcSettings, DcWrite, Effect, InFlightOp, Input, Member, MemberState,
    Origin, View, WriteKind, OP_STATUS_PENDING, RC_PENDING,
};
use crate::lease::{Lease, LeaseEffect, LeaseInput, LeaseView};
use crate::two_node::{self, BootState, RaceDelays, Side};
use crate::{Design, Millis};

const TICK_MS: Millis = 100;
const NODE_TIMEOUT_MS: Millis = 1600;
const OP_TIMEOUT_MS: Millis = 15_000;
const EPOCH: i64 = 1_780_000_000;
const RACE: RaceDelays = RaceDelays {
    base_ms: 5000,
    priority_ms: 1000,
};

/// Which node a fault hits; `Leader` and `Follower` are resolved when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Node(usize),
    Leader,
    Follower,
}

/// How a node's fence device (its BMC) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMode {
    Works,
    Fails,
    TimesOut,
    /// Says "off" without doing it (its power status tells the truth, which
    /// the fencer's verification reads).
    Lies,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `kill -9`, restarted after `down_ms`.
    Crash { target: Target, down_ms: Millis },
    /// SIGSTOP for `ms`, then SIGCONT.
    Pause { target: Target, ms: Millis },
    /// Every link of the node cut both ways for `ms`.
    Isolate { target: Target, ms: Millis },
    /// Messages from `from` to `to` dropped for `ms`.
    OneWay { from: usize, to: usize, ms: Millis },
    /// For `ms`: drop and duplicate messages (percent), add delay (reorders).
    Lossy {
        drop_pct: u8,
        dup_pct: u8,
        extra_delay_ms: Millis,
        ms: Millis,
    },
    /// The node's wall clock jumps (what the scheduler reads as now).
    ClockJump { target: Target, by_s: i64 },
    /// The node's fence device misbehaves for `ms`.
    Device {
        node: usize,
        mode: DeviceMode,
        ms: Millis,
    },
    /// The resource's agent on the node finds it stopped (it died).
    AgentDies { node: usize, rsc: String },
    /// Starts on the node hang (until their timeout) for `ms`.
    AgentHangs { node: usize, ms: Millis },
    /// Starts on the node take 12 s for `ms`.
    AgentSlow { node: usize, ms: Millis },
    /// An operator loads a configuration without `rsc`.
    RemoveResource { rsc: String },
    /// An operator renames `rsc` to `to`.
    RenameResource { rsc: String, to: String },
    /// An operator loads an invalid configuration (an order on an unknown resource).
    InvalidConfig,
    /// An operator sets clone-max=10000 on the promotable clone.
    HugeClone,
    /// An agent on `from` writes, with its node certificate, that `target` was fenced.
    RogueFencing { from: usize, target: usize },
    /// `hactl quorum unblock` on a node in wait_for_all.
    Unblock { node: usize },
    /// An operator moves `rsc` to `to` (a location preference of 1000).
    Move { rsc: String, to: usize },
}

/// A fault fired by something the cluster does.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `delay_ms` after a start of `rsc` is dispatched, `kill -9` the DC.
    CrashDcAfterDispatch {
        rsc: String,
        /// Only a start on this node.
        node: usize,
        delay_ms: Millis,
        down_ms: Millis,
    },
    /// `delay_ms` after a start of `rsc` is dispatched, isolate its node.
    IsolateAfterDispatch {
        rsc: String,
        /// Only a start on this node.
        node: usize,
        delay_ms: Millis,
        ms: Millis,
    },
    /// When the leader commits a successful start of `rsc`, cut the link
    /// between the two nodes before the follower applies it.
    CutAfterCommitOfStart { rsc: String, ms: Millis },
}

/// One simulation.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub design: Design,
    pub two_node: bool,
    pub stonith: bool,
    /// Faults at given times.
    pub faults: Vec<(Millis, Fault)>,
    pub triggers: Vec<Trigger>,
    /// Everything heals at `heal_ms`; the run ends at `end_ms`.
    pub heal_ms: Millis,
    pub end_ms: Millis,
    /// Keep the event trace (the digest is kept always).
    pub trace: bool,
}

/// What a simulation found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// A digest of every event: equal for equal seeds.
    pub digest: u64,
    pub trace: Vec<String>,
    pub events: u64,
    /// Writes refused by a mechanism (stale terms, unauthorized, old DCs).
    pub refused: BTreeMap<&'static str, u64>,
}

// ---------------------------------------------------------------------------
// The replicated-log model

#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    Noop,
    Dc { term: u64, write: DcWrite },
    Ops(Vec<OpUpdate>),
    Config(Box<Config>),
}

#[derive(Debug, Clone, PartialEq)]
struct OpUpdate {
    node: String,
    rsc: String,
    op: OpRecord,
}

#[derive(Debug)]
struct Entry {
    term: u64,
    uid: u64,
    origin: usize,
    cmd: Cmd,
}

type Log = Rc<Vec<Rc<Entry>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

#[derive(Debug, Clone)]
struct State {
    config: Config,
    status: Status,
    version: u64,
    uids: BTreeSet<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    Stopped,
    Active,
    Promoted,
}

#[derive(Debug, Clone)]
struct Run {
    /// The action as the executor runs it (anonymous clone instances under
    /// their base id, as the real executor records them).
    action: Action,
    /// The DC's key for it (its instance name), for the answer.
    reply_key: ActionKey,
    dc: usize,
    dc_boot: u64,
    pending_uid: Option<u64>,
    asked_at: Millis,
    began: bool,
}

#[derive(Debug, Clone)]
struct Await {
    uid: u64,
    update: OpUpdate,
    reply: Option<(usize, ActionKey)>,
    last_try: Millis,
}

#[derive(Debug, Clone, Default)]
struct Exec {
    max_term: u64,
    running: BTreeMap<String, Run>,
    awaiting: Vec<Await>,
    /// rsc -> (interval, last rc, next run)
    monitors: BTreeMap<String, (u64, i32, Millis)>,
    call: i64,
}

#[derive(Debug, Clone, Default)]
struct TwoNode {
    /// Durable: it took over as the single-voter survivor.
    survivor: bool,
    /// Booted and has not heard the peer since.
    waiting: bool,
    unblocked: bool,
    race_at: Option<Millis>,
    fencing: bool,
    peer_confirms: bool,
    last_peer: Millis,
    /// When its last tick ran (a gap means the process was frozen).
    last_tick: Millis,
    /// After a freeze it races no sooner than this.
    yield_until: Millis,
    /// It stopped everything after failing to fence the lost peer.
    stopped: bool,
}

struct Node {
    name: String,
    powered: bool,
    running: bool,
    paused_until: Millis,
    boot: u64,
    booted_at: Millis,
    term: u64,
    voted: Option<(u64, usize)>,
    log: Log,
    voters: BTreeSet<usize>,
    role: Role,
    leader_hint: Option<usize>,
    commit: usize,
    applied: usize,
    votes: BTreeSet<usize>,
    match_len: BTreeMap<usize, usize>,
    last_contact: Millis,
    election_at: Millis,
    state: State,
    dc: Dc,
    lease: Lease,
    exec: Exec,
    agents: BTreeMap<String, Agent>,
    clock_off_s: i64,
    two: TwoNode,
    device: DeviceMode,
    hang_until: Millis,
    slow_until: Millis,
    peer_heard: BTreeMap<usize, Millis>,
    /// The DC loop's belief when it was paused: it acts on it once after
    /// SIGCONT, before it looks at Raft again.
    stale_leader_term: Option<u64>,
    /// Entries below this index are re-applied after a restart (history).
    replayed: usize,
}

#[derive(Debug, Clone)]
enum Msg {
    Append {
        term: u64,
        log: Log,
        commit: usize,
    },
    AppendOk {
        term: u64,
        len: usize,
        boot: u64,
    },
    AppendReject {
        term: u64,
    },
    Vote {
        term: u64,
        last_term: u64,
        last_len: usize,
    },
    VoteReply {
        term: u64,
        granted: bool,
    },
    Forward {
        cmd: Cmd,
        uid: u64,
        origin: usize,
        node_cert: bool,
    },
    Dispatch {
        term: u64,
        action: Action,
        dc_boot: u64,
    },
    DispatchReply {
        key: ActionKey,
        ok: bool,
    },
    Query {
        term: u64,
    },
    /// A DC that must be fenced asks the receiver to stand for election.
    HandOver {
        term: u64,
    },
    InFlight {
        boot: u64,
        ops: Vec<InFlightOp>,
    },
    Hello {
        single_voter: bool,
    },
    NotMember,
}

#[derive(Debug, Clone)]
enum Ev {
    Tick(usize),
    Deliver {
        from: usize,
        to: usize,
        msg: Msg,
    },
    AgentDone {
        node: usize,
        boot: u64,
        rsc: String,
        rc: i32,
        op_status: i32,
    },
    PlanDone {
        node: usize,
        boot: u64,
        based_on: u64,
        t: Rc<Transition>,
    },
    FenceDone {
        node: usize,
        boot: u64,
        event: FencingEvent,
        two_node: bool,
    },
    PowerOff {
        node: usize,
    },
    PowerOn {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Heal(Heal),
    Fault(Fault),
    DispatchTimeout {
        node: usize,
        boot: u64,
        key: ActionKey,
    },
    StoppedHere {
        node: usize,
        boot: u64,
    },
    HealAll,
}

#[derive(Debug, Clone)]
enum Heal {
    Cut(usize, usize),
    Lossy,
    Device(usize),
    Hang(usize),
    Slow(usize),
}

struct Sim {
    spec: Spec,
    rng: Rng,
    now: Millis,
    seq: u64,
    queue: BTreeMap<(Millis, u64), Ev>,
    nodes: Vec<Node>,
    cuts: BTreeMap<(usize, usize), u32>,
    drop_pct: u8,
    dup_pct: u8,
    extra_delay: Millis,
    next_uid: u64,
    leaders: BTreeMap<u64, usize>,
    committed: Vec<(u64, u64)>,
    primitives: BTreeSet<String>,
    reported: BTreeSet<(Invariant, String)>,
    out: Outcome,
    triggers: Vec<Trigger>,
    fenced_in_cut: BTreeSet<usize>,
    healed: bool,
}

fn base_config(two_node: bool, stonith: bool) -> Config {
    let nodes = if two_node { 2 } else { 3 };
    let mut text = String::new();
    for i in 1..=nodes {
        text.push_str(&format!("node n{i}\n"));
    }
    for i in 1..=3 {
        text.push_str(&format!(
            "primitive r{i} ocf:heartbeat:Dummy op monitor interval=2s timeout=10s \
             op start timeout=15s op stop timeout=5s\n"
        ));
        let pref = (i - 1) % nodes + 1;
        text.push_str(&format!("location r{i}-pref r{i} 100: n{pref}\n"));
    }
    // A group (its members start in order) on the last node.
    text.push_str(&format!(
        "primitive g1 ocf:heartbeat:Dummy op monitor interval=2s timeout=10s \
         op start timeout=15s op stop timeout=5s\n\
         primitive g2 ocf:heartbeat:Dummy op monitor interval=2s timeout=10s \
         op start timeout=15s op stop timeout=5s\n\
         group g g1 g2\nlocation g-pref g 100: n{nodes}\n"
    ));
    text.push_str(
        "primitive st ocf:pacemaker:Stateful op monitor interval=3s role=Promoted timeout=10s \
         op monitor interval=4s role=Unpromoted timeout=10s op stop timeout=5s\n\
         clone ms st meta promotable=true promoted-max=1\n\
         location ms-pref ms rule $role=Promoted 50: #uname eq n1\n",
    );
    text.push_str(&format!(
        "property stonith-enabled={stonith} no-quorum-policy=stop\n\
         rsc_defaults resource-stickiness=10\n"
    ));
    ha_scheduler::crm::read_crm(&text).unwrap_or_default()
}

/// `p` and, when it is a group member, the members before it.
fn members_up_to(c: &Config, p: &str) -> Vec<String> {
    use ha_scheduler::model::Resource;
    for r in &c.resources {
        if let Resource::Group(g) = r {
            if let Some(i) = g.members.iter().position(|m| m.id == p) {
                return g.members[..=i].iter().map(|m| m.id.clone()).collect();
            }
        }
    }
    vec![p.to_string()]
}

fn primitive_ids(c: &Config, out: &mut BTreeSet<String>) {
    use ha_scheduler::model::Resource;
    for r in &c.resources {
        match r {
            Resource::Primitive(p) => {
                out.insert(p.id.clone());
            }
            Resource::Group(g) => out.extend(g.members.iter().map(|m| m.id.clone())),
            Resource::Clone(_) => {}
        }
    }
}

/// Runs one simulation.
pub fn run(spec: Spec) -> Outcome {
    let n = if spec.two_node { 2 } else { 3 };
    let config = base_config(spec.two_node, spec.stonith);
    let boot_entry = Rc::new(Entry {
        term: 0,
        uid: 0,
        origin: 0,
        cmd: Cmd::Config(Box::new(config.clone())),
    });
    let log: Log = Rc::new(vec![boot_entry]);
    let mut rng = Rng::new(spec.seed);
    let voters: BTreeSet<usize> = (0..n).collect();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut node = Node {
            name: format!("n{}", i + 1),
            powered: true,
            running: true,
            paused_until: 0,
            boot: 1,
            booted_at: 0,
            term: 0,
            voted: None,
            log: log.clone(),
            voters: voters.clone(),
            role: Role::Follower,
            leader_hint: None,
            commit: 1,
            applied: 0,
            votes: BTreeSet::new(),
            match_len: BTreeMap::new(),
            last_contact: 0,
            election_at: rng.range(300, 800),
            state: State {
                config: Config::default(),
                status: Status::default(),
                version: 0,
                uids: BTreeSet::new(),
            },
            dc: Dc::new(spec.design, dc_settings()),
            lease: Lease::new(0, NODE_TIMEOUT_MS),
            exec: Exec::default(),
            agents: BTreeMap::new(),
            clock_off_s: 0,
            two: TwoNode::default(),
            device: DeviceMode::Works,
            hang_until: 0,
            slow_until: 0,
            peer_heard: BTreeMap::new(),
            stale_leader_term: None,
            replayed: 0,
        };
        node.exec.call = 1;
        nodes.push(node);
    }
    let mut primitives = BTreeSet::new();
    primitive_ids(&config, &mut primitives);
    let mut sim = Sim {
        triggers: spec.triggers.clone(),
        spec,
        rng,
        now: 0,
        seq: 0,
        queue: BTreeMap::new(),
        nodes,
        cuts: BTreeMap::new(),
        drop_pct: 0,
        dup_pct: 0,
        extra_delay: 0,
        next_uid: 1,
        leaders: BTreeMap::new(),
        committed: vec![(0, 0)],
        primitives,
        reported: BTreeSet::new(),
        out: Outcome::default(),
        fenced_in_cut: BTreeSet::new(),
        healed: false,
    };
    for i in 0..n {
        sim.apply_committed(i);
        let off = sim.rng.range(0, TICK_MS - 1);
        sim.at(off, Ev::Tick(i));
    }
    for (t, f) in sim.spec.faults.clone() {
        sim.at(t, Ev::Fault(f));
    }
    let heal = sim.spec.heal_ms;
    sim.at(heal, Ev::HealAll);
    let end = sim.spec.end_ms;
    while let Some((&(t, s), _)) = sim.queue.iter().next() {
        if t > end {
            break;
        }
        let Some(ev) = sim.queue.remove(&(t, s)) else {
            break;
        };
        sim.now = t;
        sim.out.events += 1;
        sim.note_event(&ev);
        sim.handle(ev);
        sim.check();
    }
    sim.final_checks();
    sim.out
}

fn dc_settings() -> DcSettings {
    DcSettings {
        node_timeout_ms: NODE_TIMEOUT_MS,
        ..DcSettings::default()
    }
}

impl Sim {
    fn at(&mut self, delay: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), ev);
    }

    fn note_event(&mut self, ev: &Ev) {
        let (kind, node): (u64, u64) = match ev {
            Ev::Tick(n) => (1, *n as u64),
            Ev::Deliver { to, msg, .. } => (2 + msg_kind(msg), *to as u64),
            Ev::AgentDone { node, rc, .. } => (30 + *rc as u64, *node as u64),
            Ev::PlanDone { node, .. } => (60, *node as u64),
            Ev::FenceDone { node, .. } => (61, *node as u64),
            Ev::PowerOff { node } => (62, *node as u64),
            Ev::PowerOn { node } => (63, *node as u64),
            Ev::Restart { node } => (64, *node as u64),
            Ev::Heal(_) => (65, 0),
            Ev::Fault(_) => (66, 0),
            Ev::DispatchTimeout { node, .. } => (67, *node as u64),
            Ev::HealAll => (68, 0),
            Ev::StoppedHere { node, .. } => (69, *node as u64),
        };
        let mut h = self.out.digest ^ 0xcbf2_9ce4_8422_2325;
        for v in [self.now, kind, node] {
            h ^= v;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.out.digest = h;
        if self.spec.trace && !matches!(ev, Ev::Tick(_)) {
            let line = match ev {
                Ev::Deliver { from, to, msg } => {
                    format!("{} n{}->n{} {}", self.now, from + 1, to + 1, msg_name(msg))
                }
                other => format!("{} {:?}", self.now, short(other)),
            };
            self.out.trace.push(line);
        }
    }

    fn trace(&mut self, what: impl FnOnce() -> String) {
        if self.spec.trace {
            let line = format!("{} {}", self.now, what());
            self.out.trace.push(line);
        }
    }

    fn count_fault(&mut self, name: &'static str) {
        *self.out.faults.entry(name).or_default() += 1;
    }

    fn refused(&mut self, name: &'static str) {
        *self.out.refused.entry(name).or_default() += 1;
    }

    fn violate(&mut self, invariant: Invariant, key: String, what: String) {
        if self.reported.insert((invariant, key)) {
            self.out.violations.push(Violation {
                at: self.now,
                invariant,
                what,
            });
        }
    }

    fn alive(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        n.powered && n.running
    }

    fn leader(&self) -> Option<usize> {
        // The leader of the highest term that still believes it leads.
        (0..self.nodes.len())
            .filter(|&i| self.alive(i) && self.nodes[i].role == Role::Leader)
            .max_by_key(|&i| self.nodes[i].term)
    }

    fn resolve(&mut self, t: Target) -> Option<usize> {
        match t {
            Target::Node(i) => Some(i),
            Target::Leader => self.leader(),
            Target::Follower => {
                let l = self.leader();
                let f: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| Some(i) != l && self.alive(i))
                    .collect();
                self.rng.pick(&f).copied()
            }
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        !self.cuts.contains_key(&(a, b))
    }

    fn cut(&mut self, a: usize, b: usize, ms: Millis) {
        *self.cuts.entry((a, b)).or_default() += 1;
        self.at(ms, Ev::Heal(Heal::Cut(a, b)));
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if from == to {
            self.at(0, Ev::Deliver { from, to, msg });
            return;
        }
        if !self.linked(from, to) || !self.alive(to) {
            return;
        }
        // RPCs ride on TCP (gRPC): a lossy link delays them; Raft's messages
        // are also dropped and duplicated (openraft resends and dedups).
        let raft = matches!(
            msg,
            Msg::Append { .. }
                | Msg::AppendOk { .. }
                | Msg::AppendReject { .. }
                | Msg::Vote { .. }
                | Msg::VoteReply { .. }
        );
        if raft && self.drop_pct > 0 && self.rng.chance(self.drop_pct as f64 / 100.0) {
            return;
        }
        let d = self.rng.range(1, 4) + self.rng.range(0, self.extra_delay);
        if raft && self.dup_pct > 0 && self.rng.chance(self.dup_pct as f64 / 100.0) {
            let d2 = self.rng.range(1, 4 + self.extra_delay);
            self.at(
                d2,
                Ev::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        self.at(d, Ev::Deliver { from, to, msg });
    }

    /// Events for a paused process wait until it runs again.
    fn deferred(&mut self, node: usize, ev: &Ev) -> bool {
        let until = self.nodes[node].paused_until;
        if until > self.now {
            // After SIGCONT the network is read before the timers fire.
            let at = if matches!(ev, Ev::Tick(_)) {
                until + 1
            } else {
                until
            };
            self.seq += 1;
            self.queue.insert((at, self.seq), ev.clone());
            return true;
        }
        false
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick(i) => {
                if !self.alive(i) {
                    return; // the restart schedules its ticks again
                }
                if !self.deferred(i, &Ev::Tick(i)) {
                    self.tick(i);
                    self.at(TICK_MS, Ev::Tick(i));
                }
            }
            Ev::Deliver { from, to, msg } => {
                if !self.alive(to) {
                    return;
                }
                let ev = Ev::Deliver { from, to, msg };
                if self.deferred(to, &ev) {
                    return;
                }
                if let Ev::Deliver { from, to, msg } = ev {
                    self.deliver(from, to, msg);
                }
            }
            Ev::AgentDone {
                node,
                boot,
                rsc,
                rc,
                op_status,
            } => self.agent_done(node, boot, rsc, rc, op_status),
            Ev::PlanDone {
                node,
                boot,
                based_on,
                t,
            } => {
                if !self.alive(node) || self.nodes[node].boot != boot {
                    return;
                }
                let ev = Ev::PlanDone {
                    node,
                    boot,
                    based_on,
                    t: t.clone(),
                };
                if self.deferred(node, &ev) {
                    return;
                }
                let transition = (*t).clone();
                self.dc_step(
                    node,
                    Input::Planned {
                        based_on,
                        transition,
                    },
                );
            }
            Ev::FenceDone {
                node,
                boot,
                event,
                two_node,
            } => {
                if !self.alive(node) || self.nodes[node].boot != boot {
                    return;
                }
                if two_node {
                    self.two_node_fenced(node, event);
                } else {
                    self.dc_step(node, Input::FenceDone { event });
                }
            }
            Ev::PowerOff { node } => self.power_off(node),
            Ev::PowerOn { node } => {
                if !self.nodes[node].powered {
                    self.nodes[node].powered = true;
                    self.start_process(node, true);
                }
            }
            Ev::Restart { node } => {
                if self.nodes[node].powered && !self.nodes[node].running {
                    self.start_process(node, false);
                }
            }
            Ev::Heal(h) => self.heal(h),
            Ev::Fault(f) => self.fault(f),
            Ev::DispatchTimeout { node, boot, key } => {
                if self.alive(node) && self.nodes[node].boot == boot {
                    let inflight = self.nodes[node].dc.in_flight().any(|k| *k == key);
                    if inflight {
                        self.dc_step(
                            node,
                            Input::ActionDone {
                                action: key,
                                ok: false,
                            },
                        );
                    }
                }
            }
            Ev::StoppedHere { node, boot } => {
                if self.alive(node) && self.nodes[node].boot == boot {
                    self.dc_step(node, Input::StoppedAllHere);
                }
            }
            Ev::HealAll => {
                self.healed = true;
                self.cuts.clear();
                self.drop_pct = 0;
                self.dup_pct = 0;
                self.extra_delay = 0;
                for i in 0..self.nodes.len() {
                    let n = &mut self.nodes[i];
                    n.device = DeviceMode::Works;
                    n.hang_until = 0;
                    n.slow_until = 0;
                    n.paused_until = n.paused_until.min(self.now);
                    if !n.powered {
                        self.at(0, Ev::PowerOn { node: i });
                    } else if !n.running {
                        self.at(0, Ev::Restart { node: i });
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------
    // Processes

    fn start_process(&mut self, i: usize, power_on: bool) {
        let now = self.now;
        let design = self.spec.design;
        let two = self.spec.two_node;
        let el = self.rng.range(300, 800);
        let n = &mut self.nodes[i];
        n.running = true;
        n.boot += 1;
        n.booted_at = now;
        n.paused_until = 0;
        n.role = Role::Follower;
        n.leader_hint = None;
        n.commit = if n.voters.len() == 1 { n.log.len() } else { 0 };
        n.applied = 0;
        n.votes.clear();
        n.match_len.clear();
        n.last_contact = now;
        n.election_at = now + el;
        n.state = State {
            config: Config::default(),
            status: Status::default(),
            version: 0,
            uids: BTreeSet::new(),
        };
        n.dc = Dc::new(design, dc_settings());
        n.lease = Lease::new(now, NODE_TIMEOUT_MS);
        n.exec = Exec {
            call: (n.boot as i64) * 1_000_000,
            ..Exec::default()
        };
        n.peer_heard.clear();
        if two {
            n.two.waiting = true;
            n.two.unblocked = false;
            n.two.race_at = None;
            n.two.fencing = false;
            n.two.peer_confirms = false;
            n.two.last_peer = now;
        }
        let _ = power_on;
        // Its committed prefix is what it knew; it re-applies it.
        let keep = self.nodes[i].log.len();
        self.nodes[i].replayed = keep;
        if self.nodes[i].voters.len() > 1 {
            // Entries known committed are those in the global committed prefix.
            let c = self.committed.len().min(keep);
            let prefix_ok = (0..c).all(|k| {
                let e = &self.nodes[i].log[k];
                self.committed[k] == (e.term, e.uid)
            });
            self.nodes[i].commit = if prefix_ok { c } else { 0 };
        }
        self.apply_committed(i);
        self.at(1, Ev::Tick(i));
    }

    fn crash(&mut self, i: usize, down_ms: Millis) {
        if !self.alive(i) {
            return;
        }
        self.nodes[i].running = false;
        self.nodes[i].role = Role::Follower;
        self.nodes[i].exec.running.clear();
        self.nodes[i].exec.awaiting.clear();
        self.kill_callers_runs(i);
        self.at(down_ms, Ev::Restart { node: i });
    }

    /// The old executor killed an agent's process group when the DC's RPC
    /// dropped: half-way, unrecorded.
    fn kill_callers_runs(&mut self, dc: usize) {
        if self.spec.design.pending_ops {
            return;
        }
        let boot = self.nodes[dc].boot;
        for n in 0..self.nodes.len() {
            let killed: Vec<String> = self.nodes[n]
                .exec
                .running
                .iter()
                .filter(|(_, r)| r.dc == dc && r.dc_boot == boot && r.began)
                .map(|(k, _)| k.clone())
                .collect();
            for k in killed {
                self.nodes[n].exec.running.remove(&k);
                self.trace(|| format!("n{}: agent of {k} killed with its caller", n + 1));
            }
        }
    }

    fn power_off(&mut self, i: usize) {
        if !self.nodes[i].powered {
            return;
        }
        self.kill_callers_runs(i);
        let n = &mut self.nodes[i];
        n.powered = false;
        n.running = false;
        n.role = Role::Follower;
        n.exec = Exec::default();
        for a in n.agents.values_mut() {
            *a = Agent::Stopped;
        }
    }

    // -----------------------------------------------------------------------
    // Faults

    fn fault(&mut self, f: Fault) {
        match f {
            Fault::Crash { target, down_ms } => {
                self.count_fault("crash");
                if let Some(i) = self.resolve(target) {
                    if self.spec.stonith {
                        self.crash(i, down_ms);
                    } else {
                        // Without fencing nothing can hold a node whose daemon
                        // died to account (Pacemaker neither): here a crash
                        // without STONITH is the node's, services included.
                        self.power_off(i);
                        self.at(down_ms, Ev::PowerOn { node: i });
                    }
                }
            }
            Fault::Pause { target, ms } => {
                self.count_fault("pause");
                if let Some(i) = self.resolve(target) {
                    if self.alive(i) {
                        let n = &mut self.nodes[i];
                        n.paused_until = self.now + ms;
                        n.stale_leader_term = (n.role == Role::Leader).then_some(n.term);
                    }
                }
            }
            Fault::Isolate { target, ms } => {
                self.count_fault("partition");
                if let Some(i) = self.resolve(target) {
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.cut(i, j, ms);
                            self.cut(j, i, ms);
                        }
                    }
                }
            }
            Fault::OneWay { from, to, ms } => {
                self.count_fault("one-way partition");
                // Every message here rides on TCP (gRPC): packets lost one
                // way stall the connection's data both ways (no ACKs come
                // back), so a one-way loss cuts the link's messages both ways.
                self.cut(from, to, ms);
                self.cut(to, from, ms);
            }
            Fault::Lossy {
                drop_pct,
                dup_pct,
                extra_delay_ms,
                ms,
            } => {
                self.count_fault("drop/dup/delay");
                self.drop_pct = drop_pct;
                self.dup_pct = dup_pct;
                self.extra_delay = extra_delay_ms;
                self.at(ms, Ev::Heal(Heal::Lossy));
            }
            Fault::ClockJump { target, by_s } => {
                self.count_fault("clock jump");
                if let Some(i) = self.resolve(target) {
                    self.nodes[i].clock_off_s += by_s;
                }
            }
            Fault::Device { node, mode, ms } => {
                self.count_fault(match mode {
                    DeviceMode::Works => "device works",
                    DeviceMode::Fails => "device fails",
                    DeviceMode::TimesOut => "device times out",
                    DeviceMode::Lies => "device lies",
                });
                self.nodes[node].device = mode;
                self.at(ms, Ev::Heal(Heal::Device(node)));
            }
            Fault::AgentDies { node, rsc } => {
                self.count_fault("agent dies");
                if let Some(a) = self.nodes[node].agents.get_mut(&rsc) {
                    *a = Agent::Stopped;
                }
            }
            Fault::AgentHangs { node, ms } => {
                self.count_fault("agent hangs");
                self.nodes[node].hang_until = self.now + ms;
                self.at(ms, Ev::Heal(Heal::Hang(node)));
            }
            Fault::AgentSlow { node, ms } => {
                self.count_fault("agent slow");
                self.nodes[node].slow_until = self.now + ms;
                self.at(ms, Ev::Heal(Heal::Slow(node)));
            }
            Fault::RemoveResource { rsc } => {
                self.count_fault("config: remove (orphan)");
                self.change_config(|c| {
                    c.resources.retain(|r| resource_id(r) != rsc);
                    c.constraints.locations.retain(|l| l.rsc != rsc);
                });
            }
            Fault::RenameResource { rsc, to } => {
                self.count_fault("config: rename");
                let mut ids = BTreeSet::new();
                self.change_config(|c| {
                    for r in &mut c.resources {
                        if let ha_scheduler::model::Resource::Primitive(p) = r {
                            if p.id == rsc {
                                p.id = to.clone();
                                ids.insert(to.clone());
                            }
                        }
                    }
                    for l in &mut c.constraints.locations {
                        if l.rsc == rsc {
                            l.rsc = to.clone();
                        }
                    }
                });
                self.primitives.extend(ids);
            }
            Fault::InvalidConfig => {
                self.count_fault("config: invalid");
                self.change_config(|c| {
                    c.constraints.orders.push(ha_scheduler::model::Order {
                        id: "bad".into(),
                        kind: None,
                        symmetrical: None,
                        form: ha_scheduler::model::OrderForm::Pair {
                            first: "no-such-resource".into(),
                            then: "r1".into(),
                            first_action: None,
                            then_action: None,
                            require_all: None,
                        },
                    })
                });
            }
            Fault::HugeClone => {
                self.count_fault("config: clone-max 10000");
                self.change_config(|c| {
                    if let Some(m) = c.meta_mut("ms") {
                        m.insert("clone-max".into(), "10000".into());
                    }
                });
            }
            Fault::RogueFencing { from, target } => {
                self.count_fault("node cert writes fencing");
                let event = FencingEvent {
                    target: self.nodes[target].name.clone(),
                    action: "off".into(),
                    succeeded: true,
                    time: EPOCH,
                    ..Default::default()
                };
                let uid = self.uid();
                self.forward_or_append(
                    from,
                    Cmd::Dc {
                        term: 0,
                        write: DcWrite::Fencing { event },
                    },
                    uid,
                    true,
                );
            }
            Fault::Unblock { node } => {
                self.count_fault("operator unblock");
                self.unblock(node);
            }
            Fault::Move { rsc, to } => {
                self.count_fault("operator move");
                let node = self.nodes[to].name.clone();
                self.change_config(|c| {
                    c.constraints.locations.push(ha_scheduler::model::Location {
                        id: format!("cli-prefer-{rsc}"),
                        rsc: rsc.clone(),
                        rsc_pattern: false,
                        role: None,
                        target: ha_scheduler::model::LocationTarget::Node {
                            node: node.clone(),
                            score: 1000,
                        },
                        resource_discovery: None,
                    })
                });
            }
        }
    }

    fn heal(&mut self, h: Heal) {
        match h {
            Heal::Cut(a, b) => {
                if let Some(c) = self.cuts.get_mut(&(a, b)) {
                    *c -= 1;
                    if *c == 0 {
                        self.cuts.remove(&(a, b));
                    }
                }
            }
            Heal::Lossy => {
                self.drop_pct = 0;
                self.dup_pct = 0;
                self.extra_delay = 0;
            }
            Heal::Device(n) => self.nodes[n].device = DeviceMode::Works,
            Heal::Hang(n) => self.nodes[n].hang_until = 0,
            Heal::Slow(n) => self.nodes[n].slow_until = 0,
        }
    }

    /// An operator's configuration write, through the leader (any node).
    fn change_config(&mut self, f: impl FnOnce(&mut Config)) {
        let Some(l) = self.leader() else { return };
        let mut c = self.nodes[l].state.config.clone();
        f(&mut c);
        let uid = self.uid();
        self.forward_or_append(l, Cmd::Config(Box::new(c)), uid, false);
    }

    fn uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    // -----------------------------------------------------------------------
    // Raft model

    fn tick(&mut self, i: usize) {
        let now = self.now;
        // Raft timers.
        match self.nodes[i].role {
            Role::Leader => self.broadcast_append(i),
            Role::Follower | Role::Candidate => {
                if now >= self.nodes[i].election_at {
                    self.start_election(i);
                }
            }
        }
        self.two_node_tick(i);
        self.exec_tick(i);
        self.lease_tick(i, LeaseInput::Tick);
        self.dc_step(i, Input::Tick);
    }

    fn may_lead(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        if !self.spec.two_node {
            return true;
        }
        if n.voters.len() == 1 && n.voters.contains(&i) {
            let s = BootState {
                single_voter: true,
                was_survivor: n.two.survivor,
                peer_known_down: false,
                peer_confirms_not_member: n.two.peer_confirms,
            };
            // A survivor that never went down leads on.
            return !n.two.waiting || two_node::may_lead_alone(self.spec.design, s, false).is_ok();
        }
        true
    }

    fn start_election(&mut self, i: usize) {
        if !self.may_lead(i) {
            self.nodes[i].election_at = self.now + 500;
            return;
        }
        let el = self.rng.range(400, 800);
        let n = &mut self.nodes[i];
        n.term += 1;
        n.role = Role::Candidate;
        n.voted = Some((n.term, i));
        n.votes = BTreeSet::from([i]);
        n.election_at = self.now + el;
        let term = n.term;
        let last_term = n.log.last().map(|e| e.term).unwrap_or(0);
        let last_len = n.log.len();
        let voters: Vec<usize> = n.voters.iter().copied().collect();
        if voters.len() == 1 && voters[0] == i {
            self.become_leader(i);
            return;
        }
        for v in voters {
            if v != i {
                self.send(
                    i,
                    v,
                    Msg::Vote {
                        term,
                        last_term,
                        last_len,
                    },
                );
            }
        }
    }

    fn become_leader(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.role = Role::Leader;
        n.leader_hint = Some(i);
        n.match_len.clear();
        let term = n.term;
        self.leaders.insert(term, i);
        self.trace(|| format!("n{} leads term {term}", i + 1));
        let uid = self.uid();
        self.append(i, Cmd::Noop, uid, i);
        self.broadcast_append(i);
    }

    fn append(&mut self, i: usize, cmd: Cmd, uid: u64, origin: usize) {
        let term = self.nodes[i].term;
        let e = Rc::new(Entry {
            term,
            uid,
            origin,
            cmd,
        });
        Rc::make_mut(&mut self.nodes[i].log).push(e);
        if self.nodes[i].voters.len() == 1 {
            self.advance_commit(i);
        }
    }

    fn broadcast_append(&mut self, i: usize) {
        let n = &self.nodes[i];
        let term = n.term;
        let log = n.log.clone();
        let commit = n.commit;
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|&p| p != i).collect();
        for p in peers {
            if self.nodes[i].voters.contains(&p) {
                self.send(
                    i,
                    p,
                    Msg::Append {
                        term,
                        log: log.clone(),
                        commit,
                    },
                );
            } else if self.spec.two_node {
                // Not a member any more: it learns so from our Hello answer.
            }
        }
        self.advance_commit(i);
    }

    fn advance_commit(&mut self, i: usize) {
        let n = &self.nodes[i];
        if n.role != Role::Leader {
            return;
        }
        let mut lens: Vec<usize> = n
            .voters
            .iter()
            .map(|v| {
                if *v == i {
                    n.log.len()
                } else {
                    *n.match_len.get(v).unwrap_or(&0)
                }
            })
            .collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        let majority = n.voters.len() / 2 + 1;
        let Some(&c) = lens.get(majority - 1) else {
            return;
        };
        if c > n.commit && n.log[c - 1].term == n.term {
            self.nodes[i].commit = c;
            self.apply_committed(i);
        }
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        if self.nodes[to].voters.contains(&from) || from == to {
            self.nodes[to].peer_heard.insert(from, self.now);
            if self.spec.two_node && from != to {
                self.nodes[to].two.last_peer = self.now;
                // wait_for_all ends with the peer's log (a learner until then).
                if matches!(msg, Msg::Append { .. }) {
                    self.nodes[to].two.waiting = false;
                }
                if std::mem::take(&mut self.nodes[to].two.stopped) {
                    self.record_stops(to);
                }
            }
        }
        match msg {
            Msg::Append { term, log, commit } => {
                if !self.nodes[to].voters.contains(&from) {
                    return;
                }
                if term < self.nodes[to].term {
                    let t = self.nodes[to].term;
                    self.send(to, from, Msg::AppendReject { term: t });
                    return;
                }
                let el = self.rng.range(400, 800);
                let n = &mut self.nodes[to];
                if term > n.term {
                    n.voted = None;
                }
                n.term = term;
                n.role = Role::Follower;
                n.leader_hint = Some(from);
                n.last_contact = self.now;
                n.election_at = self.now + el;
                // The leader's log wins (Raft's vote rule made it the most
                // complete of a majority); committed prefixes agree.
                if !Rc::ptr_eq(&n.log, &log) {
                    n.log = log;
                }
                let c = commit.min(n.log.len());
                if c > n.commit {
                    n.commit = c;
                }
                if n.applied > n.commit {
                    n.applied = 0; // its applied suffix was overwritten: re-apply
                    n.state.version += 1;
                }
                let len = n.log.len();
                let boot = n.boot;
                self.apply_committed(to);
                self.lease_tick(to, LeaseInput::LeaderContact);
                self.send(to, from, Msg::AppendOk { term, len, boot });
            }
            Msg::AppendOk { term, len, boot } => {
                if self.nodes[to].role != Role::Leader || term != self.nodes[to].term {
                    return;
                }
                self.nodes[to].match_len.insert(from, len);
                self.advance_commit(to);
                let name = self.nodes[from].name.clone();
                self.dc_step(to, Input::Heard { node: name, boot });
            }
            Msg::AppendReject { term }
            | Msg::VoteReply {
                term,
                granted: false,
            } => {
                if term > self.nodes[to].term {
                    let n = &mut self.nodes[to];
                    n.term = term;
                    n.role = Role::Follower;
                    n.voted = None;
                }
            }
            Msg::Vote {
                term,
                last_term,
                last_len,
            } => {
                let now = self.now;
                let n = &mut self.nodes[to];
                if !n.voters.contains(&from) {
                    return;
                }
                // Leader stickiness: a voter that hears its leader refuses.
                let sticky = n.role == Role::Leader
                    || (n.leader_hint.is_some() && now < n.last_contact + 400);
                if term > n.term && !sticky {
                    n.term = term;
                    n.role = Role::Follower;
                    n.voted = None;
                }
                let my_last = n.log.last().map(|e| e.term).unwrap_or(0);
                let up_to_date = (last_term, last_len) >= (my_last, n.log.len());
                let free = n.voted.is_none_or(|(t, c)| t != term || c == from);
                let granted = term == n.term && up_to_date && free && !sticky;
                if granted {
                    n.voted = Some((term, from));
                    n.election_at = now + 600;
                }
                let t = n.term;
                self.send(to, from, Msg::VoteReply { term: t, granted });
            }
            Msg::VoteReply {
                term,
                granted: true,
            } => {
                let n = &mut self.nodes[to];
                if n.role != Role::Candidate || term != n.term {
                    return;
                }
                n.votes.insert(from);
                let votes = n.votes.iter().filter(|v| n.voters.contains(v)).count();
                if votes > n.voters.len() / 2 {
                    self.become_leader(to);
                }
            }
            Msg::Forward {
                cmd,
                uid,
                origin,
                node_cert,
            } => {
                if self.nodes[to].role != Role::Leader {
                    return; // the proposer retries
                }
                if node_cert {
                    // The Propose channel of a node certificate.
                    let origin_name = self.nodes[origin].name.clone();
                    let kind = match &cmd {
                        Cmd::Ops(ops) => {
                            WriteKind::Ops(ops.iter().map(|o| o.node.as_str()).collect())
                        }
                        Cmd::Dc { .. } => WriteKind::MembershipOrFencing,
                        _ => WriteKind::Admin,
                    };
                    if let Err(e) =
                        dc::authorize(self.spec.design, &Origin::Node(&origin_name), &kind)
                    {
                        self.refused("unauthorized write");
                        self.trace(|| format!("refused: {}", e.0));
                        return;
                    }
                }
                let cmd = match cmd {
                    // A forwarded DC write is stamped by whoever commits it:
                    // what the old design did.
                    Cmd::Dc { write, .. } => Cmd::Dc {
                        term: self.nodes[to].term,
                        write,
                    },
                    c => c,
                };
                self.append(to, cmd, uid, origin);
            }
            Msg::Dispatch {
                term,
                action,
                dc_boot,
            } => self.exec_dispatch(to, from, dc_boot, term, action),
            Msg::DispatchReply { key, ok } => {
                self.dc_step(to, Input::ActionDone { action: key, ok });
            }
            Msg::HandOver { term } => {
                // As `raft.trigger().elect()`: only for the term it was
                // asked in (a stale request is ignored).
                if self.nodes[to].term == term && self.nodes[to].role == Role::Follower {
                    self.trace(|| format!("n{} stands for election (hand-over)", to + 1));
                    self.nodes[to].election_at = self.now;
                }
            }
            Msg::Query { term } => {
                let ops = self.in_flight(to, term);
                let boot = self.nodes[to].boot;
                self.send(to, from, Msg::InFlight { boot, ops });
            }
            Msg::InFlight { boot, ops } => {
                let node = self.nodes[from].name.clone();
                self.dc_step(to, Input::InFlight { node, boot, ops });
            }
            Msg::Hello { single_voter } => self.hello(to, from, single_voter),
            Msg::NotMember => self.rejoin_as_new(to, from),
        }
    }

    fn in_flight(&mut self, node: usize, term: u64) -> Vec<InFlightOp> {
        let e = &mut self.nodes[node].exec;
        if self.spec.design.fencing_tokens {
            e.max_term = e.max_term.max(term);
        }
        let mut ops: Vec<InFlightOp> = e
            .running
            .values()
            .map(|r| InFlightOp {
                rsc: r.action.rsc.clone().unwrap_or_default(),
                operation: r.action.kind.name(),
            })
            .collect();
        ops.extend(e.awaiting.iter().map(|a| InFlightOp {
            rsc: a.update.rsc.clone(),
            operation: a.update.op.operation.clone(),
        }));
        ops
    }

    /// A write from node `i` (its executor or an agent): appended here when
    /// it leads, forwarded to the leader it knows otherwise.
    fn forward_or_append(&mut self, i: usize, cmd: Cmd, uid: u64, node_cert: bool) {
        if !self.alive(i) {
            return;
        }
        if self.nodes[i].role == Role::Leader && !node_cert {
            self.append(i, cmd, uid, i);
            return;
        }
        let target = if self.nodes[i].role == Role::Leader {
            Some(i)
        } else {
            self.nodes[i].leader_hint
        };
        if let Some(l) = target {
            self.send(
                i,
                l,
                Msg::Forward {
                    cmd,
                    uid,
                    origin: i,
                    node_cert,
                },
            );
        }
    }

    /// A DC write: appended locally in its own term; never forwarded under
    /// the design.
    fn propose_dc(&mut self, i: usize, term: u64, write: DcWrite) {
        let uid = self.uid();
        let cmd = Cmd::Dc { term, write };
        let n = &self.nodes[i];
        if n.role == Role::Leader {
            self.append(i, cmd, uid, i);
        } else if self.spec.design.fencing_tokens {
            self.refused("DC write not forwarded");
        } else {
            self.forward_or_append(i, cmd, uid, false);
        }
    }

    fn apply_committed(&mut self, i: usize) {
        if self.nodes[i].applied == 0 {
            self.nodes[i].state = State {
                config: Config::default(),
                status: Status::default(),
                version: self.nodes[i].state.version + 1,
                uids: BTreeSet::new(),
            };
        }
        while self.nodes[i].applied < self.nodes[i].commit {
            let idx = self.nodes[i].applied;
            let e = self.nodes[i].log[idx].clone();
            // Invariant 4: a committed index never holds another entry.
            if idx < self.committed.len() {
                if self.committed[idx] != (e.term, e.uid) {
                    let what = format!(
                        "n{} applies entry {idx} (term {}) where ({}, uid {}) was committed",
                        i + 1,
                        e.term,
                        self.committed[idx].0,
                        self.committed[idx].1
                    );
                    self.violate(Invariant::CommittedSurvives, format!("{idx}"), what);
                }
            } else if idx == self.committed.len() {
                self.committed.push((e.term, e.uid));
                self.first_commit(&e);
            }
            let was_member = self.own_membership(i) != Membership::Offline;
            self.apply(i, &e);
            self.nodes[i].applied += 1;
            // A node that learns it was declared down or fenced while it
            // runs (a frozen process that outlived the Down timing) stops
            // everything: what it held may run elsewhere now.
            let declared_down = was_member && self.own_membership(i) == Membership::Offline;
            let fresh = idx >= self.nodes[i].replayed;
            if declared_down && fresh && self.spec.design.down_after_stops && self.alive(i) {
                self.trace(|| format!("n{}: declared down while running: stop all", i + 1));
                self.stop_all(i);
            }
        }
    }

    fn own_membership(&self, i: usize) -> Membership {
        let n = &self.nodes[i];
        n.state
            .status
            .nodes
            .get(&n.name)
            .map(|s| s.membership)
            .unwrap_or(Membership::Offline)
    }

    /// Checks made once per committed entry.
    fn first_commit(&mut self, e: &Entry) {
        if let Cmd::Dc { write, .. } = &e.cmd {
            let by_dc = self.leaders.get(&e.term) == Some(&e.origin);
            let stale = matches!(&e.cmd, Cmd::Dc { term, .. } if *term != e.term);
            let rejected = self.spec.design.fencing_tokens && stale;
            if !by_dc && !rejected {
                let what = format!(
                    "{write:?} committed in term {} from n{}, which is not that term's DC",
                    e.term,
                    e.origin + 1
                );
                self.violate(Invariant::OnlyCurrentDc, format!("{}", e.uid), what);
            }
        }
        if let Cmd::Ops(ops) = &e.cmd {
            // The trigger of the lagging-view scenario.
            let hit = self.triggers.iter().position(|t| {
                matches!(t, Trigger::CutAfterCommitOfStart { rsc, .. }
                    if ops.iter().any(|o| &o.rsc == rsc && o.op.operation == "start" && o.op.rc == 0))
            });
            if let Some(k) = hit {
                if let Trigger::CutAfterCommitOfStart { ms, .. } = self.triggers.remove(k) {
                    self.count_fault("partition");
                    self.cut(0, 1, ms);
                    self.cut(1, 0, ms);
                }
            }
        }
    }

    fn apply(&mut self, i: usize, e: &Entry) {
        let design = self.spec.design;
        let st = &mut self.nodes[i].state;
        st.uids.insert(e.uid);
        match &e.cmd {
            Cmd::Noop => {}
            Cmd::Config(c) => {
                if let Err(err) = ha_scheduler::validate::validate(c) {
                    // The old validation had no bound on clone counts.
                    let unbounded =
                        !design.scheduler_off_runtime && err.to_string().contains("clone-max");
                    if !unbounded {
                        return; // rejected: nothing changes
                    }
                }
                st.config = (**c).clone();
                st.version += 1;
                let mut ids = BTreeSet::new();
                primitive_ids(c, &mut ids);
                self.primitives.extend(ids);
            }
            Cmd::Dc { term, write } => {
                if design.fencing_tokens && *term != e.term {
                    return; // a stale DC's write
                }
                st.version += 1;
                match write {
                    DcWrite::NodeState { node, state, boot } => {
                        let ns = st.status.nodes.entry(node.clone()).or_default();
                        match state {
                            MemberState::Joined => {
                                if ns.membership != Membership::Unclean {
                                    ns.membership = Membership::Online;
                                    ns.history.clear();
                                    if let Some(b) = boot {
                                        ns.transient_attributes
                                            .insert(dc::BOOT_ATTR.into(), b.to_string());
                                    }
                                }
                            }
                            MemberState::Restarted => {
                                // Recurring monitors and pending operations
                                // ended with the old process: probes re-learn.
                                for h in ns.history.values_mut() {
                                    h.ops.retain(|o| {
                                        o.interval_ms == 0 && o.op_status != OP_STATUS_PENDING
                                    });
                                }
                                ns.history.retain(|_, h| !h.ops.is_empty());
                                if let Some(b) = boot {
                                    ns.transient_attributes
                                        .insert(dc::BOOT_ATTR.into(), b.to_string());
                                }
                            }
                            MemberState::Unclean => ns.membership = Membership::Unclean,
                            MemberState::Down => {
                                ns.membership = Membership::Offline;
                                ns.history.clear();
                                ns.transient_attributes.clear();
                            }
                        }
                    }
                    DcWrite::Fencing { event } => {
                        if event.succeeded {
                            let ns = st.status.nodes.entry(event.target.clone()).or_default();
                            ns.membership = Membership::Offline;
                            ns.history.clear();
                            ns.transient_attributes.clear();
                        }
                        st.status.fencing_history.push(event.clone());
                        if st.status.fencing_history.len() > 20 {
                            st.status.fencing_history.remove(0);
                        }
                    }
                }
            }
            Cmd::Ops(ops) => {
                st.version += 1;
                for u in ops {
                    let ns = st.status.nodes.entry(u.node.clone()).or_default();
                    let failed = u.op.op_status != OP_STATUS_PENDING
                        && u.op.rc != u.op.expected_rc.unwrap_or(0)
                        && !(u.op.operation == "monitor" && u.op.interval_ms == 0);
                    if failed {
                        let key = format!(
                            "fail-count-{}#{}_{}",
                            u.rsc, u.op.operation, u.op.interval_ms
                        );
                        let v = if u.op.operation == "start" {
                            "INFINITY".to_string()
                        } else {
                            let old: i64 = ns
                                .transient_attributes
                                .get(&key)
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            (old + 1).to_string()
                        };
                        ns.transient_attributes.insert(key, v);
                    }
                    let (class, provider, agent) = if u.rsc.starts_with("st") {
                        ("ocf", "pacemaker", "Stateful")
                    } else {
                        ("ocf", "heartbeat", "Dummy")
                    };
                    let h = ns
                        .history
                        .entry(u.rsc.clone())
                        .or_insert_with(|| ResourceHistory {
                            class: class.into(),
                            provider: Some(provider.into()),
                            agent: agent.into(),
                            ops: Vec::new(),
                        });
                    match h.ops.iter_mut().find(|o| o.id == u.op.id) {
                        Some(slot) => *slot = u.op.clone(),
                        None => h.ops.push(u.op.clone()),
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------
    // The DC and the lease, fed by the runtime

    fn dc_step(&mut self, i: usize, input: Input) {
        if !self.alive(i) {
            return;
        }
        let n = &self.nodes[i];
        let members: Vec<Member> = n
            .voters
            .iter()
            .map(|&v| Member {
                name: self.nodes[v].name.clone(),
                voter: true,
            })
            .collect();
        let leader_term = (n.role == Role::Leader).then_some(n.term);
        // Two-node mode without the peer commits nothing: the takeover
        // decides, not the DC.
        let two_node_alone = self.spec.two_node
            && n.voters.len() == 2
            && n.voters.iter().any(|&v| {
                v != i
                    && n.peer_heard
                        .get(&v)
                        .is_none_or(|t| self.now > t + NODE_TIMEOUT_MS)
            });
        let leader_term = if two_node_alone { None } else { leader_term };
        let leader_term = if input == Input::Tick {
            self.nodes[i].stale_leader_term.take().or(leader_term)
        } else {
            leader_term
        };
        let two_node_fence_delay_ms =
            (self.spec.two_node && self.spec.design.agreed_tie_break).then(|| self.race_delay(i));
        let mut dc = std::mem::replace(
            &mut self.nodes[i].dc,
            Dc::new(self.spec.design, dc_settings()),
        );
        let effects = {
            let n = &self.nodes[i];
            let view = View {
                me: &n.name,
                config: &n.state.config,
                status: &n.state.status,
                state_version: n.state.version,
                members: &members,
                leader_term,
                two_node_fence_delay_ms,
            };
            dc.step(self.now, input, &view)
        };
        self.nodes[i].dc = dc;
        for e in effects {
            self.effect(i, e);
        }
    }

    fn effect(&mut self, i: usize, e: Effect) {
        match e {
            Effect::Propose { term, write } => self.propose_dc(i, term, write),
            Effect::QueryInFlight { term, node } => {
                let Some(j) = self.index(&node) else { return };
                if j == i {
                    let ops = self.in_flight(i, term);
                    let boot = self.nodes[i].boot;
                    self.dc_step(i, Input::InFlight { node, boot, ops });
                } else {
                    self.send(i, j, Msg::Query { term });
                }
            }
            Effect::Plan { based_on } => self.plan(i, based_on),
            Effect::Dispatch { term, action } => {
                let Some(j) = self.index(&action.node) else {
                    return;
                };
                let key = ActionKey::of(&action);
                let boot = self.nodes[i].boot;
                self.fire_dispatch_triggers(&action);
                self.at(
                    OP_TIMEOUT_MS + 5000,
                    Ev::DispatchTimeout { node: i, boot, key },
                );
                self.send(
                    i,
                    j,
                    Msg::Dispatch {
                        term,
                        action,
                        dc_boot: boot,
                    },
                );
            }
            Effect::Fence { term, target } => self.fence(i, term, target, false),
            Effect::HandOver { term, to } => {
                if let Some(j) = self.index(&to) {
                    self.send(i, j, Msg::HandOver { term });
                }
            }
            Effect::StopAllHere { .. } => {
                self.stop_all(i);
                let boot = self.nodes[i].boot;
                self.at(400, Ev::StoppedHere { node: i, boot });
            }
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn fire_dispatch_triggers(&mut self, action: &Action) {
        if action.kind != ActionKind::Start {
            return;
        }
        let rsc = action.rsc.clone().unwrap_or_default();
        let on = self.index(&action.node);
        let mut k = 0;
        while k < self.triggers.len() {
            match self.triggers[k].clone() {
                Trigger::CrashDcAfterDispatch {
                    rsc: r,
                    node,
                    delay_ms,
                    down_ms,
                } if r == rsc && on == Some(node) => {
                    self.triggers.remove(k);
                    self.at(
                        delay_ms,
                        Ev::Fault(Fault::Crash {
                            target: Target::Leader,
                            down_ms,
                        }),
                    );
                }
                Trigger::IsolateAfterDispatch {
                    rsc: r,
                    node,
                    delay_ms,
                    ms,
                } if r == rsc && on == Some(node) => {
                    self.triggers.remove(k);
                    if let Some(j) = self.index(&action.node) {
                        self.at(
                            delay_ms,
                            Ev::Fault(Fault::Isolate {
                                target: Target::Node(j),
                                ms,
                            }),
                        );
                    }
                }
                _ => k += 1,
            }
        }
    }

    fn plan(&mut self, i: usize, based_on: u64) {
        let n = &self.nodes[i];
        let instances: usize = n
            .state
            .config
            .resources
            .iter()
            .map(|r| match r {
                ha_scheduler::model::Resource::Clone(c) => c
                    .meta
                    .get("clone-max")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(self.nodes.len()),
                _ => 1,
            })
            .sum();
        // Cost: ~0.5 ms per instance (10,000 instances: 5 s).
        let cost = 1 + instances as Millis / 2;
        let t = if instances > 500 {
            Transition::default() // too large to compute here; its cost is what matters
        } else {
            let mut status = n.state.status.clone();
            status.have_quorum = true;
            status.dc = Some(n.name.clone());
            let now_s = EPOCH + (self.now / 1000) as i64 + n.clock_off_s;
            let mut t = ha_scheduler::schedule(&n.state.config, &status, now_s);
            if !self.spec.design.stop_orphans {
                // The old unpack skipped resources not in the configuration.
                let mut configured = BTreeSet::new();
                primitive_ids(&n.state.config, &mut configured);
                for a in &mut t.actions {
                    let orphan = a.rsc.as_deref().is_some_and(|r| {
                        let base = r.split(':').next().unwrap_or(r);
                        !configured.contains(base) && !base.starts_with("st")
                    });
                    if orphan && a.kind == ActionKind::Stop {
                        a.kind = ActionKind::Notify; // never dispatched
                    }
                }
            }
            t
        };
        let boot = n.boot;
        if !self.spec.design.scheduler_off_runtime {
            // The scheduler ran on the runtime: the whole process stalled.
            let until = self.now + cost;
            let p = &mut self.nodes[i].paused_until;
            *p = (*p).max(until);
        }
        self.at(
            cost,
            Ev::PlanDone {
                node: i,
                boot,
                based_on,
                t: Rc::new(t),
            },
        );
    }

    fn lease_tick(&mut self, i: usize, input: LeaseInput) {
        let n = &self.nodes[i];
        let leader_has_majority = (n.role == Role::Leader).then(|| {
            let up = n
                .voters
                .iter()
                .filter(|&&v| {
                    v == i
                        || n.peer_heard
                            .get(&v)
                            .is_some_and(|t| self.now <= t + NODE_TIMEOUT_MS)
                })
                .count();
            up * 2 > n.voters.len()
        });
        let view = LeaseView {
            leader_has_majority,
            stops_without_quorum: true,
            two_node: self.spec.two_node,
        };
        let now = self.now;
        let effects = self.nodes[i].lease.step(now, input, &view);
        for e in effects {
            match e {
                LeaseEffect::StopAll => {
                    self.trace(|| format!("n{}: lease expired: stop all", i + 1));
                    self.stop_all(i);
                }
                LeaseEffect::Rejoin => self.record_stops(i),
            }
        }
    }

    /// Back in the majority after stopping everything: it records the
    /// stops it made (its own operations), so the status agrees again.
    fn record_stops(&mut self, i: usize) {
        let n = &self.nodes[i];
        let mut keys: BTreeSet<String> = n.agents.keys().cloned().collect();
        if let Some(ns) = n.state.status.nodes.get(&n.name) {
            keys.extend(ns.history.keys().cloned());
        }
        for rsc in keys {
            let action = Action {
                id: 0,
                kind: ActionKind::Stop,
                rsc: Some(rsc),
                node: self.nodes[i].name.clone(),
                reason: "no quorum".into(),
            };
            let update = self.op_update(i, &action, 0, 0);
            self.record_own(i, update, None);
        }
    }

    /// Stops everything this node's agents run, unrecorded.
    fn stop_all(&mut self, i: usize) {
        let design = self.spec.design;
        let n = &mut self.nodes[i];
        // The old lease waited on the per-resource lock a retrying record
        // (or a start in flight) held.
        let busy: BTreeSet<String> = n
            .exec
            .running
            .keys()
            .cloned()
            .chain(n.exec.awaiting.iter().map(|a| a.update.rsc.clone()))
            .collect();
        if design.down_after_stops {
            // In-flight actions are killed and answered as failed.
            let killed: Vec<Run> = std::mem::take(&mut n.exec.running).into_values().collect();
            n.exec.awaiting.clear();
            for r in killed {
                self.send(
                    i,
                    r.dc,
                    Msg::DispatchReply {
                        key: r.reply_key,
                        ok: false,
                    },
                );
            }
        }
        let n = &mut self.nodes[i];
        n.exec.monitors.clear();
        let keys: Vec<String> = n.agents.keys().cloned().collect();
        for k in keys {
            if !design.down_after_stops && busy.contains(&k) {
                continue;
            }
            let d = self.rng.range(20, 300);
            let boot = self.nodes[i].boot;
            self.at(
                d,
                Ev::AgentDone {
                    node: i,
                    boot: boot + 1_000_000, // unrecorded: no executor owns it
                    rsc: k,
                    rc: 0,
                    op_status: 0,
                },
            );
        }
    }

    // -----------------------------------------------------------------------
    // Executor and agents

    fn exec_dispatch(&mut self, i: usize, dc: usize, dc_boot: u64, term: u64, action: Action) {
        let design = self.spec.design;
        let key = ActionKey::of(&action);
        let mut action = action;
        action.rsc = action.rsc.map(|r| agent_key(&r).to_string());
        let rsc = action.rsc.clone().unwrap_or_default();
        let e = &mut self.nodes[i].exec;
        if design.fencing_tokens && term < e.max_term {
            self.refused("older DC's dispatch");
            self.send(i, dc, Msg::DispatchReply { key, ok: false });
            return;
        }
        e.max_term = e.max_term.max(term);
        if e.running.contains_key(&rsc) || e.awaiting.iter().any(|a| a.update.rsc == rsc) {
            self.send(i, dc, Msg::DispatchReply { key, ok: false });
            return;
        }
        let needs_pending = design.pending_ops
            && matches!(
                action.kind,
                ActionKind::Start
                    | ActionKind::Promote
                    | ActionKind::MigrateTo
                    | ActionKind::MigrateFrom
            );
        let mut run = Run {
            action: action.clone(),
            reply_key: key,
            dc,
            dc_boot,
            pending_uid: None,
            asked_at: self.now,
            began: false,
        };
        if needs_pending {
            let uid = self.uid();
            let update = self.op_update(i, &action, RC_PENDING, OP_STATUS_PENDING);
            run.pending_uid = Some(uid);
            self.nodes[i].exec.running.insert(rsc, run);
            self.forward_or_append(i, Cmd::Ops(vec![update]), uid, false);
        } else {
            self.nodes[i].exec.running.insert(rsc.clone(), run);
            self.begin(i, &rsc);
        }
    }

    fn op_update(&mut self, i: usize, action: &Action, rc: i32, op_status: i32) -> OpUpdate {
        let n = &mut self.nodes[i];
        n.exec.call += 1;
        let rsc = action.rsc.clone().unwrap_or_default();
        let (operation, interval_ms) = match &action.kind {
            ActionKind::Monitor { interval_ms } => ("monitor".to_string(), *interval_ms),
            k => (k.name(), 0),
        };
        let expected = match (&action.kind, interval_ms) {
            (ActionKind::Monitor { .. }, 0) => 7,
            (ActionKind::Monitor { .. }, _) if n.agents.get(&rsc) == Some(&Agent::Promoted) => 8,
            _ => 0,
        };
        let id = if interval_ms > 0 {
            format!("{rsc}_monitor_{interval_ms}")
        } else {
            format!("{rsc}_last_0")
        };
        OpUpdate {
            node: n.name.clone(),
            rsc,
            op: OpRecord {
                id,
                operation,
                interval_ms,
                call_id: n.exec.call,
                rc,
                op_status,
                expected_rc: Some(expected),
                last_rc_change: Some(EPOCH + (self.now / 1000) as i64),
                ..Default::default()
            },
        }
    }

    /// The agent starts its action.
    fn begin(&mut self, i: usize, rsc: &str) {
        let now = self.now;
        let Some(run) = self.nodes[i].exec.running.get_mut(rsc) else {
            return;
        };
        run.began = true;
        let kind = run.action.kind.clone();
        let n = &self.nodes[i];
        let hang = n.hang_until > now;
        let slow = n.slow_until > now;
        let (d, rc, op_status) = match kind {
            ActionKind::Start => {
                // A start in progress may already have the service half up.
                self.check_start_elsewhere(i, rsc);
                self.check_ordered_start(i, rsc);
                self.nodes[i].agents.insert(rsc.to_string(), Agent::Active);
                if hang {
                    (OP_TIMEOUT_MS, 1, 2)
                } else if slow {
                    (12_000, 0, 0)
                } else {
                    let fail = self.rng.chance(0.02);
                    (self.rng.range(20, 400), if fail { 1 } else { 0 }, 0)
                }
            }
            ActionKind::Stop | ActionKind::Promote | ActionKind::Demote => {
                (self.rng.range(20, 300), 0, 0)
            }
            _ => (self.rng.range(1, 30), 0, 0),
        };
        let boot = self.nodes[i].boot;
        self.at(
            d,
            Ev::AgentDone {
                node: i,
                boot,
                rsc: rsc.to_string(),
                rc,
                op_status,
            },
        );
    }

    /// What `rsc` is ordered after must have finished starting (its agent
    /// active, no start of it running) when `rsc`'s agent begins its start.
    fn check_ordered_start(&mut self, i: usize, rsc: &str) {
        let before = crate::dc::OrderGraph::of(&self.nodes[i].state.config).before(rsc);
        for p in before {
            let starting = self.nodes.iter().position(|n| {
                n.powered
                    && n.exec
                        .running
                        .get(&p)
                        .is_some_and(|r| r.began && r.action.kind == ActionKind::Start)
            });
            if let Some(j) = starting {
                let what = format!(
                    "{rsc} starts on n{} while {p}, ordered before it, is still starting on n{}",
                    i + 1,
                    j + 1
                );
                self.violate(Invariant::OrderedStart, rsc.to_string(), what);
            }
        }
    }

    fn check_start_elsewhere(&mut self, i: usize, rsc: &str) {
        if !self.primitives.contains(rsc) {
            return;
        }
        for j in 0..self.nodes.len() {
            if j != i
                && self.nodes[j].powered
                && (self.nodes[j].running || self.spec.stonith)
                && self.nodes[j]
                    .agents
                    .get(rsc)
                    .is_some_and(|a| *a != Agent::Stopped)
            {
                let what = format!(
                    "{rsc} starts on n{} while n{}'s agent has it active (n{} not fenced)",
                    i + 1,
                    j + 1,
                    j + 1
                );
                self.violate(Invariant::FencedBeforeRecovery, rsc.to_string(), what);
            }
        }
    }

    fn agent_done(&mut self, i: usize, boot: u64, rsc: String, rc: i32, op_status: i32) {
        if !self.nodes[i].powered {
            return;
        }
        if boot > 1_000_000 {
            // An unrecorded lease stop.
            if let Some(a) = self.nodes[i].agents.get_mut(&rsc) {
                *a = Agent::Stopped;
            }
            return;
        }
        let owned = self.nodes[i].boot == boot && self.nodes[i].running;
        let run = if owned {
            self.nodes[i].exec.running.get(&rsc).cloned()
        } else {
            None
        };
        let Some(run) = run else {
            return; // killed half-way, or its executor is gone: nothing recorded
        };
        let agent = self.nodes[i]
            .agents
            .get(&rsc)
            .copied()
            .unwrap_or(Agent::Stopped);
        let (new, rc) = match &run.action.kind {
            ActionKind::Start => (Agent::Active, rc),
            ActionKind::Stop => (Agent::Stopped, 0),
            ActionKind::Promote => (Agent::Promoted, 0),
            ActionKind::Demote => (Agent::Active, 0),
            ActionKind::Monitor { interval_ms } => {
                let r = match agent {
                    Agent::Stopped => 7,
                    Agent::Active => 0,
                    Agent::Promoted => 8,
                };
                if *interval_ms > 0 {
                    let next = self.now + interval_ms;
                    self.nodes[i]
                        .exec
                        .monitors
                        .insert(rsc.clone(), (*interval_ms, r, next));
                }
                (agent, r)
            }
            _ => (agent, rc),
        };
        self.nodes[i].agents.insert(rsc.clone(), new);
        if run.action.kind == ActionKind::Stop {
            self.nodes[i].exec.monitors.remove(&rsc);
        }
        self.nodes[i].exec.running.remove(&rsc);
        let update = self.op_update(i, &run.action, rc, op_status);
        self.record_own(i, update, Some((run.dc, run.reply_key.clone())));
    }

    /// Records one of this node's own operations through Raft (retried until
    /// applied here), answering `reply` (the DC and its key) once it is.
    fn record_own(&mut self, i: usize, update: OpUpdate, reply: Option<(usize, ActionKey)>) {
        let uid = self.uid();
        self.nodes[i].exec.awaiting.push(Await {
            uid,
            update: update.clone(),
            reply,
            last_try: self.now,
        });
        self.forward_or_append(i, Cmd::Ops(vec![update]), uid, false);
    }

    fn exec_tick(&mut self, i: usize) {
        let now = self.now;
        // Pending records applied: the agents may run.
        let ready: Vec<String> = self.nodes[i]
            .exec
            .running
            .iter()
            .filter(|(_, r)| !r.began)
            .filter(|(_, r)| {
                r.pending_uid
                    .is_some_and(|u| self.nodes[i].state.uids.contains(&u))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in ready {
            self.begin(i, &k);
        }
        // A pending record that cannot be committed: the action is refused.
        let stuck: Vec<(String, Run)> = self.nodes[i]
            .exec
            .running
            .iter()
            .filter(|(_, r)| !r.began && now > r.asked_at + 5000)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for (k, r) in stuck {
            self.nodes[i].exec.running.remove(&k);
            // The pending record may still commit later: it is superseded
            // by what is true, the action never ran (not running here).
            let probe = Action {
                kind: ActionKind::Monitor { interval_ms: 0 },
                ..r.action.clone()
            };
            let update = self.op_update(i, &probe, 7, 0);
            self.record_own(i, update, None);
            self.send(
                i,
                r.dc,
                Msg::DispatchReply {
                    key: r.reply_key,
                    ok: false,
                },
            );
        }
        // Records: answered once applied here, retried otherwise.
        let mut done = Vec::new();
        let mut retry = Vec::new();
        let node = &mut self.nodes[i];
        for (k, a) in node.exec.awaiting.iter_mut().enumerate() {
            if node.state.uids.contains(&a.uid) {
                done.push(k);
            } else if now >= a.last_try + 1000 {
                a.last_try = now;
                retry.push((a.update.clone(), a.uid));
            }
        }
        for k in done.into_iter().rev() {
            let a = self.nodes[i].exec.awaiting.remove(k);
            if let Some((dc, key)) = a.reply {
                self.send(i, dc, Msg::DispatchReply { key, ok: true });
            }
        }
        for (u, uid) in retry {
            self.forward_or_append(i, Cmd::Ops(vec![u]), uid, false);
        }
        // Recurring monitors report changes.
        let due: Vec<(String, u64, i32)> = self.nodes[i]
            .exec
            .monitors
            .iter()
            .filter(|(_, (_, _, next))| *next <= now)
            .map(|(k, (iv, rc, _))| (k.clone(), *iv, *rc))
            .collect();
        for (rsc, iv, last) in due {
            if self.nodes[i].exec.running.contains_key(&rsc) {
                continue;
            }
            let rc = match self.nodes[i].agents.get(&rsc) {
                Some(Agent::Active) => 0,
                Some(Agent::Promoted) => 8,
                _ => 7,
            };
            self.nodes[i]
                .exec
                .monitors
                .insert(rsc.clone(), (iv, rc, now + iv));
            if rc != last {
                let action = Action {
                    id: 0,
                    kind: ActionKind::Monitor { interval_ms: iv },
                    rsc: Some(rsc.clone()),
                    node: self.nodes[i].name.clone(),
                    reason: String::new(),
                };
                let update = self.op_update(i, &action, rc, 0);
                self.record_own(i, update, None);
            }
        }
    }

    // -----------------------------------------------------------------------
    // Fencing

    fn fence(&mut self, i: usize, term: u64, target: String, two_node: bool) {
        let Some(t) = self.index(&target) else { return };
        let boot = self.nodes[i].boot;
        let mut event = FencingEvent {
            target: target.clone(),
            action: "reboot".into(),
            succeeded: false,
            time: EPOCH + (self.now / 1000) as i64,
            origin: Some(self.nodes[i].name.clone()),
            ..Default::default()
        };
        if !two_node && self.spec.design.fencing_tokens {
            // Confirm leadership (a read-index round): a majority must
            // still follow this term.
            let n = &self.nodes[i];
            let confirmed = n.role == Role::Leader
                && n.term == term
                && n.voters
                    .iter()
                    .filter(|&&v| {
                        v == i
                            || (self.alive(v)
                                && self.nodes[v].term == term
                                && self.linked(i, v)
                                && self.linked(v, i)
                                && self.nodes[v].paused_until <= self.now)
                    })
                    .count()
                    * 2
                    > n.voters.len();
            if !confirmed {
                self.refused("fencing by a deposed DC");
                event.reason = Some("not the DC any more".into());
                self.at(
                    1,
                    Ev::FenceDone {
                        node: i,
                        boot,
                        event,
                        two_node,
                    },
                );
                return;
            }
        }
        // Invariant 7: only the current DC fences (the leader of the
        // highest term there has been).
        let current = self.leaders.iter().next_back().map(|(t, l)| (*t, *l));
        if !two_node && current != Some((term, i)) {
            let what = format!(
                "n{} fences {target} as the DC of term {term}, but the current DC is {:?}",
                i + 1,
                current.map(|(t, l)| format!("n{} (term {t})", l + 1))
            );
            self.violate(
                Invariant::OnlyCurrentDc,
                format!("fence {t} {}", self.now),
                what,
            );
        }
        match self.nodes[t].device {
            DeviceMode::Works => {
                self.fenced_in_cut.insert(t);
                self.check_both_fenced();
                self.at(400, Ev::PowerOff { node: t });
                let up = self.rng.range(3000, 8000);
                self.at(400 + up, Ev::PowerOn { node: t });
                event.succeeded = true;
                self.at(
                    500,
                    Ev::FenceDone {
                        node: i,
                        boot,
                        event,
                        two_node,
                    },
                );
            }
            DeviceMode::Fails | DeviceMode::Lies => {
                // A lie is caught by the verification (power status still on).
                event.reason = Some("device failed or did not power off".into());
                self.at(
                    600,
                    Ev::FenceDone {
                        node: i,
                        boot,
                        event,
                        two_node,
                    },
                );
            }
            DeviceMode::TimesOut => {
                event.reason = Some("timed out".into());
                self.at(
                    10_000,
                    Ev::FenceDone {
                        node: i,
                        boot,
                        event,
                        two_node,
                    },
                );
            }
        }
    }

    fn check_both_fenced(&mut self) {
        if self.spec.two_node && self.fenced_in_cut.len() == 2 {
            self.violate(
                Invariant::OneSurvivor,
                "both fenced".into(),
                "both nodes of a cut two-node cluster were fenced (no survivor)".into(),
            );
        }
    }

    // -----------------------------------------------------------------------
    // Two-node mode

    fn peer(&self, i: usize) -> usize {
        1 - i
    }

    fn priority(&self, viewer: usize, node: usize) -> i64 {
        let n = &self.nodes[viewer];
        let name = &self.nodes[node].name;
        n.state
            .status
            .nodes
            .get(name)
            .map(|ns| {
                ns.history
                    .values()
                    .filter(|h| {
                        h.ops
                            .iter()
                            .max_by_key(|o| o.call_id)
                            .is_some_and(|o| o.operation == "start" && o.rc == 0)
                    })
                    .count() as i64
            })
            .unwrap_or(0)
    }

    /// This side's delay in the fence race, by its own view of priorities.
    fn race_delay(&self, i: usize) -> Millis {
        let p = self.peer(i);
        two_node::fence_delay(
            self.spec.design,
            Side {
                id: i as u64,
                priority: self.priority(i, i),
            },
            Side {
                id: p as u64,
                priority: self.priority(i, p),
            },
            RACE,
        )
    }

    fn two_node_tick(&mut self, i: usize) {
        if !self.spec.two_node {
            return;
        }
        let p = self.peer(i);
        let now = self.now;
        // A node that was frozen (its ticks stopped) is the suspect one: it
        // yields, racing no sooner than the base delay after it runs again.
        let last = std::mem::replace(&mut self.nodes[i].two.last_tick, now);
        if last > 0 && now > last + 500 {
            self.nodes[i].two.yield_until = now + RACE.base_ms + RACE.priority_ms + NODE_TIMEOUT_MS;
        }
        let n = &self.nodes[i];
        if n.voters.len() == 1 {
            // The survivor; a booted one asks the peer.
            if n.two.waiting {
                self.send(i, p, Msg::Hello { single_voter: true });
            }
            return;
        }
        if n.two.waiting && !n.two.unblocked {
            self.send(
                i,
                p,
                Msg::Hello {
                    single_voter: false,
                },
            );
            return; // wait_for_all
        }
        let lost = now > n.two.last_peer + NODE_TIMEOUT_MS && now > n.booted_at + NODE_TIMEOUT_MS;
        if !lost {
            self.nodes[i].two.race_at = None;
            return;
        }
        if n.two.fencing {
            return;
        }
        let at = match n.two.race_at {
            Some(t) => t,
            None => {
                let d = if n.two.unblocked {
                    0
                } else {
                    self.race_delay(i)
                };
                self.nodes[i].two.race_at = Some(now + d);
                now + d
            }
        };
        if now >= at && now >= self.nodes[i].two.yield_until {
            self.nodes[i].two.fencing = true;
            let target = self.nodes[p].name.clone();
            self.fence(i, 0, target, true);
        }
    }

    fn two_node_fenced(&mut self, i: usize, event: FencingEvent) {
        self.nodes[i].two.fencing = false;
        if !event.succeeded {
            let p = self.peer(i);
            let lost = self.now > self.nodes[i].two.last_peer + NODE_TIMEOUT_MS;
            self.nodes[i].two.race_at = None;
            if lost {
                // Cannot fence: stop what runs here and retry.
                self.nodes[i].two.race_at = Some(self.now + 2000);
                if !self.nodes[i].two.stopped {
                    self.nodes[i].two.stopped = true;
                    self.stop_all(i);
                }
            }
            let _ = p;
            return;
        }
        // The confirmed survivor: single voter, durable record, recover.
        let n = &mut self.nodes[i];
        n.voters = BTreeSet::from([i]);
        n.two.survivor = true;
        n.two.waiting = false;
        n.two.unblocked = false;
        n.term += 1;
        n.role = Role::Follower;
        n.election_at = self.now;
        self.trace(|| format!("n{} takes over as the single voter", i + 1));
        self.become_leader(i);
        let term = self.nodes[i].term;
        self.propose_dc(i, term, DcWrite::Fencing { event });
    }

    fn unblock(&mut self, i: usize) {
        let n = &self.nodes[i];
        if !self.spec.two_node || !n.two.waiting || !self.alive(i) {
            return;
        }
        let peer = &self.nodes[self.peer(i)].name;
        let peer_known_down = n
            .state
            .status
            .nodes
            .get(peer)
            .is_some_and(|s| s.membership == Membership::Offline);
        let s = BootState {
            single_voter: n.voters.len() == 1,
            was_survivor: n.two.survivor,
            peer_known_down,
            peer_confirms_not_member: false,
        };
        match two_node::may_unblock(self.spec.design, s, false) {
            Ok(()) => {
                self.nodes[i].two.unblocked = true;
                self.nodes[i].two.waiting = false;
            }
            Err(_) => self.refused("unblock while the peer may have taken over"),
        }
    }

    /// A Hello from the booted peer reached `i`.
    fn hello(&mut self, i: usize, from: usize, peer_single: bool) {
        let n = &mut self.nodes[i];
        if !peer_single {
            n.two.peer_confirms = true;
        }
        if n.voters.len() == 1 && n.role == Role::Leader && !peer_single {
            // The survivor re-admits its fenced peer (learner, then voter).
            n.voters.insert(from);
            self.fenced_in_cut.clear();
            n.two.last_peer = self.now;
            n.peer_heard.insert(from, self.now);
            self.send(i, from, Msg::NotMember);
        }
    }

    /// The survivor says `i` is no longer a member: discard the Raft state and rejoin.
    fn rejoin_as_new(&mut self, i: usize, survivor: usize) {
        let n = &mut self.nodes[i];
        n.log = Rc::new(Vec::new());
        n.term = 0;
        n.voted = None;
        n.commit = 0;
        n.applied = 0;
        n.voters = BTreeSet::from([i, survivor]);
        n.two.last_peer = self.now;
        // A learner until the survivor's log reaches it: no race, no takeover.
        n.two.waiting = true;
        n.two.survivor = false;
        n.role = Role::Follower;
        n.election_at = self.now + 2000;
        self.apply_committed(i);
    }

    // -----------------------------------------------------------------------
    // Checkers

    fn check(&mut self) {
        // 1: primitives active on at most one node (agents' own state).
        let mut active: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut promoted = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.powered || (!n.running && !self.spec.stonith) {
                // Without fencing a node whose daemon died is assumed down,
                // as Pacemaker assumes: nothing can hold its agents to account.
                continue;
            }
            for (k, a) in &n.agents {
                if *a != Agent::Stopped && self.primitives.contains(k) {
                    active.entry(k.as_str()).or_default().push(i);
                }
                if *a == Agent::Promoted {
                    promoted += 1;
                }
            }
        }
        let doubles: Vec<(String, Vec<usize>)> = active
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (k, v) in doubles {
            let nodes: Vec<String> = v.iter().map(|i| format!("n{}", i + 1)).collect();
            let what = format!("{k} active on {} by their agents", nodes.join(" and "));
            self.violate(Invariant::SingleActive, k, what);
        }
        if promoted > 1 {
            self.violate(
                Invariant::PromotedMax,
                "ms".into(),
                format!("{promoted} instances of ms promoted (promoted-max 1)"),
            );
        }
        // 5: two clusters (two single-voter nodes) both running resources.
        if self.spec.two_node {
            let running: Vec<usize> = (0..2)
                .filter(|&i| {
                    self.nodes[i].powered
                        && self.nodes[i].agents.values().any(|a| *a != Agent::Stopped)
                })
                .collect();
            let split = self.nodes[0].voters.len() == 1
                && self.nodes[1].voters.len() == 1
                && self.alive(0)
                && self.alive(1);
            if split && running.len() == 2 {
                self.violate(
                    Invariant::OneSurvivor,
                    "two clusters".into(),
                    "both nodes are single-voter survivors running resources".into(),
                );
            }
        }
    }

    fn final_checks(&mut self) {
        // 9: orphans stopped (unless stop-orphan-resources=false).
        let Some(l) = self.leader() else { return };
        let config = self.nodes[l].state.config.clone();
        let mut configured = BTreeSet::new();
        primitive_ids(&config, &mut configured);
        let stop_orphans = config
            .properties
            .get("stop-orphan-resources")
            .is_none_or(|v| ha_scheduler::cib::is_true(v));
        let mut orphans = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for (k, a) in &n.agents {
                let clone_instance = k.starts_with("st");
                if n.powered && *a != Agent::Stopped && !configured.contains(k) && !clone_instance {
                    orphans.push((k.clone(), i));
                }
            }
        }
        // Once quiet, every configured primitive runs on exactly one node.
        for p in &configured {
            let on: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| {
                    self.nodes[i].powered
                        && self.nodes[i]
                            .agents
                            .get(p)
                            .is_some_and(|a| *a != Agent::Stopped)
                })
                .collect();
            // Failures ban a resource from a node until cleanup, as in
            // Pacemaker (a group member also where a member before it
            // failed): only a resource some healthy node may run counts.
            let status = &self.nodes[l].state.status;
            let needs = members_up_to(&config, p);
            let runnable = (0..self.nodes.len()).any(|i| {
                self.alive(i)
                    && status.nodes.get(&self.nodes[i].name).is_none_or(|ns| {
                        !ns.transient_attributes.keys().any(|k| {
                            needs
                                .iter()
                                .any(|m| k.starts_with(&format!("fail-count-{m}#")))
                        })
                    })
            });
            if on.is_empty() && runnable {
                let believed =
                    ha_scheduler::current_placement(&self.nodes[l].state.config, status, EPOCH)
                        .resources
                        .get(p.as_str())
                        .map(|r| r.nodes.join(","))
                        .unwrap_or_default();
                let hist: Vec<String> = status
                    .nodes
                    .iter()
                    .filter_map(|(n, ns)| ns.history.get(p.as_str()).map(|h| (n, h)))
                    .map(|(n, h)| {
                        let ops: Vec<String> = h
                            .ops
                            .iter()
                            .map(|o| format!("{} rc={} st={}", o.id, o.rc, o.op_status))
                            .collect();
                        format!("{n}: {}", ops.join(" "))
                    })
                    .collect();
                let execs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        format!(
                            "{} running {:?} awaiting {:?}",
                            n.name,
                            n.exec.running.keys().collect::<Vec<_>>(),
                            n.exec
                                .awaiting
                                .iter()
                                .map(|a| &a.update.rsc)
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                let dcs: Vec<String> = self.nodes[l]
                    .dc
                    .in_flight()
                    .map(|k| format!("{k:?}"))
                    .collect();
                let mut st = status.clone();
                st.have_quorum = true;
                let t = ha_scheduler::schedule(&self.nodes[l].state.config, &st, EPOCH + 50);
                let acts: Vec<String> = t
                    .actions
                    .iter()
                    .filter(|a| a.rsc.as_deref() == Some(p.as_str()))
                    .map(|a| format!("{} {} on {}", a.kind.name(), p, a.node))
                    .chain(t.notes.iter().cloned())
                    .collect();
                let attrs: Vec<String> = status
                    .nodes
                    .iter()
                    .map(|(n, ns)| format!("{n} {:?} {:?}", ns.membership, ns.transient_attributes))
                    .collect();
                let hist = [hist, execs, dcs, acts, attrs].concat();
                let what = format!(
                    "{p} runs nowhere {} ms after everything healed (the DC believes: \
                     [{believed}]; history: {})",
                    self.spec.end_ms - self.spec.heal_ms,
                    hist.join("; ")
                );
                self.violate(Invariant::StatusAgrees, p.clone(), what);
            }
        }
        if stop_orphans {
            for (k, i) in orphans {
                let what = format!("{k} is not configured but runs on n{}", i + 1);
                self.violate(Invariant::OrphansStop, k, what);
            }
        }
    }
}

/// The agent (and history) key of an instance: anonymous clone instances
/// (`st:N`) run and are recorded under their base id, as the real executor does.
fn agent_key(rsc: &str) -> &str {
    match rsc.split_once(':') {
        Some((base, _)) if base == "st" => base,
        _ => rsc,
    }
}

fn resource_id(r: &ha_scheduler::model::Resource) -> &str {
    use ha_scheduler::model::Resource;
    match r {
        Resource::Primitive(p) => &p.id,
        Resource::Group(g) => &g.id,
        Resource::Clone(c) => &c.id,
    }
}

fn msg_kind(m: &Msg) -> u64 {
    match m {
        Msg::Append { .. } => 0,
        Msg::AppendOk { .. } => 1,
        Msg::AppendReject { .. } => 2,
        Msg::Vote { .. } => 3,
        Msg::VoteReply { .. } => 4,
        Msg::Forward { .. } => 5,
        Msg::Dispatch { .. } => 6,
        Msg::DispatchReply { .. } => 7,
        Msg::Query { .. } => 8,
        Msg::InFlight { .. } => 9,
        Msg::Hello { .. } => 10,
        Msg::NotMember => 11,
        Msg::HandOver { .. } => 12,
    }
}

fn msg_name(m: &Msg) -> String {
    match m {
        Msg::Append { term, commit, log } => {
            format!("append term={term} commit={commit} len={}", log.len())
        }
        Msg::AppendOk { term, len, .. } => format!("append-ok term={term} len={len}"),
        Msg::AppendReject { term } => format!("append-reject term={term}"),
        Msg::Vote { term, .. } => format!("vote? term={term}"),
        Msg::VoteReply { term, granted } => format!("vote term={term} granted={granted}"),
        Msg::Forward { cmd, .. } => format!("forward {}", cmd_name(cmd)),
        Msg::Dispatch { term, action, .. } => format!(
            "dispatch term={term} {} {}",
            action.kind.name(),
            action.rsc.as_deref().unwrap_or("")
        ),
        Msg::DispatchReply { key, ok } => format!("done {} {} ok={ok}", key.kind, key.rsc),
        Msg::Query { term } => format!("in-flight? term={term}"),
        Msg::HandOver { term } => format!("hand-over term={term}"),
        Msg::InFlight { ops, .. } => format!("in-flight {}", ops.len()),
        Msg::Hello { single_voter } => format!("hello single_voter={single_voter}"),
        Msg::NotMember => "not-a-member".into(),
    }
}

fn cmd_name(c: &Cmd) -> String {
    match c {
        Cmd::Noop => "noop".into(),
        Cmd::Dc { term, write } => format!("dc term={term} {write:?}"),
        Cmd::Ops(ops) => ops
            .iter()
            .map(|o| format!("{}@{} {} rc={}", o.rsc, o.node, o.op.operation, o.op.rc))
            .collect::<Vec<_>>()
            .join(", "),
        Cmd::Config(_) => "config".into(),
    }
}

fn short(ev: &Ev) -> String {
    match ev {
        Ev::AgentDone { node, rsc, rc, .. } => format!("agent n{} {rsc} done rc={rc}", node + 1),
        Ev::PlanDone {
            node, based_on, t, ..
        } => {
            format!(
                "plan n{} v{based_on}: {} actions",
                node + 1,
                t.actions.len()
            )
        }
        Ev::FenceDone { node, event, .. } => format!(
            "fence by n{} of {} succeeded={}",
            node + 1,
            event.target,
            event.succeeded
        ),
        Ev::PowerOff { node } => format!("power off n{}", node + 1),
        Ev::PowerOn { node } => format!("power on n{}", node + 1),
        Ev::Restart { node } => format!("restart n{}", node + 1),
        Ev::Fault(f) => format!("fault {f:?}"),
        Ev::Heal(h) => format!("heal {h:?}"),
        Ev::DispatchTimeout { key, .. } => format!("dispatch timeout {} {}", key.kind, key.rsc),
        Ev::HealAll => "heal all".into(),
        Ev::StoppedHere { node, .. } => format!("n{} stopped everything (unclean DC)", node + 1),
        Ev::Tick(_) | Ev::Deliver { .. } => String::new(),
    }
}
