//! Which nodes a fence device may fence: the rule that a power device names
//! its node(s), checked when a configuration is loaded ([`validate_devices`])
//! and again before every use (see `Device::can_fence_dynamic`).
//!
//! A power device — a BMC (IPMI, iLO, iDRAC, Redfish...), an ssh device, any
//! `fence_*` agent whose `port`/`plug` picks the machine — controls specific
//! machines. If nothing says which, Pacemaker's default (`pcmk_host_check`
//! falls back to `status`) asks the device for the target's status, and a
//! BMC answers "on" for any target name: fencing node2 then powers off the
//! machine the BMC belongs to. So here such a device must carry
//! `pcmk_host_list`, `pcmk_host_map` or the agent's own host parameter
//! (`hostname` of `external/ipmi`, `hostlist` of the ssh kinds), or
//! `pcmk_host_check=dynamic-list` on an agent that can list its targets.
//! Devices that fence any node through a shared medium (SCSI reservations,
//! SBD, kdump, watchdog) need no mapping.

use crate::config::{DeviceConfig, HostCheck};

/// How far a device's reach goes, by its agent name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Controls specific machines (a BMC, ssh to a host): must name them.
    Power,
    /// Fences any target by its name through a shared medium (SCSI or
    /// multipath reservations, SBD, kdump, watchdog): no mapping needed.
    AnyTarget,
    /// A `fence_*` (or other) agent not known by name. When the configuration
    /// is loaded it counts as [`Reach::Power`]; at fencing time its metadata
    /// decides (a `port` or `plug` parameter: power device).
    ByMetadata,
}

/// Agents that fence any node through a shared medium.
const ANY_TARGET: &[&str] = &[
    "fence_scsi",
    "fence_mpath",
    "fence_sbd",
    "external/sbd",
    "fence_kdump",
    "fence_watchdog",
    "fence_heuristics_ping",
];

/// Power agents without a `list` action (one BMC or host each), so
/// `pcmk_host_check=dynamic-list` cannot work for them.
const POWER_WITHOUT_LIST: &[&str] = &[
    "external/ipmi",
    "ipmi",
    "ipmitool",
    "ssh",
    "external/ssh",
    "fence_ssh",
    "fence_ipmilan",
    "fence_ipmilanplus",
    "fence_idrac",
    "fence_ilo",
    "fence_ilo2",
    "fence_ilo3",
    "fence_ilo4",
    "fence_ilo5",
    "fence_ilo_ssh",
    "fence_ilo3_ssh",
    "fence_ilo4_ssh",
    "fence_ilo5_ssh",
    "fence_imm",
    "fence_drac5",
    "fence_redfish",
    "fence_amt",
    "fence_amt_ws",
];

/// The agent name without a `stonith:` prefix.
fn agent_name(agent: &str) -> &str {
    agent.strip_prefix("stonith:").unwrap_or(agent)
}

/// The reach of `agent` (see [`Reach`]).
pub fn reach(agent: &str) -> Reach {
    let a = agent_name(agent);
    if ANY_TARGET.contains(&a) {
        Reach::AnyTarget
    } else if POWER_WITHOUT_LIST.contains(&a) || a.starts_with("external/") {
        Reach::Power
    } else {
        Reach::ByMetadata
    }
}

/// Is `agent` a power agent known to have no `list` action?
pub fn known_without_list(agent: &str) -> bool {
    POWER_WITHOUT_LIST.contains(&agent_name(agent))
}

/// What to add so that `agent` says which node it fences.
pub fn mapping_hint(agent: &str) -> String {
    let own = match agent_name(agent) {
        "external/ipmi" => "hostname=NODE or ",
        "ssh" | "external/ssh" => "hostlist=NODE or ",
        _ => "",
    };
    let dynamic = if known_without_list(agent) {
        ""
    } else {
        "; or pcmk_host_check=dynamic-list if the agent can list its targets"
    };
    format!("add {own}pcmk_host_list=NODE (or pcmk_host_map=NODE:PORT){dynamic}")
}

