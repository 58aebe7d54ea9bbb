//! Device configuration (`stonith:` resources), fence actions, secret redaction and host maps.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What every secret value is replaced with in anything we print.
pub const REDACTED: &str = "********";

/// One fencing device as configured in the CIB (`<primitive class="stonith" type=AGENT>`).
///
/// `agent` is the `type` of the primitive: `fence_ipmilan`, `external/ipmi`,
/// `external/ssh`, `ssh`, or any `fence_*` program found in the search path.
/// `params` are its instance attributes, including the `pcmk_*` ones.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub id: String,
    pub agent: String,
    pub params: BTreeMap<String, String>,
}

/// Is a parameter of this name a secret (never printed)?
///
/// `passwd`, `password`, `pass`, `secret`, anything ending in `_password`,
/// `passwd` or `_secret`, and any `pcmk_*` parameter containing `password`.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "passwd"
        || n == "password"
        || n == "pass"
        || n == "secret"
        || n.ends_with("_password")
        || n.ends_with("passwd")
        || n.ends_with("_secret")
        || (n.starts_with("pcmk_") && n.contains("password"))
}

impl DeviceConfig {
    pub fn new(id: impl Into<String>, agent: impl Into<String>) -> Self {
        DeviceConfig {
            id: id.into(),
            agent: agent.into(),
            params: BTreeMap::new(),
        }
    }

    /// Builder helper: add one parameter.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// The first of `names` that is set (and not empty).
    pub fn param(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .filter_map(|n| self.params.get(*n))
            .map(|v| v.as_str())
            .find(|v| !v.trim().is_empty())
    }

    /// The parameters with secret values replaced by [`REDACTED`].
    pub fn redacted_params(&self) -> BTreeMap<String, String> {
        self.params
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_param(k) {
                    REDACTED.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The secret values of this device (non-empty), longest first.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .params
            .iter()
            .filter(|(k, v)| is_secret_param(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v
    }

    /// `text` with every occurrence of a secret value of this device replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secret_values() {
            out = out.replace(s, REDACTED);
        }
        out
    }

    /// The host map/list/check settings of this device.
    pub fn hosts(&self) -> HostSpec {
        HostSpec::from_config(self)
    }
}

impl fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("id", &self.id)
            .field("agent", &self.agent)
            .field("params", &self.redacted_params())
            .finish()
    }
}

impl fmt::Display for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (stonith:{})", self.id, self.agent)?;
        for (k, v) in self.redacted_params() {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A fencing action, as the agents name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FenceAction {
    Off,
    On,
    Reboot,
    Status,
    Monitor,
    List,
}

impl FenceAction {
    /// The agent's name for the action (`off`, `on`, `reboot`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FenceAction::Off => "off",
            FenceAction::On => "on",
            FenceAction::Reboot => "reboot",
            FenceAction::Status => "status",
            FenceAction::Monitor => "monitor",
            FenceAction::List => "list",
        }
    }

    /// Does the action take a node down (so it needs a confirmed result)?
    pub fn is_fencing(self) -> bool {
        matches!(self, FenceAction::Off | FenceAction::Reboot)
    }

    pub fn parse(s: &str) -> Option<FenceAction> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "poweroff" => FenceAction::Off,
            "on" | "poweron" => FenceAction::On,
            "reboot" => FenceAction::Reboot,
            "status" => FenceAction::Status,
            "monitor" => FenceAction::Monitor,
            "list" => FenceAction::List,
            _ => return None,
        })
    }
}

impl fmt::Display for FenceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `pcmk_host_check`: how to decide which nodes a device can fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostCheck {
    /// Only the nodes in `pcmk_host_list` / `pcmk_host_map` (or the agent's own
    /// static host parameter, e.g. `hostname` of `external/ipmi`).
    StaticList,
    /// Ask the device with the `list` action.
    DynamicList,
    /// The device can fence any node.
    None,
    /// Not configured and the answer depends on the agent's metadata (does it
    /// support `list`?): resolved at fencing time.
    Auto,
}

