//! Bad input on disk: a damaged, truncated or partly missing store directory,
//! or snapshot data that does not decode, is an error naming the path —
//! never a panic, never a silent fresh start or silent loss.

mod common;

use std::path::{Path, PathBuf};

use common::{entry, log_id, replay, workload};
use ha_raft_store::types::{Entry, Vote};
use ha_raft_store::{ClusterState, StoreError, StorePaths};

const N: u64 = 300;

/// Writes a store: a vote, N entries, a snapshot at 200, purge up to 150,
/// and a guard refresh (as the background thread would do within a second).
fn populate(dir: &Path) -> Vec<Entry> {
    let (log, sm) = ha_raft_store::open(dir).expect("open");
    log.save_vote_durable(&Vote::new(1, 1)).unwrap();
    let mut s = ClusterState::default();
    let mut all = Vec::new();
    for k in 1..=N {
        let c = workload(k, &s);
        let _ = s.apply(c.clone());
        all.push(entry(1, k, c));
    }
    for chunk in all.chunks(10) {
        log.append_durable(chunk.to_vec()).unwrap();
    }
    sm.apply_entries(all[..200].to_vec());
    sm.snapshot_builder().build().unwrap();
    log.purge_upto(&log_id(1, 150)).unwrap();
    sm.apply_entries(all[200..].to_vec());
    log.refresh_guard().unwrap();
    all
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A populated store, made once and copied for each test.
fn fresh() -> (tempfile::TempDir, StorePaths, Vec<Entry>) {
    static TEMPLATE: std::sync::OnceLock<(tempfile::TempDir, Vec<Entry>)> =
        std::sync::OnceLock::new();
    let (tpl, entries) = TEMPLATE.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let e = populate(d.path());
        (d, e)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(tpl.path(), &dir);
    (tmp, StorePaths::new(&dir), entries.clone())
}

fn open_err(p: &StorePaths) -> StoreError {
    // sled releases its file lock from a background thread a moment after
    // the test's raw handle is dropped: retry only that.
    let start = std::time::Instant::now();
    loop {
        match ha_raft_store::open(&p.dir) {
            Ok(_) => panic!("opened a damaged store at {}", p.dir.display()),
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && start.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return e,
        }
    }
}

fn assert_names(e: &StoreError, path: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name {}: {msg}",
        path.display()
    );
    assert!(
        msg.contains("rejoin"),
        "error does not say what to do: {msg}"
    );
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip(path: &Path, at: usize, n: usize) {
    let mut b = std::fs::read(path).unwrap();
    let at = at.min(b.len().saturating_sub(n));
    for x in &mut b[at..at + n] {
        *x ^= 0x5a;
    }
    std::fs::write(path, b).unwrap();
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// What the store holds after opening, as openraft would rebuild it: the
/// snapshot's state plus every entry after it.
fn rebuilt(p: &StorePaths) -> Result<(ClusterState, u64), StoreError> {
    let (log, sm) = ha_raft_store::open(&p.dir)?;
    let from = sm.last_applied().map_or(0, |l| l.index + 1);
    sm.apply_entries(log.entries(from..)?);
    let last = log.log_state()?.1.map_or(0, |l| l.index);
    Ok((sm.state(), last))
}

#[test]
fn undamaged_store_reopens_with_everything() {
    let (_t, p, _) = fresh();
    let (state, last) = rebuilt(&p).unwrap();
    assert_eq!(last, N);
    assert_eq!(state, replay(N).0);
}

#[test]
fn truncated_log_database_is_lost_data() {
    let (_t, p, _) = fresh();
    let db = p.log.join("db");
    truncate(&db, len(&db) / 2);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::LostData { .. }), "{e}");
    assert_names(&e, &p.log);
}

#[test]
fn emptied_log_database_is_lost_data() {
    let (_t, p, _) = fresh();
    truncate(&p.log.join("db"), 0);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::LostData { .. }), "{e}");
    assert!(e.to_string().contains("vote"), "{e}");
    assert_names(&e, &p.log);
}

#[test]
fn damaged_middle_of_log_database_is_an_error() {
    let (_t, p, _) = fresh();
    let db = p.log.join("db");
    flip(&db, len(&db) as usize / 2, 64);
    let e = open_err(&p);
    assert_names(&e, &p.log);
}

