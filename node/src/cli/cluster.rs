//! `hactl`'s cluster commands: init, status, config load/show, node
//! standby/online, demo.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ha_node::client::Client;
use ha_node::config::{ClientConfig, Peer};
use ha_node::setup;
use ha_node::tls::Role;
use ha_scheduler::model::{Config, Membership, Status};
use serde_json::Value;

/// The embedded sample configuration of `hactl demo`.
pub const DEMO_CONFIG: &str = include_str!("../../../deploy/examples/demo.crm");

/// Finds the client config: `--config`, `$HACTL_CONFIG`, `~/.config/hactl/config.toml`.
pub fn client_config(arg: Option<&Path>) -> anyhow::Result<(ClientConfig, PathBuf)> {
    let path = match arg {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("HACTL_CONFIG") {
            Some(p) => PathBuf::from(p),
            None => {
                let home = std::env::var_os("HOME").context(
                    "no client config: give --config FILE or set HACTL_CONFIG (hactl init writes one)",
                )?;
                PathBuf::from(home).join(".config/hactl/config.toml")
            }
        },
    };
    let cfg = ClientConfig::load(&path).with_context(|| {
        "no usable client config: give --config FILE or set HACTL_CONFIG (hactl init writes one)"
            .to_string()
    })?;
    Ok((cfg, path))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The `ha-node` binary next to this `hactl`.
fn ha_node_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find hactl's own path")?;
    let dir = exe.parent().context("hactl has no parent directory")?;
    let p = dir.join("ha-node");
    if p.exists() {
        Ok(p)
    } else {
        bail!(
            "{} not found: build it (cargo build -p ha-node) next to hactl",
            p.display()
        )
    }
}

pub fn init(name: &str, addr: &str, data_dir: &Path, id: u64, start: bool) -> anyhow::Result<()> {
    if data_dir.join("ha-node.toml").exists() {
        bail!(
            "{} already holds a node: choose an empty --data-dir",
            data_dir.display()
        );
    }
    ha_raft_store::private::create_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let ca = setup::create_ca(data_dir, name)?;
    let peer = Peer {
        id,
        name: name.to_string(),
        addr: addr.to_string(),
    };
    let (_, node_cfg) = setup::write_node(&ca, data_dir, &peer, vec![peer.clone()])?;
    let (_, client_cfg) = setup::write_client(
        &ca,
        data_dir,
        "admin",
        Role::Admin,
        vec![addr.to_string()],
        "hactl.toml",
    )?;
    println!("Cluster CA:        {}", data_dir.join("ca.pem").display());
    println!(
        "CA fingerprint:    sha256:{}",
        ha_node::tls::fingerprint(&ca.cert_pem)?
    );
    println!("Node config:       {}", node_cfg.display());
    println!("Client config:     {} (role admin)", client_cfg.display());
    if start {
        start_background(data_dir, &node_cfg, name)?;
    } else {
        println!(
            "Start the node with:  ha-node --config {}",
            node_cfg.display()
        );
    }
    println!(
        "Then:                hactl --config {} status",
        client_cfg.display()
    );
    Ok(())
}

/// An OCF exit code as `crm_mon` names it.
pub fn ocf_rc_name(rc: i64) -> String {
    let name = match rc {
        0 => "ok",
        1 => "error",
        2 => "invalid parameter",
        3 => "unimplemented feature",
        4 => "insufficient privileges",
        5 => "not installed",
        6 => "not configured",
        7 => "not running",
        8 => "promoted",
        9 => "promoted (failed)",
        _ => return format!("rc {rc}"),
    };
    format!("'{name}' ({rc})")
}

/// An execution status (Pacemaker's numbering).
pub fn exec_status_name(s: i64) -> &'static str {
    match s {
        -1 => "pending",
        0 => "complete",
        1 => "cancelled",
        2 => "timed out",
        3 => "not supported",
        4 => "error",
        5 => "hard error",
        6 => "fatal error",
        7 => "not installed",
        _ => "unknown status",
    }
}

