//! Crash test: a child process (this test binary, re-invoked) runs a
//! one-node Raft over the store, keeps 16 writes in flight (so appends are
//! group-committed) and prints every acknowledged log index;
//! the parent `kill -9`s it at random points, 20 rounds. After each kill the
//! parent reopens the store and checks that every acknowledged entry is
//! there and that the state machine (snapshot + log, as restored on start)
//! equals a replay of the commands from scratch.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{replay, single_node, workload};
use ha_raft_store::{Command, Compaction, Response};
use openraft::EntryPayload;

const CHILD_ENV: &str = "HA_RAFT_CRASH_CHILD_DIR";
const ROUNDS: usize = 20;

fn compaction() -> Compaction {
    // Small, so that kills land in snapshot builds and purges too.
    Compaction {
        snapshot_every: 50,
        keep_after_snapshot: 10,
    }
}

/// The child: only runs when re-invoked by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (raft, _log, sm) = single_node(Path::new(&dir), compaction()).await;
        let mut k = sm.read(|s| s.config_epoch + s.status_version);
        println!("READY {k}");
        // Up to WINDOW writes in flight (so appends are group-committed),
        // submitted in order; commands are made from a shadow state that
        // has every submitted command applied, as the log will.
        const WINDOW: usize = 16;
        let mut shadow = sm.state();
        let mut in_flight = std::collections::VecDeque::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            while in_flight.len() < WINDOW {
                k += 1;
                let cmd = workload(k, &shadow);
                let _ = shadow.apply(cmd.clone());
                let rx = raft.client_write_ff(cmd).await.expect("client_write");
                in_flight.push_back((k, rx));
            }
            let Some((k_done, rx)) = in_flight.pop_front() else {
                continue;
            };
            let resp = rx.await.expect("response").expect("write");
            assert!(
                matches!(resp.data, Response::Applied(_)),
                "command {k_done} rejected: {:?}",
                resp.data
            );
            println!("ACK {} {k_done}", resp.log_id.index);
        }
    });
}

/// Kills the child if the parent fails half-way.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xorshift64*
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Reopens the store as a restarting node would and checks it against the
/// acknowledgements. Returns the number of commands it holds.
fn verify(dir: &Path, acked: &BTreeMap<u64, u64>, round: usize) -> u64 {
    let (log, sm) = ha_raft_store::open(dir)
        .unwrap_or_else(|e| panic!("round {round}: store does not reopen: {e}"));
    let (purged, last) = log.log_state().expect("log state");
    let purged = purged.map_or(0, |l| l.index);
    let last = last.map_or(0, |l| l.index);
    // Restore: the snapshot, then every entry after it.
    let snap = sm.last_applied().map_or(0, |l| l.index);
    assert!(
        snap >= purged,
        "round {round}: purged {purged} beyond the snapshot {snap}"
    );
    let entries = log.entries(snap + 1..).expect("read log");
    let n = entries.len() as u64;
    assert_eq!(
        n,
        last.saturating_sub(snap),
        "round {round}: hole after the snapshot"
    );
    sm.apply_entries(entries);
    let state = sm.state();
    let k_total = state.config_epoch + state.status_version;
    let (expected, cmds) = replay(k_total);
    assert!(
        state == expected,
        "round {round}: state machine differs from a replay of {k_total} commands"
    );
    // Every acknowledged entry is there (in the log, or under the snapshot)
    // and holds the command that was acknowledged.
    let max_acked = acked.values().copied().max().unwrap_or(0);
    assert!(
        k_total >= max_acked,
        "round {round}: command {max_acked} was acknowledged, the store holds {k_total}"
    );
    for (&index, &k) in acked {
        assert!(
            index <= last,
            "round {round}: acknowledged entry {index} lost (log ends at {last})"
        );
        if index > purged {
            let e = log.entries(index..=index).expect("read entry");
            match e.first().map(|e| &e.payload) {
                Some(EntryPayload::Normal(c)) => assert!(
                    *c == cmds[(k - 1) as usize],
                    "round {round}: entry {index} is not command {k}"
                ),
                other => panic!("round {round}: acknowledged entry {index} is {other:?}"),
            }
        }
    }
    // The commands in the log are consecutive and end with the last one.
    let in_log: Vec<Command> = log
        .entries(purged + 1..)
        .expect("read log")
        .into_iter()
        .filter_map(|e| match e.payload {
            EntryPayload::Normal(c) => Some(c),
            _ => None,
        })
        .collect();
    let start = k_total as usize - in_log.len();
    assert!(
        in_log[..] == cmds[start..],
        "round {round}: the log's commands are not the last {} commands",
        in_log.len()
    );
    k_total
}