/// Why a device configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("fence device {device} (stonith:{agent}) does not say which node it fences: {hint}. Without it a power device would be used for any node (its BMC answers \"on\" for every target) and could power off the wrong machine")]
    NoHostMapping {
        device: String,
        agent: String,
        hint: String,
    },

    #[error("fence device {device} (stonith:{agent}) has pcmk_host_check=static-list but no pcmk_host_list or pcmk_host_map: {hint}")]
    EmptyStaticList {
        device: String,
        agent: String,
        hint: String,
    },

    #[error("fence device {device} (stonith:{agent}) has pcmk_host_check=dynamic-list but {agent} has no list action: {hint}")]
    NoListAction {
        device: String,
        agent: String,
        hint: String,
    },

    #[error("fence device {device} (stonith:{agent}) controls specific machines, but pcmk_host_check=none would use it for any node: remove pcmk_host_check=none and {hint}")]
    CheckNoneOnPowerDevice {
        device: String,
        agent: String,
        hint: String,
    },

    #[error("fence device {device} (stonith:{agent}): pcmk_host_check={value:?} is not supported (use static-list, dynamic-list or none; \"status\" is refused because a BMC answers its own status for any target)")]
    UnknownHostCheck {
        device: String,
        agent: String,
        value: String,
    },
}

impl MappingError {
    /// The device the error is about.
    pub fn device(&self) -> &str {
        match self {
            MappingError::NoHostMapping { device, .. }
            | MappingError::EmptyStaticList { device, .. }
            | MappingError::NoListAction { device, .. }
            | MappingError::CheckNoneOnPowerDevice { device, .. }
            | MappingError::UnknownHostCheck { device, .. } => device,
        }
    }
}

/// Does `cfg` say which nodes it may fence? No I/O: an agent not known by
/// name is held to the power-device rule.
pub fn validate_device(cfg: &DeviceConfig) -> Result<(), MappingError> {
    let device = cfg.id.clone();
    let agent = cfg.agent.clone();
    let hint = mapping_hint(&cfg.agent);
    let hosts = cfg.hosts();
    if let Some(v) = cfg.param(&["pcmk_host_check"]) {
        if hosts.check.is_none() {
            return Err(MappingError::UnknownHostCheck {
                device,
                agent,
                value: v.trim().to_string(),
            });
        }
    }
    let listed = !hosts.list.is_empty() || !hosts.map.is_empty();
    let power = reach(&cfg.agent) != Reach::AnyTarget;
    match hosts.effective_check() {
        HostCheck::StaticList if listed => Ok(()),
        HostCheck::StaticList => Err(MappingError::EmptyStaticList {
            device,
            agent,
            hint,
        }),
        HostCheck::DynamicList if known_without_list(&cfg.agent) => {
            Err(MappingError::NoListAction {
                device,
                agent,
                hint,
            })
        }
        HostCheck::DynamicList => Ok(()),
        HostCheck::None if power => Err(MappingError::CheckNoneOnPowerDevice {
            device,
            agent,
            hint,
        }),
        HostCheck::Auto if power => Err(MappingError::NoHostMapping {
            device,
            agent,
            hint,
        }),
        HostCheck::None | HostCheck::Auto => Ok(()),
    }
}

