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

/// Does every fence device of `config` say which node(s) it fences?
/// (`ha_fencing::validate_devices`: a power device needs `pcmk_host_list`,
/// `pcmk_host_map`, its agent's own host parameter, or
/// `pcmk_host_check=dynamic-list` on an agent that can list.) A
/// configuration that fails is refused when it is loaded; the error names
/// the first such device and what to add.
pub fn check_devices(config: &Config) -> Result<(), ha_fencing::MappingError> {
    ha_fencing::validate_devices(&devices(config))
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
    let devices = devices(config);
    // A configuration accepted before the host-mapping rule may still hold
    // an unmapped power device: the fencing library never uses it for any
    // target (the report says why); say which devices break the rule.
    for d in &devices {
        if let Err(e) = ha_fencing::validate_device(d) {
            tracing::error!(device = %d.id, target, "configuration in force (loaded before the host-mapping rule): {e}");
        }
    }
    let report = ha_fencing::fence(target, action, &devices, &levels(config), &opts).await;
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

    /// Two IPMI devices without a host mapping: refused at load naming the
    /// first, and an older configuration holding them (already in the Raft
    /// log) fences nobody with them: the fence fails, recorded as failed.
    #[tokio::test(flavor = "multi_thread")]
    async fn unmapped_power_devices_are_refused_and_never_used() {
        use ha_fencing::lab::Bmc;
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        let mut bmcs = Vec::new();
        for i in 1..=2 {
            let d = dir.path().join(format!("bmc{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let node = std::process::Command::new("sleep")
                .arg("1000")
                .spawn()
                .unwrap();
            bmcs.push(Bmc::start(&d, Some(node.id())).unwrap());
            nodes.push(node);
        }
        let crm = |extra: [&str; 2]| {
            let mut s = String::from("node node1\nnode node2\n");
            for (i, b) in bmcs.iter().enumerate() {
                s += &format!(
                    "primitive fence-node{} stonith:fence_ipmilan params ip=127.0.0.1 ipport={} \
                     username=admin password=secret lanplus=1 cipher=3 power_wait=0 {}\n",
                    i + 1,
                    b.port(),
                    extra[i]
                );
            }
            s + "property stonith-enabled=true stonith-action=off stonith-timeout=10s\n"
        };
        let unmapped = ha_scheduler::crm::read_crm(&crm(["", ""])).unwrap();
        let e = check_devices(&unmapped).unwrap_err();
        assert_eq!(e.device(), "fence-node1");
        let text = e.to_string();
        assert!(
            text.contains("fence-node1") && text.contains("pcmk_host_list=NODE"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");

        let (action, report) = fence(&unmapped, "node2", None, true).await;
        let summary = report.summary();
        assert!(!report.succeeded, "{summary}");
        assert!(report.attempts.is_empty(), "a device was run: {summary}");
        assert!(
            summary.contains("no device can fence node2")
                && summary.contains("fence-node1")
                && summary.contains("pcmk_host_list"),
            "{summary}"
        );
        let ev = event("n3", action, &report);
        assert!(!ev.succeeded && ev.device.is_none(), "{ev:?}");
        assert!(
            ev.reason
                .as_deref()
                .is_some_and(|r| r.contains("fence-node1")),
            "{ev:?}"
        );
        assert!(bmcs
            .iter()
            .all(|b| b.power_is_on() && b.killed().is_empty()));

        // Mapped: accepted, and node2 is fenced by its own BMC only.
        let mapped =
            ha_scheduler::crm::read_crm(&crm(["pcmk_host_list=node1", "pcmk_host_map=node2:2"]))
                .unwrap();
        check_devices(&mapped).unwrap();
        let (_, report) = fence(&mapped, "node2", None, true).await;
        assert!(report.succeeded, "{}", report.summary());
        assert_eq!(report.device.as_deref(), Some("fence-node2"));
        assert!(bmcs[0].power_is_on() && !bmcs[1].power_is_on());
        for mut n in nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }

    /// Every example configuration with a fence device passes the rule.
    #[test]
    fn the_examples_fence_devices_say_which_node_they_fence() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
        let mut with_devices = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let config = match p.extension().and_then(|x| x.to_str()) {
                Some("crm") => ha_scheduler::crm::read_crm(&text).unwrap(),
                Some("xml") => ha_scheduler::cib::read_cib(&text).unwrap().config,
                _ => continue,
            };
            if !devices(&config).is_empty() {
                with_devices += 1;
            }
            check_devices(&config).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
        assert!(
            with_devices >= 5,
            "{with_devices} examples with fence devices"
        );
    }
}