pub fn render_status(v: &Value) -> String {
    let mut s = String::from("Cluster Summary:\n");
    let dc = v["dc"].as_str().unwrap_or("NONE");
    let quorum = if v["quorum"].as_bool().unwrap_or(false) {
        "partition with quorum"
    } else {
        "partition WITHOUT quorum"
    };
    s.push_str(&format!("  * Current DC: {dc} ({quorum})\n"));
    if let Some(m) = v["quorum_mode"].as_str() {
        s.push_str(&format!("  * Quorum: {m}\n"));
    }
    if let Some(e) = v["config_epoch"].as_u64() {
        s.push_str(&format!("  * Configuration epoch: {e}\n"));
    }
    s.push_str("\nNode List:\n");
    let mut by_state: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in v["nodes"].as_array().into_iter().flatten() {
        let st = n["state"].as_str().unwrap_or("unknown");
        let label = match st {
            "online" => "Online".to_string(),
            "offline" => "OFFLINE".to_string(),
            "standby" => "Node standby".to_string(),
            o => o.to_string(),
        };
        let label = if n["witness"] == true {
            format!("{label} witness")
        } else {
            label
        };
        by_state
            .entry(label)
            .or_default()
            .push(n["name"].as_str().unwrap_or("?").to_string());
    }
    for (st, ns) in by_state {
        s.push_str(&format!("  * {st}: [ {} ]\n", ns.join(" ")));
    }
    s.push_str("\nFull List of Resources:\n");
    match v["resources"].as_object() {
        Some(r) if !r.is_empty() => {
            for (id, r) in r {
                let nodes: Vec<&str> = r["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                    .collect();
                // crm_mon's ORPHANED: active, no longer configured
                let orphaned = if r["orphaned"] == true {
                    " (ORPHANED)"
                } else {
                    ""
                };
                s.push_str(&format!(
                    "  * {id:<30} {:<11} {}{orphaned}\n",
                    r["role"].as_str().unwrap_or("?"),
                    nodes.join(" ")
                ));
            }
        }
        _ => s.push_str("  * No resources\n"),
    }
    if let Some(ops) = v["in_progress"].as_array().filter(|o| !o.is_empty()) {
        s.push_str("\nOperations in progress:\n");
        for o in ops {
            s.push_str(&format!(
                "  * {} {} on {}\n",
                o["resource"].as_str().unwrap_or("?"),
                o["operation"].as_str().unwrap_or("?"),
                o["node"].as_str().unwrap_or("?")
            ));
        }
    }
    if let Some(d) = v["drbd"].as_array().filter(|d| !d.is_empty()) {
        s.push_str("\nDRBD:\n");
        for r in d {
            s.push_str(&format!(
                "  * {} on {}\n",
                r["line"].as_str().unwrap_or("?"),
                r["node"].as_str().unwrap_or("?")
            ));
            if let Some(fix) = r["recovery"].as_str() {
                s.push_str(&format!("    {fix}\n"));
            }
        }
    }
    if let Some(f) = v["failed_actions"].as_array().filter(|f| !f.is_empty()) {
        s.push_str("\nFailed Resource Actions:\n");
        for a in f {
            let reason = a["exit_reason"]
                .as_str()
                .map(|r| format!(": '{r}'"))
                .unwrap_or_default();
            s.push_str(&format!(
                "  * {}_{}_{} on {} returned {} ({}){reason}\n",
                a["resource"].as_str().unwrap_or("?"),
                a["operation"].as_str().unwrap_or("?"),
                a["interval_ms"],
                a["node"].as_str().unwrap_or("?"),
                ocf_rc_name(a["rc"].as_i64().unwrap_or(-1)),
                exec_status_name(a["op_status"].as_i64().unwrap_or(0)),
            ));
        }
    }
    if let Some(f) = v["fencing_history"].as_array().filter(|f| !f.is_empty()) {
        s.push_str("\nFencing History (newest first):\n");
        for e in f {
            let ok = if e["succeeded"] == true {
                "successful"
            } else {
                "failed"
            };
            s.push_str(&format!(
                "  * {} of {} {ok} at {}\n",
                e["action"].as_str().unwrap_or("?"),
                e["target"].as_str().unwrap_or("?"),
                e["time"]
            ));
        }
    }
    if let Some(n) = v["pending_count"].as_u64().filter(|&n| n > 0) {
        s.push_str(&format!("\nPending actions: {n}\n"));
        for a in v["pending_actions"]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
        {
            s.push_str(&format!(
                "  * {} {} on {} ({})\n",
                a["action"].as_str().unwrap_or("?"),
                a["resource"].as_str().unwrap_or(""),
                a["node"].as_str().unwrap_or("?"),
                a["reason"].as_str().unwrap_or("")
            ));
        }
    }
    for n in v["notes"].as_array().into_iter().flatten() {
        if let Some(n) = n.as_str() {
            s.push_str(&format!("\nNote: {n}\n"));
        }
    }
    s
}

pub fn status(config: Option<&Path>, json: bool, watch: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let client = Client::new(&cfg)?;
    loop {
        let text = match rt.block_on(client.status()) {
            Ok(v) if json => format!("{}\n", serde_json::to_string_pretty(&v)?),
            Ok(v) => render_status(&v),
            Err(e) if watch => format!("hactl: {e}\n"),
            Err(e) => return Err(e.into()),
        };
        if !watch {
            print!("{text}");
            return Ok(());
        }
        print!("\x1b[2J\x1b[H{text}");
        std::io::Write::flush(&mut std::io::stdout())?;
        let stop = rt.block_on(async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => true,
                _ = tokio::time::sleep(Duration::from_secs(2)) => false,
            }
        });
        if stop {
            return Ok(());
        }
    }
}

