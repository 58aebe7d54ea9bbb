//! Resource-agent runner against the real Debian agents (ocf:heartbeat:Dummy, ocf:pacemaker:Stateful), fake OCF
//! agents (exit reason, timeout, signal, metadata) and a real LSB init script (tests/fixtures/lsb/ha-test-service).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_node::agent::{
    agent_path, check_params, metadata, op_status, parse_metadata, run_agent, AgentEnv, AgentError,
    AgentRequest, AgentResult, AgentSpec, MetadataCache, ParamProblem,
};

const OCF_ROOT: &str = "/usr/lib/ocf";

fn write_exec(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake `crm_attribute` logging its argv (one `[arg]` per argument) and what it sees of the agent's environment.
fn fake_sbin(dir: &Path) -> PathBuf {
    let sbin = dir.join("sbin");
    write_exec(
        &sbin.join("crm_attribute"),
        r#"#!/bin/sh
args=""
for a in "$@"; do args="$args[$a]"; done
echo "$args instance=$OCF_RESOURCE_INSTANCE on_node=$OCF_RESKEY_CRM_meta_on_node config=$HA_NODE_CONFIG" >> "$(dirname "$0")/crm_attribute.log"
exit 0
"#,
    );
    sbin
}

fn crm_log(sbin: &Path) -> Vec<String> {
    std::fs::read_to_string(sbin.join("crm_attribute.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn node_env(dir: &Path, node: &str) -> AgentEnv {
    let mut env = AgentEnv::new(node, dir.join(node).join("state"));
    env.sbin_dir = fake_sbin(dir);
    env.extra_env = vec![(
        "HA_NODE_CONFIG".into(),
        dir.join(node).join("node.toml").display().to_string(),
    )];
    env
}

fn request(spec: &AgentSpec, instance: &str, action: &str, interval_ms: u64) -> AgentRequest {
    AgentRequest {
        spec: spec.clone(),
        instance: instance.into(),
        action: action.into(),
        interval_ms,
        timeout: Duration::from_secs(20),
        params: BTreeMap::new(),
        meta: BTreeMap::new(),
    }
}

async fn run(env: &AgentEnv, req: &AgentRequest) -> AgentResult {
    let r = run_agent(env, req).await;
    eprintln!(
        "[{}] {} {} {} (interval {}): rc {} op-status {} in {:.1} ms, reason {:?}",
        env.node_name,
        req.spec,
        req.instance,
        req.action,
        req.interval_ms,
        r.rc,
        r.op_status,
        r.duration.as_secs_f64() * 1000.0,
        r.exit_reason
    );
    r
}

async fn expect_rc(env: &AgentEnv, req: &AgentRequest, rc: i32) -> AgentResult {
    let r = run(env, req).await;
    assert_eq!(
        (r.rc, r.op_status),
        (rc, op_status::DONE),
        "{} {} {}: {r:?}",
        req.spec,
        req.instance,
        req.action
    );
    r
}

/// Process `pid` exists and is not a zombie (orphans may be reaped late).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Non-zombie processes whose process group is `pgid`.
fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        // state ppid pgrp ...
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<i32>() == Ok(pgid) {
            out.push(pid);
        }
    }
    out
}

async fn wait_dead(pids: &[i32]) -> bool {
    for _ in 0..50 {
        if pids.iter().all(|&p| !alive(p)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// A temp OCF root with fake agents under provider `test`.
fn fake_ocf_root(dir: &Path, agents: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("ocf");
    for (name, body) in agents {
        write_exec(&root.join("resource.d/test").join(name), body);
    }
    root
}

#[tokio::test]
async fn heartbeat_dummy_lifecycle_and_node_isolation() {
    let tmp = tempfile::tempdir().unwrap();
    let a = node_env(tmp.path(), "node-a");
    let b = node_env(tmp.path(), "node-b");
    let dummy = AgentSpec::ocf("heartbeat", "Dummy");
    // Unique per run, so that a host-wide state file (the bug this guards against) cannot come from elsewhere.
    let d1 = format!("d1-{}", std::process::id());
    let d1 = d1.as_str();

    expect_rc(&a, &request(&dummy, d1, "monitor", 0), 7).await;
    expect_rc(&a, &request(&dummy, d1, "start", 0), 0).await;
    // Dummy keeps its state in HA_RSCTMP: the node's own directory, not /run/resource-agents.
    assert!(a.rsctmp_dir().join(format!("Dummy-{d1}.state")).is_file());
    assert!(!Path::new(&format!("/run/resource-agents/Dummy-{d1}.state")).exists());
    expect_rc(&a, &request(&dummy, d1, "monitor", 10_000), 0).await;

    // The other node on the same machine does not see node-a's resource.
    expect_rc(&b, &request(&dummy, d1, "monitor", 0), 7).await;
    let r = expect_rc(&b, &request(&dummy, d1, "monitor", 10_000), 7).await;
    // A recurring monitor (not a probe) says why.
    assert_eq!(
        r.exit_reason.as_deref(),
        Some("No process state file found")
    );

    expect_rc(&a, &request(&dummy, d1, "stop", 0), 0).await;
    let r = expect_rc(&a, &request(&dummy, d1, "monitor", 0), 7).await;
    assert_eq!(r.exit_reason, None, "probes report no reason");
    assert!(!a.rsctmp_dir().join(format!("Dummy-{d1}.state")).exists());

    // Unknown action: rc 3, still op-status done.
    expect_rc(&a, &request(&dummy, d1, "frobnicate", 0), 3).await;
}

#[tokio::test]
async fn pacemaker_stateful_promotion_cycle() {
    let tmp = tempfile::tempdir().unwrap();
    let env = node_env(tmp.path(), "node-a");
    let other = node_env(tmp.path(), "node-b");
    let spec = AgentSpec::ocf("pacemaker", "Stateful");
    let meta: BTreeMap<String, String> = [
        ("clone_max", "2"),
        ("clone_node_max", "1"),
        ("promoted_max", "1"),
        ("promoted_node_max", "1"),
        ("notify", "false"),
        ("clone", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let req = |action: &str, interval_ms: u64| {
        let mut r = request(&spec, "st:0", action, interval_ms);
        r.meta = meta.clone();
        r
    };
    let calls_after = |n: usize| crm_log(&env.sbin_dir)[n..].to_vec();
    let cfg = format!("config={}", tmp.path().join("node-a/node.toml").display());
    let call = |args: &str| format!("{args} instance=st:0 on_node=node-a {cfg}");

    expect_rc(&env, &req("monitor", 0), 7).await;
    assert!(crm_log(&env.sbin_dir).is_empty());

    expect_rc(&env, &req("start", 0), 0).await;
    assert_eq!(calls_after(0), vec![call("[--promotion][-v][5]")]);
    // The clone instance number is stripped from the state file name; it lives in the node's HA_VARRUN.
    let state = env.varrun_dir().join("Stateful-st.state");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap().trim(),
        "Unpromoted"
    );

    expect_rc(&env, &req("monitor", 11_000), 0).await;
    assert_eq!(
        crm_log(&env.sbin_dir).len(),
        1,
        "recurring monitors do not touch the score"
    );
    expect_rc(&other, &req("monitor", 0), 7).await;

    expect_rc(&env, &req("promote", 0), 0).await;
    assert_eq!(calls_after(1), vec![call("[--promotion][-v][10]")]);
    expect_rc(&env, &req("monitor", 10_000), 8).await;
    // A probe of a promoted instance restores the promoted score.
    expect_rc(&env, &req("monitor", 0), 8).await;
    assert_eq!(calls_after(2), vec![call("[--promotion][-v][10]")]);

    expect_rc(&env, &req("demote", 0), 0).await;
    assert_eq!(calls_after(3), vec![call("[--promotion][-v][5]")]);
    expect_rc(&env, &req("monitor", 11_000), 0).await;

    expect_rc(&env, &req("stop", 0), 0).await;
    assert_eq!(calls_after(4), vec![call("[--promotion][-D]")]);
    assert!(!state.exists());
    expect_rc(&env, &req("monitor", 0), 7).await;
    assert_eq!(crm_log(&env.sbin_dir).len(), 5);
    for line in crm_log(&env.sbin_dir) {
        eprintln!("crm_attribute {line}");
    }
}

#[tokio::test]
async fn environment_is_clean_and_meta_passes_through() {
    let tmp = tempfile::tempdir().unwrap();
    let env = node_env(tmp.path(), "node-a");
    let spec = AgentSpec::ocf("pacemaker", "Stateful");
    let dump = tmp.path().join("env.dump");
    let mut req = request(&spec, "st:1", "notify", 0);
    req.params
        .insert("envfile".into(), dump.display().to_string());
    for (k, v) in [
        ("clone-max", "2"),
        ("notify_type", "pre"),
        ("notify_operation", "start"),
        ("notify_start_uname", "node-a node-b"),
        ("interval", "999"),
    ] {
        req.meta.insert(k.into(), v.into());
    }
    expect_rc(&env, &req, 0).await;
    let text = std::fs::read_to_string(&dump).unwrap();
    let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let state_dir = env.state_dir.display().to_string();
    let expect = [
        ("OCF_ROOT", OCF_ROOT.to_string()),
        ("OCF_FUNCTIONS_DIR", format!("{OCF_ROOT}/lib/heartbeat")),
        ("OCF_RA_VERSION_MAJOR", "1".into()),
        ("OCF_RA_VERSION_MINOR", "0".into()),
        ("OCF_RESOURCE_INSTANCE", "st:1".into()),
        ("OCF_RESOURCE_TYPE", "Stateful".into()),
        ("OCF_RESOURCE_PROVIDER", "pacemaker".into()),
        ("OCF_RESKEY_CRM_meta_clone_max", "2".into()),
        ("OCF_RESKEY_CRM_meta_notify_type", "pre".into()),
        ("OCF_RESKEY_CRM_meta_notify_operation", "start".into()),
        (
            "OCF_RESKEY_CRM_meta_notify_start_uname",
            "node-a node-b".into(),
        ),
        // The runner's interval wins over a meta attribute of that name.
        ("OCF_RESKEY_CRM_meta_interval", "0".into()),
        ("OCF_RESKEY_CRM_meta_timeout", "20000".into()),
        ("OCF_RESKEY_CRM_meta_on_node", "node-a".into()),
        ("OCF_RESKEY_CRM_meta_on_node_uuid", "node-a".into()),
        ("OCF_RESKEY_crm_feature_set", "3.17.4".into()),
        ("HA_RSCTMP", format!("{state_dir}/rsctmp")),
        ("HA_VARRUN", format!("{state_dir}/run")),
        ("HA_VARLIB", format!("{state_dir}/lib")),
        ("HA_SBIN_DIR", env.sbin_dir.display().to_string()),
        (
            "HA_NODE_CONFIG",
            tmp.path().join("node-a/node.toml").display().to_string(),
        ),
        ("PWD", state_dir.clone()),
    ];
    for (k, v) in &expect {
        assert_eq!(vars.get(k).copied(), Some(v.as_str()), "{k} in\n{text}");
    }
    // ocf-binaries appends its own directories to ours.
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", env.sbin_dir.display());
    assert!(vars["PATH"].starts_with(&path), "{text}");
    // Nothing of the test process (HOME, CARGO_*, RUST_*, ...) leaks into the agent.
    let allowed_prefixes = ["OCF_", "HA_", "PATH", "PWD", "SHLVL", "_", "LC_ALL", "#"];
    for name in vars.keys() {
        assert!(
            allowed_prefixes.iter().any(|p| name.starts_with(p)),
            "unexpected variable {name} in the agent's environment:\n{text}"
        );
    }
}

#[tokio::test]
async fn exit_reason_and_unexpected_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    env.ocf_root = fake_ocf_root(
        tmp.path(),
        &[
            (
                "fire",
                "#!/bin/sh\necho working\necho 'ocf-exit-reason:smoke' >&2\necho 'ocf-exit-reason:disk on fire  ' >&2\necho done\nexit 1\n",
            ),
            ("weird", "#!/bin/sh\necho 'ocf-exit-reason:odd' >&2\nexit 42\n"),
        ],
    );
    let r = run(
        &env,
        &request(&AgentSpec::ocf("test", "fire"), "x", "start", 0),
    )
    .await;
    assert_eq!((r.rc, r.op_status), (1, op_status::DONE));
    assert_eq!(r.exit_reason.as_deref(), Some("disk on fire"));
    assert!(
        r.output_tail.contains("working") && r.output_tail.contains("done"),
        "{r:?}"
    );

    let r = run(
        &env,
        &request(&AgentSpec::ocf("test", "weird"), "x", "start", 0),
    )
    .await;
    assert_eq!((r.rc, r.op_status), (1, op_status::ERROR));
    assert!(
        r.exit_reason.as_deref().unwrap_or("").contains("42"),
        "{r:?}"
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    let pids = tmp.path().join("pids");
    env.ocf_root = fake_ocf_root(
        tmp.path(),
        &[(
            "hang",
            "#!/bin/sh\necho $$ > \"$OCF_RESKEY_pidfile\"\nsleep 60 &\necho $! >> \"$OCF_RESKEY_pidfile\"\necho hanging\nsleep 60\n",
        )],
    );
    let mut req = request(&AgentSpec::ocf("test", "hang"), "h", "start", 0);
    req.timeout = Duration::from_secs(1);
    req.params
        .insert("pidfile".into(), pids.display().to_string());
    let r = run(&env, &req).await;
    assert_eq!((r.rc, r.op_status), (1, op_status::TIMEOUT), "{r:?}");
    assert_eq!(r.exit_reason.as_deref(), Some("timed out after 1s"));
    assert!(r.output_tail.contains("hanging"), "{r:?}");
    assert!(r.duration < Duration::from_secs(3), "{r:?}");
    let pids = read_pids(&pids);
    assert_eq!(pids.len(), 2);
    assert!(
        wait_dead(&pids).await,
        "agent or its child survived: {pids:?}"
    );
    assert!(live_group_members(pids[0]).is_empty());
}

#[tokio::test]
async fn leftover_child_holding_the_pipes_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    let pids = tmp.path().join("pids");
    env.ocf_root = fake_ocf_root(
        tmp.path(),
        &[(
            "leaky",
            "#!/bin/sh\nsleep 30 &\necho $! > \"$OCF_RESKEY_pidfile\"\necho started\nexit 0\n",
        )],
    );
    let mut req = request(&AgentSpec::ocf("test", "leaky"), "l", "start", 0);
    req.params
        .insert("pidfile".into(), pids.display().to_string());
    let r = run(&env, &req).await;
    let pids = read_pids(&pids);
    // The runner leaves what a successful agent started alone (it may be the service itself).
    assert!(alive(pids[0]));
    unsafe {
        libc::kill(pids[0], libc::SIGKILL);
    }
    assert_eq!((r.rc, r.op_status), (0, op_status::DONE), "{r:?}");
    assert!(r.duration < Duration::from_secs(2), "{r:?}");
    assert!(r.output_tail.contains("started"), "{r:?}");
}

#[tokio::test]
async fn agent_killed_by_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    env.ocf_root = fake_ocf_root(
        tmp.path(),
        &[(
            "crash",
            "#!/bin/sh\necho 'ocf-exit-reason:about to crash' >&2\nkill -KILL $$\n",
        )],
    );
    let r = run(
        &env,
        &request(&AgentSpec::ocf("test", "crash"), "c", "monitor", 0),
    )
    .await;
    assert_eq!((r.rc, r.op_status), (1, op_status::ERROR), "{r:?}");
    assert_eq!(r.exit_reason.as_deref(), Some("killed by signal 9"));
}

#[tokio::test]
async fn missing_agents_and_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    env.ocf_root = fake_ocf_root(tmp.path(), &[("present", "#!/bin/sh\nexit 0\n")]);
    let noexec = env.ocf_root.join("resource.d/test/noexec");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();

    let missing = AgentSpec::ocf("test", "Nope");
    let path = env.ocf_root.join("resource.d/test/Nope");
    assert_eq!(agent_path(&env, &missing).unwrap(), path);
    let r = run(&env, &request(&missing, "x", "start", 0)).await;
    assert_eq!((r.rc, r.op_status), (5, op_status::NOT_INSTALLED));
    assert_eq!(
        r.exit_reason.as_deref(),
        Some(format!("agent not found at {}", path.display()).as_str())
    );

    let r = run(
        &env,
        &request(&AgentSpec::ocf("test", "noexec"), "x", "start", 0),
    )
    .await;
    assert_eq!((r.rc, r.op_status), (5, op_status::NOT_INSTALLED));
    assert!(r
        .exit_reason
        .unwrap()
        .contains(&noexec.display().to_string()));

    for (spec, item) in [
        (AgentSpec::ocf("test", "../test/present"), "agent"),
        (AgentSpec::ocf("..", "present"), "provider"),
        (AgentSpec::ocf("test/../test", "present"), "provider"),
        (AgentSpec::lsb("../../bin/true"), "agent"),
    ] {
        match agent_path(&env, &spec) {
            Err(e @ AgentError::InvalidName { .. }) => {
                assert!(
                    e.to_string().starts_with(&format!("invalid {item} ")),
                    "{e}"
                )
            }
            other => panic!("{spec}: {other:?}"),
        }
        let r = run(&env, &request(&spec, "x", "start", 0)).await;
        assert_eq!((r.rc, r.op_status), (5, op_status::NOT_INSTALLED), "{r:?}");
        assert!(r.exit_reason.unwrap().contains(item));
    }
    let r = run(
        &env,
        &request(
            &AgentSpec {
                class: "stonith".into(),
                provider: None,
                agent: "x".into(),
            },
            "x",
            "start",
            0,
        ),
    )
    .await;
    assert_eq!((r.rc, r.op_status), (3, op_status::NOT_SUPPORTED));

    // The present agent still runs.
    expect_rc(
        &env,
        &request(&AgentSpec::ocf("test", "present"), "x", "start", 0),
        0,
    )
    .await;
}

#[tokio::test]
async fn lsb_init_script() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lsb/ha-test-service");
    env.lsb_dir = tmp.path().join("init.d");
    write_exec(
        &env.lsb_dir.join("ha-test-service"),
        &std::fs::read_to_string(&fixture).unwrap(),
    );
    let svc_dir = tmp.path().join("svc");
    env.extra_env
        .push(("HA_TEST_LSB_DIR".into(), svc_dir.display().to_string()));
    let lsb = AgentSpec::lsb("ha-test-service");
    let service = AgentSpec {
        class: "service".into(),
        provider: None,
        agent: "ha-test-service".into(),
    };

    expect_rc(&env, &request(&lsb, "web", "monitor", 0), 7).await;
    let r = expect_rc(&env, &request(&lsb, "web", "start", 0), 0).await;
    assert!(r.duration < Duration::from_secs(2), "{r:?}");
    let pid = read_pids(&svc_dir.join("ha-test-service.pid"))[0];
    assert!(alive(pid), "the daemon outlives its start script");
    let r = expect_rc(&env, &request(&service, "web", "monitor", 15_000), 0).await;
    assert!(r.output_tail.contains("is running"), "{r:?}");
    expect_rc(&env, &request(&lsb, "web", "status", 0), 0).await;
    // Not an LSB action.
    expect_rc(&env, &request(&lsb, "web", "promote", 0), 3).await;
    expect_rc(&env, &request(&lsb, "web", "stop", 0), 0).await;
    assert!(wait_dead(&[pid]).await);
    expect_rc(&env, &request(&lsb, "web", "monitor", 15_000), 7).await;
    // Stopping a stopped service succeeds.
    expect_rc(&env, &request(&lsb, "web", "stop", 0), 0).await;

    // A stale pid file: LSB status 1 → not running, with a note.
    std::fs::write(svc_dir.join("ha-test-service.pid"), "999999999\n").unwrap();
    let r = expect_rc(&env, &request(&lsb, "web", "monitor", 0), 7).await;
    assert!(r.exit_reason.unwrap().contains("pid file"));

    let md = metadata(&env, &lsb).await.unwrap();
    assert!(md.params.is_empty());
    for a in ["start", "stop", "status"] {
        assert!(md.action(a).is_some(), "{a}");
    }
}

const FAKE_MD_AGENT: &str = r#"#!/bin/sh
case "$1" in
meta-data) cat <<END
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="needy" version="1.0">
<version>1.0</version>
<shortdesc lang="en">needs a path</shortdesc>
<parameters>
<parameter name="path" required="1" unique="1">
<shortdesc lang="en">Path</shortdesc>
<content type="string"/>
</parameter>
<parameter name="mode" required="0">
<shortdesc lang="en">Mode</shortdesc>
<content type="string" default="fast"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="2min"/>
<action name="stop" timeout="90"/>
<action name="monitor" timeout="500ms" interval="1h"/>
</actions>
</resource-agent>
END
exit 0;;
*) exit 0;;
esac
"#;

