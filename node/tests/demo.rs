//! `hactl demo` as the README runs it: three `ha-node` children, the sample
//! configuration loaded and placed, `hactl status` from "another terminal",
//! and every child stopped on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

#[test]
fn demo_starts_three_nodes_loads_the_sample_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = Command::new(HACTL)
        .args(["demo", "--nodes", "3", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = Vec::new();
    let start = Instant::now();
    let mut pids = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60).saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("demo did not come up: {out:?}"));
        if let Some(p) = line.split("(pid ").nth(1) {
            pids.push(p.split(')').next().unwrap().parse::<i32>().unwrap());
        }
        let done = line.contains("Ctrl-C stops");
        out.push(line);
        if done {
            break;
        }
    }
    let text = out.join("\n");
    assert_eq!(pids.len(), 3, "{text}");
    assert!(text.contains("partition with quorum"), "{text}");
    assert!(text.contains("mysql"), "{text}");
    for n in ["node1", "node2", "node3"] {
        assert!(dir.join(n).join("ha-node.toml").exists());
    }

    let status = Command::new(HACTL)
        .arg("--config")
        .arg(dir.join("hactl.toml"))
        .args(["status", "--output", "json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["quorum"], true, "{v}");
    assert_eq!(v["resources"]["ip"]["role"], "Started", "{v}");

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    let code = demo.wait().unwrap();
    assert!(code.success(), "{code:?}");
    for pid in pids {
        // Reaped by the demo: no such process any more.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "ha-node {pid} still runs after the demo stopped");
    }
}
