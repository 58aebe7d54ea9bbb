//! Opening a node's Raft state directory: its layout, the order of
//! creation, and the cross-checks between the log, the guard and the
//! snapshot that turn lost or damaged data into errors. Also the compaction
//! policy handed to openraft.

use std::path::{Path, PathBuf};

use crate::durable::sync_dir;
use crate::error::StoreError;
use crate::guard::Guard;
use crate::log_store::{dir_size, LogStore};
use crate::state_machine::StateMachineStore;

/// A node's Raft state directory:
///
/// ```text
/// <dir>/log/       the sled database (log entries, vote, purge point, committed id)
/// <dir>/snapshot   the current snapshot (sealed: meta + data + CRC-32)
/// <dir>/guard      what the log must at least hold (vote, index floor)
/// ```
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub snapshot: PathBuf,
    pub guard: PathBuf,
}

impl StorePaths {
    pub fn new(dir: impl Into<PathBuf>) -> StorePaths {
        let dir = dir.into();
        StorePaths {
            log: dir.join("log"),
            snapshot: dir.join("snapshot"),
            guard: dir.join("guard"),
            dir,
        }
    }
}

/// Opens (creating if needed) the Raft state in `dir` and restores the
/// state machine from the snapshot. openraft re-applies the committed log
/// after the snapshot when the `Raft` starts.
///
/// Damaged or lost data is an error naming the path, never a silent fresh start.
pub fn open(dir: impl AsRef<Path>) -> Result<(LogStore, StateMachineStore), StoreError> {
    let paths = StorePaths::new(dir.as_ref());
    // sled creates its files under the process's umask (077 in `ha-node`);
    // the directories are private whatever the umask.
    for dir in [&paths.dir, &paths.log] {
        crate::private::create_dir(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    }
    let guard = match Guard::read(&paths.guard)? {
        Some(g) => g,
        None => {
            if paths.log.join("db").exists() {
                return Err(StoreError::LostData {
                    path: paths.guard.clone(),
                    detail: "the guard file is missing next to an existing log".to_string(),
                });
            }
            // A new store: the guard comes first, so a log without one is a loss.
            let g = Guard::default();
            g.write(&paths.guard)?;
            sync_dir(&paths.dir)?;
            g
        }
    };
    let (log, summary) = LogStore::open(&paths.log, &paths.guard, guard)?;
    let sm = StateMachineStore::open(&paths.snapshot)?;
    let snap_last = sm.snapshot_meta().and_then(|m| m.last_log_id);
    if let Some(purged) = summary.last_purged {
        match snap_last {
            None => {
                return Err(StoreError::LostData {
                    path: paths.snapshot.clone(),
                    detail: format!(
                        "the log was compacted up to {purged} but there is no snapshot"
                    ),
                })
            }
            Some(s) if s.index < purged.index => {
                return Err(StoreError::LostData {
                    path: paths.snapshot.clone(),
                    detail: format!(
                        "the log was compacted up to {purged} but the snapshot only covers {s}"
                    ),
                })
            }
            Some(_) => {}
        }
    }
    if let (Some(s), Some(last)) = (snap_last, summary.last_log_id) {
        // A snapshot beyond the log is fine (installed from the leader),
        // unless the log has entries after a gap.
        if s.index < last.index && summary.last_purged.is_some_and(|p| p.index > s.index) {
            return Err(StoreError::LostData {
                path: paths.dir.clone(),
                detail: format!("entries between the snapshot ({s}) and the log are missing"),
            });
        }
    }
    Ok((log, sm))
}

/// Bytes on disk under a store directory.
pub fn disk_usage(dir: impl AsRef<Path>) -> u64 {
    dir_size(dir.as_ref())
}

/// When to snapshot and what to keep: "snapshot every `snapshot_every`
/// entries, purge the log behind the snapshot but keep the last
/// `keep_after_snapshot` entries" (so a briefly lagging follower catches up
/// from the log rather than by a full snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    pub snapshot_every: u64,
    pub keep_after_snapshot: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            snapshot_every: 1000,
            keep_after_snapshot: 100,
        }
    }
}

impl Compaction {
    /// Sets the snapshot and purge settings of an openraft config.
    pub fn apply_to(&self, config: openraft::Config) -> openraft::Config {
        openraft::Config {
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            purge_batch_size: 1,
            ..config
        }
    }
}
