//! Fencing as the DC runs it (never on the victim): the configuration's
//! `stonith:` resources and `fencing-topology` levels become
//! [`ha_fencing`] devices and levels, the fence runs, and its outcome
//! (success or the redacted reason of the failure) is recorded in the
//! fencing history through Raft. A successful `off`/`reboot` marks the
//! target fenced, which is what lets its resources be recovered.

use std::time::Duration;

use ha_fencing::{DeviceConfig, FenceAction, FenceOptions, FenceReport, Level};
use ha_raft_store::Command;
use ha_scheduler::model::{Config, FencingEvent, Resource};

use crate::server::Node;

/// The fence devices of the configuration (`stonith:` primitives, at any level).
pub fn devices(config: &Config) -> Vec<DeviceConfig> {
    let mut out = Vec::new();
    fn walk(r: &Resource, out: &mut Vec<DeviceConfig>) {
        match r {
            Resource::Primitive(p) if p.class == "stonith" => out.push(DeviceConfig {
                id: p.id.clone(),
                agent: p.agent.clone(),
                params: p.params.clone(),
            }),
            Resource::Primitive(_) => {}
            Resource::Group(g) => {
                for m in &g.members {
                    walk(&Resource::Primitive(m.clone()), out);
                }
            }
            Resource::Clone(c) => walk(&c.child, out),
        }
    }
    for r in &config.resources {
        walk(r, &mut out);
    }
    out
}

/// The topology levels naming a node (levels by attribute are not used yet).
pub fn levels(config: &Config) -> Vec<Level> {
    config
        .fencing_levels
        .iter()
        .filter(|l| !l.target.starts_with("attr:"))
        .map(|l| Level {
            index: l.index,
            target: l.target.clone(),
            devices: l.devices.clone(),
        })
        .collect()
}

/// `stonith-timeout` (default 60 s).
pub fn timeout(config: &Config) -> Duration {
    config
        .properties
        .get("stonith-timeout")
        .and_then(|v| ha_scheduler::cib::parse_interval_ms(v))
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(ha_fencing::DEFAULT_STONITH_TIMEOUT)
}

/// `stonith-action`: `reboot` (Pacemaker's default) or `off`.
pub fn action(config: &Config) -> FenceAction {
    match config.properties.get("stonith-action").map(String::as_str) {
        Some("off") | Some("poweroff") => FenceAction::Off,
        _ => FenceAction::Reboot,
    }
}

/// `stonith-enabled` (default true).
pub fn stonith_enabled(config: &Config) -> bool {
    ha_controller::dc::stonith_enabled(config)
}

/// Fences `target` with the configuration's devices, levels and
/// `stonith-timeout`; `action` defaults to `stonith-action`. `manual` (or
/// a caller that already waited its own delay): no device delays.
pub async fn fence(
    config: &Config,
    target: &str,
    action: Option<FenceAction>,
    manual: bool,
) -> (FenceAction, FenceReport) {
    let action = action.unwrap_or_else(|| self::action(config));
    let opts = FenceOptions {
        timeout: timeout(config),
        delay_override: manual.then_some(Duration::ZERO),
        ..Default::default()
    };
    let report = ha_fencing::fence(target, action, &devices(config), &levels(config), &opts).await;
    (action, report)
}

/// The fencing-history record of `report`, done by `origin`.
pub fn event(origin: &str, action: FenceAction, report: &FenceReport) -> FencingEvent {
    let now = crate::dc::now_ms();
    FencingEvent {
        target: report.target.clone(),
        action: action.as_str().to_string(),
        device: report.device.clone(),
        succeeded: report.succeeded,
        time: now / 1000,
        origin: Some(origin.to_string()),
        reason: (!report.succeeded).then(|| report.summary()),
        completed_ms: Some(now),
    }
}

/// Fences `target` with the current configuration and records the outcome
/// as the DC of `term` (not recorded if this node no longer leads in it).
/// `manual`: asked by an operator (no device delays).
pub async fn fence_and_record(
    node: &Node,
    term: u64,
    target: &str,
    action: Option<FenceAction>,
    manual: bool,
) -> Result<FenceReport, String> {
    let config = node.sm.read(|s| s.config.clone());
    tracing::warn!(target, "fencing");
    let (action, report) = fence(&config, target, action, manual).await;
    let summary = report.summary();
    if report.succeeded {
        tracing::warn!(target, "fenced: {summary}");
    } else {
        tracing::error!(target, "fencing failed: {summary}");
    }
    let event = event(&node.name, action, &report);
    node.propose_as_dc(term, Command::RecordFencing { event })
        .await?
        .into_result()
        .map_err(|e| format!("fencing of {target} not recorded: {e}"))?;
    Ok(report)
}

