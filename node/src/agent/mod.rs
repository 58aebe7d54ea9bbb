//! Resource-agent runner: turns an [`AgentRequest`] into one OCF or LSB agent process run with a clean, per-node environment, and maps its exit into Pacemaker's rc / op-status pair.
//!
//! Environment given to OCF agents (everything else is cleared, so the daemon's own environment never leaks):
//!
//! * `OCF_ROOT`, `OCF_FUNCTIONS_DIR=<ocf_root>/lib/heartbeat`, `OCF_RA_VERSION_MAJOR=1`, `OCF_RA_VERSION_MINOR=0`,
//!   `OCF_RESOURCE_INSTANCE`, `OCF_RESOURCE_TYPE`, `OCF_RESOURCE_PROVIDER`, `OCF_EXIT_REASON_PREFIX=ocf-exit-reason:`;
//! * `OCF_RESKEY_<param>` for every parameter, `OCF_RESKEY_crm_feature_set` (unless given as a parameter; makes
//!   `ocf_promotion_score` call `crm_attribute -p` rather than `crm_master`);
//! * `OCF_RESKEY_CRM_meta_<meta>` for every meta attribute (`-` becomes `_`), then always `..._interval` (ms, 0 for
//!   probes), `..._timeout` (ms), `..._on_node` and `..._on_node_uuid` (both the node name), which win over the caller's;
//! * the Heartbeat directories, all under the node's `state_dir` so that two nodes on one machine never share agent
//!   state (`ocf-directories` only fills these in when they are unset): `HA_RSCTMP=<state_dir>/rsctmp` (Dummy's state
//!   file), `HA_VARRUN=<state_dir>/run` (pacemaker:Dummy and Stateful state files, `ocf_mkstatedir`),
//!   `HA_VARLIB=<state_dir>/lib`, `HA_VARLOCK=<state_dir>/lock`, `HA_FIFO=<state_dir>/lib/fifo`;
//! * `HA_SBIN_DIR=<sbin_dir>` (where agents find `crm_attribute`), `HA_LOGFACILITY=` and `HA_debug=0` (agent logs go to
//!   stderr and end up in [`AgentResult::output_tail`]);
//! * `PATH=<sbin_dir>:/usr/sbin:/usr/bin:/sbin:/bin`;
//! * finally [`AgentEnv::extra_env`], which may override any of the above.
//!
//! LSB scripts (class `lsb` or `service`) get only `PATH` and [`AgentEnv::extra_env`]: they take no parameters, so
//! anything a test script needs (such as where to keep its pid file) comes through `extra_env`.
//!
//! Every agent runs with `state_dir` as its working directory, stdin from `/dev/null`, in a process group of its own;
//! on timeout the whole group is killed with SIGKILL.

mod exec;
pub mod metadata;

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use metadata::{
    check_params, metadata, parse_duration_ms, parse_metadata, ActionInfo, Metadata, MetadataCache,
    ParamInfo, ParamProblem,
};

use exec::{ExecEnd, ExecSpec};

/// OCF exit codes (after mapping LSB codes onto them).
pub mod rc {
    pub const OK: i32 = 0;
    pub const UNKNOWN_ERROR: i32 = 1;
    pub const INVALID_PARAM: i32 = 2;
    pub const UNIMPLEMENT_FEATURE: i32 = 3;
    pub const INSUFFICIENT_PRIV: i32 = 4;
    pub const NOT_INSTALLED: i32 = 5;
    pub const NOT_CONFIGURED: i32 = 6;
    pub const NOT_RUNNING: i32 = 7;
    pub const RUNNING_PROMOTED: i32 = 8;
    pub const FAILED_PROMOTED: i32 = 9;
}

/// Pacemaker's execution status (`op-status` in the CIB).
pub mod op_status {
    pub const PENDING: i32 = -1;
    pub const DONE: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const TIMEOUT: i32 = 2;
    pub const NOT_SUPPORTED: i32 = 3;
    pub const ERROR: i32 = 4;
    pub const ERROR_HARD: i32 = 5;
    pub const ERROR_FATAL: i32 = 6;
    pub const NOT_INSTALLED: i32 = 7;
}

/// The prefix of the stderr line that carries an agent's exit reason.
pub const EXIT_REASON_PREFIX: &str = "ocf-exit-reason:";

