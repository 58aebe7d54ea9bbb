//! Benchmarks of the store: durable append latency (p50/p99) of 1 KiB
//! entries, apply throughput of `RecordOps` batches, snapshot build and
//! install of a 10,000-resource / 100-node state, and disk usage after
//! 100,000 status updates with compaction on. Percentiles and sizes are
//! printed as `FIGURE` lines (criterion reports means and spreads).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{big_state, entry, op_update, primitive, single_node};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ha_raft_store::types::Entry;
use ha_raft_store::{Command, Compaction, OpUpdate, StateMachineStore};
use ha_scheduler::model::{Config, NodeConfig};
use openraft::storage::RaftLogStorageExt;

/// `HA_BENCH_ONLY=append,apply,snapshot,disk` runs only those parts (the
/// one-shot figures run whatever criterion's filter says).
fn selected(part: &str) -> bool {
    match std::env::var("HA_BENCH_ONLY") {
        Ok(v) => v.split(',').any(|p| p.trim() == part),
        Err(_) => true,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A command whose log entry encodes to 1024 bytes (± a few).
fn kib_command(i: u64) -> Command {
    let mut u = op_update("node001", "rsc00001", i as i64, 0);
    let e = entry(
        7,
        1_000_000 + i,
        Command::RecordOps {
            ops: vec![u.clone()],
        },
    );
    let base = serde_json::to_vec(&e).expect("encode").len();
    u.op.exit_reason = Some("x".repeat(1024usize.saturating_sub(base + 2)));
    Command::RecordOps { ops: vec![u] }
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99), at(0.999), v[v.len() - 1])
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn durable_append(c: &mut Criterion) {
    if !selected("append") {
        return;
    }
    let rt = runtime();
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut log, _sm) = ha_raft_store::open(tmp.path()).expect("open");
    let size = serde_json::to_vec(&entry(1, 1, kib_command(1)))
        .expect("enc")
        .len();
    let mut next = 1u64;
    let mut append = |log: &mut ha_raft_store::LogStore| {
        let e = entry(1, next, kib_command(next));
        next += 1;
        rt.block_on(log.blocking_append([e])).expect("append");
    };
    // Percentiles over individually timed appends (through openraft's
    // `RaftLogStorage::append` + `LogFlushed` callback).
    for _ in 0..200 {
        append(&mut log);
    }
    let samples: Vec<Duration> = (0..5000)
        .map(|_| {
            let t = Instant::now();
            append(&mut log);
            t.elapsed()
        })
        .collect();
    let (p50, p99, p999, max) = percentiles(samples);
    println!(
        "FIGURE durable append of one {size}-byte entry (sled flush + fdatasync), 5000 samples: \
         p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        us(p50),
        us(p99),
        us(p999),
        us(max)
    );
    // Baseline on the same disk: a plain file, 1 KiB write + fdatasync.
    {
        use std::io::Write;
        let path = tmp.path().join("baseline");
        let mut f = std::fs::File::create(&path).expect("baseline file");
        let buf = vec![b'x'; size];
        let samples: Vec<Duration> = (0..5000)
            .map(|_| {
                let t = Instant::now();
                f.write_all(&buf).expect("write");
                f.sync_data().expect("fdatasync");
                t.elapsed()
            })
            .collect();
        let (p50, p99, p999, max) = percentiles(samples);
        println!(
            "FIGURE baseline: plain file {size}-byte write + fdatasync, 5000 samples: \
             p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
            us(p50),
            us(p99),
            us(p999),
            us(max)
        );
    }
    let mut g = c.benchmark_group("durable_append");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("1KiB", |b| b.iter(|| append(&mut log)));
    g.finish();

    // The same through a one-node Raft: client_write returns once the entry
    // is durable, committed and applied.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let (raft, _log, _sm) = rt.block_on(single_node(tmp2.path(), Compaction::default()));
    let mut i = 0u64;
    let mut write = || {
        i += 1;
        rt.block_on(raft.client_write(kib_command(i)))
            .expect("write");
    };
    for _ in 0..200 {
        write();
    }
    let samples: Vec<Duration> = (0..3000)
        .map(|_| {
            let t = Instant::now();
            write();
            t.elapsed()
        })
        .collect();
    let (p50, p99, p999, max) = percentiles(samples);
    println!(
        "FIGURE one-node Raft client_write of a 1 KiB command (append + commit + apply), 3000 samples: \
         p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        us(p50),
        us(p99),
        us(p999),
        us(max)
    );
    rt.block_on(raft.shutdown()).expect("shutdown");
}

