//! The Raft state machine: the in-memory `ClusterState` with its applied log
//! id and membership, snapshots (built from a copy taken when the builder is
//! made, installed from the leader, persisted in one file, restored on
//! start), and the change notifications readers wait on.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;

use crate::command::{Response, Versions};
use crate::error::StoreError;
use crate::snapshot_file;
use crate::state::ClusterState;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// What the state machine holds.
#[derive(Debug, Clone, Default)]
struct Applied {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    state: ClusterState,
}

/// The replicated state machine. Cheap to clone (shared handle): keep one
/// to read the state while openraft owns the other.
#[derive(Clone)]
pub struct StateMachineStore {
    inner: Arc<Inner>,
}

struct Inner {
    applied: RwLock<Applied>,
    snapshot_path: PathBuf,
    /// Serializes snapshot file writes; holds the meta of the file on disk.
    snapshot_meta: Mutex<Option<SnapshotMeta>>,
    snapshot_seq: AtomicU64,
    versions: watch::Sender<Versions>,
}

/// Builds a snapshot from a copy of the state taken when it was made, so
/// applying goes on while it serializes and writes.
pub struct SnapshotBuilder {
    sm: Arc<Inner>,
    copy: Applied,
}

/// Size and timing-relevant facts of the last snapshot written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Bytes of the snapshot file.
    pub file_bytes: u64,
    /// Bytes of the snapshot data (what travels to a follower).
    pub data_bytes: u64,
}

impl StateMachineStore {
    /// Restores the state machine from the snapshot file at `snapshot_path`
    /// (or starts empty if there is none).
    pub(crate) fn open(snapshot_path: &Path) -> Result<StateMachineStore, StoreError> {
        let mut applied = Applied::default();
        let mut meta_on_disk = None;
        if let Some((meta, data)) = snapshot_file::read(snapshot_path)? {
            applied.state = snapshot_file::decode_data(snapshot_path, &data)?;
            applied.last_applied = meta.last_log_id;
            applied.last_membership = meta.last_membership.clone();
            meta_on_disk = Some(meta);
        }
        let (tx, _) = watch::channel(applied.state.versions());
        Ok(StateMachineStore {
            inner: Arc::new(Inner {
                applied: RwLock::new(applied),
                snapshot_path: snapshot_path.to_path_buf(),
                snapshot_meta: Mutex::new(meta_on_disk),
                snapshot_seq: AtomicU64::new(0),
                versions: tx,
            }),
        })
    }

    fn read_lock(&self) -> RwLockReadGuard<'_, Applied> {
        self.inner.applied.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Applied> {
        self.inner
            .applied
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the current state (under a read lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.read_lock().state)
    }

    /// A copy of the current state.
    pub fn state(&self) -> ClusterState {
        self.read_lock().state.clone()
    }

    /// The id of the last applied entry.
    pub fn last_applied(&self) -> Option<LogId> {
        self.read_lock().last_applied
    }

    /// The current counters; the receiver sees every change of them.
    pub fn subscribe(&self) -> watch::Receiver<Versions> {
        self.inner.versions.subscribe()
    }

    /// The meta of the snapshot on disk, if any.
    pub fn snapshot_meta(&self) -> Option<SnapshotMeta> {
        self.inner
            .snapshot_meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The snapshot file's path.
    pub fn snapshot_path(&self) -> &Path {
        &self.inner.snapshot_path
    }

    /// Applies entries in order; one response per entry.
    pub fn apply_entries<I: IntoIterator<Item = Entry>>(&self, entries: I) -> Vec<Response> {
        let mut a = self.write_lock();
        let before = a.state.versions();
        let mut out = Vec::new();
        for e in entries {
            a.last_applied = Some(e.log_id);
            let r = match e.payload {
                EntryPayload::Blank => Response::Applied(a.state.versions()),
                EntryPayload::Normal(cmd) => a.state.apply_in_term(cmd, e.log_id.leader_id.term),
                EntryPayload::Membership(m) => {
                    a.last_membership = StoredMembership::new(Some(e.log_id), m);
                    Response::Applied(a.state.versions())
                }
            };
            out.push(r);
        }
        let after = a.state.versions();
        drop(a);
        if after != before {
            self.inner.versions.send_replace(after);
        }
        out
    }

    /// Installs snapshot data (decoded first: data that does not decode
    /// changes nothing), writing it durably before it becomes the state.
    pub fn install(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        let path = &self.inner.snapshot_path;
        let state = snapshot_file::decode_data(path, data)?;
        let mut on_disk = self
            .inner
            .snapshot_meta
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        snapshot_file::write(path, meta, data)?;
        *on_disk = Some(meta.clone());
        let versions = state.versions();
        {
            let mut a = self.write_lock();
            a.last_applied = meta.last_log_id;
            a.last_membership = meta.last_membership.clone();
            a.state = state;
        }
        drop(on_disk);
        self.inner.versions.send_replace(versions);
        Ok(())
    }

    /// Reads the snapshot on disk.
    pub fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let _on_disk = self
            .inner
            .snapshot_meta
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        snapshot_file::read(&self.inner.snapshot_path)
    }

