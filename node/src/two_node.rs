//! Two-node mode: a cluster of exactly two voters (no witness) cannot commit
//! anything once one is lost, so the survivor must prove the peer is off
//! before it goes on alone. Both sides race to fence the peer; the one not
//! preferred waits first (the node running the more important resources by
//! `priority-fencing-delay`, else the lower node id, fences at once; the
//! other after the delay), so the two never shoot each other. Only a node
//! whose fence of the peer is confirmed continues: it rewrites the Raft
//! membership to itself alone (stop Raft, append the membership entry,
//! start Raft again in place — the executor and what it runs go on:
//! [`crate::raft_instance`], [`ha_raft_store::LogStore::force_single_voter`]), records the
//! fencing and recovers the peer's resources as DC. A node that fails to
//! fence its peer stops its own resources and keeps trying. A node that has
//! not seen its peer since it started waits for it (`wait_for_all`) unless
//! an operator says `hactl quorum unblock`. The fenced node, when it comes
//! back, finds it is no longer a member, discards its Raft state and rejoins
//! the survivor as a learner, then a voter.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_scheduler::model::{Config, Status};

use crate::executor::Executor;
use crate::network::split_member;
use crate::server::Node;

/// Marker: rewrite the membership to this node alone before Raft starts.
pub fn force_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("force-new-cluster")
}

/// Marker: discard the Raft state and rejoin the survivor.
pub fn rejoin_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("rejoin")
}

/// The fencing to record once this node leads alone.
pub fn pending_fencing(data_dir: &Path) -> PathBuf {
    data_dir.join("pending-fencing.json")
}

/// The survivor's durable record: this node fenced its peer and leads
/// alone (JSON: the peer's id, name and address, when). Written (fsynced)
/// before the membership is rewritten; removed once the peer is a voter
/// again.
pub fn survivor_record(data_dir: &Path) -> PathBuf {
    data_dir.join("two-node-survivor.json")
}

/// Writes `bytes` to `path` so that it survives a power cut: a temporary
/// file (created 0600), fsynced, renamed over `path`, and the directory
/// fsynced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    ha_raft_store::private::write_file(path, bytes)
}

/// Default wait of the node that is not preferred (`two-node-fence-delay`).
pub const DEFAULT_FENCE_DELAY: Duration = Duration::from_secs(5);

/// The sum of the `priority` meta attributes of the resources active on
/// `node` (promoted instances count one more), as priority-fencing-delay does.
pub fn node_priority(config: &Config, status: &Status, node: &str) -> i64 {
    let now = ha_scheduler::current_placement(config, status, crate::dc::now_secs());
    let mut sum = 0;
    for (key, placed) in &now.resources {
        if !placed.nodes.iter().any(|n| n == node) {
            continue;
        }
        let id = key.split(['@', ':']).next().unwrap_or(key);
        let Some(p) = config.primitive(id) else {
            continue;
        };
        let prio: i64 = p
            .effective_meta(config)
            .get("priority")
            .and_then(|v| ha_scheduler::score::parse(v))
            .unwrap_or(0);
        let promoted = placed.role == ha_scheduler::model::Role::Promoted;
        sum += prio + i64::from(promoted && prio != 0);
    }
    sum
}

/// The least gap between the two sides' race delays (any views): the first
/// fence has this long to take effect before the other side would fire.
pub const MIN_RACE_GAP: Duration = Duration::from_secs(1);

/// How long `me` waits before fencing `peer`, from this node's own view.
/// See [`race_delay`]: the two sides never pick the same delay, whatever
/// each has applied.
pub fn fence_delay(
    config: &Config,
    status: &Status,
    me: (&str, u64),
    peer: (&str, u64),
) -> (Duration, String) {
    let parse = |name: &str| {
        config
            .properties
            .get(name)
            .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
            .map(Duration::from_millis)
    };
    let pfd = parse("priority-fencing-delay").filter(|d| !d.is_zero());
    let tnfd = parse("two-node-fence-delay").unwrap_or(DEFAULT_FENCE_DELAY);
    let priorities = pfd.map(|_| {
        (
            node_priority(config, status, me.0),
            node_priority(config, status, peer.0),
        )
    });
    race_delay(me.1 < peer.1, priorities, pfd, tnfd)
}

