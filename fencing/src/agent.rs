//! Generic RHCS-style `fence_*` agents: key=value lines on stdin, exit codes, metadata XML.
//!
//! Protocol: one `name=value` line per parameter on stdin (`action=off`,
//! `nodename=TARGET`, `plug=PORT` when the host map gives one, then the
//! device's parameters except the `pcmk_*` ones). Exit 0 is success; for
//! `status` 0 = on, 2 = off. stderr is not an error (fence_ipmilan prints a
//! Python DeprecationWarning on every call); its last lines go into the
//! error message, redacted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::config::{DeviceConfig, FenceAction};
use crate::device::{Call, Outcome, PowerState};
use crate::error::FenceError;
use crate::process::{self, last_lines};

/// One parameter of an agent's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    pub required: bool,
    pub shortdesc: String,
    /// `string`, `boolean`, `integer`, `select`, ...
    pub content_type: String,
    pub default: Option<String>,
    pub deprecated: bool,
}

/// What an agent says about itself (`action=metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMetadata {
    pub name: String,
    pub shortdesc: String,
    pub longdesc: String,
    pub parameters: Vec<ParamInfo>,
    /// Action names, deduplicated, in document order.
    pub actions: Vec<String>,
}

impl AgentMetadata {
    pub fn supports(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }

    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Parse the XML an agent prints for `action=metadata`.
    pub fn parse(xml: &str) -> Result<AgentMetadata, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let root = doc.root_element();
        if root.tag_name().name() != "resource-agent" {
            return Err(format!(
                "root element is <{}>, not <resource-agent>",
                root.tag_name().name()
            ));
        }
        let child_text = |n: roxmltree::Node, tag: &str| -> Option<String> {
            n.children()
                .find(|c| c.is_element() && c.tag_name().name() == tag)
                .map(|c| c.text().unwrap_or("").trim().to_string())
        };
        let mut parameters = Vec::new();
        let mut actions: Vec<String> = Vec::new();
        for section in root.children().filter(|c| c.is_element()) {
            match section.tag_name().name() {
                "parameters" => {
                    for p in section.children().filter(|c| c.has_tag_name("parameter")) {
                        let Some(name) = p.attribute("name") else {
                            continue;
                        };
                        let content = p.children().find(|c| c.has_tag_name("content"));
                        parameters.push(ParamInfo {
                            name: name.to_string(),
                            required: matches!(p.attribute("required"), Some("1") | Some("true")),
                            shortdesc: child_text(p, "shortdesc").unwrap_or_default(),
                            content_type: content
                                .and_then(|c| c.attribute("type"))
                                .unwrap_or("string")
                                .to_string(),
                            default: content
                                .and_then(|c| c.attribute("default"))
                                .map(str::to_string),
                            deprecated: matches!(
                                p.attribute("deprecated"),
                                Some("1") | Some("true")
                            ),
                        });
                    }
                }
                "actions" => {
                    for a in section.children().filter(|c| c.has_tag_name("action")) {
                        if let Some(n) = a.attribute("name") {
                            if !actions.iter().any(|x| x == n) {
                                actions.push(n.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(AgentMetadata {
            name: root.attribute("name").unwrap_or("").to_string(),
            shortdesc: root
                .attribute("shortdesc")
                .map(str::to_string)
                .or_else(|| child_text(root, "shortdesc"))
                .unwrap_or_default(),
            longdesc: child_text(root, "longdesc").unwrap_or_default(),
            parameters,
            actions,
        })
    }
}

/// A `fence_*` program run with key=value lines on stdin.
#[derive(Debug)]
pub struct AgentDevice {
    cfg: DeviceConfig,
    program: PathBuf,
    metadata: OnceCell<AgentMetadata>,
}

impl AgentDevice {
    pub fn new(cfg: DeviceConfig, program: PathBuf) -> AgentDevice {
        AgentDevice {
            cfg,
            program,
            metadata: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The agent's name for `action`: `pcmk_<action>_action` if set (e.g.
    /// `pcmk_reboot_action=off`), else the standard name.
    fn agent_action(&self, action: FenceAction) -> String {
        let key = format!("pcmk_{}_action", action.as_str());
        self.cfg
            .param(&[key.as_str()])
            .unwrap_or(action.as_str())
            .trim()
            .to_string()
    }

    /// The stdin text for `action` on `target`. Contains secrets: never log it.
    pub fn stdin_for(&self, action: &str, target: Option<&str>) -> String {
        let hosts = self.cfg.hosts();
        let host_arg = self
            .cfg
            .param(&["pcmk_host_argument"])
            .unwrap_or("plug")
            .to_string();
        let mut lines = vec![format!("action={action}")];
        let mut ours: Vec<String> = vec!["action".into()];
        if let Some(t) = target {
            lines.push(format!("nodename={t}"));
            ours.push("nodename".into());
            if host_arg != "none" {
                if let Some(plug) = hosts.plug_for(t) {
                    lines.push(format!("{host_arg}={plug}"));
                    ours.push(host_arg.clone());
                }
            }
        }
        for (k, v) in &self.cfg.params {
            if k.starts_with("pcmk_") || ours.contains(k) || k.contains(['\n', '=']) {
                continue;
            }
            // A value cannot span lines in this protocol.
            let v = v.replace('\n', " ");
            lines.push(format!("{k}={v}"));
        }
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    async fn call_agent(
        &self,
        call: &Call<'_>,
        action: &str,
        target: Option<&str>,
    ) -> Result<process::Output, FenceError> {
        let remaining = call.remaining();
        if remaining.is_zero() {
            return Err(call.timeout());
        }
        let cmd = Command::new(&self.program);
        let stdin = self.stdin_for(action, target).into_bytes();
        process::run(cmd, Some(stdin), remaining)
            .await
            .map_err(|e| call.run_error(&self.program.display().to_string(), e))
    }

    fn error(&self, call: &Call<'_>, out: &process::Output) -> FenceError {
        let mut detail = last_lines(&without_python_warnings(&out.stderr), 3);
        if detail.is_empty() {
            detail = last_lines(&out.stdout, 3);
        }
        if detail.is_empty() {
            detail = "no output".into();
        }
        let l = detail.to_ascii_lowercase();
        if [
            "authentication",
            "unauthorized",
            "invalid password",
            "login failed",
            "permission denied",
        ]
        .iter()
        .any(|m| l.contains(m))
        {
            call.auth(&detail)
        } else if [
            "connection refused",
            "unable to connect",
            "no route to host",
            "timed out",
        ]
        .iter()
        .any(|m| l.contains(m))
        {
            call.unreachable(&detail)
        } else {
            call.failed(out.code, &detail)
        }
    }

    async fn status(&self, call: &Call<'_>) -> Result<Option<PowerState>, FenceError> {
        let out = self
            .call_agent(
                call,
                &self.agent_action(FenceAction::Status),
                Some(call.target),
            )
            .await?;
        Ok(match out.code {
            Some(0) => Some(PowerState::On),
            Some(2) => Some(PowerState::Off),
            _ => None,
        })
    }

    pub(crate) async fn run(&self, call: &Call<'_>) -> Result<Outcome, FenceError> {
        let action = self.agent_action(call.action);
        let out = self.call_agent(call, &action, Some(call.target)).await?;
        match call.action {
            FenceAction::Status => match out.code {
                Some(0) | Some(2) => {
                    let s = if out.code == Some(0) {
                        PowerState::On
                    } else {
                        PowerState::Off
                    };
                    let mut o = Outcome::new(call.action, format!("power is {s:?}"));
                    o.power = Some(s);
                    Ok(o)
                }
                _ => Err(self.error(call, &out)),
            },
            _ if out.code != Some(0) => Err(self.error(call, &out)),
            FenceAction::List => {
                let mut o = Outcome::new(call.action, "listed by the agent");
                o.hosts = parse_list(&out.stdout);
                Ok(o)
            }
            FenceAction::Monitor | FenceAction::On => Ok(Outcome::new(
                call.action,
                format!("{} exited 0", self.name()),
            )),
            FenceAction::Reboot => {
                let mut o = Outcome::new(call.action, format!("{} reboot exited 0", self.name()));
                o.confirmed = true;
                Ok(o)
            }
            FenceAction::Off => self.confirm_off(call).await,
        }
    }

    /// After `off` exited 0: read `status` back until it says off (2). An
    /// agent whose status is not usable (other exit codes) is trusted on its
    /// exit code alone (`confirmed = false`).
    async fn confirm_off(&self, call: &Call<'_>) -> Result<Outcome, FenceError> {
        let mut reads = 0;
        loop {
            reads += 1;
            match self.status(call).await {
                Ok(Some(PowerState::Off)) => {
                    let mut o = Outcome::new(
                        call.action,
                        format!(
                            "{} off exited 0, status read back off ({reads} read(s), {:.2} s)",
                            self.name(),
                            call.started.elapsed().as_secs_f64()
                        ),
                    );
                    o.confirmed = true;
                    o.power = Some(PowerState::Off);
                    return Ok(o);
                }
                Ok(None) => {
                    return Ok(Outcome::new(
                        call.action,
                        format!(
                            "{} off exited 0 (status not available to confirm)",
                            self.name()
                        ),
                    ))
                }
                Ok(Some(PowerState::On)) | Err(FenceError::Timeout { .. }) => {}
                Err(e) => return Err(e),
            }
            let remaining = call.remaining();
            if remaining.is_zero() {
                return Err(call.not_confirmed(&format!(
                    "{} off exited 0 but status still says on after {:.1} s",
                    self.name(),
                    call.started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500).min(remaining)).await;
        }
    }

    fn name(&self) -> String {
        self.program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.cfg.agent.clone())
    }

    /// The agent's metadata (run once, then cached).
    pub async fn metadata(&self, timeout: Duration) -> Result<AgentMetadata, FenceError> {
        self.metadata
            .get_or_try_init(|| async {
                let call = Call::new(&self.cfg, "", FenceAction::Monitor, timeout);
                let out = self.call_agent(&call, "metadata", None).await?;
                let meta_err = |detail: String| FenceError::Metadata {
                    device: self.cfg.id.clone(),
                    agent: self.name(),
                    detail,
                };
                if out.code != Some(0) {
                    return Err(meta_err(format!(
                        "exit code {:?}: {}",
                        out.code,
                        self.cfg.redact(&last_lines(&out.stderr, 3))
                    )));
                }
                AgentMetadata::parse(&out.stdout).map_err(meta_err)
            })
            .await
            .cloned()
    }
}

/// Metadata of agent `agent` (a `fence_*` name or a native kind), for
/// `hactl stonith list`/`describe`.
pub async fn agent_metadata(
    agent: &str,
    search_path: &[PathBuf],
    timeout: Duration,
) -> Result<AgentMetadata, FenceError> {
    match agent {
        "external/ipmi" | "ipmi" | "ipmitool" => return Ok(crate::ipmi::builtin_metadata()),
        "ssh" | "external/ssh" => return Ok(crate::ssh::builtin_metadata()),
        _ => {}
    }
    let cfg = DeviceConfig::new(format!("({agent})"), agent);
    crate::device::Device::from_config(&cfg, search_path)?
        .metadata(timeout)
        .await
}

/// stderr without Python warnings ("file:5: DeprecationWarning: ..." and
/// the indented source line after it), which every fence-agents call prints.
pub(crate) fn without_python_warnings(stderr: &str) -> String {
    let mut out = Vec::new();
    let mut skip_indented = false;
    for line in stderr.lines() {
        if skip_indented && line.starts_with([' ', '\t']) {
            skip_indented = false;
            continue;
        }
        skip_indented = false;
        let is_warning = line
            .split(": ")
            .nth(1)
            .is_some_and(|w| w.ends_with("Warning") && !w.contains(' '));
        if is_warning {
            skip_indented = true;
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// Output of `list`: one `plug[,alias]` per line; NOTICE/ERROR lines skipped.
pub(crate) fn parse_list(stdout: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        let tagged = line
            .split_once(':')
            .is_some_and(|(w, _)| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase()));
        if line.is_empty() || tagged {
            continue;
        }
        for part in line.split(',') {
            let p = part.trim();
            if !p.is_empty() && !v.iter().any(|x: &String| x == p) {
                v.push(p.to_string());
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_warnings_dropped() {
        let e = "/usr/sbin/fence_ipmilan:5: DeprecationWarning: 'pipes' is deprecated\n  from pipes import quote\n2026 ERROR: Failed: x\n";
        assert_eq!(without_python_warnings(e), "2026 ERROR: Failed: x");
    }

    #[test]
    fn list_output() {
        assert_eq!(
            parse_list("n1,node-one\nn2\n\nNOTICE: x\n"),
            vec!["n1", "node-one", "n2"]
        );
        assert!(parse_list("NOTICE: List option is not working on this device yet\n").is_empty());
    }

    #[test]
    fn stdin_has_plug_and_no_pcmk() {
        let cfg = DeviceConfig::new("d", "fence_x")
            .with("pcmk_host_map", "n1:7;n2:8")
            .with("ip", "1.2.3.4")
            .with("password", "pw");
        let a = AgentDevice::new(cfg, PathBuf::from("/bin/true"));
        let s = a.stdin_for("off", Some("n2"));
        assert_eq!(
            s,
            "action=off\nnodename=n2\nplug=8\nip=1.2.3.4\npassword=pw\n"
        );
        let s = a.stdin_for("off", Some("n3"));
        assert!(!s.contains("plug="), "{s}");
    }

    #[test]
    fn metadata_parse() {
        let xml = r#"<?xml version="1.0" ?>
<resource-agent name="fence_t" shortdesc="Test agent">
<longdesc>long</longdesc>
<parameters>
  <parameter name="ip" unique="0" required="1"><content type="string"/><shortdesc lang="en">Address</shortdesc></parameter>
  <parameter name="lanplus" unique="0" required="0"><content type="boolean" default="0"/><shortdesc lang="en">Lan+</shortdesc></parameter>
</parameters>
<actions><action name="on"/><action name="off"/><action name="on"/><action name="list"/></actions>
</resource-agent>"#;
        let m = AgentMetadata::parse(xml).unwrap();
        assert_eq!(m.name, "fence_t");
        assert_eq!(m.shortdesc, "Test agent");
        assert!(m.param("ip").unwrap().required);
        assert_eq!(m.param("lanplus").unwrap().default.as_deref(), Some("0"));
        assert_eq!(m.actions, vec!["on", "off", "list"]);
        assert!(m.supports("list"));
        assert!(AgentMetadata::parse("<x/>").is_err());
    }
}
