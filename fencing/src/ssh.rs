//! ssh device: runs a power-off/reboot command on the target itself and confirms the target stopped answering ssh.
//!
//! "Confirmed" for ssh means, in this order:
//! 1. before the command, `ssh … true` on the target succeeded (a target
//!    that does not answer at all cannot be fenced over ssh: its state is
//!    unknown, so that is an error, never a success);
//! 2. the fence command was run (its exit status is not trusted: a node
//!    that powers off drops the connection, ssh then exits 255);
//! 3. afterwards two consecutive `ssh … true` probes failed, within the
//!    action's timeout.
//!
//! This proves the node stopped answering ssh, not that it lost power: ssh
//! fencing is a last-resort level after a power fence device.

use std::time::Duration;

use tokio::process::Command;

use crate::agent::{AgentMetadata, ParamInfo};
use crate::config::{DeviceConfig, FenceAction};
use crate::device::{Call, Outcome, PowerState};
use crate::error::FenceError;
use crate::process::{self, last_lines};

/// Failed probes in a row that count as "stopped answering".
const DOWN_PROBES: usize = 2;

#[derive(Debug)]
pub struct SshDevice {
    cfg: DeviceConfig,
    ssh: String,
    fixed_host: Option<String>,
    port: u16,
    user: String,
    key: Option<String>,
    connect_timeout: u32,
    off_command: String,
    reboot_command: String,
    probe_interval: Duration,
}