/// Reads a configuration file: `.crm` as crm shell syntax, else CIB XML.
pub fn read_config_file(file: &Path) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if file.extension().is_some_and(|e| e == "crm") {
        ha_scheduler::crm::read_crm(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    } else {
        ha_scheduler::cib::read_cib(&text)
            .map(|c| c.config)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    }
}

fn placement_of(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, r)| {
            let nodes: Vec<&str> = r["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .collect();
            (
                k.clone(),
                format!("{} {}", r["role"].as_str().unwrap_or("?"), nodes.join(" ")),
            )
        })
        .collect()
}

pub fn config_load(config: Option<&Path>, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let new = read_config_file(file)?;
    ha_scheduler::validate::validate(&new)
        .map_err(|e| anyhow::anyhow!("{}: configuration rejected: {e}", file.display()))?;
    // The same check the node makes: a dry run is refused as the load would be.
    ha_node::fencer::check_devices(&new)
        .map_err(|e| anyhow::anyhow!("{}: configuration rejected: {e}", file.display()))?;
    let rt = runtime()?;
    rt.block_on(async {
        let client = Client::new(&cfg)?;
        let (epoch, _) = client.get_config().await?;
        if dry_run {
            let st = client.status().await?;
            let mut status = Status {
                have_quorum: st["quorum"].as_bool().unwrap_or(false),
                ..Default::default()
            };
            for n in st["nodes"].as_array().into_iter().flatten() {
                if let Some(name) = n["name"].as_str() {
                    let ns = status.nodes.entry(name.to_string()).or_default();
                    ns.membership = match n["state"].as_str() {
                        Some("online") | Some("standby") => Membership::Online,
                        _ => Membership::Offline,
                    };
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let t = ha_scheduler::schedule(&new, &status, now);
            let before = placement_of(&st["resources"]);
            let after = placement_of(&t.placement.to_json()["resources"]);
            let mut changes = 0;
            let ids: std::collections::BTreeSet<&String> =
                before.keys().chain(after.keys()).collect();
            for id in ids {
                let b = before.get(id).map(String::as_str).unwrap_or("(absent)");
                let a = after.get(id).map(String::as_str).unwrap_or("(absent)");
                if a != b {
                    changes += 1;
                    println!("  * {id:<30} {b}  ->  {a}");
                }
            }
            if changes == 0 {
                println!("Nothing would move.");
            }
            println!("Dry run: nothing applied (configuration epoch {epoch}).");
            return Ok(());
        }
        let new_epoch = client.apply_config(epoch, &new).await?;
        println!("Configuration applied (epoch {epoch} -> {new_epoch}).");
        anyhow::Ok(())
    })
}

/// The editor's file of `hactl config edit`: `configure.crm` in a new
/// directory of its own (0700, under `$XDG_RUNTIME_DIR` when set, else the
/// temp directory), the file created exclusively with mode 0600. Both are
/// removed when this is dropped: on success, a failed apply, an abort, an
/// editor failure, an error, and Ctrl-C (ignored by hactl while the editor
/// runs, caught while it applies).
struct EditFile {
    dir: PathBuf,
    path: PathBuf,
}

impl EditFile {
    fn create() -> anyhow::Result<EditFile> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let mut last = None;
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!(
                "hactl-edit-{}-{:08x}",
                std::process::id(),
                nanos ^ attempt.wrapping_mul(0x9e37_79b9)
            ));
            // mkdir fails if the name exists: nobody else's directory is used.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let path = dir.join("configure.crm");
                    let file = EditFile { dir, path };
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&file.path)
                        .with_context(|| format!("cannot create {}", file.path.display()))?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "cannot create a directory in {}: {e}",
                        base.display()
                    ))
                }
            }
        }
        Err(anyhow::anyhow!(
            "cannot create a private directory in {}: {}",
            base.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
    }

    /// Replaces the content (the file keeps its inode and mode 0600).
    fn write(&self, text: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Drop for EditFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs `sh -c 'EDITOR "$1"' sh FILE`, hactl ignoring SIGINT and SIGQUIT
/// meanwhile (as git does) so that a Ctrl-C reaches the editor, not us,
/// and our cleanup runs.
fn run_editor(editor: &str, path: &Path) -> anyhow::Result<std::process::ExitStatus> {
    // `sh -c` so that EDITOR may carry arguments ("code --wait").
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run editor '{editor}': {e}"))?;
    // SAFETY: signal(2) with SIG_IGN and then the previous handlers; no
    // handler of ours runs.
    let (int, quit) = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    let status = child.wait();
    // SAFETY: as above, restoring what was there.
    unsafe {
        libc::signal(libc::SIGINT, int);
        libc::signal(libc::SIGQUIT, quit);
    }
    status.map_err(|e| anyhow::anyhow!("editor '{editor}': {e}"))
}

/// Opens the configuration in crm syntax in `$EDITOR` (else `$VISUAL`, else
/// `vi`). A file that does not load reopens with the error on top; an
/// unchanged or emptied file applies nothing; a loaded one is applied against
/// the epoch it was read at, so a concurrent change is refused, not lost.
/// Secret values show as `********` and are kept as they are unless
/// replaced. The file ([`EditFile`]) is private and removed on every exit.
pub fn config_edit(config: Option<&Path>) -> anyhow::Result<()> {
    const ERR: &str = "# ERROR: ";
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let (epoch, current) = rt.block_on(async { Client::new(&cfg)?.get_config().await })?;
    let editor = std::env::var("EDITOR")
        .or_else(|_| std::env::var("VISUAL"))
        .unwrap_or_else(|_| "vi".into());
    let file = EditFile::create()?;
    let original = ha_scheduler::crm::write_crm(&current);
    let mut text = original.clone();
    loop {
        file.write(&text)?;
        let status = run_editor(&editor, &file.path)?;
        if !status.success() {
            bail!("editor '{editor}' failed ({status}); nothing applied");
        }
        let edited = std::fs::read_to_string(&file.path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.path.display()))?;
        let body: String = edited
            .lines()
            .filter(|l| !l.starts_with(ERR))
            .map(|l| format!("{l}\n"))
            .collect();
        if body.trim().is_empty() {
            bail!("empty configuration: nothing applied");
        }
        if body.trim() == original.trim() {
            println!("No changes.");
            return Ok(());
        }
        match ha_scheduler::crm::read_crm(&body) {
            Ok(new) => {
                let applied = rt.block_on(async {
                    let client = Client::new(&cfg)?;
                    tokio::select! {
                        r = client.apply_config(epoch, &new) => r.map_err(anyhow::Error::from),
                        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                            "interrupted: the change may or may not be applied (see hactl config show)"
                        )),
                    }
                });
                return match applied {
                    Ok(e) => {
                        println!("Configuration applied (epoch {epoch} -> {e}).");
                        Ok(())
                    }
                    Err(e) => Err(anyhow::anyhow!(
                        "{e}; nothing applied (the edited file is removed: it may hold secrets)"
                    )),
                };
            }
            Err(e) => {
                text = format!(
                    "{ERR}{e} (line numbers count from the first line below these)\n{ERR}fix and save, or empty the file to abort\n{body}"
                );
            }
        }
    }
}

