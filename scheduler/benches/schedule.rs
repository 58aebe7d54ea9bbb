//! Criterion benchmarks of the scheduler library: reading a CIB
//! (`cib::read_cib`) and one scheduling pass (`schedule`), measured apart.
//!
//! The inputs are generated at setup by `bench/gen_cib.py` (Python 3, stdlib
//! only; `$PYTHON` or `python3`) with a fixed seed, so every run measures the
//! same CIBs: 16 nodes / 200 primitives, 32 / 1,000 and 100 / 10,000.
//!
//! Run: `cargo bench -p ha-scheduler --bench schedule [-- FILTER]`, e.g.
//! `-- 32n` for the middle size only. Compare with Pacemaker's one pass
//! (`crm_simulate -R -Q`) by `bench/vs-crm-simulate.sh`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ha_scheduler::cib::read_cib;
use ha_scheduler::schedule;

/// (nodes, primitives, samples, measurement seconds). The largest size uses
/// flat sampling (every sample the same iteration count) so that 10 samples
/// take 10 iterations, not the 55 of criterion's default linear sampling.
const SIZES: &[(usize, usize, usize, u64)] =
    &[(16, 200, 50, 8), (32, 1_000, 20, 15), (100, 10_000, 10, 30)];
const SEED: u64 = 1;
/// gen_cib.py's default `--now`, used when the CIB has no execution-date.
const NOW: i64 = 1_700_000_000;

struct Input {
    label: String,
    xml: String,
    samples: usize,
    time: Duration,
    sampling: SamplingMode,
}

/// Generates one CIB into `dir` with gen_cib.py and returns its text.
fn generate(dir: &Path, nodes: usize, primitives: usize) -> String {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen_cib.py");
    let out = dir.join(format!("cib-{nodes}-{primitives}.xml"));
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .arg(&gen)
        .args(["-n", &nodes.to_string(), "-m", &primitives.to_string()])
        .args(["--seed", &SEED.to_string(), "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", gen.display()));
    assert!(status.success(), "{} failed: {status}", gen.display());
    std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("cannot read {}: {e}", out.display()))
}

/// All inputs, generated into a temporary directory that is removed again.
fn inputs() -> Vec<Input> {
    let dir: PathBuf = std::env::temp_dir().join(format!("ha-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let inputs = SIZES
        .iter()
        .map(|&(nodes, primitives, samples, secs)| Input {
            label: format!("{nodes}n-{primitives}p"),
            xml: generate(&dir, nodes, primitives),
            samples,
            time: Duration::from_secs(secs),
            sampling: if primitives >= 10_000 {
                SamplingMode::Flat
            } else {
                SamplingMode::Auto
            },
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    inputs
}

fn benches(c: &mut Criterion) {
    for input in inputs() {
        let cib = read_cib(&input.xml)
            .unwrap_or_else(|e| panic!("{}: generated CIB does not load: {e}", input.label));
        let now = cib.execution_date.unwrap_or(NOW);

        let mut group = c.benchmark_group("read_cib");
        group
            .sample_size(input.samples)
            .measurement_time(input.time)
            .sampling_mode(input.sampling);
        group.throughput(Throughput::Bytes(input.xml.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(&input.label),
            &input.xml,
            |b, xml| b.iter(|| read_cib(black_box(xml)).expect("loads")),
        );
        group.finish();

        let mut group = c.benchmark_group("schedule");
        group
            .sample_size(input.samples)
            .measurement_time(input.time)
            .sampling_mode(input.sampling);
        group.bench_with_input(BenchmarkId::from_parameter(&input.label), &cib, |b, cib| {
            b.iter(|| schedule(black_box(&cib.config), black_box(&cib.status), now))
        });
        group.finish();
    }
}

criterion_group!(schedule_benches, benches);
criterion_main!(schedule_benches);