/// The `crm_feature_set` agents are told (Pacemaker 2.1); `ocf_promotion_score` then uses `crm_attribute -p`.
pub const CRM_FEATURE_SET: &str = "3.17.4";

/// How long an OCF `meta-data` call may take.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Problems with an agent specification or its metadata.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid {item} {value:?}: must be non-empty and contain no '/' and no '..'")]
    InvalidName { item: &'static str, value: String },
    #[error("unsupported resource class {0:?} (supported: ocf, lsb, service)")]
    UnsupportedClass(String),
    #[error("ocf agent {0:?} needs a provider")]
    MissingProvider(String),
    #[error("agent not found at {}", .0.display())]
    NotInstalled(PathBuf),
    #[error("meta-data of {agent} failed (rc {rc}, op-status {op_status}): {reason}")]
    MetadataFailed {
        agent: String,
        rc: i32,
        op_status: i32,
        reason: String,
    },
    #[error("meta-data is not valid XML: {0}")]
    Xml(String),
    #[error("meta-data element <{element}>: {detail}")]
    Metadata { element: String, detail: String },
}

/// Per-node settings of the runner, fixed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEnv {
    /// This node's name: `OCF_RESKEY_CRM_meta_on_node` (and `..._on_node_uuid`).
    pub node_name: String,
    /// Root of the OCF tree (default `/usr/lib/ocf`).
    pub ocf_root: PathBuf,
    /// Where LSB init scripts live (default `/etc/init.d`).
    pub lsb_dir: PathBuf,
    /// This node's private directory: agents' `HA_RSCTMP`, `HA_VARRUN`, ... live under it; created on demand.
    pub state_dir: PathBuf,
    /// `HA_SBIN_DIR`, first on `PATH` (where our `crm_attribute` lives).
    pub sbin_dir: PathBuf,
    /// Passed to every agent (OCF and LSB), after everything else, e.g. `HA_NODE_CONFIG` for `crm_attribute`.
    pub extra_env: Vec<(String, String)>,
}

impl AgentEnv {
    /// The defaults: `/usr/lib/ocf`, `/etc/init.d`, `HA_SBIN_DIR=/usr/sbin`, no extra environment.
    pub fn new(node_name: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        AgentEnv {
            node_name: node_name.into(),
            ocf_root: PathBuf::from("/usr/lib/ocf"),
            lsb_dir: PathBuf::from("/etc/init.d"),
            state_dir: state_dir.into(),
            sbin_dir: PathBuf::from("/usr/sbin"),
            extra_env: Vec::new(),
        }
    }

    /// `HA_RSCTMP`: agents' volatile state (cleared on reboot on a real machine).
    pub fn rsctmp_dir(&self) -> PathBuf {
        self.state_dir.join("rsctmp")
    }

    /// `HA_VARRUN`: agents' pid and state files.
    pub fn varrun_dir(&self) -> PathBuf {
        self.state_dir.join("run")
    }

    /// `HA_VARLIB`.
    pub fn varlib_dir(&self) -> PathBuf {
        self.state_dir.join("lib")
    }