impl SshDevice {
    /// Parameters: `hostlist` (nodes it fences), `ssh_host` (address to
    /// connect to; else the `pcmk_host_map` entry of the target; else the
    /// target's name), `ssh_port` (22), `ssh_user` (root), `ssh_key`,
    /// `ssh_connect_timeout` (5 s), `command` (for every action) or
    /// `off_command` (`poweroff -f`) / `reboot_command` (`reboot -f`),
    /// `ssh_path`, `probe_interval` (0.5 s).
    pub fn new(cfg: DeviceConfig) -> Result<SshDevice, FenceError> {
        let bad = |param: &str, value: &str, reason: &str| FenceError::BadParam {
            device: cfg.id.clone(),
            param: param.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let port = match cfg.param(&["ssh_port"]) {
            None => 22,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| bad("ssh_port", p, "not a TCP port"))?,
        };
        let connect_timeout = match cfg.param(&["ssh_connect_timeout"]) {
            None => 5,
            Some(v) => crate::delay::parse_duration(v)
                .map(|d| d.as_secs().max(1) as u32)
                .ok_or_else(|| bad("ssh_connect_timeout", v, "not a duration"))?,
        };
        let probe_interval = match cfg.param(&["probe_interval"]) {
            None => Duration::from_millis(500),
            Some(v) => crate::delay::parse_duration(v)
                .ok_or_else(|| bad("probe_interval", v, "not a duration"))?,
        };
        let command = cfg.param(&["command"]);
        Ok(SshDevice {
            ssh: cfg.param(&["ssh_path"]).unwrap_or("ssh").to_string(),
            fixed_host: cfg.param(&["ssh_host"]).map(str::to_string),
            port,
            user: cfg.param(&["ssh_user"]).unwrap_or("root").to_string(),
            key: cfg.param(&["ssh_key"]).map(str::to_string),
            connect_timeout,
            off_command: command
                .or(cfg.param(&["off_command"]))
                .unwrap_or("poweroff -f")
                .to_string(),
            reboot_command: command
                .or(cfg.param(&["reboot_command"]))
                .unwrap_or("reboot -f")
                .to_string(),
            probe_interval,
            cfg,
        })
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// The address ssh connects to for `target`.
    pub fn host_for(&self, target: &str) -> String {
        if let Some(p) = self.cfg.hosts().plug_for(target) {
            return p.to_string();
        }
        self.fixed_host
            .clone()
            .unwrap_or_else(|| target.to_string())
    }

    /// The ssh arguments to run `remote` on `target`.
    pub fn args(&self, target: &str, remote: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["-p".into(), self.port.to_string()];
        if let Some(k) = &self.key {
            a.extend([
                "-i".into(),
                k.clone(),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        for o in [
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=no".to_string(),
            "UserKnownHostsFile=/dev/null".to_string(),
            "LogLevel=ERROR".to_string(),
            format!("ConnectTimeout={}", self.connect_timeout),
            "ServerAliveInterval=2".to_string(),
            "ServerAliveCountMax=2".to_string(),
        ] {
            a.push("-o".into());
            a.push(o);
        }
        a.push(format!("{}@{}", self.user, self.host_for(target)));
        a.push(remote.to_string());
        a
    }

    async fn ssh(
        &self,
        call: &Call<'_>,
        remote: &str,
        limit: Duration,
    ) -> Result<process::Output, FenceError> {
        let mut cmd = Command::new(&self.ssh);
        cmd.args(self.args(call.target, remote));
        process::run(cmd, None, limit)
            .await
            .map_err(|e| call.run_error(&self.ssh, e))
    }

    /// Does the target run `true` for us? `None`: inconclusive, the call's
    /// deadline cut the probe short (never counted as "down").
    async fn answers(&self, call: &Call<'_>) -> Result<(Option<bool>, String), FenceError> {
        let own_limit = Duration::from_secs(self.connect_timeout as u64 + 5);
        let remaining = call.remaining();
        if remaining.is_zero() {
            return Ok((None, "no time left".into()));
        }
        let cut_by_deadline = remaining < own_limit;
        match self.ssh(call, "true", remaining.min(own_limit)).await {
            Ok(o) => Ok((Some(o.code == Some(0)), last_lines(&o.stderr, 2))),
            // A probe that hangs past its own limit is a target that does not answer.
            Err(FenceError::Timeout { .. }) if !cut_by_deadline => {
                Ok((Some(false), "probe timed out".into()))
            }
            Err(FenceError::Timeout { .. }) => {
                Ok((None, "probe cut short by the action timeout".into()))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn run(&self, call: &Call<'_>) -> Result<Outcome, FenceError> {
        match call.action {
            FenceAction::On => Err(call.unsupported()),
            FenceAction::List => {
                let mut o = Outcome::new(call.action, "static host list");
                o.hosts = self.cfg.hosts().all_named();
                Ok(o)
            }
            FenceAction::Monitor => {
                let mut cmd = Command::new(&self.ssh);
                cmd.arg("-V");
                let out = process::run(cmd, None, call.remaining())
                    .await
                    .map_err(|e| call.run_error(&self.ssh, e))?;
                if out.code != Some(0) {
                    return Err(call.failed(out.code, &last_lines(&out.stderr, 2)));
                }
                if let Some(k) = &self.key {
                    std::fs::File::open(k)
                        .map_err(|e| call.failed(None, &format!("ssh_key {k}: {e}")))?;
                }
                Ok(Outcome::new(
                    call.action,
                    format!("{} present", last_lines(&out.stderr, 1)),
                ))
            }
            FenceAction::Status => {
                let (up, why) = self.answers(call).await?;
                let Some(up) = up else {
                    return Err(call.timeout());
                };
                let mut o = Outcome::new(
                    call.action,
                    if up {
                        "answers ssh".to_string()
                    } else {
                        format!("does not answer ssh: {why}")
                    },
                );
                o.power = Some(if up { PowerState::On } else { PowerState::Off });
                Ok(o)
            }
            FenceAction::Off | FenceAction::Reboot => {
                let (up, why) = self.answers(call).await?;
                let Some(up) = up else {
                    return Err(call.timeout());
                };
                if !up {
                    return Err(call.unreachable(&format!(
                        "{} does not answer ssh before the fence command ({why}); its state is unknown",
                        self.host_for(call.target)
                    )));
                }
                let command = if call.action == FenceAction::Off {
                    &self.off_command
                } else {
                    &self.reboot_command
                };
                // Half the remaining time at most: the probes need the rest.
                let limit = call.remaining() / 2;
                let sent = match self.ssh(call, command, limit).await {
                    Ok(o) if o.code == Some(0) || o.code == Some(255) => {
                        format!("{command:?} exited {:?}", o.code.unwrap_or(-1))
                    }
                    Ok(o) => {
                        return Err(call.failed(
                            o.code,
                            &format!("{command:?} on the target: {}", last_lines(&o.stderr, 3)),
                        ))
                    }
                    Err(FenceError::Timeout { .. }) => {
                        format!("{command:?} did not return (killed)")
                    }
                    Err(e) => return Err(e),
                };
                let mut down = 0usize;
                let mut probes = 0usize;
                loop {
                    let (up, _) = self.answers(call).await?;
                    probes += 1;
                    match up {
                        Some(false) => down += 1,
                        Some(true) => down = 0,
                        None => {}
                    }
                    if down >= DOWN_PROBES {
                        break;
                    }
                    let remaining = call.remaining();
                    if remaining.is_zero() {
                        return Err(call.not_confirmed(&format!(
                            "{sent}, but the target still answered ssh after {:.1} s",
                            call.started.elapsed().as_secs_f64()
                        )));
                    }
                    tokio::time::sleep(self.probe_interval.min(remaining)).await;
                }
                let mut o = Outcome::new(
                    call.action,
                    format!(
                        "{sent}; target stopped answering ssh ({probes} probe(s), {:.2} s)",
                        call.started.elapsed().as_secs_f64()
                    ),
                );
                o.confirmed = true;
                o.power = Some(PowerState::Off);
                Ok(o)
            }
        }
    }
}

pub(crate) fn builtin_metadata() -> AgentMetadata {
    let p = |name: &str, required: bool, shortdesc: &str| ParamInfo {
        name: name.into(),
        required,
        shortdesc: shortdesc.into(),
        content_type: "string".into(),
        default: None,
        deprecated: false,
    };
    AgentMetadata {
        name: "ssh".into(),
        shortdesc: "Power off/reboot the target with a command over ssh (native; last resort)"
            .into(),
        longdesc:
            "Confirmed when the target answered ssh before and stops answering after the command."
                .into(),
        parameters: vec![
            p("hostlist", false, "nodes this device fences"),
            p(
                "ssh_host",
                false,
                "address to connect to (else pcmk_host_map entry, else node name)",
            ),
            p("ssh_port", false, "ssh port (default 22)"),
            p("ssh_user", false, "remote user (default root)"),
            p("ssh_key", false, "private key file"),
            p("command", false, "command for every action"),
            p("off_command", false, "default: poweroff -f"),
            p("reboot_command", false, "default: reboot -f"),
            p("ssh_connect_timeout", false, "ConnectTimeout (default 5 s)"),
        ],
        actions: ["off", "reboot", "status", "monitor", "list", "metadata"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_map_wins_over_ssh_host() {
        let cfg = DeviceConfig::new("s", "ssh")
            .with("ssh_host", "10.1.1.1")
            .with("pcmk_host_map", "n1:10.0.0.1")
            .with("ssh_port", "2222")
            .with("ssh_key", "/k");
        let d = SshDevice::new(cfg).unwrap();
        assert_eq!(d.host_for("n1"), "10.0.0.1");
        assert_eq!(d.host_for("n2"), "10.1.1.1");
        let a = d.args("n1", "true").join(" ");
        assert!(
            a.starts_with("-p 2222 -i /k -o IdentitiesOnly=yes -o BatchMode=yes"),
            "{a}"
        );
        assert!(a.ends_with("root@10.0.0.1 true"), "{a}");
    }
}