/// Every device of a configuration says which nodes it may fence; the
/// first that does not is the error (it names the device and what to add).
pub fn validate_devices(devices: &[DeviceConfig]) -> Result<(), MappingError> {
    devices.iter().try_for_each(validate_device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipmi(id: &str, agent: &str, port: u16) -> DeviceConfig {
        DeviceConfig::new(id, agent)
            .with("ip", "127.0.0.1")
            .with("ipport", port.to_string())
            .with("username", "admin")
            .with("password", "s3cret-pw")
    }

    #[test]
    fn two_unmapped_ipmi_devices_are_rejected_naming_the_first() {
        for agent in [
            "fence_ipmilan",
            "external/ipmi",
            "stonith:fence_ipmilan",
            "ipmi",
        ] {
            let devices = [
                ipmi("fence-node1", agent, 6231),
                ipmi("fence-node2", agent, 6232),
            ];
            let e = validate_devices(&devices).unwrap_err();
            assert_eq!(e.device(), "fence-node1", "{agent}");
            assert!(matches!(e, MappingError::NoHostMapping { .. }), "{e:?}");
            let text = e.to_string();
            assert!(
                text.contains("fence device fence-node1")
                    && text.contains("pcmk_host_list=NODE")
                    && text.contains("pcmk_host_map=NODE:PORT"),
                "{text}"
            );
            assert!(
                !text.contains("fence-node2") && !text.contains("s3cret-pw"),
                "{text}"
            );
        }
        let e = validate_device(&ipmi("b", "external/ipmi", 1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("add hostname=NODE or pcmk_host_list=NODE"),
            "{e}"
        );
        let e = validate_device(&DeviceConfig::new("s", "external/ssh")).unwrap_err();
        assert!(e.to_string().contains("hostlist=NODE"), "{e}");
        // A BMC agent has no list: no dynamic-list advice for it.
        let e = validate_device(&ipmi("b", "fence_ipmilan", 1)).unwrap_err();
        assert!(!e.to_string().contains("dynamic-list"), "{e}");
    }

    #[test]
    fn a_host_list_map_or_the_agents_own_parameter_is_accepted() {
        let devices = [
            ipmi("fence-node1", "fence_ipmilan", 1).with("pcmk_host_list", "node1"),
            ipmi("fence-node2", "fence_ipmilan", 2).with("pcmk_host_map", "node2:2"),
            ipmi("fence-node3", "external/ipmi", 3).with("hostname", "node3"),
            DeviceConfig::new("ssh-all", "external/ssh").with("hostlist", "node1,node2"),
            ipmi("static", "fence_ipmilan", 4)
                .with("pcmk_host_list", "node4")
                .with("pcmk_host_check", "static-list"),
        ];
        assert_eq!(validate_devices(&devices), Ok(()));
        assert_eq!(validate_devices(&[]), Ok(()));
    }

    #[test]
    fn dynamic_list_is_accepted_only_on_an_agent_that_can_list() {
        let pdu = DeviceConfig::new("pdu", "fence_apc")
            .with("ip", "10.0.0.9")
            .with("pcmk_host_check", "dynamic-list");
        assert_eq!(validate_device(&pdu), Ok(()));
        let virsh =
            DeviceConfig::new("virsh", "fence_virsh").with("pcmk_host_check", "dynamic-list");
        assert_eq!(validate_device(&virsh), Ok(()));
        // The same PDU without it: rejected, with the dynamic-list advice.
        let e = validate_device(&DeviceConfig::new("pdu", "fence_apc")).unwrap_err();
        assert!(
            e.to_string().contains("pcmk_host_check=dynamic-list"),
            "{e}"
        );
        // A BMC cannot list what it controls.
        let e =
            validate_device(&ipmi("b", "fence_ipmilan", 1).with("pcmk_host_check", "dynamic-list"))
                .unwrap_err();
        assert!(matches!(e, MappingError::NoListAction { .. }), "{e:?}");
        assert!(e.to_string().contains("has no list action"), "{e}");
    }

    #[test]
    fn none_status_and_an_empty_static_list_are_refused_on_power_devices() {
        let e = validate_device(&ipmi("b", "fence_ipmilan", 1).with("pcmk_host_check", "none"))
            .unwrap_err();
        assert!(
            matches!(e, MappingError::CheckNoneOnPowerDevice { .. }),
            "{e:?}"
        );
        // none overrides a list, so the list does not save it.
        let e = validate_device(
            &ipmi("b", "fence_ipmilan", 1)
                .with("pcmk_host_list", "node1")
                .with("pcmk_host_check", "none"),
        )
        .unwrap_err();
        assert!(
            matches!(e, MappingError::CheckNoneOnPowerDevice { .. }),
            "{e:?}"
        );
        let e = validate_device(&ipmi("b", "fence_ipmilan", 1).with("pcmk_host_check", "status"))
            .unwrap_err();
        assert!(matches!(e, MappingError::UnknownHostCheck { .. }), "{e:?}");
        assert!(e.to_string().contains("\"status\""), "{e}");
        let e = validate_device(
            &DeviceConfig::new("x", "fence_scsi").with("pcmk_host_check", "static-list"),
        )
        .unwrap_err();
        assert!(matches!(e, MappingError::EmptyStaticList { .. }), "{e:?}");
    }

    #[test]
    fn shared_medium_devices_need_no_mapping() {
        for agent in [
            "fence_scsi",
            "fence_sbd",
            "fence_mpath",
            "fence_kdump",
            "external/sbd",
        ] {
            assert_eq!(
                validate_device(&DeviceConfig::new("d", agent)),
                Ok(()),
                "{agent}"
            );
            assert_eq!(
                validate_device(&DeviceConfig::new("d", agent).with("pcmk_host_check", "none")),
                Ok(()),
                "{agent}"
            );
        }
        assert_eq!(reach("fence_ipmilan"), Reach::Power);
        assert_eq!(reach("external/libvirt"), Reach::Power);
        assert_eq!(reach("fence_virsh"), Reach::ByMetadata);
    }
}
