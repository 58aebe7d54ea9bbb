//! `hactl simulate` as a process: JSON placement on good input; exit code 2,
//! one line on stderr and nothing on stdout on bad input.

use std::process::Command;

fn hactl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hactl"))
}

fn example(name: &str) -> String {
    format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn simulate_prints_placement_json() {
    let out = hactl()
        .args([
            "simulate",
            "--cib",
            &example("mysql-vip.cib.xml"),
            "--quorum",
            "--output",
            "json",
        ])
        .args(["--node-up", "node1", "--node-up", "node2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["resources"].as_object().is_some_and(|r| !r.is_empty()));
    assert!(v["nodes"].as_object().is_some());
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = std::env::temp_dir().join(format!("hactl-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.xml");
    std::fs::write(&bad, "<cib><configuration><resources><primitive id=\"a\"").unwrap();
    let out = hactl()
        .args([
            "simulate",
            "--cib",
            bad.to_str().unwrap(),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("malformed XML"), "{err}");
    let missing = hactl()
        .args(["simulate", "--cib", "/nonexistent.xml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
