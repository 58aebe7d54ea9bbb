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
