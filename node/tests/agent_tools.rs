//! The Pacemaker tools `ocf:linbit:drbd` calls, as the agent calls them,
//! against a real two-node cluster: `crm_master -Q -l reboot -v N` sets the
//! promotion score that decides where the clone is promoted,
//! `crm_master -q -l reboot -G` reads it back, `crm_node -n` names the
//! node (resource-agents' `ocf_local_nodename` asks it only where
//! `pacemakerd` exists, else `uname -n`: lab guests' hostnames are their
//! node names), and
//! `crm_resource --resource R --locate` prints the line the DRBD agent's
//! `sed` looks for. The agent is a shell script under a test OCF provider
//! that sources Debian's `ocf-shellfuncs`; the drbd agent itself needs the
//! kernel module and runs in the VM lab (`scripts/lab.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// A promotable agent: start sets score 100 on node2 and 50 elsewhere with
/// `crm_master`; monitor records what the tools print in its state dir.
const AGENT: &str = r#"#!/bin/sh
: ${OCF_ROOT=/usr/lib/ocf}
: ${OCF_FUNCTIONS_DIR=${OCF_ROOT}/lib/heartbeat}
. ${OCF_FUNCTIONS_DIR}/ocf-shellfuncs
NODE="$(crm_node -n)"
STATE="$OCF_RESKEY_state_dir/$NODE"
meta() {
cat <<END
<?xml version="1.0"?>
<resource-agent name="Tools" version="1">
<version>1.0</version>
<parameters><parameter name="state_dir" unique="0" required="1"><content type="string"/></parameter></parameters>
<actions>
<action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
<action name="promote" timeout="20s"/><action name="demote" timeout="20s"/>
<action name="monitor" timeout="20s" interval="2s"/><action name="notify" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
END
}
case "$1" in
meta-data) meta; exit 0;;
start)
  if [ "$NODE" = node2 ]; then s=100; else s=50; fi
  crm_master -Q -l reboot -v $s || exit 1
  echo slave > "$STATE"; exit 0;;
stop) crm_master -l reboot -D; rm -f "$STATE"; exit 0;;
promote) echo master > "$STATE"; exit 0;;
demote) echo slave > "$STATE"; exit 0;;
notify) exit 0;;
monitor)
  [ -f "$STATE" ] || exit 7
  crm_node -n > "$STATE.name"
  crm_master -q -l reboot -G > "$STATE.score" 2>&1
  crm_resource --resource "$OCF_RESOURCE_INSTANCE" --locate > "$STATE.locate" 2>&1
  grep -q master "$STATE" && exit 8
  exit 0;;
*) exit 3;;
esac
"#;

/// An OCF root with Debian's shell library and a `test` provider holding
/// [`AGENT`].
fn ocf_root(dir: &Path) -> PathBuf {
    let root = dir.join("ocf");
    let provider = root.join("resource.d/test");
    std::fs::create_dir_all(&provider).unwrap();
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", root.join("lib")).unwrap();
    let agent = provider.join("Tools");
    std::fs::write(&agent, AGENT).unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    root
}

fn logs(c: &Cluster) -> String {
    c.names
        .iter()
        .map(|n| {
            let log =
                std::fs::read_to_string(c.dir.join(n).join("ha-node.log")).unwrap_or_default();
            format!("==== {n}'s log\n{log}")
        })
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn drbd_agent_tools_answer_as_pacemakers() {
    let scratch = tempfile::tempdir().unwrap();
    let root = ocf_root(scratch.path());
    let state = scratch.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let c = Cluster::start_with(2, |cfg| cfg.ocf_root = root.clone());
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
    let crm = scratch.path().join("tools.crm");
    std::fs::write(
        &crm,
        format!(
            "node node1\nnode node2\nproperty stonith-enabled=false\n\
             primitive t ocf:test:Tools params state_dir={} \\\n  op monitor interval=2s role=Promoted timeout=20s \\\n  op monitor interval=3s role=Unpromoted timeout=20s\n\
             clone ms-t t meta promotable=true promoted-max=1 notify=true clone-max=2\n",
            state.display()
        ),
    )
    .unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The higher score crm_master set (node2's 100) decides the promotion,
    // and the agents' own state says so.
    let start = Instant::now();
    loop {
        let s1 = read(&state.join("node1"));
        let s2 = read(&state.join("node2"));
        // Each node's monitor has run since the promotion settled.
        let located = format!(
            "{}\n{}",
            read(&state.join("node1.locate")),
            read(&state.join("node2.locate"))
        );
        if s1 == "slave"
            && s2 == "master"
            && located.matches("node2 Master").count() == 2
            && located.matches("is running on: node1\n").count()
                + located.ends_with("on: node1") as usize
                == 2
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "node1 {s1:?} node2 {s2:?} locate {located:?}; status {}\n{}\n{}",
            stdout(&c.hactl(&["status"])),
            stdout(&c.hactl(&["status", "--output", "json"])),
            logs(&c)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = c.hactl(&["status", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attrs = &v["node_attributes"];

    assert_eq!(attrs["node1"]["transient"]["master-t"], "50", "{attrs:#}");
    assert_eq!(attrs["node2"]["transient"]["master-t"], "100", "{attrs:#}");
    // What each tool printed inside the agent, on its own node.
    for (node, score) in [("node1", "50"), ("node2", "100")] {
        assert_eq!(read(&state.join(format!("{node}.name"))), node);
        assert_eq!(read(&state.join(format!("{node}.score"))), score);
        let locate = read(&state.join(format!("{node}.locate")));
        // The line ocf:linbit:drbd's sed extracts the Primary from.
        let primary: Vec<&str> = locate
            .lines()
            .filter_map(|l| l.strip_prefix("resource t is running on: "))
            .filter_map(|l| l.strip_suffix(" Master"))
            .collect();
        assert_eq!(primary, vec!["node2"], "{node}: {locate}");
        assert!(
            locate.contains("resource t is running on: node1"),
            "{locate}"
        );
    }

    // Stop deletes the score (crm_master -D): a configuration without the
    // clone stops it as an orphan.
    let empty = scratch.path().join("empty.crm");
    std::fs::write(
        &empty,
        "node node1\nnode node2\nproperty stonith-enabled=false\n",
    )
    .unwrap();
    let out = c.hactl(&["config", "load", empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let start = Instant::now();
    loop {
        let out = c.hactl(&["status", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let a = &v["node_attributes"];
        if a["node1"]["transient"]["master-t"].is_null()
            && a["node2"]["transient"]["master-t"].is_null()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{a:#}\nstate: {:?}\n{}\n{}",
            std::fs::read_dir(&state)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect::<Vec<_>>(),
            stdout(&c.hactl(&["status"])),
            logs(&c)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