/// The race delay of one side. The order both sides agree on without any
/// replication is the node ids: the lower id is `first`. Priorities (the
/// `priority` sums, [`node_priority`]) come from this side's own view, which
/// may lag the peer's (a switchover committed but not applied here), so
/// they only pick among four delays that never coincide:
///
/// | side | its view | delay |
/// |---|---|---|
/// | first (lower id) | peer not heavier | 0 |
/// | first | peer heavier | `priority-fencing-delay` (≥ 2 s) |
/// | second | itself heavier | half of it |
/// | second | itself not heavier | `priority-fencing-delay` + `two-node-fence-delay` |
///
/// Without `priority-fencing-delay`: first 0, second `two-node-fence-delay`
/// (≥ 1 s). Whatever the two views, at most one side waits 0 and the two
/// delays differ by at least [`MIN_RACE_GAP`]; when both views agree the
/// heavier side fences first (at once, or after half the delay if it has
/// the higher id).
pub fn race_delay(
    first: bool,
    priorities: Option<(i64, i64)>,
    pfd: Option<Duration>,
    two_node_fence_delay: Duration,
) -> (Duration, String) {
    let tnfd = two_node_fence_delay.max(MIN_RACE_GAP);
    let (Some(pfd), Some((mine, theirs))) = (pfd.filter(|d| !d.is_zero()), priorities) else {
        return if first {
            (
                Duration::ZERO,
                "preferred node (lower id): fence at once".into(),
            )
        } else {
            (
                tnfd,
                "not the preferred node (higher id): wait two-node-fence-delay".into(),
            )
        };
    };
    let pfd = pfd.max(MIN_RACE_GAP * 2);
    match (first, theirs > mine, mine > theirs) {
        (true, false, _) => (
            Duration::ZERO,
            format!("lower id, priority {mine} >= {theirs}: fence at once"),
        ),
        (true, true, _) => (
            pfd,
            format!("priority {mine} < {theirs}: wait priority-fencing-delay"),
        ),
        (false, _, true) => (
            pfd / 2,
            format!("higher id, priority {mine} > {theirs}: wait half of priority-fencing-delay"),
        ),
        (false, _, false) => (
            pfd + tnfd,
            format!(
                "higher id, priority {mine} <= {theirs}: wait priority-fencing-delay + \
                 two-node-fence-delay"
            ),
        ),
    }
}

/// The two voters if this is a two-node cluster: (peer id, peer name, peer addr).
fn peer_of(node: &Node) -> Option<(u64, String, String)> {
    if node.witness {
        return None;
    }
    let m = node.raft.get().metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let voters: Vec<u64> = membership.voter_ids().collect();
    if voters.len() != 2 || !voters.contains(&node.id) {
        return None;
    }
    let peer = voters.into_iter().find(|&v| v != node.id)?;
    let n = membership.get_node(&peer)?;
    let (name, addr) = split_member(&n.addr);
    Some((peer, name.to_string(), addr.to_string()))
}

/// Whether this node is in two-node mode now.
pub fn active(node: &Node) -> bool {
    peer_of(node).is_some()
}

fn peer_alive(node: &Node, peer: u64) -> bool {
    let leader = node.raft.get().metrics().borrow().current_leader == Some(node.id);
    if leader {
        node.liveness.alive(peer, crate::quorum::node_timeout(node))
    } else {
        crate::quorum::heard_within(node, crate::quorum::node_timeout(node))
    }
}

fn set_state(node: &Node, msg: Option<String>) {
    *node
        .two_node_state
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = msg;
}

