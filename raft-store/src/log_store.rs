//! The Raft log on sled: entries, vote, purge point and committed id, with
//! every acknowledged write made durable (sled flush, then fdatasync of the
//! database file, then fsync of any new blob file), and an integrity check
//! of the whole log on open.

use std::fmt::Debug;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader};

use crate::durable::sync_dir;
use crate::error::StoreError;
use crate::guard::Guard;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const TREE: &str = "raft";
const LOG_PREFIX: u8 = b'l';
const KEY_VOTE: &[u8] = b"m/vote";
const KEY_PURGED: &[u8] = b"m/purged";
const KEY_COMMITTED: &[u8] = b"m/committed";
/// Values at least this large may become sled blob files (sled writes them
/// apart from the database file and never fsyncs them): sync blobs then.
/// sled's own threshold is `segment_size / 4` (128 KiB by default).
const BLOB_SYNC_THRESHOLD: usize = 64 * 1024;
/// How often the guard's floor catches up with the durable log.
pub const GUARD_REFRESH: Duration = Duration::from_secs(1);

/// Above every log key.
const LOG_END: [u8; 9] = [LOG_PREFIX + 1, 0, 0, 0, 0, 0, 0, 0, 0];

fn log_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG_PREFIX;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn index_of_key(key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != LOG_PREFIX {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[1..]);
    Some(u64::from_be_bytes(b))
}

/// The Raft log storage. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<dir>/log`, the sled database directory.
    db_dir: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    /// `<dir>/log/db`, fdatasync'ed after every flush.
    db_file: File,
    guard: Arc<GuardShared>,
}

/// The guard file's writer, shared with the thread that raises its floor.
struct GuardShared {
    path: PathBuf,
    state: Mutex<GuardState>,
    /// Serializes guard file writes; `true` once the store is closed.
    write: Mutex<bool>,
}

