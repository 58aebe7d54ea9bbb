//! This node's view of its DRBD resources: one `drbdsetup events2` child
//! (respawned 2 s after it exits, with a fresh state: its initial dump
//! rebuilds everything), parsed by `ha-drbd`, published through Raft as
//! one reboot-lifetime node attribute per DRBD resource
//! ([`ATTR_PREFIX`]`RES`, the resource's summary as JSON), so that every
//! node's status shows every node's DRBD: role, disk, connection, sync
//! progress, split brain. The attributes die with the node (fencing,
//! restart), as Pacemaker's do. Publishing is throttled: a change of role,
//! disk, connection, replication or split brain is written at once; sync
//! progress at most every [`PROGRESS_EVERY`]. What is written is compared
//! with the replicated state (not with what was sent), every
//! [`PROGRESS_EVERY`] too: what a rejoin cleared or a failed write lost is
//! written again.
//!
//! The watcher starts once the kernel module is loaded (`/proc/drbd`
//! exists: the agent's start loads it); a node without DRBD runs nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ha_drbd::{LineSplitter, ResourceSummary, State};
use ha_raft_store::Command;
use tokio::io::AsyncReadExt;

use crate::server::Node;

/// The transient node attribute holding DRBD resource `RES`'s summary.
pub const ATTR_PREFIX: &str = "#drbd:";

/// Sync progress is published at most this often.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long after `events2` exits it is started again.
const RESPAWN_AFTER: Duration = Duration::from_secs(2);

/// How the watcher finds DRBD on this node.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// `drbdsetup` (run as `drbdsetup events2 --timestamps --statistics`).
    pub drbdsetup: PathBuf,
    /// Present once the kernel module is loaded (`/proc/drbd`).
    pub module_marker: PathBuf,
}

/// The summaries of a state as this node publishes them (by resource).
pub fn summaries(state: &State) -> BTreeMap<String, ResourceSummary> {
    state
        .summary()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect()
}

/// A summary without its sync progress: a change here is written at once.
fn without_progress(s: &ResourceSummary) -> ResourceSummary {
    let mut s = s.clone();
    for p in &mut s.peers {
        p.sync_percent = None;
    }
    s
}

/// What to write so that the published attributes say `now`, given what
/// was published (`before`); `None` values delete. Progress-only changes
/// are included only when `progress_due`.
pub fn attribute_changes(
    before: &BTreeMap<String, ResourceSummary>,
    now: &BTreeMap<String, ResourceSummary>,
    progress_due: bool,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for (name, s) in now {
        let changed = match before.get(name) {
            None => true,
            Some(b) if without_progress(b) != without_progress(s) => true,
            Some(b) => progress_due && b != s,
        };
        if changed {
            let json = serde_json::to_string(s).unwrap_or_default();
            out.insert(format!("{ATTR_PREFIX}{name}"), Some(json));
        }
    }
    for name in before.keys().filter(|n| !now.contains_key(*n)) {
        out.insert(format!("{ATTR_PREFIX}{name}"), None);
    }
    out
}

/// Runs the watcher for `node` until the process ends.
pub async fn run(node: Node, cfg: WatchConfig) {
    // Wait for the module (the agent's start loads it).
    while !cfg.module_marker.exists() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    loop {
        match watch_once(&node, &cfg).await {
            Ok(()) => tracing::warn!("drbdsetup events2 ended; again in 2 s"),
            Err(e) => tracing::warn!("drbdsetup events2: {e}; again in 2 s"),
        }
        tokio::time::sleep(RESPAWN_AFTER).await;
    }
}

/// One `events2` child, until it exits.
/// What the replicated state holds of this node's DRBD summaries (a
/// restart's `Joined` clears them: they are written again).
fn published(node: &Node) -> BTreeMap<String, ResourceSummary> {
    node.sm.read(|s| {
        s.status
            .nodes
            .get(&node.name)
            .map(|ns| {
                from_attributes(std::iter::once((&node.name, &ns.transient_attributes)))
                    .into_iter()
                    .map(|(_, r)| (r.name.clone(), r))
                    .collect()
            })
            .unwrap_or_default()
    })
}

async fn watch_once(node: &Node, cfg: &WatchConfig) -> Result<(), String> {
    let mut child = tokio::process::Command::new(&cfg.drbdsetup)
        .args(["events2", "--timestamps", "--statistics"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cfg.drbdsetup.display()))?;
    let mut out = child.stdout.take().ok_or_else(|| "no stdout".to_string())?;
    let mut state = State::new();
    let mut lines = LineSplitter::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_progress = Instant::now();
    let mut errors_logged = 0u32;
    // Checked against the replicated state at least this often, so what a
    // rejoin cleared (or a failed write) is written again.
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        // `read` is cancel-safe: a tick loses no bytes.
        let read = tokio::select! {
            r = out.read(&mut buf) => Some(r.map_err(|e| format!("reading events2: {e}"))?),
            _ = tick.tick() => None,
        };
        let eof = read == Some(0);
        let parsed = match read {
            None => Vec::new(),
            Some(0) => lines.finish(),
            Some(n) => lines.push(&buf[..n]),
        };
        for line in parsed {
            match line {
                Ok(l) => {
                    for c in state.apply_line(&l) {
                        log_change(&c);
                    }
                }
                Err(e) => {
                    // Never fatal; a flood of bad lines is logged once per 100.
                    if errors_logged.is_multiple_of(100) {
                        tracing::warn!("{e}");
                    }
                    errors_logged += 1;
                }
            }
        }
        // Publish once the initial dump is complete (not half a state).
        if state.initial_dump_done {
            let now = summaries(&state);
            let due = last_progress.elapsed() >= PROGRESS_EVERY;
            let changes = attribute_changes(&published(node), &now, due);
            if !changes.is_empty() {
                if due {
                    last_progress = Instant::now();
                }
                let cmd = Command::SetNodeAttributes {
                    node: node.name.clone(),
                    transient: changes,
                    permanent: BTreeMap::new(),
                };
                if let Err(e) = node.propose(cmd).await {
                    tracing::warn!("publishing DRBD state: {e}");
                }
            }
        }
        if eof {
            let _ = child.wait().await;
            return Ok(());
        }
    }
}