/// `RecordOps` entries of `batch` op results each, on resources that exist
/// in the state (as a running cluster's monitors report).
fn record_ops_entries(count: usize, batch: usize, start_index: u64) -> Vec<Entry> {
    (0..count)
        .map(|n| {
            let ops: Vec<OpUpdate> = (0..batch)
                .map(|j| {
                    let r = (n * batch + j) % 10_000;
                    let mut u = op_update(
                        &format!("node{:03}", r % 100),
                        &format!("rsc{r:05}"),
                        (n * batch + j) as i64,
                        0,
                    );
                    u.op.id = format!("rsc{r:05}_monitor_10000");
                    u
                })
                .collect();
            entry(1, start_index + n as u64, Command::RecordOps { ops })
        })
        .collect()
}

fn apply_throughput(c: &mut Criterion) {
    if !selected("apply") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (log, sm) = ha_raft_store::open(tmp.path()).expect("open");
    let state = big_state(100, 10_000);
    install_state(&sm, &state);
    drop(log);
    let mut g = c.benchmark_group("apply_record_ops");
    for batch in [1usize, 10, 100] {
        let entries = record_ops_entries(100, batch, 10);
        g.throughput(Throughput::Elements((100 * batch) as u64));
        g.bench_with_input(
            BenchmarkId::new("100_entries_of", batch),
            &entries,
            |b, e| b.iter_batched(|| e.clone(), |e| sm.apply_entries(e), BatchSize::SmallInput),
        );
    }
    g.finish();
}

fn install_state(sm: &StateMachineStore, state: &ha_raft_store::ClusterState) {
    let data = serde_json::to_vec(&serde_json::json!({"format": 1, "state": state})).expect("enc");
    let meta = ha_raft_store::types::SnapshotMeta {
        last_log_id: Some(common::log_id(1, 1)),
        last_membership: Default::default(),
        snapshot_id: "bench".to_string(),
    };
    sm.install(&meta, &data).expect("install");
}

fn snapshots(c: &mut Criterion) {
    if !selected("snapshot") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (_log, sm) = ha_raft_store::open(tmp.path()).expect("open");
    let state = big_state(100, 10_000);
    install_state(&sm, &state);
    let (meta, data, stats) = sm.snapshot_builder().build().expect("build");
    let histories: usize = state.status.nodes.values().map(|n| n.history.len()).sum();
    println!(
        "FIGURE snapshot of 10,000 resources / 100 nodes ({histories} resource histories): \
         data {} bytes ({:.1} MiB), file {} bytes",
        stats.data_bytes,
        stats.data_bytes as f64 / 1048576.0,
        stats.file_bytes
    );
    let mut g = c.benchmark_group("snapshot_10000_resources_100_nodes");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stats.data_bytes));
    // Build: copy the state (when openraft takes the builder), encode, write durably.
    g.bench_function("build", |b| {
        b.iter(|| sm.snapshot_builder().build().expect("build"))
    });
    // Install: decode, write durably, swap in.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_log2, follower) = ha_raft_store::open(tmp2.path()).expect("open");
    g.bench_function("install", |b| {
        b.iter(|| follower.install(&meta, &data).expect("install"))
    });
    g.finish();
}

fn medium_config() -> Config {
    Config {
        nodes: (0..100)
            .map(|i| NodeConfig {
                id: format!("node{i:03}"),
                name: format!("node{i:03}"),
                ..Default::default()
            })
            .collect(),
        resources: (0..1000)
            .map(|i| primitive(&format!("rsc{i:05}")))
            .collect(),
        ..Default::default()
    }
}

