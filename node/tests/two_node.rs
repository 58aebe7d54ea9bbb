//! Two-node mode with a real BMC per node (each `ipmi_sim`'s power off
//! SIGKILLs its `ha-node`): when one node is lost the other fences it
//! (confirmed off), rewrites the membership to itself alone, records the
//! fencing and recovers the resources; a config committed before is still
//! there; the fenced node, restarted, finds it was removed, discards its
//! Raft state and rejoins as a learner, then a voter.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Bmc;
use ha_node::config::ClientConfig;

fn config(bmcs: &[Bmc], passwords: [&str; 2], extra: &str) -> String {
    let mut s = String::from("node node1\nnode node2\n");
    for (i, b) in bmcs.iter().enumerate() {
        let n = format!("node{}", i + 1);
        s += &format!(
            "primitive fence-{n} stonith:external/ipmi params hostname={n} ipaddr=127.0.0.1 \
             ipport={} userid=admin passwd={} interface=lanplus pcmk_host_list={n}\n\
             location fence-{n}-elsewhere fence-{n} -inf: {n}\n",
            b.port(),
            passwords[i]
        );
    }
    s += "primitive d1 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
          primitive d2 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
          location d1-pref d1 100: node2\nlocation d2-pref d2 100: node1\n\
          property stonith-enabled=true stonith-action=off two-node-fence-delay=3s\n";
    s += extra;
    s
}