/// Makes this node the only voter, Raft restarted in place (its executor
/// and what it runs go on, so nothing is probed again), once the markers
/// say so durably; the force marker goes once the log holds the new
/// membership. If Raft cannot start again, the process restarts and the
/// markers finish the takeover at startup.
async fn take_over_in_place(node: &Node, data_dir: &Path) {
    let me = openraft::BasicNode::new(crate::network::member_addr(&node.name, &node.advertise));
    match node.raft.restart_single_voter(me).await {
        Ok(log_id) => {
            tracing::warn!(%log_id, "the peer is fenced: membership rewritten to this node alone (Raft restarted in place)");
            if let Err(e) = std::fs::remove_file(force_marker(data_dir)) {
                tracing::warn!("cannot remove the takeover marker: {e}");
            }
            // As after a restart: the peer, once it is a member again,
            // counts only after it has been heard (until then it is not
            // lost: wait_for_all), and an old unblock does not carry over.
            node.peer_seen.store(false, Ordering::SeqCst);
            node.unblocked.store(false, Ordering::SeqCst);
            set_state(node, None);
        }
        Err(e) => {
            tracing::error!("{e}: restarting the process to finish the takeover");
            let e = restart_process();
            tracing::error!("cannot restart to rewrite the membership: {e}");
        }
    }
}

/// Re-executes this process (same arguments): Raft stops, the markers in
/// the data dir say what to do before it starts again. It executes the
/// image this process runs (`/proc/self/exe`), not the path it was started
/// from: when the binary on disk has been replaced or removed (a package
/// upgrade, a rebuild) that path is gone (`current_exe` ends in
/// ` (deleted)`) and re-executing it would fail forever.
pub fn restart_process() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "ha-node".into());
    let rest: Vec<std::ffi::OsString> = args.collect();
    // The image first; then the path it was started from (a replaced
    // binary there is the upgrade).
    let mut candidates = vec![PathBuf::from("/proc/self/exe")];
    if let Ok(e) = binary_path() {
        candidates.push(e);
    }
    let mut errors = Vec::new();
    for exe in candidates {
        let e = std::process::Command::new(&exe)
            .arg0(&arg0)
            .args(&rest)
            .exec();
        errors.push(format!("{}: {e}", exe.display()));
    }
    std::io::Error::other(errors.join("; "))
}

/// The path this process's binary was started from: `current_exe` without
/// the " (deleted)" Linux appends once that file was replaced or removed
/// (a binary installed there since is the one to run or link).
pub fn binary_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map(PathBuf::from)
        .unwrap_or(exe))
}

/// A gap between the watcher's ticks longer than this means this process
/// was frozen (SIGSTOP, a paused VM): its view of the peer is stale.
const STALL: Duration = Duration::from_millis(500);

/// How long a short wait of `expected` really took, when it took so much
/// longer that the process must have been frozen meanwhile (only the
/// waits are measured: the watcher's own long awaits, such as fencing, are
/// not a freeze).
fn stalled(started: Instant, expected: Duration) -> Option<Duration> {
    let took = started.elapsed();
    (took > expected + STALL).then_some(took)
}

/// How long a node that was frozen yields in the fence race once it runs
/// again: it is the suspect one (its peer saw it vanish), so it fences no
/// sooner than either side's race delay plus node-timeout after waking —
/// time to hear the peer that is most likely fine, or already fencing it.
fn frozen_yield(node: &Node, config: &Config, status: &Status, peer: (&str, u64)) -> Duration {
    let me = (node.name.as_str(), node.id);
    let (mine, _) = fence_delay(config, status, me, peer);
    let (theirs, _) = fence_delay(config, status, peer, me);
    mine.max(theirs) + crate::quorum::node_timeout(node)
}

