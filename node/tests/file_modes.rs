//! Private files: a running cluster whose configuration holds a fence
//! password, with a resource running, a join token created and a fourth
//! node joined. Every file and directory under the cluster directory
//! (keys, configs, each node's data and Raft log, the agents' state) must
//! be unreadable by group and others, the daemons run with umask 077, and a
//! data directory left wider by an older version is tightened at start.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "fence-pw-3f9a1c";

/// Every path under `root` that group or others can read, write or enter,
/// with its mode. `root` itself is the harness's temporary directory (made
/// by `tempfile` under the test's umask), not the nodes': it is not
/// checked, everything in it is. Symlinks are not followed (a target inside
/// `root` is checked where it is).
fn too_open(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut bad = Vec::new();
    let mut stack: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            // Its own mode means nothing; a target inside the tree is
            // walked where it is.
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            bad.push((p.clone(), mode));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    bad.sort();
    bad
}

fn report(bad: &[(PathBuf, u32)], root: &Path) -> String {
    bad.iter()
        .map(|(p, m)| format!("  {:o} {}", m, p.strip_prefix(root).unwrap_or(p).display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The umask of a running process, from `/proc/PID/status`.
fn umask_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask in /proc/PID/status");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

/// Whether some file under `dir` holds `needle`.
fn some_file_holds(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if meta.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
    }
    false
}

fn wait_for(
    rt: &tokio::runtime::Runtime,
    c: &Cluster,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    let client = c.client();
    let start = Instant::now();
    loop {
        if let Ok(v) = rt.block_on(client.status()) {
            if pred(&v) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{what}: not after 60s: {v:#}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn online_voter(v: &serde_json::Value, name: &str) -> bool {
    v["nodes"].as_array().is_some_and(|a| {
        a.iter()
            .any(|n| n["name"] == name && n["state"] == "online" && n["voter"] == true)
    })
}

#[test]
fn nothing_under_a_nodes_directory_is_readable_by_others() {
    let mut c = Cluster::start(3);
    let rt = rt();
    rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));

    // The test's own input lives outside the cluster directory.
    let input = tempfile::tempdir().unwrap();
    let crm = input.path().join("config.crm");
    std::fs::write(
        &crm,
        format!(
            "node node1\nnode node2\nnode node3\n\
             primitive fence-node1 stonith:external/ipmi params hostname=node1 \
             ipaddr=127.0.0.1 ipport=9 userid=admin passwd={PASSWORD} interface=lanplus \
             pcmk_host_list=node1\n\
             location fence-node1-elsewhere fence-node1 -inf: node1\n\
             primitive d1 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
             property stonith-enabled=false\n"
        ),
    )
    .unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(&rt, &c, "d1 running", |v| {
        v["pending_count"] == 0 && on(v, "d1").len() == 1
    });

    // A fourth node joins with a token: its files are written by `hactl join`.
    let out = c.hactl(&["token", "create"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    let addr = ha_node::setup::free_loopback_addrs(1).unwrap().remove(0);
    let node4_dir = c.dir.join("node4");
    let out = Command::new(HACTL)
        .args([
            "join", "--token", &token, "--name", "node4", "--addr", &addr,
        ])
        .arg("--data-dir")
        .arg(&node4_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    c.names.push("node4".into());
    c.configs.push(node4_dir.join("ha-node.toml"));
    let child = c.spawn(3);
    c.children.push(Some(child));
    wait_for(&rt, &c, "node4 an online voter", |v| {
        online_voter(v, "node4")
    });
    // A second token, left unused while the tree is checked.
    let out = c.hactl(&["token", "create"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The premise: the password is on every node's disk (the Raft log).
    for name in ["node1", "node2", "node3"] {
        let raft = c.dir.join(name).join("data").join("raft");
        assert!(
            some_file_holds(&raft, PASSWORD.as_bytes()),
            "the fence password is not under {}",
            raft.display()
        );
    }
    let bad = too_open(&c.dir);
    assert!(
        bad.is_empty(),
        "{} paths readable by group or others under {}:\n{}",
        bad.len(),
        c.dir.display(),
        report(&bad, &c.dir)
    );
    for i in 0..c.names.len() {
        let umask = umask_of(c.pid(i));
        assert_eq!(
            umask, 0o077,
            "umask of {}'s ha-node: {umask:03o}",
            c.names[i]
        );
    }

    // A data directory left 0755 (by an older version, or by hand) is
    // tightened when the node starts, and the log says so.
    c.kill9("node3");
    let data = c.dir.join("node3").join("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = c.dir.join("node3").join("ha-node.log");
    c.children[2] = Some(c.spawn(2));
    wait_for(&rt, &c, "node3 back online", |v| online_voter(v, "node3"));
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{} after restart: {mode:o}", data.display());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("755") && text.contains(&data.display().to_string()),
        "the log does not say the data directory was tightened:\n{text}"
    );
    let bad = too_open(&c.dir);
    assert!(bad.is_empty(), "after restart:\n{}", report(&bad, &c.dir));
}