/// What `Admin.Stonith` carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StonithOp {
    /// `hactl fence NODE`: fence it now (no device delays) and record it.
    Fence {
        target: String,
        /// `off` or `reboot` (default: `stonith-action`).
        action: Option<String>,
    },
    /// `hactl stonith test DEVICE`: ask the device for the target's power
    /// status (or, without a target, whether the device answers).
    Test {
        device: String,
        target: Option<String>,
    },
}

/// Runs a manual stonith command here (on the DC); the JSON report.
pub async fn run_op(node: &Node, op: &StonithOp) -> Result<serde_json::Value, String> {
    match op {
        StonithOp::Fence { target, action } => {
            let known = node
                .sm
                .read(|s| s.config.nodes.iter().any(|n| &n.name == target));
            if !known {
                return Err(format!("no node '{target}' in the configuration"));
            }
            if target == &node.name {
                return Err(format!(
                    "{target} is the DC: the DC does not fence itself; ask another node to be the DC first"
                ));
            }
            let action = match action.as_deref() {
                None => None,
                Some("off") => Some(FenceAction::Off),
                Some("reboot") => Some(FenceAction::Reboot),
                Some(other) => {
                    return Err(format!("unknown fence action '{other}': use off or reboot"))
                }
            };
            let term = node.leader_term().ok_or_else(|| {
                format!("{} is not the DC any more: ask the DC to fence", node.name)
            })?;
            let r = fence_and_record(node, term, target, action, true).await?;
            Ok(serde_json::json!({
                "target": r.target, "succeeded": r.succeeded, "device": r.device,
                "summary": r.summary(),
            }))
        }
        StonithOp::Test { device, target } => {
            let config = node.sm.read(|s| s.config.clone());
            let cfg = devices(&config)
                .into_iter()
                .find(|d| &d.id == device)
                .ok_or_else(|| format!("no fence device '{device}' in the configuration"))?;
            let dev = ha_fencing::Device::from_config(&cfg, &ha_fencing::default_search_path())
                .map_err(|e| e.to_string())?;
            let (action, who) = match target {
                Some(t) => (FenceAction::Status, t.clone()),
                None => (FenceAction::Monitor, String::new()),
            };
            let start = std::time::Instant::now();
            match dev
                .run(action, &who, timeout(&config).min(Duration::from_secs(20)))
                .await
            {
                Ok(o) => Ok(serde_json::json!({
                    "device": device, "ok": true,
                    "power": o.power.map(|p| format!("{p:?}").to_lowercase()),
                    "detail": o.detail, "seconds": start.elapsed().as_secs_f64(),
                })),
                Err(e) => Ok(serde_json::json!({
                    "device": device, "ok": false, "error": e.to_string(),
                    "seconds": start.elapsed().as_secs_f64(),
                })),
            }
        }
    }
}

/// Why the resources of unclean nodes are not being recovered, from the
/// fencing history (for `hactl status`).
pub fn unclean_notes(status: &ha_scheduler::model::Status, config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    let stonith = stonith_enabled(config);
    for (name, ns) in &status.nodes {
        if ns.membership != ha_scheduler::model::Membership::Unclean {
            continue;
        }
        let last = status
            .fencing_history
            .iter()
            .rev()
            .find(|e| &e.target == name);
        let why = match last {
            Some(e) if !e.succeeded => format!(
                "fencing it failed: {}",
                e.reason.as_deref().unwrap_or("no reason recorded")
            ),
            _ if !stonith => "fencing is disabled (stonith-enabled=false)".to_string(),
            _ if devices(config).is_empty() => "no fence device is configured".to_string(),
            _ => "it is being fenced".to_string(),
        };
        notes.push(format!(
            "node {name} is UNCLEAN and nothing it ran is recovered until it is fenced: {why}"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_levels_come_from_the_configuration() {
        let c = ha_scheduler::crm::read_crm(
            "node n1\nnode n2\n\
             primitive ipmi-n1 stonith:external/ipmi params hostname=n1 ipaddr=127.0.0.1 userid=admin passwd=secret\n\
             primitive ssh-n1 stonith:external/ssh params hostlist=n1\n\
             primitive d ocf:heartbeat:Dummy\n\
             fencing_topology n1: ipmi-n1 ssh-n1\n\
             property stonith-action=off stonith-timeout=30s\n",
        )
        .unwrap();
        let d = devices(&c);
        assert_eq!(
            d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["ipmi-n1", "ssh-n1"]
        );
        assert!(!format!("{:?}", d[0]).contains("secret"));
        let l = levels(&c);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(
            (l[0].index, l[0].devices.clone()),
            (1, vec!["ipmi-n1".to_string()])
        );
        assert_eq!(timeout(&c), Duration::from_secs(30));
        assert_eq!(action(&c), FenceAction::Off);
    }
}