/// `hactl config show [--output text|json] [--show-secrets]`. The
/// node hides secret values (`crate::secrets` of ha-node) unless an admin
/// asks for them with `--show-secrets`.
pub fn config_show(config: Option<&Path>, json: bool, show_secrets: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let (epoch, c) =
        rt.block_on(async { Client::new(&cfg)?.get_config_with(show_secrets).await })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"epoch": epoch, "config": c}))?
        );
    } else {
        println!("# configuration epoch {epoch}");
        print!("{}", ha_scheduler::crm::write_crm(&c));
    }
    Ok(())
}

pub fn node_state(config: Option<&Path>, node: &str, state: &str) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    rt.block_on(async { Client::new(&cfg)?.set_node_state(node, state).await })?;
    println!("{node}: {state}");
    Ok(())
}

/// Waits until the cluster has a DC with quorum, or `timeout`.
pub async fn wait_for_dc(client: &Client, timeout: Duration) -> anyhow::Result<Value> {
    let start = Instant::now();
    loop {
        match client.status().await {
            Ok(v) if v["dc"].is_string() && v["quorum"].as_bool() == Some(true) => return Ok(v),
            Ok(_) | Err(_) if start.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(v) => bail!("no DC with quorum after {timeout:?}: {v}"),
            Err(e) => bail!("no DC with quorum after {timeout:?}: {e}"),
        }
    }
}