    /// `HA_VARLOCK`.
    pub fn varlock_dir(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    /// Forget what agents keep in the volatile directories (`HA_RSCTMP`, `HA_VARRUN`, `HA_VARLOCK`), as a real reboot
    /// does with `/run`. Call it only when the simulated node "reboots", never on a mere daemon restart: Dummy and
    /// friends would then report running resources as stopped.
    pub fn reset_volatile_state(&self) -> std::io::Result<()> {
        for dir in [self.rsctmp_dir(), self.varrun_dir(), self.varlock_dir()] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// At the daemon's start: when the boot id read from `boot_id_path`
    /// differs from the one this node's agents last ran under, the machine
    /// rebooted, so the volatile directories are emptied
    /// ([`Self::reset_volatile_state`]; an agent's "promoted" or "running"
    /// marker from before a power cut must not survive it). The first start
    /// (no boot id recorded) and an unreadable boot id forget nothing.
    /// Returns whether it forgot.
    pub fn forget_if_rebooted(&self, boot_id_path: &Path) -> std::io::Result<bool> {
        let Ok(now) = std::fs::read_to_string(boot_id_path) else {
            return Ok(false);
        };
        let now = now.trim();
        if now.is_empty() {
            return Ok(false);
        }
        let recorded = self.state_dir.join("boot_id");
        let rebooted = match std::fs::read_to_string(&recorded) {
            Ok(before) => before.trim() != now,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if rebooted {
            self.reset_volatile_state()?;
        }
        ha_raft_store::private::create_dir(&self.state_dir)?;
        ha_raft_store::private::write_file(&recorded, now.as_bytes())?;
        Ok(rebooted)
    }

    fn ensure_dirs(&self) -> std::io::Result<()> {
        for dir in [
            self.state_dir.clone(),
            self.rsctmp_dir(),
            self.varrun_dir(),
            self.varlib_dir(),
            self.varlock_dir(),
        ] {
            ha_raft_store::private::create_dir(&dir)?;
        }
        Ok(())
    }

    fn path_var(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.sbin_dir.display())
    }
}

/// Which agent: `ocf:<provider>:<agent>`, `lsb:<agent>` or `service:<agent>` (run as LSB).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentSpec {
    /// `ocf`, `lsb` or `service` (treated as `lsb`).
    pub class: String,
    /// OCF provider (`heartbeat`, `pacemaker`, ...); ignored for LSB.
    pub provider: Option<String>,
    /// The agent (script) name.
    pub agent: String,
}

impl AgentSpec {
    pub fn ocf(provider: impl Into<String>, agent: impl Into<String>) -> Self {
        AgentSpec {
            class: "ocf".into(),
            provider: Some(provider.into()),
            agent: agent.into(),
        }
    }

    pub fn lsb(agent: impl Into<String>) -> Self {
        AgentSpec {
            class: "lsb".into(),
            provider: None,
            agent: agent.into(),
        }
    }

    fn kind(&self) -> Result<Kind, AgentError> {
        match self.class.as_str() {
            "ocf" => Ok(Kind::Ocf),
            "lsb" | "service" => Ok(Kind::Lsb),
            other => Err(AgentError::UnsupportedClass(other.to_string())),
        }
    }
}

impl fmt::Display for AgentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(p) if self.class == "ocf" => write!(f, "{}:{}:{}", self.class, p, self.agent),
            _ => write!(f, "{}:{}", self.class, self.agent),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ocf,
    Lsb,
}

/// One action to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRequest {
    pub spec: AgentSpec,
    /// `OCF_RESOURCE_INSTANCE` (e.g. `db`, or `ms:0` for a clone instance).
    pub instance: String,
    /// start stop monitor promote demote migrate_to migrate_from notify reload reload-agent validate-all meta-data.
    pub action: String,
    /// Recurring interval in ms; 0 for one-shot actions and probes.
    pub interval_ms: u64,
    pub timeout: Duration,
    /// Instance attributes, as `OCF_RESKEY_<name>`.
    pub params: BTreeMap<String, String>,
    /// Meta attributes, as `OCF_RESKEY_CRM_meta_<name with '-' replaced by '_'>` (clone-max, notify_type, ...).
    pub meta: BTreeMap<String, String>,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentResult {
    /// OCF rc (LSB codes mapped to OCF).
    pub rc: i32,
    /// Pacemaker's execution status, see [`op_status`]. 0 whenever the agent ran to completion with an OCF code,
    /// whatever that code (rc 3 "unimplemented" included): the scheduler judges rc against the expected rc.
    pub op_status: i32,
    /// The agent's last `ocf-exit-reason:` line, or the runner's own explanation (timeout, not installed, ...).
    pub exit_reason: Option<String>,
    /// The last lines of stdout and stderr, in arrival order, for logs.
    pub output_tail: String,
    pub duration: Duration,
}

impl AgentResult {
    fn made_up(rc: i32, op_status: i32, reason: impl Into<String>) -> Self {
        AgentResult {
            rc,
            op_status,
            exit_reason: Some(reason.into()),
            output_tail: String::new(),
            duration: Duration::ZERO,
        }
    }

    /// Whether the agent completed (`op_status` 0) with rc 0.
    pub fn is_success(&self) -> bool {
        self.op_status == op_status::DONE && self.rc == rc::OK
    }
}

