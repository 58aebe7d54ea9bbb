//! The named scenarios (one per hole issue 12 found on the running
//! cluster, each with the mechanism that closes it) and the random
//! schedules `scripts/sim.sh` runs.

use super::cluster::{run, DeviceMode, Fault, Outcome, Spec, Target, Trigger};
use super::rng::Rng;
use crate::{Design, Millis};

/// A named scenario: which mechanism of [`Design`] closes it, and its spec.
pub struct Scenario {
    pub name: &'static str,
    /// The [`Design`] field whose absence opens the hole.
    pub mechanism: &'static str,
    pub what: &'static str,
    pub spec: fn(Design, u64) -> Spec,
}

fn spec(design: Design, seed: u64, two_node: bool, stonith: bool) -> Spec {
    Spec {
        seed,
        design,
        two_node,
        stonith,
        faults: Vec::new(),
        triggers: Vec::new(),
        heal_ms: 40_000,
        end_ms: 60_000,
        trace: false,
    }
}

/// The eight holes of issue 12 and the ninth the VM lab found.
pub const SCENARIOS: [Scenario; 9] = [
    Scenario {
        name: "stale-dc-writes",
        mechanism: "fencing_tokens",
        what: "SIGSTOP the DC for 2.6 s, then SIGCONT: the deposed DC's membership writes must not commit",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, true);
            s.faults.push((8_000, Fault::Pause { target: Target::Leader, ms: 2_600 }));
            s
        },
    },
    Scenario {
        name: "in-flight-across-failover",
        mechanism: "pending_ops",
        what: "a 12 s start dispatched, the DC kill -9ed 0.2 s later: never active on two nodes",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, false);
            s.faults.push((6_000, Fault::AgentSlow { node: 1, ms: 30_000 }));
            s.faults.push((6_100, Fault::Move { rsc: "r1".into(), to: 1 }));
            s.triggers.push(Trigger::CrashDcAfterDispatch {
                rsc: "r1".into(),
                node: 1,
                delay_ms: 200,
                down_ms: 20_000,
            });
            s
        },
    },
    Scenario {
        name: "orphans-keep-running",
        mechanism: "stop_orphans",
        what: "a configuration without a running resource, then a rename: orphans stop, the renamed runs once",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, true);
            s.faults.push((8_000, Fault::RemoveResource { rsc: "r2".into() }));
            s.faults.push((12_000, Fault::RenameResource { rsc: "r3".into(), to: "r3b".into() }));
            s
        },
    },
    Scenario {
        name: "two-node-double-takeover",
        mechanism: "survivor_record",
        what: "A fences B; B boots into wait_for_all, the operator unblocks it: one survivor, not two",
        spec: |d, seed| {
            let mut s = spec(d, seed, true, true);
            s.faults.push((8_000, Fault::Isolate { target: Target::Node(1), ms: 40_000 }));
            s.faults.push((25_000, Fault::Unblock { node: 1 }));
            s.faults.push((26_000, Fault::Unblock { node: 0 }));
            s.heal_ms = 80_000;
            s.end_ms = 95_000;
            s
        },
    },
    Scenario {
        name: "quorum-loss-without-stonith",
        mechanism: "down_after_stops",
        what: "a follower cut off while a start runs there, fencing disabled: its resources move only once stopped",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, false);
            s.faults.push((6_000, Fault::AgentSlow { node: 2, ms: 30_000 }));
            s.faults.push((6_100, Fault::Move { rsc: "r1".into(), to: 2 }));
            s.triggers.push(Trigger::IsolateAfterDispatch {
                rsc: "r1".into(),
                node: 2,
                delay_ms: 2_000,
                ms: 30_000,
            });
            s
        },
    },
    Scenario {
        name: "node-cert-writes-fencing",
        mechanism: "commands_bound_to_node",
        what: "an agent on n1 records n2 as fenced through its node certificate: refused",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, true);
            s.faults.push((8_000, Fault::RogueFencing { from: 0, target: 1 }));
            s
        },
    },
    Scenario {
        name: "lagging-tie-break",
        mechanism: "agreed_tie_break",
        what: "a switchover committed but not applied on the follower when the link is cut: one side fences",
        spec: |d, seed| {
            let mut s = spec(d, seed, true, true);
            s.faults.push((6_000, Fault::Move { rsc: "r1".into(), to: 1 }));
            s.triggers.push(Trigger::CutAfterCommitOfStart { rsc: "r1".into(), ms: 30_000 });
            s
        },
    },
    Scenario {
        name: "scheduler-blocks-runtime",
        mechanism: "scheduler_off_runtime",
        what: "an admin sets clone-max=10000: rejected, and planning never stalls the node",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, true);
            s.faults.push((8_000, Fault::HugeClone));
            s
        },
    },
    Scenario {
        name: "group-start-pending",
        mechanism: "ordered_dispatch",
        what: "a group moved to a node whose agents are slow (12 s starts): its second member starts only after the first",
        spec: |d, seed| {
            let mut s = spec(d, seed, false, true);
            s.faults.push((6_000, Fault::AgentSlow { node: 0, ms: 30_000 }));
            s.faults.push((6_100, Fault::Move { rsc: "g".into(), to: 0 }));
            s
        },
    },
];

pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// A random schedule from `seed`: cluster kind and 1–5 faults in the first
/// 30 s, everything healed at 35 s, checked until 60 s (a dispatch lost in a
/// cut is given up after its RPC deadline, 20 s).
pub fn random(design: Design, seed: u64) -> Spec {
    let mut r = Rng::new(seed ^ 0x5eed_5eed);
    let two_node = r.chance(0.3);
    let stonith = r.chance(0.8);
    let n = if two_node { 2 } else { 3 };
    let mut s = spec(design, seed, two_node, stonith);
    s.heal_ms = 35_000;
    s.end_ms = 60_000;
    let count = r.range(1, 5);
    for _ in 0..count {
        let t: Millis = r.range(3_000, 30_000);
        let node = r.range(0, n as u64 - 1) as usize;
        let target = match r.range(0, 2) {
            0 => Target::Leader,
            1 => Target::Follower,
            _ => Target::Node(node),
        };
        let ms = r.range(300, 6_000);
        let f = match r.range(0, 17) {
            0 => Fault::Crash {
                target,
                down_ms: r.range(100, 8_000),
            },
            1 => Fault::Pause { target, ms },
            2 | 3 => Fault::Isolate { target, ms },
            4 => Fault::OneWay {
                from: node,
                to: (node + 1) % n,
                ms,
            },
            5 => Fault::Lossy {
                drop_pct: r.range(5, 40) as u8,
                dup_pct: r.range(0, 20) as u8,
                extra_delay_ms: r.range(0, 200),
                ms,
            },
            6 => Fault::ClockJump {
                target,
                by_s: r.range(0, 7200) as i64 - 3600,
            },
            7 => Fault::Device {
                node,
                mode: *r
                    .pick(&[DeviceMode::Fails, DeviceMode::TimesOut, DeviceMode::Lies])
                    .unwrap_or(&DeviceMode::Fails),
                ms: r.range(1_000, 20_000),
            },
            8 => Fault::AgentDies {
                node,
                rsc: format!("r{}", r.range(1, 3)),
            },
            9 => Fault::AgentHangs { node, ms },
            10 => Fault::AgentSlow { node, ms },
            11 => Fault::RemoveResource {
                rsc: format!("r{}", r.range(1, 3)),
            },
            12 => Fault::RenameResource {
                rsc: format!("r{}", r.range(1, 3)),
                to: "renamed".into(),
            },
            13 => Fault::InvalidConfig,
            14 => Fault::RogueFencing {
                from: node,
                target: (node + 1) % n,
            },
            15 => Fault::Unblock { node },
            16 => Fault::Move {
                rsc: format!("r{}", r.range(1, 3)),
                to: node,
            },
            _ => Fault::HugeClone,
        };
        s.faults.push((t, f));
    }
    s
}

/// Runs the random schedule of `seed`.
pub fn run_random(design: Design, seed: u64, trace: bool) -> Outcome {
    let mut s = random(design, seed);
    s.trace = trace;
    run(s)
}