#[test]
fn missing_log_database_is_lost_data() {
    let (_t, p, _) = fresh();
    std::fs::remove_file(p.log.join("db")).unwrap();
    let e = open_err(&p);
    assert!(matches!(e, StoreError::LostData { .. }), "{e}");
    assert_names(&e, &p.log);
    // Not recreated empty behind the operator's back.
    assert!(!p.log.join("db").exists());
}

#[test]
fn damaged_sled_config_is_corrupt_log() {
    let (_t, p, _) = fresh();
    std::fs::write(p.log.join("conf"), b"\x00\x01garbage").unwrap();
    let e = open_err(&p);
    assert!(matches!(e, StoreError::CorruptLog { .. }), "{e}");
    assert_names(&e, &p.log);
}

#[test]
fn older_copy_of_the_log_is_lost_data() {
    // What sled does with a damaged tail: it silently recovers an older,
    // consistent log. The guard's floor catches it.
    let (_t, p, entries) = fresh();
    let old = p.dir.join("log-old");
    copy_dir(&p.log, &old);
    {
        let (log, _sm) = ha_raft_store::open(&p.dir).unwrap();
        let more: Vec<_> = (N + 1..=N + 20)
            .map(|i| entry(1, i, entries[0].payload_command()))
            .collect();
        log.append_durable(more).unwrap();
        log.refresh_guard().unwrap();
    }
    std::fs::remove_dir_all(&p.log).unwrap();
    std::fs::rename(&old, &p.log).unwrap();
    let e = open_err(&p);
    assert!(
        e.to_string()
            .contains(&format!("entries up to {} were durable", N + 20)),
        "{e}"
    );
    assert_names(&e, &p.log);
}

trait PayloadCommand {
    fn payload_command(&self) -> ha_raft_store::Command;
}

impl PayloadCommand for Entry {
    fn payload_command(&self) -> ha_raft_store::Command {
        match &self.payload {
            openraft::EntryPayload::Normal(c) => c.clone(),
            other => panic!("not a command: {other:?}"),
        }
    }
}

#[test]
fn missing_guard_is_lost_data() {
    let (_t, p, _) = fresh();
    std::fs::remove_file(&p.guard).unwrap();
    let e = open_err(&p);
    assert!(matches!(e, StoreError::LostData { .. }), "{e}");
    assert_names(&e, &p.guard);
}

#[test]
fn damaged_guard_is_an_error() {
    let (_t, p, _) = fresh();
    flip(&p.guard, 12, 2);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::GuardCorrupt { .. }), "{e}");
    assert_names(&e, &p.guard);
}

#[test]
fn missing_snapshot_after_compaction_is_lost_data() {
    let (_t, p, _) = fresh();
    std::fs::remove_file(&p.snapshot).unwrap();
    let e = open_err(&p);
    assert!(matches!(e, StoreError::LostData { .. }), "{e}");
    assert!(e.to_string().contains("no snapshot"), "{e}");
    assert_names(&e, &p.snapshot);
}

#[test]
fn truncated_snapshot_is_corrupt() {
    let (_t, p, _) = fresh();
    truncate(&p.snapshot, len(&p.snapshot) - 100);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::SnapshotCorrupt { .. }), "{e}");
    assert_names(&e, &p.snapshot);
}

#[test]
fn damaged_snapshot_is_corrupt() {
    let (_t, p, _) = fresh();
    flip(&p.snapshot, len(&p.snapshot) as usize / 2, 1);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::SnapshotCorrupt { .. }), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");
    assert_names(&e, &p.snapshot);
}