    /// A builder over a copy of the current state.
    pub fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            sm: self.inner.clone(),
            copy: self.read_lock().clone(),
        }
    }
}

impl SnapshotBuilder {
    /// Serializes the copy and writes it as the current snapshot, durably.
    /// If a newer snapshot was installed meanwhile, that one stays on disk.
    pub fn build(&self) -> Result<(SnapshotMeta, Vec<u8>, SnapshotStats), StoreError> {
        let data = snapshot_file::encode_data(&self.copy.state)?;
        let seq = self.sm.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.copy.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, seq),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.copy.last_applied,
            last_membership: self.copy.last_membership.clone(),
            snapshot_id,
        };
        let mut on_disk = self
            .sm
            .snapshot_meta
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let newer_on_disk = on_disk
            .as_ref()
            .is_some_and(|m| m.last_log_id > meta.last_log_id);
        let file_bytes = if newer_on_disk {
            0
        } else {
            let n = snapshot_file::write(&self.sm.snapshot_path, &meta, &data)?;
            *on_disk = Some(meta.clone());
            n
        };
        let stats = SnapshotStats {
            file_bytes,
            data_bytes: data.len() as u64,
        };
        Ok((meta, data, stats))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (meta, data, _) = self
            .build()
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.read_lock();
        Ok((a.last_applied, a.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(self.apply_entries(entries))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_builder()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.install(meta, snapshot.get_ref()).map_err(|e| {
            e.into_storage(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let cur = self
            .current_snapshot()
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        Ok(cur.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ApplyError, Command, NodeState};
    use ha_scheduler::model::{Config, Membership, NodeConfig};
    use openraft::{CommittedLeaderId, LogId};

    fn entry(term: u64, index: u64, cmd: Command) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn dc(term: u64, command: Command) -> Command {
        Command::Dc {
            term,
            command: Box::new(command),
        }
    }

    #[test]
    fn apply_checks_a_dc_command_against_the_term_of_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachineStore::open(&dir.path().join("snapshot")).unwrap();
        let config = Config {
            nodes: ["n1", "n2"]
                .iter()
                .map(|n| NodeConfig {
                    id: n.to_string(),
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let joined = |n: &str| Command::SetNodeState {
            node: n.into(),
            state: NodeState::Joined,
        };
        let down = Command::SetNodeState {
            node: "n2".into(),
            state: NodeState::Down,
        };
        let r = sm.apply_entries([
            entry(
                3,
                1,
                Command::ApplyConfig {
                    base_epoch: 0,
                    config,
                },
            ),
            entry(3, 2, dc(3, joined("n1"))),
            entry(3, 3, dc(3, joined("n2"))),
            // The deposed DC of term 3, its write carried by term 4's leader.
            entry(4, 4, dc(3, down.clone())),
        ]);
        assert!(
            r[..3].iter().all(|r| matches!(r, Response::Applied(_))),
            "{r:?}"
        );
        assert_eq!(
            r[3],
            Response::Rejected(ApplyError::StaleTerm {
                dc_term: 3,
                entry_term: 4
            })
        );
        let m = |n: &str| sm.read(|s| s.status.nodes[n].membership);
        assert_eq!(m("n2"), Membership::Online);
        assert_eq!(sm.last_applied().map(|l| l.index), Some(4));
        // The DC of term 4 may.
        let r = sm.apply_entries([entry(4, 5, dc(4, down))]);
        assert!(matches!(r[0], Response::Applied(_)), "{r:?}");
        assert_eq!(m("n2"), Membership::Offline);
    }
}