/// Waits until the DC has nothing left to do (or `timeout`: then the
/// status as it is); prints progress on stderr.
pub async fn wait_settled(client: &Client, timeout: Duration) -> anyhow::Result<Value> {
    let start = Instant::now();
    let mut last = u64::MAX;
    loop {
        let v = client.status().await?;
        let pending = v["pending_count"].as_u64().unwrap_or(0);
        if pending == 0 && v["dc"].is_string() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            eprintln!("still {pending} actions pending after {timeout:?}");
            return Ok(v);
        }
        if pending != last {
            eprintln!("  {pending} actions to go");
            last = pending;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn demo(dir: &Path, nodes: usize) -> anyhow::Result<()> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if dir.join("hactl.toml").exists() {
        bail!(
            "{} already holds a demo cluster: remove it or give another --dir",
            dir.display()
        );
    }
    let bin = ha_node_binary()?;
    let missing: Vec<&str> = [
        ("/usr/lib/ocf/resource.d/heartbeat/Dummy", "resource-agents"),
        (
            "/usr/lib/ocf/resource.d/pacemaker/Stateful",
            "pacemaker-resource-agents",
        ),
    ]
    .into_iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, pkg)| pkg)
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "note: the demo's resources are played by Debian's agents, not installed here: \
             `apt-get install {}` (as root); without them they show as not installed",
            missing.join(" ")
        );
    }
    let names: Vec<String> = (1..=nodes).map(|i| format!("node{i}")).collect();
    let addrs = setup::free_loopback_addrs(nodes)?;
    let files = setup::write_cluster(dir, &names, &addrs)?;
    let mut children = Vec::new();
    for (cfg, path) in &files.nodes {
        let log_path = dir.join(&cfg.name).join("ha-node.log");
        let log = private_log(&log_path)?;
        let child = std::process::Command::new(&bin)
            .arg("--config")
            .arg(path)
            .arg("--name")
            .arg(&cfg.name)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        println!(
            "started {} (pid {}) on {}, files in {}",
            cfg.name,
            child.id(),
            cfg.listen,
            dir.join(&cfg.name).display()
        );
        children.push(child);
    }
    let rt = runtime()?;
    let result = rt.block_on(async {
        let cfg = ClientConfig::load(&files.client_config)?;
        let client = Client::new(&cfg)?;
        wait_for_dc(&client, Duration::from_secs(30)).await?;
        let config = ha_scheduler::crm::read_crm(DEMO_CONFIG)
            .map_err(|e| anyhow::anyhow!("the sample configuration: {e}"))?;
        let (epoch, _) = client.get_config().await?;
        client.apply_config(epoch, &config).await?;
        println!("\nloaded the sample configuration (deploy/examples/demo.crm); starting it...");
        let v = wait_settled(&client, Duration::from_secs(60)).await?;
        println!();
        print!("{}", render_status(&v));
        println!(
            "\nFrom another terminal:  hactl --config {} status",
            files.client_config.display()
        );
        println!("Ctrl-C stops the demo cluster.");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    });
    for c in &mut children {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    for c in &mut children {
        let _ = c.wait();
    }
    println!("stopped {} nodes", children.len());
    result
}

/// A daemon's log file, created 0600 (it may hold what an agent printed).
fn private_log(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn start_background(data_dir: &Path, node_cfg: &Path, name: &str) -> anyhow::Result<()> {
    let bin = ha_node_binary()?;
    let log_path = data_dir.join("ha-node.log");
    let log = private_log(&log_path)?;
    let child = std::process::Command::new(bin)
        .arg("--config")
        .arg(node_cfg)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start ha-node")?;
    println!(
        "Started ha-node (pid {}), log {}",
        child.id(),
        log_path.display()
    );
    Ok(())
}

pub fn token_create(config: Option<&Path>, ttl: u64) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let token = rt.block_on(async { Client::new(&cfg)?.create_token(ttl).await })?;
    println!("{token}");
    Ok(())
}

