//! A stop fails on the DC itself, with STONITH: the plan fences the DC, and
//! a DC does not fence itself. It hands over (asks another member to stand
//! for election); the new DC fences the old one through its real BMC
//! (`ipmi_sim`, whose power-off SIGKILLs that `ha-node`), and only then is
//! the resource started elsewhere. Before, the fence of the DC waited for
//! ever and everything ordered after it with it (VM lab: nfsd's stop failed
//! on the DC during a failback; NFS stayed down).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Bmc;
use ha_node::config::{ClientConfig, NodeConfig};

/// An OCF agent whose stop fails while `$HA_RSCTMP/fail-stop` exists.
const STOP_FAILS: &str = r#"#!/bin/sh
state="$HA_RSCTMP/StopFails-$OCF_RESOURCE_INSTANCE.state"
case "$1" in
start) touch "$state"; exit 0 ;;
stop)
    if [ -e "$HA_RSCTMP/fail-stop" ]; then
        echo "ocf-exit-reason:stop refused (test)"
        exit 1
    fi
    rm -f "$state"; exit 0 ;;
monitor) [ -e "$state" ] && exit 0; exit 7 ;;
validate-all) exit 0 ;;
meta-data)
    cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="StopFails" version="1.0">
<version>1.0</version>
<shortdesc lang="en">A stop that fails on demand (test)</shortdesc>
<longdesc lang="en">Stop fails while $HA_RSCTMP/fail-stop exists.</longdesc>
<parameters/>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="2s"/>
<action name="meta-data" timeout="5s"/>
<action name="validate-all" timeout="5s"/>
</actions>
</resource-agent>
XML
    exit 0 ;;
*) exit 3 ;;
esac
"#;

/// An OCF root with Debian's agents and `ocf:test:StopFails`.
fn ocf_root(dir: &Path) -> PathBuf {
    let root = dir.join("ocf");
    let test = root.join("resource.d/test");
    std::fs::create_dir_all(&test).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/ocf/resource.d/heartbeat",
        root.join("resource.d/heartbeat"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", root.join("lib")).unwrap();
    let agent = test.join("StopFails");
    std::fs::write(&agent, STOP_FAILS).unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    root
}

#[test]
fn a_dc_whose_stop_failed_hands_over_and_is_fenced_by_the_new_dc() {
    let scratch = tempfile::tempdir().unwrap();
    let root = ocf_root(scratch.path());
    let mut c = Cluster::start_with(3, |cfg| cfg.ocf_root = root.clone());
    let bmcs: Vec<Bmc> = c.bmcs(3);
    let rt = rt();
    let v = rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let dc = v["dc"].as_str().unwrap().to_string();
    let dc_ix = c.names.iter().position(|n| *n == dc).unwrap();
    let other = c.names.iter().find(|n| **n != dc).unwrap().clone();
    // The survivors' endpoints only (the old DC is powered off).
    let mut cfg = ClientConfig::load(&c.client_config).unwrap();
    cfg.endpoints.remove(dc_ix);
    let survivors = c.dir.join("survivors.toml");
    cfg.save(&survivors).unwrap();

    let mut crm = String::from("node node1\nnode node2\nnode node3\n");
    crm += &ipmi_fence_devices(&bmcs, |_| "secret".into());
    crm += &format!(
        "primitive f1 ocf:test:StopFails op monitor interval=2s timeout=20s\n\
         location f1-pref f1 100: {dc}\n\
         property stonith-enabled=true stonith-action=off stonith-timeout=20s\n"
    );
    let file = c.dir.join("hand-over.crm");
    std::fs::write(&file, crm).unwrap();
    let out = c.hactl(&["config", "load", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_status(&survivors, Duration::from_secs(60), "f1 on the DC", |v| {
        v["pending_count"] == 0 && on(v, "f1") == [dc.as_str()]
    });

    // The DC's stop of f1 will fail; moving f1 asks for that stop.
    let data_dir = NodeConfig::load(&c.configs[dc_ix]).unwrap().data_dir;
    let rsctmp = data_dir.join("agents/rsctmp");
    assert!(rsctmp.is_dir(), "no {}", rsctmp.display());
    std::fs::write(rsctmp.join("fail-stop"), "").unwrap();
    let t0 = Instant::now();
    let out = c.hactl(&["resource", "move", "f1", &other]);
    assert!(out.status.success(), "{}", stderr(&out));

    let v = wait_status(
        &survivors,
        Duration::from_secs(90),
        "the old DC fenced by a new DC, f1 on a survivor",
        |v| {
            let fenced = v["fencing_history"].as_array().is_some_and(|h| {
                h.iter()
                    .any(|e| e["target"] == dc.as_str() && e["succeeded"] == true)
            });
            let f1 = on(v, "f1");
            fenced && v["dc"].as_str().is_some_and(|d| d != dc) && f1.len() == 1 && f1[0] != dc
        },
    );
    let took = t0.elapsed();
    // Fenced through its BMC: the old DC's process is gone.
    let child = c.children[dc_ix].as_mut().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{dc} still runs after its fencing: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = v["fencing_history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == dc.as_str())
        .unwrap()
        .clone();
    assert_ne!(e["origin"], dc.as_str(), "{e:#}");
    // The new DC logged the hand-over request it answered.
    let new_dc = v["dc"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(c.dir.join(&new_dc).join("ha-node.log")).unwrap();
    assert!(
        log.contains("standing for election"),
        "{new_dc}'s log has no hand-over"
    );
    eprintln!(
        "hand-over: {dc}'s stop failed; {new_dc} fenced it and runs f1 on {:?} after {took:?}",
        on(&v, "f1")
    );
}
