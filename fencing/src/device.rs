//! The device kinds behind one enum: which kind a `stonith:` agent name means, host checks, per-action timeouts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::agent::{AgentDevice, AgentMetadata};
use crate::config::{DeviceConfig, FenceAction, HostCheck, HostSpec};
use crate::error::FenceError;
use crate::ipmi::IpmiDevice;
use crate::mapping::{mapping_hint, reach, Reach};
use crate::ssh::SshDevice;

/// Where `fence_*` programs are looked up when the caller gives no path.
pub const DEFAULT_SEARCH_PATH: &str = "/usr/sbin";

/// The default search path as a list.
pub fn default_search_path() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_SEARCH_PATH)]
}

/// Upper bound for `metadata` when it is asked to resolve the host check
/// (a local call: fence_ipmilan answers in 0.2 s).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Power state as reported by `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    On,
    Off,
}

/// What a successful action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub action: FenceAction,
    /// For `status` (and after `on`/`off` when observed): the power state.
    pub power: Option<PowerState>,
    /// For `off`/`reboot`: the device's kind-specific confirmation held (see
    /// the README: IPMI power status read back as off, ssh target stopped
    /// answering, agent `status` said off). `false` means the success rests
    /// on the agent's exit code alone.
    pub confirmed: bool,
    /// For `list`: the nodes/plugs the device reports.
    pub hosts: Vec<String>,
    /// Human detail, redacted.
    pub detail: String,
}

impl Outcome {
    pub(crate) fn new(action: FenceAction, detail: impl Into<String>) -> Outcome {
        Outcome {
            action,
            power: None,
            confirmed: false,
            hosts: Vec::new(),
            detail: detail.into(),
        }
    }
}

/// A configured fencing device, ready to run actions.
#[derive(Debug)]
pub enum Device {
    /// Native IPMI over LAN with `ipmitool` (`external/ipmi`, `ipmi`, and
    /// `fence_ipmilan` when that agent is not installed).
    Ipmi(IpmiDevice),
    /// Commands over ssh on the target itself (`ssh`, `external/ssh`, and
    /// `fence_ssh` when no such program is installed).
    Ssh(SshDevice),
    /// Any RHCS-style `fence_*` agent (key=value on stdin).
    Agent(AgentDevice),
}

impl Device {
    /// Choose the device kind for `cfg.agent` and check its parameters.
    ///
    /// - `external/ipmi`, `ipmi`, `ipmitool` → [`Device::Ipmi`];
    /// - `ssh`, `external/ssh` → [`Device::Ssh`];
    /// - `fence_NAME` found in `search_path` → [`Device::Agent`] (the real
    ///   agent, so `stonith:fence_ipmilan` runs `/usr/sbin/fence_ipmilan`);
    /// - `fence_ipmilan`/`fence_ipmilanplus` not installed → native IPMI,
    ///   `fence_ssh` not installed → native ssh;
    /// - anything else → [`FenceError::UnknownAgent`].
    pub fn from_config(cfg: &DeviceConfig, search_path: &[PathBuf]) -> Result<Device, FenceError> {
        let agent = cfg.agent.strip_prefix("stonith:").unwrap_or(&cfg.agent);
        match agent {
            "external/ipmi" | "ipmi" | "ipmitool" => {
                return Ok(Device::Ipmi(IpmiDevice::new(cfg.clone())?))
            }
            "ssh" | "external/ssh" => return Ok(Device::Ssh(SshDevice::new(cfg.clone())?)),
            _ => {}
        }
        if let Some(program) = find_agent(agent, search_path) {
            return Ok(Device::Agent(AgentDevice::new(cfg.clone(), program)));
        }
        match agent {
            "fence_ipmilan" | "fence_ipmilanplus" => {
                Ok(Device::Ipmi(IpmiDevice::new(cfg.clone())?))
            }
            "fence_ssh" => Ok(Device::Ssh(SshDevice::new(cfg.clone())?)),
            _ => Err(FenceError::UnknownAgent {
                device: cfg.id.clone(),
                agent: cfg.agent.clone(),
                search_path: search_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            }),
        }
    }

    pub fn config(&self) -> &DeviceConfig {
        match self {
            Device::Ipmi(d) => d.config(),
            Device::Ssh(d) => d.config(),
            Device::Agent(d) => d.config(),
        }
    }

    pub fn id(&self) -> &str {
        &self.config().id
    }