/// A well-framed snapshot file (valid checksum) whose data is not a state.
fn write_framed_snapshot(path: &Path, meta: &[u8], data: &[u8]) {
    let mut out = b"HASNAP01".to_vec();
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

#[test]
fn snapshot_data_that_does_not_decode_is_an_error() {
    let (_t, p, _) = fresh();
    let (_, sm) = ha_raft_store::open(&p.dir).unwrap();
    let meta = serde_json::to_vec(&sm.snapshot_meta().unwrap()).unwrap();
    drop(sm);
    write_framed_snapshot(&p.snapshot, &meta, br#"{"format":1,"state":{"config":42}}"#);
    let e = open_err(&p);
    assert!(matches!(e, StoreError::SnapshotDecode { .. }), "{e}");
    assert_names(&e, &p.snapshot);
    // Meta that does not decode.
    write_framed_snapshot(&p.snapshot, b"{not json", b"{}");
    let e = open_err(&p);
    assert!(matches!(e, StoreError::SnapshotCorrupt { .. }), "{e}");
    assert_names(&e, &p.snapshot);
}

#[test]
fn installing_snapshot_data_that_does_not_decode_changes_nothing() {
    let (_t, p, _) = fresh();
    let (_log, sm) = ha_raft_store::open(&p.dir).unwrap();
    let before = (
        sm.state(),
        sm.last_applied(),
        std::fs::read(&p.snapshot).unwrap(),
    );
    let mut meta = sm.snapshot_meta().unwrap();
    meta.last_log_id = Some(log_id(2, 500));
    for garbage in [
        &b""[..],
        b"\x00\x01",
        br#"{"format":1}"#,
        br#"{"format":9,"state":{}}"#,
    ] {
        let e = sm.install(&meta, garbage).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::SnapshotDecode { .. } | StoreError::SnapshotCorrupt { .. }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains(&p.snapshot.display().to_string()),
            "{e}"
        );
        let after = (
            sm.state(),
            sm.last_applied(),
            std::fs::read(&p.snapshot).unwrap(),
        );
        assert!(before == after, "a bad snapshot changed the state machine");
    }
}

fn raw_tree(p: &StorePaths) -> (sled::Db, sled::Tree) {
    // The store just closed releases sled's lock from a background thread.
    let start = std::time::Instant::now();
    let db = loop {
        match sled::open(&p.log) {
            Ok(db) => break db,
            Err(e) if start.elapsed() < std::time::Duration::from_secs(5) => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let t = db.open_tree("raft").unwrap();
    (db, t)
}

fn key(i: u64) -> Vec<u8> {
    let mut k = vec![b'l'];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

#[test]
fn entry_that_does_not_decode_is_named_by_index() {
    let (_t, p, _) = fresh();
    {
        let (db, t) = raw_tree(&p);
        t.insert(key(222), &b"{\"log_id\":"[..]).unwrap();
        db.flush().unwrap();
    }
    let e = open_err(&p);
    assert!(
        matches!(e, StoreError::CorruptEntry { index: 222, .. }),
        "{e}"
    );
    assert_names(&e, &p.log);
}

#[test]
fn hole_in_the_log_is_corrupt() {
    let (_t, p, _) = fresh();
    {
        let (db, t) = raw_tree(&p);
        t.remove(key(250)).unwrap();
        db.flush().unwrap();
    }
    let e = open_err(&p);
    assert!(matches!(e, StoreError::CorruptLog { .. }), "{e}");
    assert!(e.to_string().contains("entry 250 is missing"), "{e}");
    assert_names(&e, &p.log);
}

#[test]
fn entry_at_the_wrong_index_is_corrupt() {
    let (_t, p, entries) = fresh();
    {
        let (db, t) = raw_tree(&p);
        t.insert(key(260), serde_json::to_vec(&entries[200]).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let e = open_err(&p);
    assert!(matches!(e, StoreError::CorruptLog { .. }), "{e}");
    assert_names(&e, &p.log);
}

/// Small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()));
        } else if std::fs::metadata(e.path()).unwrap().len() > 0 {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Random damage to random files: opening never panics, and either fails
/// naming the store, or opens holding everything that was written.
#[test]
fn random_damage_is_detected_or_harmless() {
    let seed = std::env::var("HA_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    println!("seed {seed} (set HA_DAMAGE_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let expected = replay(N).0;
    let (mut errors, mut harmless) = (0, 0);
    for case in 0..40 {
        let (_t, p, _) = fresh();
        let fs = files(&p.dir);
        let f = &fs[rng.below(fs.len() as u64) as usize];
        let l = len(f);
        let what = if rng.below(2) == 0 {
            let to = rng.below(l);
            truncate(f, to);
            format!("truncate {} from {l} to {to}", f.display())
        } else {
            let at = rng.below(l) as usize;
            let n = 1 + rng.below(16) as usize;
            flip(f, at, n);
            format!("flip {n} bytes at {at} of {} ({l} bytes)", f.display())
        };
        let outcome = std::panic::catch_unwind(|| rebuilt(&p));
        match outcome {
            Err(_) => panic!("case {case}: {what}: opening panicked"),
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&p.dir.display().to_string()),
                    "case {case}: {what}: error does not name the store: {msg}"
                );
                errors += 1;
            }
            Ok(Ok((state, last))) => {
                assert_eq!(last, N, "case {case}: {what}: opened with a shorter log");
                assert!(
                    state == expected,
                    "case {case}: {what}: opened with another state"
                );
                harmless += 1;
            }
        }
    }
    println!("40 damaged stores: {errors} refused with an error, {harmless} opened intact");
}