/// Pushes `updates` status updates through a one-node Raft with 64 writers;
/// returns (seconds, final bytes, peak bytes, snapshot bytes, log entries left).
fn status_churn(dir: &Path, compaction: Compaction, updates: u64) -> (f64, u64, u64, u64, u64) {
    let rt = runtime();
    rt.block_on(async {
        let (raft, log, sm) = single_node(dir, compaction).await;
        raft.client_write(Command::ApplyConfig {
            base_epoch: 0,
            config: medium_config(),
        })
        .await
        .expect("config");
        let raft = Arc::new(raft);
        let writers = 64u64;
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let raft = raft.clone();
            let peak = peak.clone();
            let dir = dir.to_path_buf();
            tasks.push(tokio::spawn(async move {
                for i in (w..updates).step_by(writers as usize) {
                    let n = i / writers;
                    let r = i % 1000;
                    let mut u = op_update(
                        &format!("node{:03}", r % 100),
                        &format!("rsc{r:05}"),
                        i as i64,
                        ((i / 1000) % 2 * 7) as i32,
                    );
                    u.op.expected_rc = Some(u.op.rc);
                    raft.client_write(Command::RecordOps { ops: vec![u] })
                        .await
                        .expect("write");
                    if w == 0 && n % 100 == 0 {
                        let b = ha_raft_store::disk_usage(&dir);
                        peak.fetch_max(b, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let secs = t.elapsed().as_secs_f64();
        // Let the last snapshot and purge land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = sm;
        let (purged, last) = log.log_state().expect("state");
        let left = last.map_or(0, |l| l.index) - purged.map_or(0, |l| l.index);
        let final_bytes = ha_raft_store::disk_usage(dir);
        let snap = std::fs::metadata(dir.join("snapshot")).map_or(0, |m| m.len());
        match Arc::try_unwrap(raft) {
            Ok(r) => r.shutdown().await.expect("shutdown"),
            Err(_) => panic!("raft still shared"),
        }
        let peak = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(final_bytes);
        (secs, final_bytes, peak, snap, left)
    })
}

fn disk_usage(c: &mut Criterion) {
    if !selected("disk") {
        return;
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    for (name, compaction) in [
        (
            "compaction on (snapshot every 1000, keep 100)",
            Compaction::default(),
        ),
        (
            "compaction off",
            Compaction {
                snapshot_every: u64::MAX / 2,
                keep_after_snapshot: 0,
            },
        ),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (secs, fin, peak, snap, left) = status_churn(tmp.path(), compaction, 100_000);
        println!(
            "FIGURE 100,000 status updates, {name}: disk {:.1} MiB at the end (peak {:.1} MiB), \
             snapshot {:.2} MiB, {left} log entries kept; {:.1} s = {:.0} updates/s with 64 writers",
            mib(fin),
            mib(peak),
            mib(snap),
            secs,
            100_000.0 / secs
        );
    }
    // Criterion: throughput of status updates through the one-node Raft.
    let rt = runtime();
    let tmp = tempfile::tempdir().expect("tmp");
    let (raft, _log, _sm) = rt.block_on(single_node(tmp.path(), Compaction::default()));
    let raft = Arc::new(raft);
    let mut g = c.benchmark_group("status_updates");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_updates_64_writers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = Vec::new();
                for w in 0..64u64 {
                    let raft = raft.clone();
                    tasks.push(tokio::spawn(async move {
                        for n in 0..(1000 / 64 + 1) {
                            if n * 64 + w >= 1000 {
                                break;
                            }
                            let u = op_update("node001", &format!("rsc{w:05}"), n as i64, 0);
                            raft.client_write(Command::RecordOps { ops: vec![u] })
                                .await
                                .expect("write");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("writer");
                }
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = durable_append, apply_throughput, snapshots, disk_usage
}
criterion_main!(benches);