#[test]
fn kill_9_loses_no_acknowledged_entry() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = std::env::var("HA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash test seed {seed} (set HA_CRASH_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut k_stored = 0u64;
    let (mut total_acks, mut before_ready) = (0usize, 0usize);
    for round in 0..ROUNDS {
        let mut child = KillOnDrop(
            Process::new(&exe)
                .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child"),
        );
        let stdout = child.0.stdout.take().expect("child stdout");
        let mut stderr = child.0.stderr.take().expect("child stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let spawned = Instant::now();
        // One round in four is killed at a random time from the start
        // (possibly during recovery); the others a random time after READY.
        let early = rng.below(4) == 0;
        let mut kill_at = spawned + Duration::from_millis(rng.below(600));
        let mut ready = false;
        let mut lines = Vec::new();
        loop {
            let now = Instant::now();
            if (early || ready) && now >= kill_at {
                break;
            }
            let wait = if early || ready {
                kill_at.saturating_duration_since(now)
            } else {
                Duration::from_secs(30).saturating_sub(now - spawned)
            };
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    // libtest may print its "test crash_child ... " first.
                    if let Some(k) = line.split("READY ").nth(1) {
                        let k: u64 = k.trim().parse().expect("READY k");
                        assert_eq!(
                            k, k_stored,
                            "round {round}: the restarted node holds {k} commands, the store held {k_stored}"
                        );
                        ready = true;
                        if !early {
                            kill_at = Instant::now() + Duration::from_millis(20 + rng.below(400));
                        }
                    }
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !(early || ready) {
                        panic!("round {round}: child not ready after 30 s");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.0.wait();
                    let err = err_reader.join().unwrap_or_default();
                    panic!("round {round}: child exited by itself:\n{err}");
                }
            }
        }
        child.0.kill().expect("kill -9");
        let status = child.0.wait().expect("wait child");
        let _ = reader.join();
        let _ = err_reader.join();
        lines.extend(rx.try_iter());
        if !ready {
            before_ready += 1;
        }
        let mut round_acks = 0;
        for line in &lines {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let mut it = rest
                    .split_whitespace()
                    .map(|x| x.parse::<u64>().expect("ACK"));
                let (index, k) = (it.next().expect("index"), it.next().expect("k"));
                acked.insert(index, k);
                round_acks += 1;
            }
        }
        total_acks += round_acks;
        k_stored = verify(&dir, &acked, round);
        println!(
            "round {round:2}: killed ({status}) {} ms after start{}, {round_acks} acks, store holds {k_stored} commands",
            spawned.elapsed().as_millis(),
            if ready { "" } else { " (before READY)" },
        );
    }
    // Finally a clean restart through openraft itself.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let state = rt.block_on(async {
        let (raft, _log, sm) = single_node(&dir, compaction()).await;
        let s = sm.state();
        raft.shutdown().await.expect("shutdown");
        s
    });
    assert_eq!(state.config_epoch + state.status_version, k_stored);
    assert!(
        state == replay(k_stored).0,
        "restarted Raft's state differs from replay"
    );
    println!(
        "{ROUNDS} kill -9 rounds ({before_ready} before READY): {total_acks} acknowledged entries, none lost; {k_stored} commands"
    );
    assert!(
        total_acks > 0,
        "no entry was acknowledged in {ROUNDS} rounds"
    );
}
