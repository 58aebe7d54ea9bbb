//! The DC across a failover, with real `ha-node` processes and real agents
//! (issue 12): a DC paused past the node timeout (SIGSTOP, SIGCONT) writes
//! nothing once deposed (its term is its fencing token), and an action in
//! flight when the DC is `kill -9`ed runs to completion, is recorded, and is
//! not run again or elsewhere by the new DC.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// These tests pause or kill the DC and time what follows against
/// node-timeout (1.6 s): run one at a time, so that three clusters on a
/// 2-core machine do not starve each other's elections (CI saw followers'
/// leases run out before a new leader was elected when they ran together).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(c: &Cluster, text: &str) {
    let p = c.dir.join("cfg.crm");
    std::fs::write(&p, text).unwrap();
    let out = c.hactl(&["config", "load", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn status(c: &Cluster) -> Option<serde_json::Value> {
    let out = c.hactl(&["status", "--output", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn wait_for(
    c: &Cluster,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = serde_json::Value::Null;
    loop {
        if let Some(v) = status(c) {
            if pred(&v) {
                return v;
            }
            last = v;
        }
        assert!(
            start.elapsed() < timeout,
            "{what}: not after {timeout:?}: {last:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn membership(v: &serde_json::Value, node: &str) -> String {
    v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == node))
        .and_then(|n| n["membership"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// How many `_last_0` records the status shows on `node`.
fn history_len(v: &serde_json::Value, node: &str) -> usize {
    v["last_ops"]
        .as_array()
        .map(|a| a.iter().filter(|o| o["node"] == node).count())
        .unwrap_or(0)
}

fn log_of(c: &Cluster, node: &str) -> String {
    let raw = std::fs::read_to_string(c.dir.join(node).join("ha-node.log")).unwrap_or_default();
    // Without ANSI colours (a terminal may have been attached).
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling our own child process.
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Hole 1: the DC is paused 2.6 s (past the 1.6 s node timeout) and
/// resumed. The deposed DC's view says the others are lost; whatever it
/// proposes from that view must change nothing: the healthy nodes are never
/// marked down (or unclean, or fenced) and keep their history.
#[test]
fn a_paused_dc_resumed_after_it_was_deposed_writes_nothing() {
    let _serial = one_at_a_time();
    paused_dc(false);
}

/// As above with STONITH enabled (no fence device: a node the deposed DC
/// wrongly marked unclean would stay unclean, or be fenced with one).
#[test]
fn a_paused_dc_resumed_after_it_was_deposed_marks_nobody_unclean() {
    let _serial = one_at_a_time();
    paused_dc(true);
}

fn paused_dc(stonith: bool) {
    let c = Cluster::start(3);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let mut cfg =
        format!("node node1\nnode node2\nnode node3\nproperty stonith-enabled={stonith}\n");
    for n in 1..=3 {
        cfg += &format!(
            "primitive d{n} ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
             location d{n}-pref d{n} 100: node{n}\n"
        );
    }
    load(&c, &cfg);
    let v = wait_for(&c, Duration::from_secs(60), "each dummy on its node", |v| {
        (1..=3).all(|n| on(v, &format!("d{n}")) == [format!("node{n}")])
            && (1..=3).all(|n| history_len(v, &format!("node{n}")) >= 3)
    });
    let dc = v["dc"].as_str().unwrap().to_string();
    let healthy: Vec<String> = c.names.iter().filter(|n| **n != dc).cloned().collect();
    let baseline: BTreeMap<String, usize> = healthy
        .iter()
        .map(|n| (n.clone(), history_len(&v, n)))
        .collect();
    let dc_pid = c.pid(c.names.iter().position(|n| *n == dc).unwrap());

    // Sample every 50 ms, from before the pause until well after.
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let sampler = {
        let (stop, violations) = (stop.clone(), violations.clone());
        let (healthy, baseline) = (healthy.clone(), baseline.clone());
        let client = c.client();
        std::thread::spawn(move || {
            let rt = common::rt();
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(500), client.status()).await
                });
                if let Ok(Ok(v)) = v {
                    samples += 1;
                    for n in &healthy {
                        let m = membership(&v, n);
                        if m != "online" {
                            violations
                                .lock()
                                .unwrap()
                                .push(format!("{n} is {m} (DC {})", v["dc"]));
                        }
                        let h = history_len(&v, n);
                        if h < baseline[n] {
                            violations.lock().unwrap().push(format!(
                                "{n}'s history went from {} to {h} records",
                                baseline[n]
                            ));
                        }
                    }
                    if v["fencing_history"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|e| healthy.iter().any(|n| e["target"] == n.as_str()))
                    }) {
                        violations.lock().unwrap().push(format!(
                            "a healthy node was fenced: {}",
                            v["fencing_history"]
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    signal(dc_pid, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2600));
    signal(dc_pid, libc::SIGCONT);
    // The deposed DC rejoins; everything settles again.
    let t0 = Instant::now();
    let v = wait_for(
        &c,
        Duration::from_secs(60),
        "settled after the pause",
        |v| {
            c.names.iter().all(|n| membership(v, n) == "online")
                && (1..=3).all(|n| on(v, &format!("d{n}")) == [format!("node{n}")])
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let refused = log_of(&c, &dc)
        .lines()
        .filter(|l| l.contains("no longer the DC") || l.contains("deposed DC"))
        .count();
    eprintln!(
        "DC {dc} paused 2.6 s; new DC {}; settled {:?} after SIGCONT; {samples} samples; \
         {refused} writes of the deposed DC refused (its log)",
        v["dc"],
        t0.elapsed()
    );
    assert!(samples > 20, "too few status samples: {samples}");
    let mut violations = violations.lock().unwrap();
    // A follower whose own quorum lease ran out before the new leader was
    // elected (a slow election on a loaded machine) stops its resources and
    // rejoins, which wipes its history by design (no-quorum-policy=stop):
    // not a write of the deposed DC.
    for n in &c.names {
        if log_of(&c, n).contains("no quorum: stopping this node's resources") {
            let before = violations.len();
            violations.retain(|v| !v.starts_with(&format!("{n}'s history went from")));
            if violations.len() < before {
                eprintln!("{n} lost quorum itself (its lease) and rejoined: its history reset is not counted");
            }
        }
    }
    if !violations.is_empty() {
        // What each node said about quorum, losses and rejoins: a follower
        // whose lease ran out before the new leader was elected (a slow
        // election on a loaded machine) stops and rejoins too.
        for n in &c.names {
            let said: Vec<String> = log_of(&c, n)
                .lines()
                .filter(|l| {
                    [
                        "no quorum",
                        "declared",
                        "rejoin",
                        "deposed",
                        "lost",
                        "Joined",
                    ]
                    .iter()
                    .any(|k| l.contains(k))
                })
                .map(str::to_string)
                .collect();
            eprintln!("--- {n}\n{}", said.join("\n"));
        }
    }
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        violations.iter().take(5).collect::<Vec<_>>()
    );
}

/// Where `ocf:pacemaker:Dummy` keeps its state on `node` (`HA_VARRUN`).
fn pcmk_dummy_state(dir: &Path, node: &str, rsc: &str) -> PathBuf {
    dir.join(node)
        .join(format!("data/agents/run/Dummy-{rsc}.state"))
}

/// Hole 2: stonith off; a start that takes 12 s is dispatched and the DC is
/// `kill -9`ed 0.2 s later. The start runs to completion on its node (it is
/// not killed with the dropped RPC), is recorded (pending first), and the new
/// DC neither runs it again nor starts it elsewhere: sampled from the agents'
/// own state files every 25 ms, never active on two nodes; at the end the
/// status agrees with the agents; the agent's start ran exactly once.
#[test]
fn an_action_in_flight_when_the_dc_dies_completes_and_is_not_run_again() {
    let _serial = one_at_a_time();
    let mut c = Cluster::start(3);
    let rt = rt();
    let client = c.client();
    let v = rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let dc = v["dc"].as_str().unwrap().to_string();
    let others: Vec<String> = c.names.iter().filter(|n| **n != dc).cloned().collect();
    let target = others[0].clone();
    let envfile = c.dir.join("dummy-env.log");
    load(
        &c,
        &format!(
            "node node1\nnode node2\nnode node3\nproperty stonith-enabled=false\n\
             primitive d ocf:pacemaker:Dummy params op_sleep=12 envfile={} \
             op start timeout=60s op stop timeout=60s op monitor interval=0 timeout=40s\n\
             location d-pref d 100: {target}\nlocation d-not-dc d -inf: {dc}\n",
            envfile.display()
        ),
    );
    // The probes take 12 s too; then the start is dispatched to `target`.
    let t0 = Instant::now();
    loop {
        let log = log_of(&c, &dc);
        if log.lines().any(|l| {
            l.contains("dispatch") && l.contains("action=start") && l.contains("resource=d ")
        }) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no start dispatched: {}",
            log_of(&c, &dc)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let sampler = {
        let (stop, violations, dir) = (stop.clone(), violations.clone(), c.dir.clone());
        let others = others.clone();
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let active: Vec<&String> = others
                    .iter()
                    .filter(|n| pcmk_dummy_state(&dir, n, "d").exists())
                    .collect();
                if active.len() > 1 {
                    violations
                        .lock()
                        .unwrap()
                        .push(format!("d active on {active:?}"));
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            samples
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    c.kill9(&dc);
    let killed = Instant::now();
    // Quiet: a new DC, d active on one node by its agent and by the status,
    // nothing pending, for 3 s.
    let mut quiet_since: Option<Instant> = None;
    let mut shown_in_progress = false;
    let v = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "not quiet 120 s after the DC died: {:#}",
            status(&c).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
        let Some(v) = status(&c) else { continue };
        // The start recorded as pending is under way, not a failure.
        shown_in_progress |= v["in_progress"].as_array().is_some_and(|a| {
            a.iter()
                .any(|o| o["resource"] == "d" && o["operation"] == "start")
        });
        assert!(
            !v["failed_actions"]
                .as_array()
                .is_some_and(|f| f.iter().any(|a| a["rc"] == 193)),
            "a pending operation listed as failed: {v:#}"
        );
        let agents: Vec<String> = others
            .iter()
            .filter(|n| pcmk_dummy_state(&c.dir, n, "d").exists())
            .cloned()
            .collect();
        let settled = v["dc"].is_string()
            && v["dc"] != dc.as_str()
            && agents.len() == 1
            && on(&v, "d") == agents
            && v["pending_actions"].as_array().is_none_or(|a| a.is_empty());
        if !settled {
            quiet_since = None;
            continue;
        }
        if quiet_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(3) {
            break v;
        }
    };
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    assert!(
        shown_in_progress,
        "the 12 s start was never shown as an operation in progress"
    );
    let env = std::fs::read_to_string(&envfile).unwrap_or_default();
    let starts = env.lines().filter(|l| l.starts_with("### start @")).count();
    let stops = env.lines().filter(|l| l.starts_with("### stop @")).count();
    let start_op = v["last_ops"].as_array().and_then(|a| {
        a.iter()
            .find(|o| o["node"] == target.as_str() && o["resource"] == "d")
            .cloned()
    });
    eprintln!(
        "DC {dc} killed 0.2 s after dispatching the 12 s start of d to {target}; quiet after \
         {:?}; d on {:?} (new DC {}); {samples} samples; agent starts {starts}, stops {stops}; \
         {target}'s record: {start_op:?}",
        killed.elapsed(),
        on(&v, "d"),
        v["dc"],
    );
    for n in &others {
        for l in log_of(&c, n)
            .lines()
            .filter(|l| l.contains("in flight for an earlier DC"))
        {
            eprintln!("{n}: {l}");
        }
    }
    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        violations.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(on(&v, "d"), std::slice::from_ref(&target), "{v:#}");
    assert_eq!(
        starts, 1,
        "the start in flight must run to completion, once, and not again: {starts} starts"
    );
    let op = start_op.expect("the start's record on its node");
    assert_eq!(
        (op["operation"].as_str(), op["rc"].as_i64()),
        (Some("start"), Some(0))
    );
}

/// Hole 6: the channel `crm_attribute` uses (`Admin.Propose` with the
/// node's own certificate) takes only the node's own operations and
/// attributes: node1's certificate cannot record node2 fenced, nor node2's
/// operations or attributes; its own attribute still goes through.
#[test]
fn a_node_certificate_proposes_only_for_its_own_node() {
    use ha_node::config::NodeConfig;
    use ha_node::network::Channels;
    use ha_node::pb;
    use ha_raft_store::{Command, OpUpdate, Response};
    use ha_scheduler::model::{FencingEvent, OpRecord};

    let c = Cluster::start(3);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    load(
        &c,
        "node node1\nnode node2\nnode node3\nproperty stonith-enabled=false\n",
    );
    wait_for(&c, Duration::from_secs(30), "all online", |v| {
        c.names.iter().all(|n| membership(v, n) == "online")
    });
    let cfg = NodeConfig::load(&c.configs[0]).unwrap();
    let tls = cfg.tls.files().client().unwrap();
    let propose = |cmd: Command| {
        rt.block_on(async {
            let ch = Channels::new(tls.clone()).get(cfg.advertise()).unwrap();
            let mut a = pb::admin_client::AdminClient::new(ch);
            let data = serde_json::to_vec(&cmd).unwrap();
            a.propose(tonic::Request::new(pb::Bytes { data }))
                .await
                .map(|r| serde_json::from_slice::<Response>(&r.into_inner().data).unwrap())
        })
    };
    let fenced = Command::RecordFencing {
        event: FencingEvent {
            target: "node2".into(),
            action: "reboot".into(),
            succeeded: true,
            ..Default::default()
        },
    };
    let op = |node: &str| Command::RecordOps {
        ops: vec![OpUpdate {
            node: node.into(),
            resource: "x".into(),
            class: "ocf".into(),
            provider: Some("heartbeat".into()),
            agent: "Dummy".into(),
            op: OpRecord {
                id: "x_last_0".into(),
                operation: "start".into(),
                expected_rc: Some(0),
                ..Default::default()
            },
        }],
    };
    let attr = |node: &str| Command::SetNodeAttributes {
        node: node.into(),
        transient: [("probe-me".to_string(), Some("1".to_string()))].into(),
        permanent: Default::default(),
    };
    for cmd in [fenced, op("node2"), attr("node2")] {
        let e = propose(cmd.clone()).expect_err("refused");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{cmd:?}: {e}");
        eprintln!("refused: {}", e.message());
    }
    // node1's own attribute goes through. Its own startup `Joined` (which
    // wipes its transient attributes, by design) may still be on its way
    // when "all online" holds (the DC's `Joined` made it online): seen in
    // CI once. So the attribute is proposed again until it is seen.
    let start = Instant::now();
    let v = loop {
        assert!(matches!(propose(attr("node1")), Ok(Response::Applied(_))));
        std::thread::sleep(Duration::from_millis(500));
        let v = status(&c).unwrap();
        if v["node_attributes"]["node1"]["transient"]["probe-me"] == "1"
            || start.elapsed() > Duration::from_secs(20)
        {
            break v;
        }
    };
    assert_eq!(membership(&v, "node2"), "online", "{v:#}");
    assert_eq!(v["fencing_history"], serde_json::json!([]), "{v:#}");
    assert_eq!(
        v["node_attributes"]["node1"]["transient"]["probe-me"], "1",
        "{v:#}"
    );
    assert!(v["node_attributes"]["node2"]["transient"]["probe-me"].is_null());
}