    /// "ipmi", "ssh" or "agent".
    pub fn kind(&self) -> &'static str {
        match self {
            Device::Ipmi(_) => "ipmi",
            Device::Ssh(_) => "ssh",
            Device::Agent(_) => "agent",
        }
    }

    /// Host list/map/check of the device.
    pub fn hosts(&self) -> HostSpec {
        self.config().hosts()
    }

    /// Static answer to "can this device fence `target`?": with
    /// `static-list` (the default when a list or map is given) the target must
    /// be listed; a power device (native IPMI/ssh, a known BMC agent) with
    /// `none` or nothing listed: never (it cannot tell which node it
    /// fences); a shared-medium device with `none`: any target; with
    /// `dynamic-list` or an agent whose metadata is not read yet, `true` (the
    /// dynamic check [`Device::can_fence_dynamic`] decides at fencing time).
    pub fn can_fence(&self, target: &str) -> bool {
        let hosts = self.hosts();
        match hosts.effective_check() {
            HostCheck::StaticList => hosts.statically_lists(target),
            HostCheck::DynamicList => true,
            HostCheck::None | HostCheck::Auto => self.reach() != Reach::Power,
        }
    }

    /// The reach of this device: the native kinds are power devices
    /// whatever the agent is called; others by their agent name.
    pub fn reach(&self) -> Reach {
        match self {
            Device::Ipmi(_) | Device::Ssh(_) => Reach::Power,
            Device::Agent(_) => reach(&self.config().agent),
        }
    }

    /// May this device be used for any target when nothing lists its
    /// targets? Only a device that fences through a shared medium: a known
    /// one by name, or an agent whose metadata has no `port`/`plug`
    /// parameter (so nothing in its call selects a machine). A power device,
    /// or an agent whose metadata cannot be read, is not.
    async fn fences_any_target(&self, timeout: Duration) -> bool {
        match self.reach() {
            Reach::AnyTarget => true,
            Reach::Power => false,
            Reach::ByMetadata => match self.metadata(timeout.min(METADATA_TIMEOUT)).await {
                Ok(m) => m.param("port").is_none() && m.param("plug").is_none(),
                Err(_) => false,
            },
        }
    }

    /// The check in force once `Auto` is resolved: native devices have no
    /// `list` (so `none`); an agent gets `dynamic-list` if its metadata
    /// lists the `list` action, else `none`. `none` lets only a
    /// shared-medium device fence any target: a power device is then used
    /// for no target at all (see [`Device::can_fence_dynamic`]).
    pub async fn host_check(&self, timeout: Duration) -> HostCheck {
        match self.hosts().effective_check() {
            HostCheck::Auto => match self {
                Device::Agent(a) => match a.metadata(timeout.min(METADATA_TIMEOUT)).await {
                    Ok(m) if m.supports("list") => HostCheck::DynamicList,
                    _ => HostCheck::None,
                },
                _ => HostCheck::None,
            },
            c => c,
        }
    }

    /// Can this device fence `target`, asking the device (`list`) when the
    /// host check is `dynamic-list`. `Err(reason)` says why not.
    pub async fn can_fence_dynamic(&self, target: &str, timeout: Duration) -> Result<(), String> {
        let hosts = self.hosts();
        match self.host_check(timeout).await {
            HostCheck::None | HostCheck::Auto => {
                if self.fences_any_target(timeout).await {
                    Ok(())
                } else {
                    let why = match hosts.check {
                        Some(HostCheck::None) => {
                            "pcmk_host_check=none on a device that controls specific machines"
                        }
                        _ => "no pcmk_host_list or pcmk_host_map",
                    };
                    Err(format!(
                        "cannot tell which node it fences ({why}), so it is never used: {}",
                        mapping_hint(&self.config().agent)
                    ))
                }
            }
            HostCheck::StaticList => {
                if hosts.statically_lists(target) {
                    Ok(())
                } else {
                    let named = hosts.all_named();
                    Err(if named.is_empty() {
                        "pcmk_host_check=static-list but no pcmk_host_list/pcmk_host_map".into()
                    } else {
                        format!("{target} is not in its host list ({})", named.join(" "))
                    })
                }
            }
            HostCheck::DynamicList => {
                let t = self.action_timeout(FenceAction::List, timeout);
                match self.run(FenceAction::List, target, t).await {
                    Ok(o) => {
                        let plug = hosts.plug_for(target).unwrap_or(target);
                        if o.hosts.iter().any(|h| h == target || h == plug) {
                            Ok(())
                        } else {
                            Err(format!(
                                "{target} is not in the device's list ({})",
                                o.hosts.join(" ")
                            ))
                        }
                    }
                    Err(e) => Err(format!("list failed: {e}")),
                }
            }
        }
    }

    /// `pcmk_<action>_timeout` of the device, else `default` (the caller's
    /// `stonith-timeout`).
    pub fn action_timeout(&self, action: FenceAction, default: Duration) -> Duration {
        action_timeout(self.config(), action, default)
    }

    /// Run `action` against `target`, bounded by `timeout` (on expiry the
    /// helper process group is killed and [`FenceError::Timeout`] returned).
    pub async fn run(
        &self,
        action: FenceAction,
        target: &str,
        timeout: Duration,
    ) -> Result<Outcome, FenceError> {
        tracing::debug!(device = self.id(), %action, target, ?timeout, "fence device action");
        let call = Call::new(self.config(), target, action, timeout);
        let r = match self {
            Device::Ipmi(d) => d.run(&call).await,
            Device::Ssh(d) => d.run(&call).await,
            Device::Agent(d) => d.run(&call).await,
        };
        match &r {
            Ok(o) => {
                tracing::info!(device = self.id(), %action, target, confirmed = o.confirmed, detail = %o.detail, "fence action succeeded")
            }
            Err(e) => {
                tracing::warn!(device = self.id(), %action, target, error = %e, "fence action failed")
            }
        }
        r
    }

    /// Parameter names and descriptions (agent metadata, or the built-in
    /// description of a native kind).
    pub async fn metadata(&self, timeout: Duration) -> Result<AgentMetadata, FenceError> {
        match self {
            Device::Ipmi(_) => Ok(crate::ipmi::builtin_metadata()),
            Device::Ssh(_) => Ok(crate::ssh::builtin_metadata()),
            Device::Agent(a) => a.metadata(timeout).await,
        }
    }
}