/// Watches the peer of a two-node cluster; takes over when it is lost.
pub async fn watch(node: Node, executor: Arc<Executor>, data_dir: PathBuf) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut stopped_own = false;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // After this process was frozen: no fencing before this instant.
    let mut yield_until: Option<Instant> = None;
    loop {
        let before = Instant::now();
        tick.tick().await;
        if let Some(gap) = stalled(before, Duration::from_millis(100)) {
            if let Some((peer_id, peer, _)) = peer_of(&node) {
                let (config, status) = node.sm.read(|s| (s.config.clone(), s.status.clone()));
                let y = frozen_yield(&node, &config, &status, (&peer, peer_id));
                tracing::warn!(?gap, peer = %peer, "two-node: this process was frozen; it does not fence {peer} for {y:?}");
                yield_until = Some(Instant::now() + y);
            }
        }
        let Some((peer_id, peer, _)) = peer_of(&node) else {
            show_survivor(&node, &data_dir);
            continue;
        };
        if peer_alive(&node, peer_id) {
            if !node.peer_seen.swap(true, Ordering::SeqCst) {
                // The wait_for_all note is over (it stayed in the status of
                // a node whose peer had long answered: VM lab).
                set_state(&node, None);
            }
            let record = survivor_record(&data_dir);
            if record.exists() {
                // The peer is a voter again: this node is no longer the
                // cluster alone.
                if let Err(e) = std::fs::remove_file(&record) {
                    tracing::warn!("{}: {e}", record.display());
                }
                set_state(&node, None);
            }
            if stopped_own {
                // What ran here was stopped behind the cluster's back: forget
                // it (probes find the truth) now that entries commit again.
                stopped_own = false;
                set_state(&node, None);
                let cmd = ha_raft_store::Command::SetNodeState {
                    node: node.name.clone(),
                    state: ha_raft_store::NodeState::Joined,
                };
                if let Err(e) = node.propose(cmd).await {
                    tracing::warn!("rejoin after the peer came back: {e}");
                }
            }
            continue;
        }
        if !node.peer_seen.load(Ordering::SeqCst) && !node.unblocked.load(Ordering::SeqCst) {
            set_state(&node, Some(wait_for_all_note(&peer)));
            continue;
        }
        let (config, status) = node.sm.read(|s| (s.config.clone(), s.status.clone()));
        if !crate::fencer::stonith_enabled(&config) {
            set_state(
                &node,
                Some(format!(
                    "lost {peer}; fencing is disabled, so this node cannot prove {peer} is off \
                     and does not take over"
                )),
            );
            if !stopped_own {
                crate::quorum::stop_local_resources(
                    &node,
                    &executor,
                    "two-node: peer lost, no fencing",
                )
                .await;
                stopped_own = true;
            }
            continue;
        }
        let (delay, why) = fence_delay(&config, &status, (&node.name, node.id), (&peer, peer_id));
        if !stopped_own {
            set_state(
                &node,
                Some(format!("lost {peer}: fencing it in {delay:?} ({why})")),
            );
        }
        tracing::warn!(peer = %peer, ?delay, "two-node: peer lost; {why}");
        let mut wait_until = Instant::now() + delay;
        if let Some(y) = yield_until.filter(|y| *y > wait_until) {
            tracing::warn!(peer = %peer, "two-node: yielding after a freeze: no fencing for {:?}", y - Instant::now());
            wait_until = y;
        }
        let mut came_back = false;
        while Instant::now() < wait_until {
            let before = Instant::now();
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stalled(before, Duration::from_millis(50)).is_some() {
                // Frozen while waiting: the wait starts over as a yield.
                let y = frozen_yield(&node, &config, &status, (&peer, peer_id));
                wait_until = wait_until.max(Instant::now() + y);
                yield_until = Some(wait_until);
                tracing::warn!(peer = %peer, "two-node: frozen while waiting to fence {peer}: yielding {y:?}");
            }
            if peer_alive(&node, peer_id) {
                came_back = true;
                break;
            }
        }
        if came_back {
            tracing::info!(peer = %peer, "two-node: peer answered again, no fencing");
            set_state(&node, None);
            continue;
        }
        // The race delay above replaces the devices' own delays.
        let (action, report) = crate::fencer::fence(&config, &peer, None, true).await;
        if report.succeeded {
            let event = crate::fencer::event(&node.name, action, &report);
            tracing::warn!(
                peer = %peer,
                "two-node: {} fenced ({}); continuing alone: rewriting the membership",
                peer,
                report.summary()
            );
            let record = serde_json::json!({
                "peer_id": peer_id,
                "peer": peer,
                "peer_addr": peer_of(&node).map(|p| p.2).unwrap_or_default(),
                "fenced_ms": event.completed_ms,
            });
            // The survivor record first: from here on this node may be the
            // cluster alone, and it must know it after any crash.
            let written = serde_json::to_vec(&record)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    write_durably(&survivor_record(&data_dir), &b).map_err(|e| e.to_string())
                })
                .and_then(|_| serde_json::to_vec(&event).map_err(|e| e.to_string()))
                .and_then(|b| {
                    write_durably(&pending_fencing(&data_dir), &b).map_err(|e| e.to_string())
                })
                .and_then(|_| {
                    write_durably(&force_marker(&data_dir), b"").map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => take_over_in_place(&node, &data_dir).await,
                Err(e) => tracing::error!("cannot write the takeover markers: {e}"),
            }
            continue;
        }
        let summary = report.summary();
        tracing::error!(peer = %peer, "two-node: fencing the peer failed: {summary}");
        set_state(
            &node,
            Some(format!(
                "lost {peer} and could not fence it: {summary}; this node stopped its resources \
                 and waits (retrying)"
            )),
        );
        if !stopped_own {
            crate::quorum::stop_local_resources(&node, &executor, "two-node: peer not fenced")
                .await;
            stopped_own = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// What a node waiting for its peer (wait_for_all) says in its status. It
/// does not advise a plain unblock: the peer may be the survivor.
pub fn wait_for_all_note(peer: &str) -> String {
    format!(
        "waiting for {peer} (wait_for_all): this node has not heard from {peer} since it \
         started, and {peer} may have fenced it and be running the resources alone; once \
         {peer} answers, this node rejoins it or goes on with it. Bring {peer} or the link \
         back. Only if {peer} is off and will stay off (it will not boot with its state): \
         `hactl quorum unblock --i-know-the-peer-is-off` (if {peer} took over and comes \
         back, both run the resources)"
    )
}

/// The op `hactl quorum unblock --i-know-the-peer-is-off` sends.
pub const UNBLOCK_PEER_IS_OFF: &str = "unblock-peer-is-off";

/// `hactl quorum unblock` (op `unblock`) and its override (op
/// [`UNBLOCK_PEER_IS_OFF`]) on this node.
///
/// The peer **may have taken over** when this node's membership (its last
/// applied Raft membership) has exactly two voters, itself and the peer,
/// and this process has not heard from the peer since it started: no
/// successful append from it as leader, no answer to this node as leader,
/// no membership answer counting this node in. The peer could then have
/// fenced this node (the reboot it is coming back from) and rewritten the
/// membership to itself alone; a second survivor would run everything
/// twice. A plain unblock is refused then (which is whenever wait_for_all
/// holds in two-node mode); the override goes on, on the operator's word
/// that the peer is off.
pub fn unblock(node: &Node, op: &str) -> Result<String, String> {
    let me = &node.name;
    let override_given = match op {
        "unblock" => false,
        UNBLOCK_PEER_IS_OFF => true,
        other => {
            return Err(format!(
                "unknown quorum operation '{other}': use unblock (or unblock \
                 --i-know-the-peer-is-off)"
            ))
        }
    };
    let Some((_, peer, _)) = peer_of(node) else {
        return Ok(format!(
            "{me}: nothing to unblock (not a voter of a two-node cluster)"
        ));
    };
    if node.peer_seen.load(Ordering::SeqCst) {
        return Ok(format!(
            "{me}: nothing to unblock: it has heard from {peer} since it started (no \
             wait_for_all); if it loses {peer} it races to fence it"
        ));
    }
    if !override_given {
        return Err(format!(
            "{me} refuses to unblock: its membership has two voters ({me}, {peer}) and it has \
             not heard from {peer} since it started, so {peer} may have fenced {me} and be \
             running the resources alone as the survivor; going on alone would make two \
             survivors. Bring {peer} or the link back ({me} then rejoins it). Only if {peer} \
             is off and will stay off: hactl quorum unblock --i-know-the-peer-is-off"
        ));
    }
    node.unblocked.store(true, Ordering::SeqCst);
    tracing::warn!(
        peer = %peer,
        "wait_for_all lifted by an operator who says {peer} is off"
    );
    Ok(format!(
        "{me}: wait_for_all lifted on your word that {peer} is off: {me} fences {peer} and \
         goes on alone. If {peer} had taken over and boots again with its state, both run \
         the resources"
    ))
}

/// On a single voter that took over from its peer: say so in the status.
fn show_survivor(node: &Node, data_dir: &Path) {
    let Ok(bytes) = std::fs::read(survivor_record(data_dir)) else {
        return;
    };
    let peer = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["peer"].as_str().map(str::to_string))
        .unwrap_or_else(|| "its peer".into());
    set_state(
        node,
        Some(format!(
            "survivor: this node fenced {peer} and is the cluster alone; {peer} rejoins when \
             it boots and reaches this node"
        )),
    );
}

