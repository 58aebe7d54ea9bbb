//! The node's DRBD watcher against DRBD 8.4.11's own `events2` output
//! (recorded in the VM lab, a split brain included; see
//! drbd-driver/tests/fixtures/SOURCES.md): a stand-in `drbdsetup` replays
//! the recording (no kernel DRBD on this host; the real one runs in the VM
//! lab). The first run exits after the recording, so the watcher must
//! respawn it; every node's status then shows node1's r0: Primary, the
//! split brain, and the command that resolves it.

mod common;

use std::time::{Duration, Instant};

use common::*;

const STREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/drbd/node1.events2_timestamps_statistics_stream.txt"
);

#[test]
fn status_shows_drbd_state_and_split_brain_from_events2() {
    let scratch = tempfile::tempdir().unwrap();
    let runs = scratch.path().join("runs");
    let fake = scratch.path().join("drbdsetup");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1\" = events2 ] || exit 20\necho \"$*\" >> {runs}\ncat {STREAM}\n\
             # the second run stays, as the real one does\n\
             [ $(wc -l < {runs}) -ge 2 ] && exec sleep 600\nexit 0\n",
            runs = runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let marker = scratch.path().join("proc-drbd");
    std::fs::write(&marker, "version: 8.4.11\n").unwrap();
    let c = Cluster::start_with(2, |cfg| {
        if cfg.name == "node1" {
            cfg.drbd.drbdsetup = fake.clone();
            cfg.drbd.module_marker = marker.clone();
        }
    });
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let start = Instant::now();
    let v = loop {
        let out = c.hactl(&["status", "--output", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let respawned = std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2;
        if respawned && v["drbd"].as_array().is_some_and(|d| !d.is_empty()) {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "runs {:?}; status {v:#}",
            std::fs::read_to_string(&runs).ok()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().next(),
        Some("events2 --timestamps --statistics")
    );
    let d = v["drbd"].as_array().unwrap();
    assert_eq!(d.len(), 1, "only node1 has DRBD: {d:#?}");
    let r0 = &d[0];
    assert_eq!(r0["node"], "node1");
    assert_eq!(r0["name"], "r0");
    assert_eq!(r0["role"], "Primary", "{r0:#}");
    assert_eq!(r0["split_brain"], true, "{r0:#}");
    assert_eq!(r0["devices"][0]["disk"], "UpToDate", "{r0:#}");
    assert!(r0["recovery"]
        .as_str()
        .unwrap()
        .contains("hactl drbd resolve r0 --discard-on NODE"));
    // The human status says the same.
    let text = stdout(&c.hactl(&["status"]));
    assert!(text.contains("DRBD:"), "{text}");
    assert!(text.contains("r0 role:Primary"), "{text}");
    assert!(
        text.contains("SPLIT-BRAIN") && text.contains("on node1"),
        "{text}"
    );
    assert!(
        text.contains("hactl drbd resolve r0 --discard-on NODE"),
        "{text}"
    );
}

/// Both nodes replay their own recording of the same split brain; the
/// stand-in `drbdadm` records what it is asked and, once both sides have
/// run `connect`, appends the reconnection DRBD would report to both
/// event streams. `hactl drbd resolve r0 --discard-on node2` runs the
/// documented steps on each node and waits until the split brain is gone.
#[test]
fn drbd_resolve_runs_the_manual_recovery_on_each_side() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let marker = dir.join("proc-drbd");
    std::fs::write(&marker, "version: 8.4.11\n").unwrap();
    let exe = |p: &std::path::Path, text: String| {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    let reconnect = "create connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting role:Unknown\n\
change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary\n\
create peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:UpToDate\n";
    std::fs::write(dir.join("reconnect"), reconnect).unwrap();
    for n in ["node1", "node2"] {
        let live = dir.join(format!("{n}.live"));
        std::fs::write(&live, "").unwrap();
        let stream = format!(
            "{}/tests/fixtures/drbd/{n}.events2_timestamps_statistics_stream.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        exe(
            &dir.join(format!("drbdsetup-{n}")),
            format!(
                "#!/bin/sh\ncat {stream}\nexec tail -n +1 -f {}\n",
                live.display()
            ),
        );
        exe(
            &dir.join(format!("drbdadm-{n}")),
            format!(
                "#!/bin/sh\nd={d}\necho \"$*\" >> $d/{n}.drbdadm.log\n\
                 case \"$*\" in\n\
                 --version) echo DRBDADM_VERSION_CODE=0x091600; echo DRBD_KERNEL_VERSION_CODE=0x08040b; echo DRBD_KERNEL_VERSION=8.4.11;;\n\
                 *connect\\ r0) touch $d/connected-{n}\n\
                   if [ -e $d/connected-node1 ] && [ -e $d/connected-node2 ]; then\n\
                     cat $d/reconnect >> $d/node1.live; cat $d/reconnect >> $d/node2.live; fi;;\n\
                 esac\nexit 0\n",
                d = dir.display()
            ),
        );
    }
    let c = Cluster::start_with(2, |cfg| {
        let n = cfg.name.clone();
        cfg.drbd.drbdsetup = dir.join(format!("drbdsetup-{n}"));
        cfg.drbd.drbdadm = dir.join(format!("drbdadm-{n}"));
        cfg.drbd.module_marker = marker.clone();
    });
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let start = Instant::now();
    loop {
        let out = c.hactl(&["status", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let split = v["drbd"]
            .as_array()
            .map(|d| d.iter().filter(|e| e["split_brain"] == true).count());
        if split == Some(2) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Refused: an unknown resource, a bad name (nothing is run).
    let out = c.hactl(&["drbd", "resolve", "r9", "--discard-on", "node2"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no node reports a DRBD resource 'r9'"),
        "{}",
        stderr(&out)
    );
    let out = c.hactl(&["drbd", "resolve", "r0;reboot", "--discard-on", "node2"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("DRBD resource 'r0;reboot'"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("node2.drbdadm.log").exists());

    let out = c.hactl(&[
        "drbd",
        "resolve",
        "r0",
        "--discard-on",
        "node2",
        "--wait",
        "30",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("resolved in"), "{text}");
    let log = |n: &str| std::fs::read_to_string(dir.join(format!("{n}.drbdadm.log"))).unwrap();
    assert_eq!(
        log("node2").lines().collect::<Vec<_>>(),
        [
            "--version",
            "secondary r0",
            "disconnect r0",
            "-- --discard-my-data connect r0"
        ]
    );
    assert_eq!(log("node1").lines().collect::<Vec<_>>(), ["connect r0"]);
    let v: serde_json::Value =
        serde_json::from_slice(&c.hactl(&["status", "--output", "json"]).stdout).unwrap();
    for e in v["drbd"].as_array().unwrap() {
        assert_eq!(e["split_brain"], false, "{e:#}");
        assert!(e.get("recovery").is_none(), "{e:#}");
    }
    // Not in split brain any more: refused.
    let out = c.hactl(&["drbd", "resolve", "r0", "--discard-on", "node2"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not in split brain"),
        "{}",
        stderr(&out)
    );
}