#[tokio::test]
async fn metadata_of_real_and_fake_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = node_env(tmp.path(), "n1");

    let t = Instant::now();
    let md = metadata(&env, &AgentSpec::ocf("heartbeat", "Dummy"))
        .await
        .unwrap();
    eprintln!(
        "heartbeat:Dummy meta-data in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(md.name, "Dummy");
    let state = md.param("state").unwrap();
    assert!(state.unique && !state.required);
    assert_eq!(state.shortdesc, "State file");
    // Defaults are computed by the agent from the node's environment.
    assert_eq!(
        state.default.as_deref(),
        Some(format!("{}/Dummy-RESOURCE_ID.state", env.rsctmp_dir().display()).as_str())
    );
    assert_eq!(md.param("fake").unwrap().default.as_deref(), Some("dummy"));
    let mon = md.monitor_for_role(None).unwrap();
    assert_eq!(
        (mon.timeout_ms, mon.interval_ms, mon.depth),
        (Some(20_000), Some(10_000), Some(0))
    );
    assert_eq!(md.action("meta-data").unwrap().timeout_ms, Some(5_000));

    let md = metadata(&env, &AgentSpec::ocf("pacemaker", "Stateful"))
        .await
        .unwrap();
    assert_eq!(md.name, "Stateful");
    assert!(
        md.param("state").unwrap().unique,
        "unique-group counts as unique"
    );
    assert!(md.param("envfile").unwrap().reloadable);
    assert_eq!(
        md.monitor_for_role(Some("Promoted")).unwrap().interval_ms,
        Some(10_000)
    );
    assert_eq!(
        md.monitor_for_role(Some("Slave")).unwrap().interval_ms,
        Some(11_000)
    );
    assert_eq!(md.action("promote").unwrap().timeout_ms, Some(10_000));
    assert!(check_params(&md, &BTreeMap::new()).is_empty());

    env.ocf_root = fake_ocf_root(tmp.path(), &[("needy", FAKE_MD_AGENT), ("broken", "#!/bin/sh\necho '<resource-agent><actions><action name=\"stop\" timeout=\"never\"/></actions></resource-agent>'\n")]);
    let cache = MetadataCache::new();
    let needy = AgentSpec::ocf("test", "needy");
    let md = cache.get(&env, &needy).await.unwrap();
    let again = cache.get(&env, &needy).await.unwrap();
    assert!(Arc::ptr_eq(&md, &again));
    assert!(md.param("path").unwrap().required);
    assert_eq!(md.param("mode").unwrap().default.as_deref(), Some("fast"));
    assert_eq!(md.action("start").unwrap().timeout_ms, Some(120_000));
    assert_eq!(md.action("stop").unwrap().timeout_ms, Some(90_000));
    let mon = md.action("monitor").unwrap();
    assert_eq!(
        (mon.timeout_ms, mon.interval_ms),
        (Some(500), Some(3_600_000))
    );

    let params: BTreeMap<String, String> = [("mode", "slow"), ("bogus", "1"), ("trace_ra", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let problems = check_params(&md, &params);
    assert_eq!(
        problems,
        vec![
            ParamProblem::MissingRequired("path".into()),
            ParamProblem::Unknown("bogus".into())
        ]
    );
    assert_eq!(
        problems[0].to_string(),
        "missing required parameter \"path\""
    );
    assert_eq!(problems[1].to_string(), "unknown parameter \"bogus\"");

    let err = cache
        .get(&env, &AgentSpec::ocf("test", "broken"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("action name=\"stop\""), "{err}");
    let err = metadata(&env, &AgentSpec::ocf("test", "absent"))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NotInstalled(_)), "{err}");

    // The parser on its own.
    assert!(parse_metadata("<resource-agent name=\"x\"/>")
        .unwrap()
        .params
        .is_empty());
}