/// Host map, host list and host check of a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSpec {
    /// `pcmk_host_list` plus the agent's own list parameter, in order.
    pub list: Vec<String>,
    /// `pcmk_host_map`: node name → port/plug.
    pub map: BTreeMap<String, String>,
    /// `pcmk_host_check` as configured (`None` if not set or not recognised).
    pub check: Option<HostCheck>,
}

impl HostSpec {
    pub fn from_config(cfg: &DeviceConfig) -> HostSpec {
        let mut list = cfg
            .param(&["pcmk_host_list"])
            .map(split_host_list)
            .unwrap_or_default();
        // The agents' own "which node(s) I fence" parameters.
        let own: &[&str] = match cfg.agent.as_str() {
            "external/ipmi" => &["hostname"],
            "external/ssh" | "ssh" => &["hostlist"],
            _ => &[],
        };
        for name in own {
            if let Some(v) = cfg.params.get(*name) {
                for h in split_host_list(v) {
                    if !list.contains(&h) {
                        list.push(h);
                    }
                }
            }
        }
        let map = cfg
            .param(&["pcmk_host_map"])
            .map(parse_host_map)
            .unwrap_or_default();
        let check = cfg.param(&["pcmk_host_check"]).and_then(|v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "static-list" => Some(HostCheck::StaticList),
                "dynamic-list" => Some(HostCheck::DynamicList),
                "none" => Some(HostCheck::None),
                _ => None,
            }
        });
        HostSpec { list, map, check }
    }

    /// The check in force. Default: `static-list` when a list or map is
    /// given, otherwise `Auto` (the caller resolves it: dynamic-list if the
    /// agent supports `list`, else none).
    pub fn effective_check(&self) -> HostCheck {
        match self.check {
            Some(c) => c,
            None if !self.list.is_empty() || !self.map.is_empty() => HostCheck::StaticList,
            None => HostCheck::Auto,
        }
    }

    /// Is `target` in the static list or map?
    pub fn statically_lists(&self, target: &str) -> bool {
        self.list.iter().any(|h| h == target) || self.map.contains_key(target)
    }

    /// The port/plug for `target` from `pcmk_host_map`, if any.
    pub fn plug_for(&self, target: &str) -> Option<&str> {
        self.map.get(target).map(|s| s.as_str())
    }

    /// Every node named in list or map (for messages).
    pub fn all_named(&self) -> Vec<String> {
        let mut v = self.list.clone();
        for k in self.map.keys() {
            if !v.contains(k) {
                v.push(k.clone());
            }
        }
        v
    }
}

/// Split "a b c" or "a,b,c" or "a; b" into names.
pub fn split_host_list(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|p| !p.is_empty())
        .map(|p| p.to_string())
        .collect()
}

/// Parse `pcmk_host_map`: "node1:port1;node2:port2", entries separated by
/// `;`, `,` or whitespace; `node=port` is accepted too.
pub fn parse_host_map(s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for entry in s.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        if let Some((k, v)) = entry.split_once([':', '=']) {
            if !k.is_empty() {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for s in [
            "passwd",
            "password",
            "pass",
            "secret",
            "snmp_password",
            "ipmi_passwd",
            "pcmk_foo_password_x",
            "PASSWORD",
        ] {
            assert!(is_secret_param(s), "{s}");
        }
        for s in ["ip", "login", "password_script", "port", "username"] {
            assert!(!is_secret_param(s), "{s}");
        }
    }

    #[test]
    fn host_map_forms() {
        let m = parse_host_map("node1:1;node2:2 node3:3,node4=4 ; ");
        assert_eq!(m.len(), 4);
        assert_eq!(m["node4"], "4");
        assert_eq!(split_host_list("a, b c;d"), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn default_host_check() {
        let c = DeviceConfig::new("d", "fence_x");
        assert_eq!(c.hosts().effective_check(), HostCheck::Auto);
        let c = c.with("pcmk_host_list", "n1");
        assert_eq!(c.hosts().effective_check(), HostCheck::StaticList);
        let c = c.with("pcmk_host_check", "none");
        assert_eq!(c.hosts().effective_check(), HostCheck::None);
        let c = DeviceConfig::new("d", "external/ipmi").with("hostname", "n7");
        assert!(c.hosts().statically_lists("n7"));
    }
}