fn log_change(c: &ha_drbd::Change) {
    use ha_drbd::Change;
    match c {
        Change::SplitBrain {
            resource,
            new: true,
            ..
        } => tracing::error!(
            resource = %resource,
            "DRBD split brain: see `hactl status` for the recovery command"
        ),
        Change::Role { .. }
        | Change::Disk { .. }
        | Change::Connection { .. }
        | Change::PeerRole { .. }
        | Change::PeerDisk { .. }
        | Change::SplitBrain { .. }
        | Change::HelperCalled { .. }
        | Change::HelperResponse { .. } => tracing::info!("drbd: {c:?}"),
        _ => tracing::debug!("drbd: {c:?}"),
    }
}

/// Every node's published DRBD summaries, from the nodes' transient
/// attributes: (node, summary), in node then resource order.
pub fn from_attributes<'a>(
    nodes: impl Iterator<Item = (&'a String, &'a BTreeMap<String, String>)>,
) -> Vec<(String, ResourceSummary)> {
    let mut out = Vec::new();
    for (node, attrs) in nodes {
        for (k, v) in attrs {
            if k.starts_with(ATTR_PREFIX) {
                if let Ok(s) = serde_json::from_str::<ResourceSummary>(v) {
                    out.push((node.clone(), s));
                }
            }
        }
    }
    out
}

/// The status entry of one node's DRBD resource: the summary, and for a
/// split brain the exact recovery command (the operator names the node
/// whose changes are discarded).
pub fn status_entry(node: &str, s: &ResourceSummary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["node"] = serde_json::Value::String(node.to_string());
    v["line"] = serde_json::Value::String(s.to_string());
    if s.split_brain {
        v["recovery"] = serde_json::Value::String(format!(
            "split brain: choose the node whose changes since the split are discarded, then `hactl drbd resolve {} --discard-on NODE`",
            s.name
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(text: &str) -> State {
        let mut st = State::new();
        let mut ls = LineSplitter::new();
        let mut lines = ls.push(text.as_bytes());
        lines.extend(ls.finish());
        for l in lines.into_iter().flatten() {
            st.apply_line(&l);
        }
        st
    }

    const CONNECTED: &str = "exists resource name:r0 role:Primary suspended:no\n\
exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary\n\
exists device name:r0 volume:0 minor:0 disk:UpToDate\n\
exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:UpToDate\n\
exists -\n";

    #[test]
    fn a_state_change_is_written_at_once_progress_only_when_due() {
        let a = summaries(&state_of(CONNECTED));
        let first = attribute_changes(&BTreeMap::new(), &a, false);
        assert_eq!(first.len(), 1);
        let json = first["#drbd:r0"].clone().unwrap();
        let back: ResourceSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a["r0"]);
        // Nothing changed: nothing written.
        assert!(attribute_changes(&a, &a, true).is_empty());
        // Progress only: written when due.
        let mut b = a.clone();
        b.get_mut("r0").unwrap().peers[0].sync_percent = Some(42.0);
        assert!(attribute_changes(&a, &b, false).is_empty());
        assert_eq!(attribute_changes(&a, &b, true).len(), 1);
        // The connection went: written at once.
        let lost = summaries(&state_of(&format!(
            "{CONNECTED}change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting\n"
        )));
        let c = attribute_changes(&a, &lost, false);
        assert!(
            c["#drbd:r0"].as_deref().unwrap().contains("Connecting"),
            "{c:?}"
        );
        // A resource gone: its attribute deleted.
        let c = attribute_changes(&a, &BTreeMap::new(), false);
        assert_eq!(c["#drbd:r0"], None);
    }

    #[test]
    fn status_names_the_recovery_command_of_a_split_brain() {
        let text = format!(
            "{CONNECTED}call helper name:r0 peer-node-id:0 conn-name:peer volume:0 helper:split-brain\n\
change connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone\n"
        );
        let st = state_of(&text);
        let s = &summaries(&st)["r0"];
        assert!(s.split_brain, "{s:?}");
        let v = status_entry("node1", s);
        assert_eq!(v["node"], "node1");
        assert!(v["recovery"]
            .as_str()
            .unwrap()
            .contains("hactl drbd resolve r0 --discard-on NODE"));
        let attrs: BTreeMap<String, String> = [
            (
                format!("{ATTR_PREFIX}r0"),
                serde_json::to_string(s).unwrap(),
            ),
            ("master-x".to_string(), "10".to_string()),
            (format!("{ATTR_PREFIX}bad"), "{not json".to_string()),
        ]
        .into_iter()
        .collect();
        let name = "node1".to_string();
        let all = from_attributes(std::iter::once((&name, &attrs)));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.name, "r0");
    }
}