fn status_via(cfg: &PathBuf) -> Option<serde_json::Value> {
    let out = std::process::Command::new(HACTL)
        .arg("--config")
        .arg(cfg)
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn wait(
    cfg: &PathBuf,
    secs: u64,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = serde_json::Value::Null;
    loop {
        if let Some(v) = status_via(cfg) {
            if pred(&v) {
                return v;
            }
            last = v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: {last:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client config that talks to one node only.
fn only(c: &Cluster, i: usize) -> PathBuf {
    let mut cfg = ClientConfig::load(&c.client_config).unwrap();
    cfg.endpoints = vec![cfg.endpoints[i].clone()];
    let p = c.dir.join(format!("only-{}.toml", c.names[i]));
    cfg.save(&p).unwrap();
    p
}

fn unblock(cfg: &PathBuf, peer_is_off: bool) -> std::process::Output {
    let mut cmd = std::process::Command::new(HACTL);
    cmd.arg("--config").arg(cfg).args(["quorum", "unblock"]);
    if peer_is_off {
        cmd.arg("--i-know-the-peer-is-off");
    }
    cmd.output().unwrap()
}

fn print_logs(c: &Cluster) {
    for n in &c.names {
        let log = std::fs::read_to_string(c.dir.join(n).join("ha-node.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(120).collect();
        eprintln!(
            "--- {n}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Issue 12, hole 4: node1 fences node2 and becomes the cluster alone.
/// node2 boots while node1 cannot be reached (frozen): it waits
/// (wait_for_all), its status does not advise a plain unblock, a plain
/// `hactl quorum unblock` is refused with the reason, and it never fences
/// node1. Once node1 answers, node2 learns it is no longer a member and
/// rejoins.
#[test]
fn a_fenced_node_booting_without_its_survivor_refuses_to_take_over_and_rejoins() {
    let mut c = Cluster::start(2);
    let bmcs = c.bmcs(2);
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let crm = c.dir.join("two.crm");
    std::fs::write(&crm, config(&bmcs, ["secret", "secret"], "")).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = c.client_config.clone();
    wait(&all, 60, "placed", |v| {
        v["pending_count"] == 0 && on(v, "d1") == ["node2"] && on(v, "d2") == ["node1"]
    });
    // SAFETY: signalling our own children.
    unsafe { libc::kill(c.pid(1) as i32, libc::SIGSTOP) };
    let n1 = only(&c, 0);
    let v = wait(&n1, 60, "node1 alone with both resources", |v| {
        v["quorum"] == true && on(v, "d1") == ["node1"] && on(v, "d2") == ["node1"]
    });
    assert_eq!(voters(&v), ["node1"]);
    assert!(!bmcs[1].power_is_on(), "node2 powered off through its BMC");
    assert!(
        c.dir.join("node1/data/two-node-survivor.json").exists(),
        "the survivor remembers it durably"
    );

    // The survivor freezes (the link is still cut, as node2 sees it); node2
    // boots with its old membership (node1, node2).
    let node1_pid = c.pid(0);
    unsafe { libc::kill(node1_pid as i32, libc::SIGSTOP) };
    let mut child = c.children[1].take().unwrap();
    let _ = child.wait();
    // Its agents' volatile state went with the power.
    let rsctmp = c.dir.join("node2/data/agents/rsctmp");
    let _ = std::fs::remove_dir_all(&rsctmp);
    bmcs[1].set_power(true).unwrap();
    let child = c.spawn(1);
    bmcs[1].set_pid(Some(child.id())).unwrap();
    c.children[1] = Some(child);
    let n2 = only(&c, 1);
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let v = wait(&n2, 30, "node2 says it waits for node1", |v| {
            v["notes"].to_string().contains("wait_for_all")
        });
        let notes = v["notes"].to_string();
        assert!(notes.contains("may have fenced"), "{notes}");
        assert!(
            !notes.contains("`hactl quorum unblock`"),
            "the hint advises a plain unblock: {notes}"
        );
        let out = unblock(&n2, false);
        assert!(!out.status.success(), "plain unblock accepted on node2");
        let err = stderr(&out);
        assert!(
            err.contains("node1 may have fenced node2") && err.contains("two survivors"),
            "{err}"
        );
        // Longer than two-node-fence-delay (3 s): node2 fences nothing.
        std::thread::sleep(Duration::from_secs(5));
        assert!(bmcs[0].power_is_on(), "node2 fenced the survivor");
        assert!(bmcs[0].killed().is_empty());
        let v = status_via(&n2).expect("node2 answers");
        assert_ne!(v["quorum"], true, "{v:#}");
        let running = std::fs::read_dir(&rsctmp)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".state"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(running, 0, "node2 runs resources while waiting");
    }));
    unsafe { libc::kill(node1_pid as i32, libc::SIGCONT) };
    if let Err(e) = checked {
        print_logs(&c);
        std::panic::resume_unwind(e)
    }
    // node1 answers: node2 finds it was removed and rejoins.
    let rejoined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait(&n1, 60, "node2 rejoined as a voter", |v| {
            voters(v) == ["node1", "node2"]
                && v["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["name"] == "node2" && n["state"] == "online")
                && v["pending_count"] == 0
        })
    }));
    if let Err(e) = rejoined {
        print_logs(&c);
        std::panic::resume_unwind(e)
    }
    assert!(bmcs[0].power_is_on());
    wait(&all, 60, "d1 back on node2", |v| {
        on(v, "d1") == ["node2"] && v["pending_count"] == 0
    });
    let v = wait(&n1, 30, "the survivor record gone", |_| {
        !c.dir.join("node1/data/two-node-survivor.json").exists()
    });
    assert!(v["quorum_mode"].as_str().unwrap().starts_with("two-node"));
}

#[test]
fn the_survivor_fences_rewrites_membership_recovers_and_the_fenced_node_rejoins() {
    let mut c = Cluster::start(2);
    let bmcs: Vec<Bmc> = c.bmcs(2);
    let rt = rt();
    let v = rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    assert!(
        v["quorum_mode"].as_str().unwrap().starts_with("two-node"),
        "{v:#}"
    );
    let crm = c.dir.join("two.crm");
    std::fs::write(&crm, config(&bmcs, ["secret", "secret"], "")).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = c.client_config.clone();
    wait(&all, 60, "placed", |v| {
        v["pending_count"] == 0 && on(v, "d1") == ["node2"] && on(v, "d2") == ["node1"]
    });
    // A write acknowledged before the loss must survive it.
    let out = c.hactl(&["resource", "ban", "d2", "node2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // node2 (the higher id: not preferred) freezes; node1 fences it at once.
    let t0 = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.pid(1) as i32, libc::SIGSTOP) };
    let n1 = only(&c, 0);
    let v = wait(&n1, 60, "node1 alone with both resources", |v| {
        v["quorum"] == true && on(v, "d1") == ["node1"] && on(v, "d2") == ["node1"]
    });
    let took = t0.elapsed();
    assert!(!bmcs[1].power_is_on(), "node2 powered off through its BMC");
    assert_eq!(bmcs[1].killed(), vec![c.pid(1)]);
    let fenced = v["fencing_history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "node2" && e["succeeded"] == true)
        .cloned()
        .expect("the fencing recorded");
    assert_eq!(fenced["origin"], "node1");
    assert_eq!(
        voters(&v),
        ["node1"],
        "membership rewritten to the survivor"
    );
    // d1's start on node1 (the agent's own state file) came after the fence.
    // The status counts a pending start as active: wait for the agent.
    let state = c.dir.join("node1/data/agents/rsctmp/Dummy-d1.state");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = std::fs::metadata(&state)
        .and_then(|m| m.modified())
        .expect("d1 runs on node1")
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let fenced_at = fenced["completed_ms"].as_i64().unwrap();
    assert!(
        started > fenced_at,
        "d1 started at {started} ms, the fence completed at {fenced_at} ms"
    );
    let shown = stdout(&c.hactl(&["config", "show"]));
    assert!(
        shown.contains("cli-ban-d2-on-node2"),
        "the committed ban survived: {shown}"
    );
    eprintln!("node2 frozen -> node1 alone with everything in {took:?}");

    // node2 comes back (its BMC powers on, the process starts again): it
    // was removed, so it discards its Raft state and rejoins.
    let mut child = c.children[1].take().unwrap();
    let _ = child.wait();
    bmcs[1].set_power(true).unwrap();
    let child = c.spawn(1);
    bmcs[1].set_pid(Some(child.id())).unwrap();
    c.children[1] = Some(child);
    let logs = |c: &Cluster| {
        for n in &c.names {
            let log =
                std::fs::read_to_string(c.dir.join(n).join("ha-node.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(120).collect();
            eprintln!(
                "--- {n}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    };
    let rejoined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait(&n1, 60, "node2 rejoined as a voter", |v| {
            voters(v) == ["node1", "node2"]
                && v["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["name"] == "node2" && n["state"] == "online")
                && v["pending_count"] == 0
        })
    }));
    let v = match rejoined {
        Ok(v) => v,
        Err(e) => {
            logs(&c);
            std::panic::resume_unwind(e)
        }
    };
    assert!(v["quorum_mode"].as_str().unwrap().starts_with("two-node"));
    // d1 prefers node2 again once it is back.
    wait(&all, 60, "d1 back on node2", |v| {
        on(v, "d1") == ["node2"] && v["pending_count"] == 0
    });
}

/// wait_for_all: a node that boots alone into a two-node cluster neither
/// fences its peer nor runs anything until it has seen the peer — or an
/// operator says `hactl quorum unblock --i-know-the-peer-is-off` (a plain
/// unblock is refused), after which it fences the peer first and goes on
/// alone.
#[test]
fn a_node_booting_alone_waits_for_its_peer_until_unblocked() {
    let mut c = Cluster::start(2);
    let bmcs: Vec<Bmc> = c.bmcs(2);
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let crm = c.dir.join("two.crm");
    std::fs::write(&crm, config(&bmcs, ["secret", "secret"], "")).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = c.client_config.clone();
    wait(&all, 60, "placed", |v| {
        v["pending_count"] == 0 && on(v, "d1") == ["node2"] && on(v, "d2") == ["node1"]
    });
    // Both nodes go down (a power cut of the whole cluster); node1 boots
    // alone, its agents' volatile state gone with the power.
    c.kill9("node1");
    c.kill9("node2");
    let rsctmp = c.dir.join("node1/data/agents/rsctmp");
    let _ = std::fs::remove_dir_all(&rsctmp);
    let child = c.spawn(0);
    bmcs[0].set_pid(Some(child.id())).unwrap();
    c.children[0] = Some(child);
    let n1 = only(&c, 0);
    let v = wait(&n1, 30, "node1 says it waits for node2", |v| {
        v["notes"].to_string().contains("wait_for_all")
    });
    assert_ne!(v["quorum"], true, "{v:#}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(bmcs[1].power_is_on(), "node2 was fenced without unblock");
    let running = std::fs::read_dir(&rsctmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(running, 0, "node1 started resources while waiting");

    // node2 may have taken over (node1 cannot tell): a plain unblock is
    // refused; the override that names the risk goes on.
    let out = unblock(&n1, false);
    assert!(!out.status.success(), "plain unblock accepted");
    assert!(stderr(&out).contains("may have fenced"), "{}", stderr(&out));
    let out = unblock(&n1, true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("both run"), "{}", stdout(&out));
    let v = wait(&n1, 60, "node1 alone after unblock", |v| {
        v["quorum"] == true && on(v, "d1") == ["node1"] && on(v, "d2") == ["node1"]
    });
    assert!(
        !bmcs[1].power_is_on(),
        "node2 fenced before node1 went on alone"
    );
    assert_eq!(voters(&v), ["node1"]);
}

/// The takeover needs no binary on disk (Raft restarts in place): node1 runs from a copy
/// of `ha-node` that is deleted (as a package upgrade or a rebuild
/// replaces it) before node2 freezes; node1 still fences node2, rewrites
/// the membership and runs everything (it used to fail on `No such file or
/// directory` forever).
#[test]
fn the_takeover_works_after_the_binary_on_disk_was_removed() {
    let mut c = Cluster::start(2);
    let bmcs = c.bmcs(2);
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    // node1 again, from a copy of the binary.
    c.kill9("node1");
    let copy = c.dir.join("ha-node-copy");
    std::fs::copy(HA_NODE, &copy).unwrap();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(c.dir.join("node1/ha-node.log"))
        .unwrap();
    let child = std::process::Command::new(&copy)
        .arg("--config")
        .arg(&c.configs[0])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    bmcs[0].set_pid(Some(child.id())).unwrap();
    c.children[0] = Some(child);
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let crm = c.dir.join("two.crm");
    std::fs::write(&crm, config(&bmcs, ["secret", "secret"], "")).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = c.client_config.clone();
    wait(&all, 60, "placed", |v| {
        v["pending_count"] == 0 && on(v, "d1") == ["node2"] && on(v, "d2") == ["node1"]
    });
    std::fs::remove_file(&copy).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.pid(1) as i32, libc::SIGSTOP) };
    let n1 = only(&c, 0);
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait(&n1, 60, "node1 alone with both resources", |v| {
            v["quorum"] == true
                && voters(v) == ["node1"]
                && on(v, "d1") == ["node1"]
                && on(v, "d2") == ["node1"]
        })
    }));
    if let Err(e) = done {
        print_logs(&c);
        // CI shows the start of the panic message only: the survivor's
        // fencing and restart lines and the BMC's calls come first.
        let log = std::fs::read_to_string(c.dir.join("node1/ha-node.log")).unwrap_or_default();
        let key: Vec<&str> = log
            .lines()
            .filter(|l| {
                [
                    "two-node",
                    "fenc",
                    "restart",
                    "frozen",
                    "yield",
                    "cannot",
                    "membership",
                ]
                .iter()
                .any(|k| l.contains(k))
            })
            .collect();
        let calls = std::fs::read_to_string(bmcs[1].dir().join("calls")).unwrap_or_default();
        let what = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "node1's two-node/fencing log lines (last 40 of {}):\n{}\nnode2's BMC calls: {}\n{what}",
            key.len(),
            key[key.len().saturating_sub(40)..].join("\n"),
            calls.trim()
        );
    }
    assert!(!bmcs[1].power_is_on(), "node2 powered off through its BMC");
    let log = std::fs::read_to_string(c.dir.join("node1/ha-node.log")).unwrap();
    assert!(!log.contains("cannot restart"), "{log}");
    // Raft restarted in place: the process (its executor, what it runs)
    // went on, so it did not rejoin and re-probe its own resources.
    let after = log
        .split_once("Raft restarted in place")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no in-place Raft restart: {log}"));
    assert!(
        !after.contains("ha-node up"),
        "the process restarted: {log}"
    );
}

/// A two-node node whose process was frozen is the suspect one: when it runs
/// again it yields in the fence race (no fencing for either side's race
/// delay plus node-timeout), so it does not power off the peer that is
/// fine. Here node1 (the lower id, preferred: delay 0) is frozen for 7 s;
/// node2 cannot fence it (its device for node1 has a wrong password); node1
/// wakes, sees no answer from node2 yet, and must not fence it.
#[test]
fn a_node_waking_from_a_freeze_yields_instead_of_fencing_its_healthy_peer() {
    let c = Cluster::start(2);
    let bmcs = c.bmcs(2);
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let crm = c.dir.join("two.crm");
    std::fs::write(&crm, config(&bmcs, ["wrong-password", "secret"], "")).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = c.client_config.clone();
    wait(&all, 60, "placed", |v| {
        v["pending_count"] == 0 && on(v, "d1") == ["node2"] && on(v, "d2") == ["node1"]
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.pid(0) as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        bmcs[0].power_is_on(),
        "node2 could not fence node1 (wrong password)"
    );
    // SAFETY: as above.
    unsafe { libc::kill(c.pid(0) as i32, libc::SIGCONT) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(12) {
        if !bmcs[1].power_is_on() {
            print_logs(&c);
            panic!(
                "node1 woke from its freeze and fenced its healthy peer node2 after {:?}",
                t0.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let v = wait(&all, 60, "both nodes online again", |v| {
        v["quorum"] == true
            && v["pending_count"] == 0
            && on(v, "d1").len() == 1
            && on(v, "d2").len() == 1
    });
    assert!(
        !v["fencing_history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|e| e["succeeded"] == true)),
        "nobody was fenced: {:#}",
        v["fencing_history"]
    );
    let log = std::fs::read_to_string(c.dir.join("node1").join("ha-node.log")).unwrap();
    assert!(
        log.contains("this process was frozen"),
        "node1 noticed its freeze"
    );
}