pub fn join(
    token: &str,
    name: &str,
    addr: &str,
    data_dir: &Path,
    ca_fingerprint: Option<&str>,
    start: bool,
) -> anyhow::Result<()> {
    let token = ha_node::join::Token::decode(token)?;
    if let Some(fp) = ca_fingerprint {
        let fp = fp.trim().trim_start_matches("sha256:").to_ascii_lowercase();
        if fp != token.ca_sha256 {
            bail!(
                "the token's CA (sha256:{}) is not the expected one (sha256:{fp}): refusing to join",
                token.ca_sha256
            );
        }
    }
    if data_dir.join("ha-node.toml").exists() {
        bail!(
            "{} already holds a node: choose an empty --data-dir",
            data_dir.display()
        );
    }
    println!(
        "Cluster CA: sha256:{} (from the token), admitting node: {}",
        token.ca_sha256, token.endpoint
    );
    let rt = runtime()?;
    let (cfg, path) = rt.block_on(ha_node::join::join(&token, name, addr, data_dir))?;
    println!("Joined as node id {}; config {}", cfg.id, path.display());
    if start {
        start_background(data_dir, &path, name)?;
    } else {
        println!("Start the node with:  ha-node --config {}", path.display());
    }
    Ok(())
}

pub fn node_remove(config: Option<&Path>, node: &str) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    rt.block_on(async { Client::new(&cfg)?.remove_member(node).await })?;
    println!("{node}: removed from the membership");
    Ok(())
}

/// `hactl resource cleanup|move|ban|clear|meta`: prints what was done.
pub fn resource(
    config: Option<&Path>,
    op: ha_node::resource::ResourceOp,
    json: bool,
) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let r = rt.block_on(async { Client::new(&cfg)?.resource(&op).await })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"message": r.message, "config_epoch": r.config_epoch, "status_version": r.status_version})
        );
    } else {
        println!("{}", r.message);
    }
    Ok(())
}

/// The nodes where `rsc` (a primitive, group, clone or member id) is
/// active in a status JSON's `resources`, and in what roles.
fn active_in(status: &Value, rsc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, r) in status["resources"].as_object().into_iter().flatten() {
        let base = key.split(['@', ':']).next().unwrap_or(key);
        if base != rsc {
            continue;
        }
        for n in r["nodes"].as_array().into_iter().flatten() {
            out.push((
                n.as_str().unwrap_or("?").to_string(),
                r["role"].as_str().unwrap_or("?").to_string(),
            ));
        }
    }
    out
}

