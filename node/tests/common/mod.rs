//! The multi-node test harness: real `ha-node` processes on loopback with
//! their own data directories, `hactl` against them, and status polling.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ha_node::client::Client;
use ha_node::config::{ClientConfig, NodeConfig};
use ha_node::setup;

pub const HA_NODE: &str = env!("CARGO_BIN_EXE_ha-node");
pub const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

pub struct Cluster {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub names: Vec<String>,
    pub configs: Vec<PathBuf>,
    pub children: Vec<Option<Child>>,
    pub client_config: PathBuf,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| {})
    }

    /// Starts `n` nodes after `tweak` changed each node's config.
    pub fn start_with(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let names: Vec<String> = (1..=n).map(|i| format!("node{i}")).collect();
        let addrs = setup::free_loopback_addrs(n).unwrap();
        let files = setup::write_cluster(&dir, &names, &addrs).unwrap();
        let configs: Vec<PathBuf> = files.nodes.iter().map(|(_, p)| p.clone()).collect();
        for p in &configs {
            let mut cfg = NodeConfig::load(p).unwrap();
            tweak(&mut cfg);
            cfg.save(p).unwrap();
        }
        let mut c = Cluster {
            _dir: tmp,
            dir,
            names,
            configs,
            children: Vec::new(),
            client_config: files.client_config,
        };
        for i in 0..n {
            let child = c.spawn(i);
            c.children.push(Some(child));
        }
        c
    }

    pub fn spawn(&self, i: usize) -> Child {
        // Private like the node's own files (the test process's umask is not 077).
        let log = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(self.dir.join(&self.names[i]).join("ha-node.log"))
        .unwrap();
        Command::new(HA_NODE)
            .arg("--config")
            .arg(&self.configs[i])
            .arg("--name")
            .arg(&self.names[i])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn kill9(&mut self, name: &str) -> u32 {
        let i = self.names.iter().position(|n| n == name).unwrap();
        let mut child = self.children[i].take().unwrap();
        let pid = child.id();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        pid
    }

    /// One `ipmi_sim` BMC for each of the first `n` nodes, whose power-off
    /// SIGKILLs that node's `ha-node`.
    pub fn bmcs(&self, n: usize) -> Vec<ha_fencing::lab::Bmc> {
        (0..n)
            .map(|i| {
                let dir = self.dir.join(format!("bmc{}", i + 1));
                std::fs::create_dir_all(&dir).unwrap();
                ha_fencing::lab::Bmc::start(&dir, Some(self.pid(i))).unwrap()
            })
            .collect()
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].as_ref().unwrap().id()
    }

    pub fn client(&self) -> Client {
        Client::new(&ClientConfig::load(&self.client_config).unwrap()).unwrap()
    }

    pub fn hactl(&self, args: &[&str]) -> std::process::Output {
        Command::new(HACTL)
            .arg("--config")
            .arg(&self.client_config)
            .args(args)
            .output()
            .unwrap()
    }

    /// `hactl configure edit` with `editor` (a shell script) as $EDITOR.
    pub fn configure_edit(&self, name: &str, editor: &str) -> std::process::Output {
        let script = self.dir.join(name);
        std::fs::write(&script, format!("#!/bin/sh\n{editor}\n")).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        Command::new(HACTL)
            .env("EDITOR", &script)
            .arg("--config")
            .arg(&self.client_config)
            .args(["configure", "edit"])
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Polls status until a DC with quorum (other than `not`) answers.
pub async fn wait_dc(client: &Client, not: Option<&str>, timeout: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(v) = client.status().await {
            if v["quorum"] == true && v["dc"].is_string() && v["dc"].as_str() != not {
                return v;
            }
        }
        assert!(start.elapsed() < timeout, "no DC after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The nodes a status JSON shows `rsc` active on.
pub fn on(v: &serde_json::Value, rsc: &str) -> Vec<String> {
    v["resources"][rsc]["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The Raft voters a status JSON lists.
pub fn voters(v: &serde_json::Value) -> Vec<String> {
    v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|n| n["voter"] == true)
                .filter_map(|n| n["name"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `hactl --config CLIENT_CFG status --output json`, or `None` when no
/// endpoint answered.
pub fn status_via(client_cfg: &std::path::Path) -> Option<serde_json::Value> {
    let out = Command::new(HACTL)
        .arg("--config")
        .arg(client_cfg)
        .args(["status", "--output", "json"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Polls [`status_via`] until `pred` holds; panics after `timeout` with
/// the last status.
pub fn wait_status(
    client_cfg: &std::path::Path,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        if let Some(v) = status_via(client_cfg) {
            if pred(&v) {
                return v;
            }
            last = Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not after {timeout:?}: {last:#?}");
}

/// The crm lines of one `stonith:external/ipmi` device per node
/// (`fence-nodeN`, kept off its own node) for the BMCs of `bmcs`, with the
/// password `password(node)` gives.
pub fn ipmi_fence_devices(
    bmcs: &[ha_fencing::lab::Bmc],
    password: impl Fn(&str) -> String,
) -> String {
    let mut s = String::new();
    for (i, b) in bmcs.iter().enumerate() {
        let n = format!("node{}", i + 1);
        s += &format!(
            "primitive fence-{n} stonith:external/ipmi params hostname={n} ipaddr=127.0.0.1 \
             ipport={} userid=admin passwd={} interface=lanplus pcmk_host_list={n}\n\
             location fence-{n}-elsewhere fence-{n} -inf: {n}\n",
            b.port(),
            password(&n)
        );
    }
    s
}