/// The agent's executable: `<ocf_root>/resource.d/<provider>/<agent>` or `<lsb_dir>/<agent>`. Names that could
/// leave those directories (containing `/` or `..`, or empty) are refused, naming the offending item.
pub fn agent_path(env: &AgentEnv, spec: &AgentSpec) -> Result<PathBuf, AgentError> {
    check_name("agent", &spec.agent)?;
    match spec.kind()? {
        Kind::Ocf => {
            let provider = spec
                .provider
                .as_deref()
                .ok_or_else(|| AgentError::MissingProvider(spec.agent.clone()))?;
            check_name("provider", provider)?;
            Ok(env
                .ocf_root
                .join("resource.d")
                .join(provider)
                .join(&spec.agent))
        }
        Kind::Lsb => Ok(env.lsb_dir.join(&spec.agent)),
    }
}

fn check_name(item: &'static str, value: &str) -> Result<(), AgentError> {
    if value.is_empty()
        || value.contains('/')
        || value.contains("..")
        || value.contains('\0')
        || value == "."
    {
        return Err(AgentError::InvalidName {
            item,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Runs one action of one agent. Never panics: every failure (missing agent, spawn error, timeout, signal) becomes
/// an [`AgentResult`].
pub async fn run_agent(env: &AgentEnv, req: &AgentRequest) -> AgentResult {
    let started = Instant::now();
    let mut result = invoke(env, req, false).await.0;
    result.duration = started.elapsed();
    // An agent's text may echo a secret parameter: hidden before it is
    // logged, recorded or shown (crate::secrets).
    let secrets = crate::secrets::param_secret_values(
        &req.spec,
        &req.params,
        &crate::secrets::known_private(),
    );
    result.exit_reason = result
        .exit_reason
        .map(|r| crate::secrets::redact_text(&r, &secrets));
    result.output_tail = crate::secrets::redact_text(&result.output_tail, &secrets);
    tracing::debug!(
        agent = %req.spec,
        instance = %req.instance,
        action = %req.action,
        interval_ms = req.interval_ms,
        rc = result.rc,
        op_status = result.op_status,
        exit_reason = result.exit_reason.as_deref().unwrap_or(""),
        ms = result.duration.as_millis() as u64,
        "agent action finished"
    );
    result
}

/// Runs the action; also returns the agent's whole stdout when `keep_stdout` (for `meta-data`).
pub(crate) async fn invoke(
    env: &AgentEnv,
    req: &AgentRequest,
    keep_stdout: bool,
) -> (AgentResult, String) {
    let kind = match req.spec.kind() {
        Ok(k) => k,
        Err(e) => {
            return (
                AgentResult::made_up(
                    rc::UNIMPLEMENT_FEATURE,
                    op_status::NOT_SUPPORTED,
                    e.to_string(),
                ),
                String::new(),
            );
        }
    };
    let path = match agent_path(env, &req.spec) {
        Ok(p) => p,
        Err(e) => {
            return (
                AgentResult::made_up(rc::NOT_INSTALLED, op_status::NOT_INSTALLED, e.to_string()),
                String::new(),
            );
        }
    };

    // The action word actually passed to the script.
    let action = match kind {
        Kind::Ocf => req.action.as_str(),
        Kind::Lsb => match req.action.as_str() {
            "meta-data" => {
                let xml = metadata::lsb_metadata_xml(&req.spec.agent);
                let mut r = AgentResult::made_up(rc::OK, op_status::DONE, "");
                r.exit_reason = None;
                r.output_tail = xml.clone();
                return (r, xml);
            }
            "monitor" | "status" => "status",
            "start" | "stop" | "restart" | "force-reload" => req.action.as_str(),
            other => {
                return (
                    AgentResult::made_up(
                        rc::UNIMPLEMENT_FEATURE,
                        op_status::DONE,
                        format!("action {other:?} is not supported by LSB scripts"),
                    ),
                    String::new(),
                );
            }
        },
    };
    if action.is_empty() || action.contains('\0') {
        return (
            AgentResult::made_up(
                rc::UNIMPLEMENT_FEATURE,
                op_status::DONE,
                format!("invalid action {action:?}"),
            ),
            String::new(),
        );
    }

    if let Err(reason) = check_executable(&path) {
        return (
            AgentResult::made_up(rc::NOT_INSTALLED, op_status::NOT_INSTALLED, reason),
            String::new(),
        );
    }

    let vars = match kind {
        Kind::Ocf => match ocf_env(env, req) {
            Ok(v) => v,
            Err(reason) => {
                return (
                    AgentResult::made_up(rc::INVALID_PARAM, op_status::ERROR_HARD, reason),
                    String::new(),
                );
            }
        },
        Kind::Lsb => lsb_env(env),
    };

    if let Err(e) = env.ensure_dirs() {
        return (
            AgentResult::made_up(
                rc::UNKNOWN_ERROR,
                op_status::ERROR,
                format!(
                    "cannot create the agent state directories under {}: {e}",
                    env.state_dir.display()
                ),
            ),
            String::new(),
        );
    }

    let outcome = exec::execute(ExecSpec {
        program: &path,
        arg: action,
        env: vars,
        cwd: &env.state_dir,
        timeout: req.timeout,
        keep_stdout,
    })
    .await;

    let (code_rc, code_status, made_up_reason) = match outcome.end {
        ExecEnd::Exited(code) => match kind {
            Kind::Ocf => map_ocf_exit(code),
            Kind::Lsb => map_lsb_exit(action, code),
        },
        ExecEnd::Signaled(sig) => (
            rc::UNKNOWN_ERROR,
            op_status::ERROR,
            Some(format!("killed by signal {sig}")),
        ),
        ExecEnd::TimedOut => (
            rc::UNKNOWN_ERROR,
            op_status::TIMEOUT,
            Some(format!("timed out after {}", fmt_duration(req.timeout))),
        ),
        ExecEnd::SpawnFailed(e) => {
            if e.kind() == std::io::ErrorKind::NotFound {
                (
                    rc::NOT_INSTALLED,
                    op_status::NOT_INSTALLED,
                    Some(format!(
                        "agent {} could not be executed (missing interpreter?): {e}",
                        path.display()
                    )),
                )
            } else {
                (
                    rc::UNKNOWN_ERROR,
                    op_status::ERROR,
                    Some(format!(
                        "agent {} could not be executed: {e}",
                        path.display()
                    )),
                )
            }
        }
        ExecEnd::WaitFailed(e) => (
            rc::UNKNOWN_ERROR,
            op_status::ERROR,
            Some(format!("waiting for agent {} failed: {e}", path.display())),
        ),
    };
    // When the agent completed, its own reason is preferred; otherwise (timeout, signal, bad exit code) the runner's
    // wins, the agent's last words are not why it failed.
    let exit_reason = if code_status == op_status::DONE {
        outcome.exit_reason.or(made_up_reason)
    } else {
        made_up_reason.or(outcome.exit_reason)
    };
    (
        AgentResult {
            rc: code_rc,
            op_status: code_status,
            exit_reason,
            output_tail: outcome.tail,
            duration: Duration::ZERO,
        },
        outcome.stdout,
    )
}

fn check_executable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_file() && md.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!(
            "agent {} is not an executable file",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("agent not found at {}", path.display()))
        }
        Err(e) => Err(format!("agent {} is not accessible: {e}", path.display())),
    }
}

/// OCF exit code → (rc, op_status, reason made up by us).
fn map_ocf_exit(code: i32) -> (i32, i32, Option<String>) {
    if (0..=9).contains(&code) {
        (code, op_status::DONE, None)
    } else {
        (
            rc::UNKNOWN_ERROR,
            op_status::ERROR,
            Some(format!(
                "agent exited with code {code}, which is not an OCF code"
            )),
        )
    }
}

/// LSB exit code of `action` (already translated: `status`, `start`, ...) → (rc, op_status, reason made up by us).
fn map_lsb_exit(action: &str, code: i32) -> (i32, i32, Option<String>) {
    if action == "status" {
        return match code {
            0 => (rc::OK, op_status::DONE, None),
            1 => (
                rc::NOT_RUNNING,
                op_status::DONE,
                Some("LSB status 1: not running but the pid file exists".into()),
            ),
            2 => (
                rc::NOT_RUNNING,
                op_status::DONE,
                Some("LSB status 2: not running but the lock file exists".into()),
            ),
            3 => (rc::NOT_RUNNING, op_status::DONE, None),
            4 => (
                rc::UNKNOWN_ERROR,
                op_status::DONE,
                Some("LSB status 4: status unknown".into()),
            ),
            other => (
                rc::UNKNOWN_ERROR,
                op_status::DONE,
                Some(format!("LSB status exited with code {other}")),
            ),
        };
    }
    match code {
        0 => (rc::OK, op_status::DONE, None),
        // Stopping a stopped service is a success; some scripts say so with 7 ("program is not running").
        7 if action == "stop" => (rc::OK, op_status::DONE, None),
        // LSB codes 1..=7 of non-status actions mean the same as the OCF codes.
        1..=7 => (code, op_status::DONE, None),
        other => (
            rc::UNKNOWN_ERROR,
            op_status::ERROR,
            Some(format!("LSB script exited with code {other}")),
        ),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

fn ocf_env(env: &AgentEnv, req: &AgentRequest) -> Result<Vec<(String, String)>, String> {
    if req.instance.contains('\0') || req.instance.contains('=') {
        return Err(format!("invalid resource instance name {:?}", req.instance));
    }
    let provider = req.spec.provider.clone().unwrap_or_default();
    let mut vars: Vec<(String, String)> = vec![
        ("PATH".into(), env.path_var()),
        ("OCF_ROOT".into(), env.ocf_root.display().to_string()),
        (
            "OCF_FUNCTIONS_DIR".into(),
            env.ocf_root.join("lib/heartbeat").display().to_string(),
        ),
        ("OCF_RA_VERSION_MAJOR".into(), "1".into()),
        ("OCF_RA_VERSION_MINOR".into(), "0".into()),
        ("OCF_RESOURCE_TYPE".into(), req.spec.agent.clone()),
        ("OCF_RESOURCE_PROVIDER".into(), provider),
        ("OCF_EXIT_REASON_PREFIX".into(), EXIT_REASON_PREFIX.into()),
        ("HA_RSCTMP".into(), env.rsctmp_dir().display().to_string()),
        ("HA_VARRUN".into(), env.varrun_dir().display().to_string()),
        ("HA_VARLIB".into(), env.varlib_dir().display().to_string()),
        ("HA_VARLOCK".into(), env.varlock_dir().display().to_string()),
        (
            "HA_FIFO".into(),
            env.varlib_dir().join("fifo").display().to_string(),
        ),
        ("HA_SBIN_DIR".into(), env.sbin_dir.display().to_string()),
        ("HA_LOGFACILITY".into(), String::new()),
        ("HA_debug".into(), "0".into()),
    ];
    // Without an instance (meta-data) the shell functions pick a placeholder.
    if !req.instance.is_empty() {
        vars.push(("OCF_RESOURCE_INSTANCE".into(), req.instance.clone()));
    }
    if !req.params.contains_key("crm_feature_set") {
        vars.push((
            "OCF_RESKEY_crm_feature_set".into(),
            CRM_FEATURE_SET.to_string(),
        ));
    }
    for (name, value) in &req.params {
        if !valid_env_name(name) || value.contains('\0') {
            return Err(format!("invalid parameter {name:?}"));
        }
        vars.push((format!("OCF_RESKEY_{name}"), value.clone()));
    }
    for (name, value) in &req.meta {
        if !valid_env_name(name) || value.contains('\0') {
            return Err(format!("invalid meta attribute {name:?}"));
        }
        vars.push((
            format!("OCF_RESKEY_CRM_meta_{}", name.replace('-', "_")),
            value.clone(),
        ));
    }
    vars.push((
        "OCF_RESKEY_CRM_meta_interval".into(),
        req.interval_ms.to_string(),
    ));
    vars.push((
        "OCF_RESKEY_CRM_meta_timeout".into(),
        req.timeout.as_millis().to_string(),
    ));
    vars.push(("OCF_RESKEY_CRM_meta_on_node".into(), env.node_name.clone()));
    vars.push((
        "OCF_RESKEY_CRM_meta_on_node_uuid".into(),
        env.node_name.clone(),
    ));
    push_extra(env, &mut vars)?;
    Ok(vars)
}

fn lsb_env(env: &AgentEnv) -> Vec<(String, String)> {
    let mut vars = vec![("PATH".to_string(), env.path_var())];
    // Invalid names in the node's own configuration are skipped rather than failing every LSB action.
    vars.extend(
        env.extra_env
            .iter()
            .filter(|(k, v)| valid_env_name(k) && !v.contains('\0'))
            .cloned(),
    );
    vars
}

fn push_extra(env: &AgentEnv, vars: &mut Vec<(String, String)>) -> Result<(), String> {
    for (name, value) in &env.extra_env {
        if !valid_env_name(name) || value.contains('\0') {
            return Err(format!("invalid extra environment variable {name:?}"));
        }
        vars.push((name.clone(), value.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_reboot_empties_the_volatile_directories_and_a_restart_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let env = AgentEnv {
            node_name: "n1".into(),
            ocf_root: "/usr/lib/ocf".into(),
            lsb_dir: "/etc/init.d".into(),
            state_dir: dir.path().join("agents"),
            sbin_dir: dir.path().join("sbin"),
            extra_env: Vec::new(),
        };
        let boot = dir.path().join("boot_id");
        std::fs::write(&boot, "aaaa\n").unwrap();
        std::fs::create_dir_all(env.rsctmp_dir()).unwrap();
        let marker = env.rsctmp_dir().join("conntrackd.master");
        std::fs::write(&marker, "").unwrap();
        // First start: nothing recorded, nothing forgotten.
        assert!(!env.forget_if_rebooted(&boot).unwrap());
        assert!(marker.exists());
        // Daemon restart, same boot: kept.
        assert!(!env.forget_if_rebooted(&boot).unwrap());
        assert!(marker.exists());
        // Rebooted: forgotten, and the new boot is recorded.
        std::fs::write(&boot, "bbbb\n").unwrap();
        assert!(env.forget_if_rebooted(&boot).unwrap());
        assert!(!marker.exists());
        assert!(!env.forget_if_rebooted(&boot).unwrap());
        // No boot id to read: nothing forgotten.
        assert!(!env.forget_if_rebooted(&dir.path().join("none")).unwrap());
    }
    use super::*;

    #[test]
    fn ocf_codes_map() {
        assert_eq!(map_ocf_exit(8), (8, op_status::DONE, None));
        assert_eq!(map_ocf_exit(42).0, rc::UNKNOWN_ERROR);
        assert_eq!(map_ocf_exit(42).1, op_status::ERROR);
        assert_eq!(map_ocf_exit(-1).1, op_status::ERROR);
    }

    #[test]
    fn lsb_codes_map() {
        assert_eq!(map_lsb_exit("status", 0).0, rc::OK);
        assert_eq!(map_lsb_exit("status", 1).0, rc::NOT_RUNNING);
        assert_eq!(map_lsb_exit("status", 2).0, rc::NOT_RUNNING);
        assert_eq!(map_lsb_exit("status", 3), (rc::NOT_RUNNING, 0, None));
        assert_eq!(map_lsb_exit("status", 4).0, rc::UNKNOWN_ERROR);
        assert_eq!(map_lsb_exit("stop", 7).0, rc::OK);
        assert_eq!(map_lsb_exit("start", 7).0, rc::NOT_RUNNING);
        assert_eq!(map_lsb_exit("start", 5).0, rc::NOT_INSTALLED);
        assert_eq!(
            map_lsb_exit("start", 150),
            (
                1,
                op_status::ERROR,
                Some("LSB script exited with code 150".into())
            )
        );
    }

    #[test]
    fn names_are_checked() {
        let env = AgentEnv::new("n1", "/tmp/x");
        for bad in ["", "..", "../x", "a/b", "x..y", "."] {
            let err = agent_path(&env, &AgentSpec::ocf("heartbeat", bad)).unwrap_err();
            assert!(err.to_string().contains("agent"), "{err}");
        }
        let err = agent_path(&env, &AgentSpec::ocf("../etc", "Dummy")).unwrap_err();
        assert!(err.to_string().starts_with("invalid provider"), "{err}");
        assert_eq!(
            agent_path(&env, &AgentSpec::ocf("heartbeat", "Dummy")).unwrap(),
            PathBuf::from("/usr/lib/ocf/resource.d/heartbeat/Dummy")
        );
        assert_eq!(
            agent_path(
                &env,
                &AgentSpec {
                    class: "service".into(),
                    provider: None,
                    agent: "ssh".into()
                }
            )
            .unwrap(),
            PathBuf::from("/etc/init.d/ssh")
        );
        assert!(matches!(
            agent_path(
                &env,
                &AgentSpec {
                    class: "systemd".into(),
                    provider: None,
                    agent: "x".into()
                }
            ),
            Err(AgentError::UnsupportedClass(_))
        ));
    }

    #[test]
    fn durations_format() {
        assert_eq!(fmt_duration(Duration::from_secs(20)), "20s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
    }
}
