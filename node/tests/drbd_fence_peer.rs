//! DRBD's fence-peer handler (`ha-node` as `ha-drbd-fence-peer`) against a
//! real three-node cluster, run as DRBD runs it (`DRBD_RESOURCE`,
//! `DRBD_PEER`, the node's configuration), with a stand-in `drbdadm` for
//! `dstate` (no kernel DRBD on this host; the VM lab runs the real one):
//! a peer that is still a member is outdated by the constraint (exit 4)
//! and the unfence removes it; a peer that crashed is fenced by the
//! cluster through its BMC first, then the constraint is placed (exit 7).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Bmc;

fn crm(bmcs: &[Bmc]) -> String {
    let mut s = String::from("node node1\nnode node2\nnode node3\n");
    for (i, b) in bmcs.iter().enumerate() {
        let n = format!("node{}", i + 1);
        s += &format!(
            "primitive fence-{n} stonith:external/ipmi params hostname={n} ipaddr=127.0.0.1 \
             ipport={} userid=admin passwd=secret interface=lanplus pcmk_host_list={n}\n\
             location fence-{n}-elsewhere fence-{n} -inf: {n}\n",
            b.port()
        );
    }
    s + "primitive store_drbd ocf:linbit:drbd params drbd_resource=r0 \\\n\
         \x20 op monitor interval=29s role=Promoted op monitor interval=31s role=Unpromoted\n\
         clone ms-store_drbd store_drbd meta promotable=true notify=true promoted-max=1 clone-max=2 target-role=Stopped\n\
         property stonith-enabled=true stonith-action=off stonith-timeout=20s\n"
}

/// Runs the handler as DRBD would on `node` (its configuration `cfg`).
fn handler(bin: &Path, name: &str, cfg: &Path, peer: &str) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = Command::new(bin.join(name))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("DRBD_RESOURCE", "r0")
        .env("DRBD_PEER", peer)
        .env("HA_NODE_CONFIG", cfg)
        .env("HA_DRBD_FENCE_TIMEOUT", "60")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn fence_constraint(c: &Cluster) -> Option<String> {
    let out = c.hactl(&["config", "show"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The constraint and its continuation lines.
    let text = stdout(&out);
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("drbd-fence-by-handler-r0-ms-store_drbd"));
    let first = lines.next()?;
    let mut block = first.to_string();
    let mut more = first.ends_with('\\');
    for l in lines {
        if !more {
            break;
        }
        block.push(' ');
        block.push_str(l.trim());
        more = l.ends_with('\\');
    }
    Some(block)
}

#[test]
fn fence_peer_outdates_a_reachable_peer_and_waits_for_the_fencing_of_a_lost_one() {
    let scratch = tempfile::tempdir().unwrap();
    let bin: PathBuf = scratch.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["ha-drbd-fence-peer", "ha-drbd-unfence-peer"] {
        std::os::unix::fs::symlink(HA_NODE, bin.join(name)).unwrap();
    }
    let drbdadm = bin.join("drbdadm");
    std::fs::write(
        &drbdadm,
        "#!/bin/sh\n[ \"$1\" = dstate ] && echo UpToDate/DUnknown\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &drbdadm,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let mut c = Cluster::start(3);
    let bmcs = c.bmcs(3);
    let rt = rt();
    let v = rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let dc = v["dc"].as_str().unwrap().to_string();
    let crm_file = c.dir.join("drbd.crm");
    std::fs::write(&crm_file, crm(&bmcs)).unwrap();
    let out = c.hactl(&["config", "load", crm_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The handler runs on a node that is not the DC; its peer is the other
    // non-DC node (the DC fences, and survives).
    let others: Vec<String> = c.names.iter().filter(|n| **n != dc).cloned().collect();
    let (me, peer) = (others[0].clone(), others[1].clone());
    let my_cfg = c.configs[c.names.iter().position(|n| *n == me).unwrap()].clone();

    // 1. Only the replication link broke: exit 4, the constraint placed.
    let (code, err, _) = handler(&bin, "ha-drbd-fence-peer", &my_cfg, &peer);
    assert_eq!(code, 4, "{err}");
    let line = fence_constraint(&c).unwrap_or_else(|| panic!("no constraint; {err}"));
    assert!(
        line.contains("Promoted") || line.contains("Master"),
        "{line}"
    );
    assert!(line.contains(&format!("#uname ne {me}")), "{line}");
    // Placing it again changes nothing (DRBD may call twice).
    let (code, err, _) = handler(&bin, "ha-drbd-fence-peer", &my_cfg, &peer);
    assert_eq!(code, 4, "{err}");
    // The unfence (after the resync, on the peer) lifts it.
    let peer_cfg = c.configs[c.names.iter().position(|n| *n == peer).unwrap()].clone();
    let (code, err, _) = handler(&bin, "ha-drbd-unfence-peer", &peer_cfg, &me);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fence_constraint(&c), None);

    // 2. The peer crashed: the handler waits until the cluster fenced it
    // through its BMC, then answers 7.
    let killed_at = Instant::now();
    c.kill9(&peer);
    let (code, err, took) = handler(&bin, "ha-drbd-fence-peer", &my_cfg, &peer);
    assert_eq!(code, 7, "{err}");
    eprintln!(
        "fence-peer answered 7 after {took:?} ({:?} after the crash)",
        killed_at.elapsed()
    );
    let v: serde_json::Value =
        serde_json::from_slice(&c.hactl(&["status", "--output", "json"]).stdout).unwrap();
    let fenced = v["fencing_history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["target"] == peer.as_str() && e["succeeded"] == true);
    assert!(fenced, "answered 7 before the fencing was recorded: {v:#}");
    assert!(fence_constraint(&c).is_some());

    // 3. Lifted again once the peer is back in sync.
    let (code, err, _) = handler(&bin, "ha-drbd-unfence-peer", &my_cfg, &peer);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fence_constraint(&c), None);
    drop(bmcs);
}
