//! `ha-sim`: runs the deterministic cluster simulator.
//!
//! ```text
//! ha-sim random N [--seed S] [--threads T]   N random schedules from seed S
//! ha-sim replay SEED [--trace]               one random schedule again
//! ha-sim scenario NAME|all [--legacy] [--trace]
//! ```
//! A failing schedule prints the command that replays it.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ha_controller::sim::scenario::{self, SCENARIOS};
use ha_controller::Design;

fn usage() -> ExitCode {
    eprintln!(
        "usage: ha-sim random N [--seed S] [--threads T] | ha-sim replay SEED [--trace] | \
         ha-sim scenario NAME|all [--legacy] [--trace]"
    );
    ExitCode::from(2)
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn value(args: &[String], name: &str) -> Result<Option<u64>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => match args.get(i + 1).map(|v| v.parse::<u64>()) {
            Some(Ok(v)) => Ok(Some(v)),
            _ => Err(format!("{name} needs a number")),
        },
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("random") => random(&args),
        Some("replay") => replay(&args),
        Some("scenario") => scenarios(&args),
        _ => return usage(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ha-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn random(args: &[String]) -> Result<ExitCode, String> {
    let n: u64 = args
        .get(1)
        .and_then(|v| v.parse().ok())
        .ok_or("random needs a count")?;
    let first = value(args, "--seed")?.unwrap_or(1);
    let threads = value(args, "--threads")?
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|p| p.get() as u64)
                .unwrap_or(1)
        })
        .max(1);
    let next = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, u64>::new(),
    ));
    let failing = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let violations = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (next, faults, failing, violations) = (
            next.clone(),
            faults.clone(),
            failing.clone(),
            violations.clone(),
        );
        handles.push(std::thread::spawn(move || loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            if k >= n {
                break;
            }
            let seed = first + k;
            let o = scenario::run_random(Design::default(), seed, false);
            if let Ok(mut f) = faults.lock() {
                for (name, c) in &o.faults {
                    *f.entry(name).or_default() += c;
                }
            }
            if !o.violations.is_empty() {
                violations.fetch_add(o.violations.len() as u64, Ordering::SeqCst);
                if let Ok(mut v) = failing.lock() {
                    v.push((seed, o.violations[0].to_string()));
                }
            }
            if (k + 1) % 1000 == 0 {
                eprintln!("... {} schedules", k + 1);
            }
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "a simulation thread panicked".to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    let faults = faults.lock().map_err(|_| "poisoned")?.clone();
    let total: u64 = faults.values().sum();
    let mut failing = failing.lock().map_err(|_| "poisoned")?.clone();
    failing.sort();
    for (seed, v) in failing.iter().take(20) {
        println!("seed {seed}: {v}\n  replay: scripts/sim.sh --replay {seed}");
    }
    let mix: Vec<String> = faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("fault mix: {}", mix.join(", "));
    println!(
        "{:.1} schedules/s ({threads} threads, {secs:.1} s)",
        n as f64 / secs.max(1e-9)
    );
    let v = violations.load(Ordering::SeqCst);
    println!("simulated {n} schedules ({total} faults): {v} invariant violations");
    Ok(if v == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn replay(args: &[String]) -> Result<ExitCode, String> {
    let seed: u64 = args
        .get(1)
        .and_then(|v| v.parse().ok())
        .ok_or("replay needs a seed")?;
    let o = scenario::run_random(Design::default(), seed, flag(args, "--trace"));
    for line in &o.trace {
        println!("{line}");
    }
    println!("seed {seed}: {} events, digest {:016x}", o.events, o.digest);
    for v in &o.violations {
        println!("violation: {v}");
    }
    Ok(if o.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn scenarios(args: &[String]) -> Result<ExitCode, String> {
    let name = args.get(1).ok_or("scenario needs a name (or all)")?;
    let legacy = flag(args, "--legacy");
    let list: Vec<_> = if name == "all" {
        SCENARIOS.iter().collect()
    } else {
        vec![scenario::scenario(name).ok_or_else(|| {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            format!("no scenario '{name}'; there are: {}", names.join(", "))
        })?]
    };
    let mut bad = 0;
    for s in list {
        let design = if legacy {
            Design::without(s.mechanism).ok_or("unknown mechanism")?
        } else {
            Design::default()
        };
        let mut spec = (s.spec)(design, 1);
        spec.trace = flag(args, "--trace");
        let o = ha_controller::sim::run(spec);
        for line in &o.trace {
            println!("{line}");
        }
        let verdict = if o.violations.is_empty() {
            "ok"
        } else {
            "VIOLATED"
        };
        println!(
            "{} ({}): {verdict}{}",
            s.name,
            if legacy {
                format!("without {}", s.mechanism)
            } else {
                "design".into()
            },
            if o.violations.is_empty() {
                String::new()
            } else {
                format!(": {}", o.violations[0])
            }
        );
        if !o.violations.is_empty() {
            bad += 1;
        }
        if !o.refused.is_empty() {
            println!("  refused: {:?}", o.refused);
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
