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

/// Is a parameter of this name a secret (never printed)? The one rule of
/// the project, by name; [`is_secret`] adds what an agent's metadata says.
///
/// The name is split into words at `_`, `-`, `.` and lower-to-upper case
/// changes (`snmp_priv_passwd`, `secretKey`, `auth-token`), lowercased. It is
/// a secret when a word
/// - is `pass`, `pw`, `pwd`, `passphrase`, `secret(s)`, `token(s)`,
///   `community` (SNMP), `credential(s)`, `cookie` (`erlang_cookie`), `kg`
///   (the IPMI Kg key of `hexadecimal_kg`), `psk`;
/// - ends in `password`, `passwd`, `secret` or `token` (`monpassword`,
///   `db_passwd`, `clientsecret`, `authtoken`);
/// - is the LAST word and is `key` or ends in `key` (`key`, `secret_key`,
///   `access_key`, `apikey`, `tlskey`) — except in the cluster's own
///   `pcmk_*` parameters (host maps, actions, timeouts, delays: a
///   `pcmk_host_key` would be a host-map key, not a secret). `key` elsewhere
///   (`key_value`, `key_file`, `keyfile`) is not enough;
///
/// unless the last word says the value only points at the secret: `file`,
/// `path`, `script`, `dir`, `url`, `uri`, `cmd`, `command` (`password_script`,
/// `token_file`, `credentials_file`), or describes how it is used: `type`,
/// `prot`, `protocol`, `level`, `method`, `length`. `auth` alone is not a
/// secret word: fence_ipmilan's `auth` is the authentication type and
/// `auth_url` a URL. `user`, `login`, `username` are not secrets.
///
/// Known over-matches (hidden although not secret; the round trip through
/// [`REDACTED`] keeps them): fence_mpath's `key` (a SCSI reservation key),
/// galera's boolean `check_passwd_use_empty`, fence_docker's `tlskey` (a path).
pub fn is_secret_param(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "pass",
        "pw",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "community",
        "credential",
        "credentials",
        "cookie",
        "kg",
        "psk",
    ];
    const ENDINGS: &[&str] = &["password", "passwd", "secret", "token"];
    const POINTERS: &[&str] = &[
        "file", "path", "script", "dir", "url", "uri", "cmd", "command", "type", "prot",
        "protocol", "level", "method", "length",
    ];
    let words = name_words(name);
    let Some(last) = words.last() else {
        return false;
    };
    if POINTERS.contains(&last.as_str()) {
        return false;
    }
    let own = words.first().is_some_and(|w| w == "pcmk");
    let keyish = !own && last.ends_with("key");
    keyish
        || words
            .iter()
            .any(|w| WORDS.contains(&w.as_str()) || ENDINGS.iter().any(|e| w.ends_with(e)))
}

/// Is parameter `name` a secret, given the names the agent's metadata marks
/// private (`<parameter name=.. private="1">`, Pacemaker's convention, the
/// parameters `cibsecret` is meant for)? The rule of [`is_secret_param`] or
/// the metadata's word.
pub fn is_secret(name: &str, private: &std::collections::BTreeSet<String>) -> bool {
    private.contains(name) || is_secret_param(name)
}

/// The lowercased words of a parameter name (see [`is_secret_param`]).
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The shortest secret value searched for in free text (agent output, error
/// messages, logs): shorter values would match everywhere. They are still
/// hidden as parameter values.
pub const MIN_REDACTED_LEN: usize = 4;

/// `text` with every occurrence of each of `secrets` (longest first, those
/// of at least [`MIN_REDACTED_LEN`] characters) replaced by [`REDACTED`].
pub fn redact_values<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = secrets
        .into_iter()
        .filter(|s| s.len() >= MIN_REDACTED_LEN && *s != REDACTED)
        .collect();
    v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    v.dedup();
    let mut out = text.to_string();
    for s in v {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    out
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
            // measured leaking in issue 13
            "secret_key",
            "apikey",
            "access_key",
            "token",
            "community",
            // real agents' parameters (fence-agents, resource-agents)
            "admin_password",
            "db_passwd",
            "monpassword",
            "replication_passwd",
            "snmp_priv_passwd",
            "test_pass",
            "erlang_cookie",
            "hexadecimal_kg",
            "key",
            "credential",
            "credentials",
            "auth_token",
            "authkey",
            "secretKey",
            "apiKey",
            "accessToken",
            "client-secret",
            "ssh.passphrase",
            "pcmk_secret",
        ] {
            assert!(is_secret_param(s), "{s} should be a secret");
        }
        for s in [
            "ip",
            "login",
            "password_script",
            "passwd_script",
            "snmp_priv_passwd_script",
            "token_file",
            "credentials_file",
            "cookie_file",
            "key_file",
            "keyfile",
            "key_value",
            "port",
            "username",
            "user",
            "auth",
            "auth_url",
            "auth-url",
            "snmp_auth_prot",
            "snmp_sec_level",
            "smb_passdb_backend",
            "use_cookies",
            "secure",
            "ssl_insecure",
            "pcmk_host_key",
            "pcmk_host_map",
            "pcmk_host_list",
            "pcmk_host_argument",
            "",
            "_",
        ] {
            assert!(!is_secret_param(s), "{s} should not be a secret");
        }
    }

    #[test]
    fn metadata_private_params_are_secrets() {
        let private: std::collections::BTreeSet<String> =
            ["community_string_x".to_string(), "blob".to_string()].into();
        assert!(is_secret("blob", &private));
        assert!(is_secret("passwd", &private));
        assert!(!is_secret("ip", &private));
    }

    #[test]
    fn values_are_redacted_in_text_longest_first() {
        let t = redact_values(
            "x hunter22 hunter2 abc y",
            ["hunter2", "hunter22", "abc", "hunter2"],
        );
        assert_eq!(t, format!("x {REDACTED} {REDACTED} abc y"));
        assert_eq!(redact_values("nothing", Vec::<&str>::new()), "nothing");
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