/// The peers a rejoin marker names.
pub fn marker_peers(marker: &Path) -> Vec<(u64, String, String)> {
    std::fs::read(marker)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// On a node told to rejoin: asks the peers to add it back (as a learner,
/// then a voter) until one does.
pub async fn rejoin(node: Node, peers: Vec<(u64, String, String)>, marker: PathBuf) {
    if peers.is_empty() {
        tracing::error!("rejoin: no peer to ask (the marker names none); add this node by hand");
        return;
    }
    loop {
        for (_, name, addr) in &peers {
            if name == &node.name {
                continue;
            }
            match node
                .ask_to_add(addr, node.id, &node.name, &node.advertise)
                .await
            {
                Ok(()) => {
                    tracing::info!(via = %name, "rejoined the cluster");
                    let _ = std::fs::remove_file(&marker);
                    return;
                }
                Err(e) => tracing::info!(via = %name, "rejoin not accepted yet: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Whether `name` still belongs to the cluster as `peer_addr` sees it; on a
/// node of a two-node cluster that cannot reach a leader.
pub async fn check_still_member(node: Node, data_dir: PathBuf) {
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A leader elsewhere counts this node in. This node as the leader
        // does not: after a power cut openraft restores the committed
        // leadership of a node that led, and the peer that fenced it and
        // went on alone refuses its appends at the transport (VM lab: a
        // fenced DC came back "leading" and never asked).
        let leader = node.raft.get().metrics().borrow().current_leader;
        // Once a leader is known, the check ends after 30 s.
        let done = leader.is_some() && start.elapsed() > Duration::from_secs(30);
        if leader.is_some() && leader != Some(node.id) {
            if done {
                return;
            }
            continue;
        }
        let Some((peer_id, peer, addr)) = peer_of(&node) else {
            if done {
                return; // leading alone (a one-node cluster, a two-node survivor)
            }
            continue;
        };
        match node.is_member_at(&addr, &node.name).await {
            Ok(false) => {
                tracing::warn!(
                    peer = %peer,
                    "{peer} no longer counts this node as a member (it was fenced): \
                     discarding the Raft state and rejoining"
                );
                // The marker names who to ask (the Raft state that knows is
                // about to go).
                let peers = serde_json::json!([[peer_id, peer, addr]]).to_string();
                if let Err(e) = write_durably(&rejoin_marker(&data_dir), peers.as_bytes()) {
                    tracing::error!("cannot write the rejoin marker: {e}");
                    continue;
                }
                let e = restart_process();
                tracing::error!("cannot restart to rejoin: {e}");
            }
            Ok(true) => {
                node.peer_seen.store(true, Ordering::SeqCst);
                if done {
                    return;
                }
            }
            Err(e) => tracing::debug!("membership check at {peer}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(props: &str) -> (Config, Status) {
        let c = ha_scheduler::crm::read_crm(&format!(
            "node a\nnode b\nprimitive db ocf:heartbeat:Dummy meta priority=10\n\
             primitive web ocf:heartbeat:Dummy meta priority=1\n{props}"
        ))
        .unwrap();
        let mut st = Status::default();
        for (n, rsc) in [("a", "web"), ("b", "db")] {
            let ns = st.nodes.entry(n.to_string()).or_default();
            ns.membership = ha_scheduler::model::Membership::Online;
            ns.history.insert(
                rsc.to_string(),
                ha_scheduler::model::ResourceHistory {
                    class: "ocf".into(),
                    provider: Some("heartbeat".into()),
                    agent: "Dummy".into(),
                    ops: vec![ha_scheduler::model::OpRecord {
                        id: format!("{rsc}_last_0"),
                        operation: "start".into(),
                        call_id: 1,
                        expected_rc: Some(0),
                        ..Default::default()
                    }],
                },
            );
        }
        (c, st)
    }

    #[test]
    fn the_preferred_node_fences_at_once_the_other_waits() {
        let (c, st) = setup("");
        assert_eq!(fence_delay(&c, &st, ("a", 1), ("b", 2)).0, Duration::ZERO);
        assert_eq!(
            fence_delay(&c, &st, ("b", 2), ("a", 1)).0,
            DEFAULT_FENCE_DELAY
        );
        // priority-fencing-delay: b runs db (10) > a's web (1): b wins.
        let (c, st) = setup("property priority-fencing-delay=7s\n");
        assert_eq!(node_priority(&c, &st, "b"), 10);
        // b has the higher id: it waits half the delay, a the whole of it.
        assert_eq!(
            fence_delay(&c, &st, ("b", 2), ("a", 1)).0,
            Duration::from_millis(3500)
        );
        assert_eq!(
            fence_delay(&c, &st, ("a", 1), ("b", 2)).0,
            Duration::from_secs(7)
        );
        let (c, st) = setup("property two-node-fence-delay=3s\n");
        assert_eq!(
            fence_delay(&c, &st, ("b", 2), ("a", 1)).0,
            Duration::from_secs(3)
        );
    }

    /// Hole 7: each side decides from its own view; a switchover committed
    /// but not applied on one side means the two views disagree on who is
    /// heavier. For every pair of views, at most one side waits 0 and the two
    /// delays are at least MIN_RACE_GAP apart (so they never fire together).
    #[test]
    fn whatever_the_two_views_at_most_one_side_fences_at_once() {
        let prios = [-5i64, 0, 1, 10];
        let pfds = [
            None,
            Some(Duration::ZERO),
            Some(Duration::from_millis(100)),
            Some(Duration::from_secs(7)),
        ];
        let tnfds = [
            Duration::ZERO,
            Duration::from_millis(300),
            Duration::from_secs(3),
            Duration::from_secs(5),
        ];
        let mut pairs = 0;
        for pfd in pfds {
            for tnfd in tnfds {
                // (low's view of low, low's view of high), same for high.
                let mut views = Vec::new();
                for a in prios {
                    for b in prios {
                        for c in prios {
                            for d in prios {
                                views.push((a, b, c, d));
                            }
                        }
                    }
                }
                for (ll, lh, hh, hl) in views {
                    let low = race_delay(true, Some((ll, lh)), pfd, tnfd).0;
                    let high = race_delay(false, Some((hh, hl)), pfd, tnfd).0;
                    assert!(
                        !(low.is_zero() && high.is_zero()),
                        "both at once: {pfd:?} {tnfd:?} views {ll},{lh} / {hh},{hl}"
                    );
                    let gap = low.abs_diff(high);
                    assert!(
                        gap >= MIN_RACE_GAP,
                        "{low:?} vs {high:?}: {pfd:?} {tnfd:?} views {ll},{lh} / {hh},{hl}"
                    );
                    // Views that agree: the heavier side fences first.
                    if (ll, lh) == (hl, hh) && pfd.is_some_and(|d| !d.is_zero()) {
                        if hh > ll {
                            assert!(high < low, "{hh} > {ll} but {high:?} >= {low:?}");
                        } else {
                            assert!(low < high, "{ll} >= {hh} but {low:?} >= {high:?}");
                        }
                    }
                    pairs += 1;
                }
            }
        }
        assert_eq!(pairs, 4 * 4 * 256);
    }

    /// The real views behind hole 7: a switchover (db moved from b to a)
    /// applied on a but not on b. Both think they run db.
    #[test]
    fn a_lagging_switchover_does_not_give_both_sides_delay_zero() {
        let (c, behind) = setup("property priority-fencing-delay=7s\n");
        let mut ahead = behind.clone();
        let db = ahead
            .nodes
            .get_mut("b")
            .unwrap()
            .history
            .remove("db")
            .unwrap();
        ahead
            .nodes
            .get_mut("a")
            .unwrap()
            .history
            .insert("db".into(), db);
        assert_eq!(node_priority(&c, &ahead, "a"), 11);
        assert_eq!(node_priority(&c, &behind, "b"), 10);
        let (a, _) = fence_delay(&c, &ahead, ("a", 1), ("b", 2));
        let (b, _) = fence_delay(&c, &behind, ("b", 2), ("a", 1));
        assert_eq!(a, Duration::ZERO);
        assert_eq!(b, Duration::from_millis(3500));
    }
}
