//! STONITH for the cluster manager: fence devices (native IPMI via ipmitool, ssh, any RHCS `fence_*` agent), topology levels, verification and delays.
//!
//! The daemon builds [`DeviceConfig`]s and [`Level`]s from the CIB and calls
//! [`fence`]; the [`FenceReport`] says whether the target is confirmed
//! fenced and why not. See README.md for what "confirmed" means per kind.

mod agent;
mod config;
mod delay;
mod device;
mod error;
mod ipmi;
mod mapping;
mod process;
mod ssh;
mod topology;

#[cfg(feature = "lab")]
pub mod lab;

pub use agent::{agent_metadata, AgentDevice, AgentMetadata, ParamInfo};
pub use config::{
    is_secret, is_secret_param, parse_host_map, redact_values, split_host_list, DeviceConfig,
    FenceAction, HostCheck, HostSpec, MIN_REDACTED_LEN, REDACTED,
};
pub use delay::{
    delay_base, fence_delay, parse_duration, priority_fencing_delay, resource_priority,
    NodePriority,
};
pub use device::{
    action_timeout, default_search_path, find_agent, list_agents, Device, Outcome, PowerState,
    DEFAULT_SEARCH_PATH,
};
pub use error::FenceError;
pub use ipmi::IpmiDevice;
pub use mapping::{
    known_without_list, mapping_hint, reach, validate_device, validate_devices, MappingError, Reach,
};
pub use ssh::SshDevice;
pub use topology::{
    fence, Attempt, FenceOptions, FenceReport, Level, Topology, DEFAULT_STONITH_TIMEOUT,
};

#[cfg(test)]
mod send_checks {
    use super::*;

    fn is_send_sync<T: Send + Sync>() {}
    fn is_send<T: Send>(_: &T) {}

    /// The daemon spawns fencing on its runtime: devices and futures must be Send.
    #[test]
    fn devices_and_futures_are_send() {
        is_send_sync::<Device>();
        is_send_sync::<FenceReport>();
        is_send_sync::<FenceError>();
        let devices: Vec<DeviceConfig> = Vec::new();
        let opts = FenceOptions::default();
        let f = fence("n", FenceAction::Off, &devices, &[], &opts);
        is_send(&f);
    }
}