/// `pcmk_<action>_timeout` if set and parsable, else `default`.
pub fn action_timeout(cfg: &DeviceConfig, action: FenceAction, default: Duration) -> Duration {
    let key = format!("pcmk_{}_timeout", action.as_str());
    cfg.param(&[key.as_str()])
        .and_then(crate::delay::parse_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// The path of agent `name` in `search_path`, if it is a `fence_*` program.
pub fn find_agent(name: &str, search_path: &[PathBuf]) -> Option<PathBuf> {
    if !name.starts_with("fence_") || name.contains('/') || name.contains("..") {
        return None;
    }
    search_path
        .iter()
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Names of the `fence_*` programs in `search_path` plus the native kinds
/// (`external/ipmi`, `ssh`), sorted, for `hactl stonith list`.
pub fn list_agents(search_path: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = vec!["external/ipmi".into(), "external/ssh".into(), "ssh".into()];
    for dir in search_path {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("fence_") && is_executable(&e.path()) && !v.contains(&name) {
                v.push(name);
            }
        }
    }
    v.sort();
    v
}

/// One action call in progress: what, on whom, until when. Builds the errors.
pub(crate) struct Call<'a> {
    pub cfg: &'a DeviceConfig,
    pub target: &'a str,
    pub action: FenceAction,
    pub started: Instant,
    pub deadline: Instant,
}

impl<'a> Call<'a> {
    pub fn new(
        cfg: &'a DeviceConfig,
        target: &'a str,
        action: FenceAction,
        timeout: Duration,
    ) -> Self {
        let started = Instant::now();
        Call {
            cfg,
            target,
            action,
            started,
            deadline: started + timeout,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn device(&self) -> String {
        self.cfg.id.clone()
    }

    pub fn timeout(&self) -> FenceError {
        FenceError::Timeout {
            device: self.device(),
            target: self.target.to_string(),
            action: self.action,
            after: self.started.elapsed(),
        }
    }

    pub fn failed(&self, code: Option<i32>, detail: &str) -> FenceError {
        FenceError::Failed {
            device: self.device(),
            target: self.target.to_string(),
            action: self.action,
            code,
            detail: self.cfg.redact(detail),
        }
    }

    pub fn auth(&self, detail: &str) -> FenceError {
        FenceError::Auth {
            device: self.device(),
            target: self.target.to_string(),
            action: self.action,
            detail: self.cfg.redact(detail),
        }
    }

    pub fn unreachable(&self, detail: &str) -> FenceError {
        FenceError::Unreachable {
            device: self.device(),
            target: self.target.to_string(),
            action: self.action,
            detail: self.cfg.redact(detail),
        }
    }

    pub fn not_confirmed(&self, detail: &str) -> FenceError {
        FenceError::NotConfirmed {
            device: self.device(),
            target: self.target.to_string(),
            action: self.action,
            detail: self.cfg.redact(detail),
        }
    }

    pub fn unsupported(&self) -> FenceError {
        FenceError::Unsupported {
            device: self.device(),
            agent: self.cfg.agent.clone(),
            action: self.action,
        }
    }

    pub fn spawn_error(&self, program: &str, source: std::io::Error) -> FenceError {
        FenceError::Spawn {
            device: self.device(),
            program: program.to_string(),
            source,
        }
    }

    pub fn io(&self, source: std::io::Error) -> FenceError {
        FenceError::Io {
            device: self.device(),
            source,
        }
    }

    /// Map a helper run error.
    pub fn run_error(&self, program: &str, e: crate::process::RunError) -> FenceError {
        match e {
            crate::process::RunError::Spawn(s) => self.spawn_error(program, s),
            crate::process::RunError::Timeout => self.timeout(),
            crate::process::RunError::Io(s) => self.io(s),
        }
    }
}

/// Parse a boolean parameter ("1", "true", "yes", "on").
pub(crate) fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}