struct GuardState {
    /// What the guard file says.
    written: Guard,
    /// The last index known durable in the log.
    durable_last: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GuardShared {
    /// Computes the next guard from the current one and the durable index
    /// (both may change) and writes it if it differs.
    fn update(&self, f: impl FnOnce(&mut Guard, &mut u64)) -> Result<(), StoreError> {
        let closed = lock(&self.write);
        if *closed {
            return Ok(());
        }
        let next = {
            let mut st = lock(&self.state);
            let mut next = st.written.clone();
            f(&mut next, &mut st.durable_last);
            if next == st.written {
                return Ok(());
            }
            next
        };
        next.write(&self.path)?;
        lock(&self.state).written = next;
        drop(closed);
        Ok(())
    }

    fn raise_floor(&self) -> Result<(), StoreError> {
        self.update(|g, durable| g.floor = g.floor.max(*durable))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Waits for a guard write in progress; none after this.
        *lock(&self.guard.write) = true;
    }
}

/// Raises the guard's floor every [`GUARD_REFRESH`] until the store closes.
fn spawn_guard_refresh(guard: Weak<GuardShared>) {
    let spawned = std::thread::Builder::new()
        .name("ha-raft-guard".to_string())
        .spawn(move || loop {
            std::thread::sleep(GUARD_REFRESH);
            let Some(g) = guard.upgrade() else { break };
            if *lock(&g.write) {
                break;
            }
            if let Err(e) = g.raise_floor() {
                tracing::warn!("cannot update the Raft log guard: {e}");
            }
        });
    if let Err(e) = spawned {
        // Only the extra protection between purges is lost.
        tracing::warn!("cannot start the Raft log guard thread: {e}");
    }
}

/// What the log held when it was opened (for the cross-checks in `open`).
pub(crate) struct LogSummary {
    pub last_purged: Option<LogId>,
    pub last_log_id: Option<LogId>,
}

impl LogStore {
    /// Opens (or creates) the sled log in `db_dir` and checks it: every
    /// entry decodes and sits at its own index, the indexes are contiguous
    /// from the purge point, and the log holds the vote and reaches the
    /// floor recorded in the guard.
    pub(crate) fn open(
        db_dir: &Path,
        guard_path: &Path,
        mut guard: Guard,
    ) -> Result<(LogStore, LogSummary), StoreError> {
        let db_file_path = db_dir.join("db");
        if guard.log_created && !db_file_path.exists() {
            return Err(StoreError::LostData {
                path: db_dir.to_path_buf(),
                detail: "the log database file is missing".to_string(),
            });
        }
        // No periodic background flush: every write that must be durable
        // is flushed (and fdatasync'ed) by this store when it is made.
        let config = sled::Config::new().path(db_dir).flush_every_ms(None);
        // sled may panic on some damaged files instead of returning an error.
        // A process that just closed this database releases sled's file lock
        // from a background thread: wait for it briefly, not forever.
        let started = std::time::Instant::now();
        let opened = loop {
            let c = config.clone();
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || c.open()));
            match &attempt {
                Ok(Err(sled::Error::Io(e)))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock"))
                        && started.elapsed() < Duration::from_secs(3) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break attempt,
            }
        };
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Corruption { at, .. })) => {
                return Err(StoreError::CorruptLog {
                    path: db_dir.to_path_buf(),
                    detail: format!("sled found a damaged record at {at:?}"),
                })
            }
            Ok(Err(source)) => {
                return Err(StoreError::OpenLog {
                    path: db_dir.to_path_buf(),
                    source,
                })
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown".to_string());
                return Err(StoreError::CorruptLog {
                    path: db_dir.to_path_buf(),
                    detail: format!("sled failed while reading it: {msg}"),
                });
            }
        };
        let tree = db
            .open_tree(TREE)
            .map_err(|e| StoreError::sled("cannot open the log tree", db_dir, e))?;
        let db_file = File::open(&db_file_path)
            .map_err(|e| StoreError::io("cannot open", &db_file_path, e))?;
        if !guard.log_created {
            db.flush()
                .map_err(|e| StoreError::sled("cannot flush", db_dir, e))?;
            db_file
                .sync_all()
                .map_err(|e| StoreError::io("cannot fsync", &db_file_path, e))?;
            sync_dir(db_dir)?;
            guard.log_created = true;
            guard.write(guard_path)?;
        }
        let store = LogStore {
            inner: Arc::new(Inner {
                db_dir: db_dir.to_path_buf(),
                db,
                tree,
                db_file,
                guard: Arc::new(GuardShared {
                    path: guard_path.to_path_buf(),
                    state: Mutex::new(GuardState {
                        written: guard.clone(),
                        durable_last: 0,
                    }),
                    write: Mutex::new(false),
                }),
            }),
        };
        let summary = store.check(&guard)?;
        // What sled recovered is on disk from now on; the floor may cover it.
        store.sync(false)?;
        lock(&store.inner.guard.state).durable_last = summary.last_log_id.map_or(0, |l| l.index);
        spawn_guard_refresh(Arc::downgrade(&store.inner.guard));
        Ok((store, summary))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::CorruptLog {
            path: self.inner.db_dir.clone(),
            detail,
        }
    }

    fn lost(&self, detail: String) -> StoreError {
        StoreError::LostData {
            path: self.inner.db_dir.clone(),
            detail,
        }
    }

    /// The integrity check of `open`.
    fn check(&self, guard: &Guard) -> Result<LogSummary, StoreError> {
        let vote = self.read_vote_inner()?;
        let last_purged = self.read_purged()?;
        let committed = self.read_committed_inner()?;
        let mut expected = last_purged.map(|l| l.index + 1);
        let mut last_log_id: Option<LogId> = None;
        for item in self.inner.tree.scan_prefix([LOG_PREFIX]) {
            let (k, v) = item.map_err(|e| self.read_err(e))?;
            let Some(index) = index_of_key(&k) else {
                return Err(self.corrupt(format!("malformed log key {k:?}")));
            };
            if let Some(want) = expected {
                if index != want {
                    return Err(self.corrupt(format!(
                        "hole in the log: entry {want} is missing (next present: {index})"
                    )));
                }
            }
            let entry = self.decode_entry(index, &v)?;
            if entry.log_id.index != index {
                return Err(self.corrupt(format!(
                    "the entry stored at index {index} is entry {}",
                    entry.log_id
                )));
            }
            if let Some(prev) = last_log_id {
                if entry.log_id.leader_id < prev.leader_id {
                    return Err(self.corrupt(format!(
                        "entry {} has an older term than entry {prev}",
                        entry.log_id
                    )));
                }
            }
            last_log_id = Some(entry.log_id);
            expected = Some(index + 1);
        }
        let last = last_log_id.or(last_purged);
        let last_index = last.map(|l| l.index);
        if let Some(gv) = &guard.vote {
            let holds = match &vote {
                Some(v) => v >= gv,
                None => false,
            };
            if !holds {
                return Err(self.lost(format!(
                    "the saved vote is {} but the guard file records vote {gv}",
                    vote.map(|v| v.to_string())
                        .unwrap_or_else(|| "missing".into())
                )));
            }
        }
        if guard.floor > 0 && last_index.unwrap_or(0) < guard.floor {
            return Err(self.lost(format!(
                "the log ends at index {} but entries up to {} were durable",
                last_index
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "(empty)".into()),
                guard.floor
            )));
        }
        if let (Some(c), Some(l)) = (committed, last) {
            if c.index > l.index {
                return Err(self.lost(format!("entry {c} was committed but the log ends at {l}")));
            }
        }
        Ok(LogSummary {
            last_purged,
            last_log_id: last,
        })
    }

    fn read_err(&self, e: sled::Error) -> StoreError {
        StoreError::sled("cannot read", &self.inner.db_dir, e)
    }

    fn decode_entry(&self, index: u64, bytes: &[u8]) -> Result<Entry, StoreError> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::CorruptEntry {
            path: self.inner.db_dir.clone(),
            index,
            source,
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static [u8],
    ) -> Result<Option<T>, StoreError> {
        match self.inner.tree.get(key).map_err(|e| self.read_err(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| {
                self.corrupt(format!(
                    "{} does not decode: {e}",
                    String::from_utf8_lossy(key)
                ))
            }),
        }
    }

    fn encode<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(v).map_err(|source| StoreError::Encode { what, source })
    }

    /// Makes `id` the only voter, as etcd's `--force-new-cluster` does: a
    /// membership entry `{id}` is appended after the last entry, at a term
    /// above every term seen, with a vote for `id` at that term. When Raft
    /// starts on this log, `id` elects itself (a majority of one) and commits
    /// the entry. Only safe once every other voter is known to be down (a
    /// two-node cluster whose peer is confirmed fenced: every entry it
    /// committed is here too). Returns the entry's log id.
    pub fn force_single_voter(
        &self,
        id: crate::types::NodeId,
        node: crate::types::Node,
    ) -> Result<LogId, StoreError> {
        let (purged, last) = self.log_state()?;
        let last = last.or(purged);
        let vote_term = self
            .read_vote_inner()?
            .map(|v| v.leader_id().term)
            .unwrap_or(0);
        let term = vote_term.max(last.map(|l| l.leader_id.term).unwrap_or(0)) + 1;
        let index = last.map(|l| l.index + 1).unwrap_or(0);
        let membership = openraft::Membership::new(
            vec![std::collections::BTreeSet::from([id])],
            std::collections::BTreeMap::from([(id, node)]),
        );
        let log_id = LogId::new(openraft::CommittedLeaderId::new(term, id), index);
        self.save_vote_durable(&Vote::new(term, id))?;
        self.append_durable([Entry {
            log_id,
            payload: openraft::EntryPayload::Membership(membership),
        }])?;
        Ok(log_id)
    }

    fn read_vote_inner(&self) -> Result<Option<Vote>, StoreError> {
        self.get_meta(KEY_VOTE)
    }

    fn read_purged(&self) -> Result<Option<LogId>, StoreError> {
        self.get_meta(KEY_PURGED)
    }

    fn read_committed_inner(&self) -> Result<Option<LogId>, StoreError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    /// Makes every write so far durable: sled's flush (on Linux only
    /// `sync_file_range`, not durable), then fdatasync of the database file,
    /// and with `blobs` an fsync of sled's blob files and their directory.
    fn sync(&self, blobs: bool) -> Result<(), StoreError> {
        let i = &self.inner;
        i.db.flush()
            .map_err(|e| StoreError::sled("cannot flush", &i.db_dir, e))?;
        i.db_file
            .sync_data()
            .map_err(|e| StoreError::io("cannot fdatasync", i.db_dir.join("db"), e))?;
        if blobs {
            let dir = i.db_dir.join("blobs");
            let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::io("cannot list", &dir, e))?;
            for ent in rd {
                let p = ent
                    .map_err(|e| StoreError::io("cannot list", &dir, e))?
                    .path();
                match File::open(&p) {
                    Ok(f) => f
                        .sync_data()
                        .map_err(|e| StoreError::io("cannot fsync", &p, e))?,
                    // sled removes blobs of overwritten values concurrently.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("cannot open", &p, e)),
                }
            }
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Appends entries and returns once they are durable.
    pub fn append_durable<I: IntoIterator<Item = Entry>>(
        &self,
        entries: I,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut big = false;
        let mut last = None;
        for e in entries {
            let v = Self::encode("a log entry", &e)?;
            big |= v.len() >= BLOB_SYNC_THRESHOLD;
            batch.insert(&log_key(e.log_id.index), v);
            last = Some(e.log_id.index);
        }
        self.inner
            .tree
            .apply_batch(batch)
            .map_err(|e| StoreError::sled("cannot append", &self.inner.db_dir, e))?;
        self.sync(big)?;
        if let Some(l) = last {
            let mut st = lock(&self.inner.guard.state);
            st.durable_last = st.durable_last.max(l);
        }
        Ok(())
    }

    /// Raises the guard's floor to the last durable index now (a background
    /// thread does it every [`GUARD_REFRESH`]; call it before a clean stop).
    pub fn refresh_guard(&self) -> Result<(), StoreError> {
        self.inner.guard.raise_floor()
    }

    /// Reads entries in `[start, end)`.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, StoreError> {
        let lo = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => match s.checked_add(1) {
                Some(v) => v,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(e) => e.checked_add(1),
            Bound::Excluded(e) => Some(*e),
            Bound::Unbounded => None,
        };
        if hi.is_some_and(|h| h <= lo) {
            return Ok(Vec::new());
        }
        let iter = match hi {
            Some(h) => self.inner.tree.range(log_key(lo)..log_key(h)),
            None => self.inner.tree.range(log_key(lo)..LOG_END),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| self.read_err(e))?;
            let index =
                index_of_key(&k).ok_or_else(|| self.corrupt(format!("malformed log key {k:?}")))?;
            out.push(self.decode_entry(index, &v)?);
        }
        Ok(out)
    }

    /// The purge point and the last log id (the purge point if the log is empty).
    pub fn log_state(&self) -> Result<(Option<LogId>, Option<LogId>), StoreError> {
        let purged = self.read_purged()?;
        let last = match self
            .inner
            .tree
            .scan_prefix([LOG_PREFIX])
            .next_back()
            .transpose()
            .map_err(|e| self.read_err(e))?
        {
            Some((k, v)) => {
                let index = index_of_key(&k)
                    .ok_or_else(|| self.corrupt(format!("malformed log key {k:?}")))?;
                Some(self.decode_entry(index, &v)?.log_id)
            }
            None => purged,
        };
        Ok((purged, last))
    }

    /// Saves the vote durably (database, then the guard file).
    pub fn save_vote_durable(&self, vote: &Vote) -> Result<(), StoreError> {
        let v = Self::encode("the vote", vote)?;
        self.inner
            .tree
            .insert(KEY_VOTE, v)
            .map_err(|e| StoreError::sled("cannot save the vote", &self.inner.db_dir, e))?;
        self.sync(false)?;
        self.inner.guard.update(|g, durable| {
            g.vote = Some(*vote);
            g.floor = g.floor.max(*durable);
        })
    }

    /// Deletes entries from `from` on (conflicting entries), durably.
    pub fn truncate_from(&self, from: u64) -> Result<(), StoreError> {
        // The floor must not stay above what legitimately remains: lower it
        // first (a crash in between leaves it lower, which is safe).
        let keep = from.saturating_sub(1);
        self.inner.guard.update(|g, durable| {
            *durable = (*durable).min(keep);
            g.floor = g.floor.min(keep);
        })?;
        let mut batch = sled::Batch::default();
        for item in self.inner.tree.range(log_key(from)..LOG_END) {
            let (k, _) = item.map_err(|e| self.read_err(e))?;
            batch.remove(k);
        }
        self.inner
            .tree
            .apply_batch(batch)
            .map_err(|e| StoreError::sled("cannot truncate", &self.inner.db_dir, e))?;
        self.sync(false)
    }

    /// Deletes entries up to and including `upto` (they are in a snapshot),
    /// and raises the guard's floor to the last durable index.
    pub fn purge_upto(&self, upto: &LogId) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(KEY_PURGED, Self::encode("the purge point", upto)?);
        for item in self.inner.tree.range(log_key(0)..=log_key(upto.index)) {
            let (k, _) = item.map_err(|e| self.read_err(e))?;
            batch.remove(k);
        }
        self.inner
            .tree
            .apply_batch(batch)
            .map_err(|e| StoreError::sled("cannot purge", &self.inner.db_dir, e))?;
        self.sync(false)?;
        self.inner.guard.update(|g, durable| {
            *durable = (*durable).max(upto.index);
            g.floor = g.floor.max(*durable);
        })
    }

    fn save_committed_inner(&self, committed: Option<LogId>) -> Result<(), StoreError> {
        let v = Self::encode("the committed log id", &committed)?;
        // Not synced: a lost committed id only delays re-applying entries.
        self.inner
            .tree
            .insert(KEY_COMMITTED, v)
            .map_err(|e| StoreError::sled("cannot save the committed id", &self.inner.db_dir, e))?;
        Ok(())
    }

    /// Bytes on disk under the database directory (sled's files).
    pub fn disk_usage(&self) -> u64 {
        dir_size(&self.inner.db_dir)
    }

    /// The sled database directory.
    pub fn path(&self) -> &Path {
        &self.inner.db_dir
    }
}

pub(crate) fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range)
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let (last_purged_log_id, last_log_id) = self
            .log_state()
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.save_vote_durable(vote)
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_vote_inner()
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.save_committed_inner(committed)
            .map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_committed_inner()
            .map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Read))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Acknowledge only once durable; report failure to both sides.
        // (openraft 0.9 awaits this callback before its next append, so a
        // group commit here would gain nothing: batch at the command level.)
        match self.append_durable(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e.into_storage(ErrorSubject::Logs, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_from(log_id.index)
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_upto(&log_id)
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}