/// `hactl resource restart RSC`: `target-role=Stopped`, wait until it is
/// stopped everywhere, then its previous `target-role` back; waits until it
/// runs again. Progress on stderr.
pub fn resource_restart(config: Option<&Path>, rsc: &str, timeout: Duration) -> anyhow::Result<()> {
    use ha_node::resource::ResourceOp;
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let client = Client::new(&cfg)?;
        let (_, config) = client.get_config().await?;
        let mut probe = config.clone();
        let before = probe
            .meta_mut(rsc)
            .with_context(|| format!("no resource '{rsc}' in the configuration"))?
            .get("target-role")
            .cloned();
        let st = client.status().await?;
        let was = active_in(&st, rsc);
        anyhow::ensure!(
            !was.is_empty(),
            "'{rsc}' is not running: nothing to restart"
        );
        client
            .resource(&ResourceOp::Meta {
                resource: rsc.to_string(),
                name: "target-role".into(),
                value: Some("Stopped".into()),
            })
            .await?;
        eprintln!("restart {rsc}: stopping ({} instance(s))", was.len());
        let start = Instant::now();
        let restore = ResourceOp::Meta {
            resource: rsc.to_string(),
            name: "target-role".into(),
            value: before,
        };
        loop {
            let st = client.status().await?;
            if active_in(&st, rsc).is_empty() {
                break;
            }
            if start.elapsed() > timeout {
                client.resource(&restore).await?;
                anyhow::bail!("{rsc} did not stop within {timeout:?}; its target-role is restored");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "restart {rsc}: stopped after {:.1}s, starting",
            start.elapsed().as_secs_f64()
        );
        client.resource(&restore).await?;
        loop {
            let st = client.status().await?;
            if active_in(&st, rsc).len() >= was.len() {
                println!("{rsc} restarted in {:.1}s", start.elapsed().as_secs_f64());
                return Ok(());
            }
            if start.elapsed() > timeout * 2 {
                anyhow::bail!(
                    "{rsc} stopped but did not start again within {timeout:?}: see hactl status"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// `hactl fence NODE`: the DC fences NODE now and records it.
pub fn fence(
    config: Option<&Path>,
    node: &str,
    action: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    eprintln!("asking the DC to fence {node}...");
    let v = rt.block_on(async {
        Client::new(&cfg)?
            .with_timeout(Duration::from_secs(600))
            .stonith(&ha_node::fencer::StonithOp::Fence {
                target: node.to_string(),
                action,
            })
            .await
    })?;
    if json {
        println!("{v}");
    } else {
        println!("{}", v["summary"].as_str().unwrap_or("?"));
    }
    if v["succeeded"] == true {
        Ok(())
    } else {
        bail!("{node} was NOT fenced: its resources are not recovered until it is")
    }
}

/// `hactl fence history`: newest first.
pub fn fence_history(config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let v = rt.block_on(async { Client::new(&cfg)?.status().await })?;
    let h = v["fencing_history"].clone();
    if json {
        println!("{h}");
        return Ok(());
    }
    let events = h.as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        println!("No fencing history.");
    }
    for e in events {
        let ok = if e["succeeded"] == true {
            "succeeded"
        } else {
            "FAILED"
        };
        let when = e["completed_ms"]
            .as_i64()
            .map(|ms| format!("{:.3}", ms as f64 / 1000.0))
            .unwrap_or_else(|| e["time"].to_string());
        println!(
            "{} of {} by {} via {}: {ok} at {when}{}",
            e["action"].as_str().unwrap_or("?"),
            e["target"].as_str().unwrap_or("?"),
            e["origin"].as_str().unwrap_or("?"),
            e["device"].as_str().unwrap_or("-"),
            e["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `hactl stonith list`: the configured devices (secrets hidden) and levels.
pub fn stonith_list(config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let (_, config) = rt.block_on(async { Client::new(&cfg)?.get_config().await })?;
    let devices = ha_node::fencer::devices(&config);
    let levels = ha_node::fencer::levels(&config);
    let list: Vec<Value> = devices
        .iter()
        .map(|d| {
            let params: serde_json::Map<String, Value> = d
                .redacted_params()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            serde_json::json!({"id": d.id, "agent": d.agent, "params": params})
        })
        .collect();
    if json {
        let lv: Vec<Value> = levels
            .iter()
            .map(
                |l| serde_json::json!({"target": l.target, "index": l.index, "devices": l.devices}),
            )
            .collect();
        println!("{}", serde_json::json!({"devices": list, "levels": lv}));
        return Ok(());
    }
    if list.is_empty() {
        println!("No fence devices configured.");
    }
    for d in &list {
        let params: Vec<String> = d["params"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        println!(
            "  * {} (stonith:{}) {}",
            d["id"].as_str().unwrap_or("?"),
            d["agent"].as_str().unwrap_or("?"),
            params.join(" ")
        );
    }
    for l in &levels {
        println!(
            "  level {} for {}: {}",
            l.index,
            l.target,
            l.devices.join(", ")
        );
    }
    Ok(())
}

/// `hactl stonith test DEVICE [--target NODE]`: the DC asks the device.
pub fn stonith_test(
    config: Option<&Path>,
    device: &str,
    target: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let v = rt.block_on(async {
        Client::new(&cfg)?
            .with_timeout(Duration::from_secs(60))
            .stonith(&ha_node::fencer::StonithOp::Test {
                device: device.to_string(),
                target,
            })
            .await
    })?;
    if json {
        println!("{v}");
    } else if v["ok"] == true {
        println!(
            "{device}: ok{} ({:.2}s)",
            v["power"]
                .as_str()
                .map(|p| format!(", power {p}"))
                .unwrap_or_default(),
            v["seconds"].as_f64().unwrap_or(0.0)
        );
    } else {
        println!("{device}: FAILED: {}", v["error"].as_str().unwrap_or("?"));
    }
    if v["ok"] == true {
        Ok(())
    } else {
        bail!("{device} does not work")
    }
}

/// `hactl quorum unblock [--i-know-the-peer-is-off]`: lifts wait_for_all
/// on the node the client reaches first (give `--config` a client config
/// naming that node). Plain, it is refused while the peer may have taken
/// over (`ha_node::two_node::unblock`).
pub fn quorum_unblock(config: Option<&Path>, peer_is_off: bool) -> anyhow::Result<()> {
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    let op = if peer_is_off {
        ha_node::two_node::UNBLOCK_PEER_IS_OFF
    } else {
        "unblock"
    };
    let msg = rt.block_on(async { Client::new(&cfg)?.quorum(op).await })?;
    println!("{msg}");
    Ok(())
}

/// `hactl drbd resolve RES --discard-on NODE`: the manual split-brain
/// recovery. Refused unless some node reports RES in split brain; NODE
/// must report RES. On NODE: secondary, disconnect, connect
/// --discard-my-data; on every other node reporting RES: connect. Then
/// waits (up to `wait`) until no node reports the split brain and NODE's
/// peer connection is up, printing what each node ran.
pub fn drbd_resolve(
    config: Option<&Path>,
    resource: &str,
    discard_on: &str,
    wait: Duration,
    json: bool,
) -> anyhow::Result<()> {
    use ha_node::drbd_ops::DrbdOp;
    let res = ha_drbd::ResourceName::new(resource)
        .map_err(|e| anyhow::anyhow!("DRBD resource '{resource}': {e}"))?;
    let (cfg, _) = client_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let client = Client::new(&cfg)?.with_timeout(Duration::from_secs(60));
        let v = client.status().await?;
        let entries = |v: &Value| -> Vec<Value> {
            v["drbd"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["name"] == resource)
                .cloned()
                .collect()
        };
        let found = entries(&v);
        if found.is_empty() {
            bail!("no node reports a DRBD resource '{resource}' (hactl status lists DRBD per node)");
        }
        if !found.iter().any(|e| e["split_brain"] == true) {
            let lines: Vec<&str> = found.iter().filter_map(|e| e["line"].as_str()).collect();
            bail!("{resource} is not in split brain ({}): nothing to resolve", lines.join("; "));
        }
        let nodes: Vec<String> = found
            .iter()
            .filter_map(|e| e["node"].as_str().map(str::to_string))
            .collect();
        if !nodes.iter().any(|n| n == discard_on) {
            bail!("{discard_on} does not report {resource}; it is on {}", nodes.join(", "));
        }
        let started = Instant::now();
        let mut reports = Vec::new();
        let victim = client
            .drbd_on(discard_on, &DrbdOp::Discard { resource: res.clone() })
            .await?;
        let failed = victim.error.clone();
        reports.push(victim);
        if let Some(e) = failed {
            print_drbd_reports(&reports, json);
            bail!("on {discard_on}: {e}; nothing was run on the other nodes");
        }
        for n in nodes.iter().filter(|n| *n != discard_on) {
            let r = client
                .drbd_on(n, &DrbdOp::Connect { resource: res.clone() })
                .await?;
            let failed = r.error.clone();
            reports.push(r);
            if let Some(e) = failed {
                print_drbd_reports(&reports, json);
                bail!("on {n}: {e}");
            }
        }
        if !json {
            print_drbd_reports(&reports, false);
            println!("waiting for {resource} to reconnect ...");
        }
        loop {
            let v = client.status().await?;
            let now = entries(&v);
            let healed = !now.iter().any(|e| e["split_brain"] == true)
                && now.iter().filter(|e| e["node"] == discard_on).all(|e| {
                    e["peers"].as_array().is_some_and(|p| {
                        !p.is_empty() && p.iter().all(|p| p["connection"] == "Connected")
                    })
                });
            if healed {
                let secs = started.elapsed().as_secs_f64();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"resource": resource, "discarded_on": discard_on,
                            "resolved": true, "seconds": secs, "reports": reports, "drbd": now})
                    );
                } else {
                    println!("resolved in {secs:.1} s: {discard_on}'s changes since the split are discarded; it resyncs from its peer");
                    for e in &now {
                        println!("  * {} on {}", e["line"].as_str().unwrap_or("?"), e["node"].as_str().unwrap_or("?"));
                    }
                }
                return Ok(());
            }
            if started.elapsed() > wait {
                if json {
                    print_drbd_reports(&reports, true);
                }
                bail!(
                    "{resource} did not reconnect within {wait:?} after the recovery commands; now: {}",
                    now.iter().filter_map(|e| e["line"].as_str()).collect::<Vec<_>>().join("; ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

fn print_drbd_reports(reports: &[ha_node::drbd_ops::DrbdReport], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"resolved": false, "reports": reports})
        );
        return;
    }
    for r in reports {
        for s in &r.steps {
            let how = match (s.exit_code, s.tolerated) {
                (Some(0), _) => "ok".to_string(),
                (_, true) => "failed, fine (already StandAlone)".to_string(),
                (Some(c), _) => format!("exit {c}"),
                (None, _) => "did not finish".to_string(),
            };
            println!("{}: {} — {how}", r.node, s.command);
        }
    }
}
