//! Agent metadata: parsing OCF `meta-data` XML, synthesising it for LSB scripts, checking parameters against it, and
//! a per-node cache of it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use super::{op_status, rc, AgentEnv, AgentError, AgentRequest, AgentSpec, Kind, METADATA_TIMEOUT};

/// What an agent says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// `<resource-agent name=...>`.
    pub name: String,
    /// `<version>` (or the `version` attribute).
    pub version: Option<String>,
    pub shortdesc: String,
    pub params: Vec<ParamInfo>,
    pub actions: Vec<ActionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamInfo {
    pub name: String,
    pub required: bool,
    /// `unique="1"` (or a `unique-group`).
    pub unique: bool,
    /// `reloadable="1"`: a change needs only `reload-agent`, not a restart.
    pub reloadable: bool,
    pub shortdesc: String,
    /// `<content type=...>`.
    pub content_type: Option<String>,
    /// `<content default=...>`.
    pub default: Option<String>,
    /// `private="1"`: a secret (Pacemaker's convention: kept out of the
    /// secure digest, what `cibsecret` is for); never shown, see
    /// [`crate::secrets`].
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionInfo {
    pub name: String,
    pub timeout_ms: Option<u64>,
    pub interval_ms: Option<u64>,
    /// `role` as written (`Promoted`, `Unpromoted`, `Master`, `Slave`, ...).
    pub role: Option<String>,
    pub depth: Option<u32>,
    pub start_delay_ms: Option<u64>,
}

impl Metadata {
    /// The parameters marked `private="1"`.
    pub fn private_params(&self) -> std::collections::BTreeSet<String> {
        self.params
            .iter()
            .filter(|p| p.private)
            .map(|p| p.name.clone())
            .collect()
    }

    pub fn param(&self, name: &str) -> Option<&ParamInfo> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The first action called `name` (for `monitor` use [`Metadata::monitor_for_role`]).
    pub fn action(&self, name: &str) -> Option<&ActionInfo> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The `monitor` action declared for `role` (`None`: the one without a role, else the first).
    pub fn monitor_for_role(&self, role: Option<&str>) -> Option<&ActionInfo> {
        let monitors = || self.actions.iter().filter(|a| a.name == "monitor");
        match role {
            Some(r) => monitors().find(|a| a.role.as_deref().is_some_and(|ar| same_role(ar, r))),
            None => monitors()
                .find(|a| a.role.is_none())
                .or_else(|| monitors().next()),
        }
    }
}

fn same_role(a: &str, b: &str) -> bool {
    let norm = |r: &str| match r.to_ascii_lowercase().as_str() {
        "master" | "promoted" => "promoted".to_string(),
        "slave" | "unpromoted" => "unpromoted".to_string(),
        other => other.to_string(),
    };
    norm(a) == norm(b)
}

/// A parameter that does not fit an agent's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamProblem {
    MissingRequired(String),
    Unknown(String),
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamProblem::MissingRequired(p) => write!(f, "missing required parameter {p:?}"),
            ParamProblem::Unknown(p) => write!(f, "unknown parameter {p:?}"),
        }
    }
}

/// Parameters every OCF agent accepts through the shell functions (or that the cluster itself passes).
const UNIVERSAL_PARAMS: &[&str] = &[
    "trace_ra",
    "trace_file",
    "trace_dir",
    "crm_feature_set",
    "OCF_CHECK_LEVEL",
];

/// Required parameters missing from `params` (in metadata order), then parameters the agent does not declare.
pub fn check_params(md: &Metadata, params: &BTreeMap<String, String>) -> Vec<ParamProblem> {
    let mut problems: Vec<ParamProblem> = md
        .params
        .iter()
        .filter(|p| p.required && !params.contains_key(&p.name))
        .map(|p| ParamProblem::MissingRequired(p.name.clone()))
        .collect();
    problems.extend(
        params
            .keys()
            .filter(|k| md.param(k).is_none() && !UNIVERSAL_PARAMS.contains(&k.as_str()))
            .map(|k| ParamProblem::Unknown(k.clone())),
    );
    problems
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

fn meta_err(element: impl Into<String>, detail: impl Into<String>) -> AgentError {
    AgentError::Metadata {
        element: element.into(),
        detail: detail.into(),
    }
}

/// Parses a Pacemaker duration into milliseconds: an integer with an optional unit — none or `s`/`sec` (seconds),
/// `ms`/`msec`, `us`/`usec` (rounded down to ms), `m`/`min`, `h`/`hr` — case-insensitive, blanks allowed around the
/// unit. Also ISO 8601 `PT..H..M..S` as Pacemaker 2.1 accepts.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Some(iso) = t.strip_prefix("PT").or_else(|| t.strip_prefix("pt")) {
        return parse_iso_time(iso).ok_or_else(|| format!("invalid ISO 8601 duration {text:?}"));
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits_end == 0 {
        return Err(format!("invalid duration {text:?}: expected a number"));
    }
    let n: u64 = t[..digits_end]
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    let unit = t[digits_end..].trim().to_ascii_lowercase();
    let ms = match unit.as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => n.checked_mul(1000),
        "ms" | "msec" | "msecs" => Some(n),
        "us" | "usec" | "usecs" => Some(n / 1000),
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60_000),
        "h" | "hr" | "hrs" | "hour" | "hours" => n.checked_mul(3_600_000),
        other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
    };
    ms.ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

fn parse_iso_time(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let factor = match c.to_ascii_uppercase() {
            'H' => 3_600_000,
            'M' => 60_000,
            'S' => 1000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
    }
    num.is_empty().then_some(total)
}

fn child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> Option<String> {
    node.children()
        .find(|c| c.has_tag_name(tag))
        .map(|c| c.text().unwrap_or("").trim().to_string())
}

/// Parses OCF `meta-data` output. Errors name the element at fault.
pub fn parse_metadata(xml: &str) -> Result<Metadata, AgentError> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .map_err(|e| AgentError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("resource-agent") {
        return Err(meta_err(
            root.tag_name().name(),
            "the root element must be <resource-agent>",
        ));
    }
    let mut md = Metadata {
        name: root.attribute("name").unwrap_or("").to_string(),
        version: child_text(root, "version")
            .or_else(|| root.attribute("version").map(str::to_string)),
        shortdesc: child_text(root, "shortdesc").unwrap_or_default(),
        ..Default::default()
    };

    if let Some(params) = root.children().find(|c| c.has_tag_name("parameters")) {
        for p in params.children().filter(|c| c.has_tag_name("parameter")) {
            let name = p
                .attribute("name")
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| meta_err("parameter", "has no name attribute"))?;
            let content = p.children().find(|c| c.has_tag_name("content"));
            md.params.push(ParamInfo {
                name: name.to_string(),
                required: p.attribute("required").is_some_and(is_true),
                unique: p.attribute("unique").is_some_and(is_true)
                    || p.attribute("unique-group").is_some_and(|g| !g.is_empty()),
                reloadable: p.attribute("reloadable").is_some_and(is_true),
                private: p.attribute("private").is_some_and(is_true),
                shortdesc: child_text(p, "shortdesc").unwrap_or_default(),
                content_type: content
                    .and_then(|c| c.attribute("type"))
                    .map(str::to_string),
                default: content
                    .and_then(|c| c.attribute("default"))
                    .map(str::to_string),
            });
        }
    }

    if let Some(actions) = root.children().find(|c| c.has_tag_name("actions")) {
        for a in actions.children().filter(|c| c.has_tag_name("action")) {
            let name = a
                .attribute("name")
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| meta_err("action", "has no name attribute"))?;
            let element = format!("action name={name:?}");
            let duration = |attr: &str| -> Result<Option<u64>, AgentError> {
                match a.attribute(attr).map(str::trim).filter(|v| !v.is_empty()) {
                    None => Ok(None),
                    Some(v) => parse_duration_ms(v)
                        .map(Some)
                        .map_err(|e| meta_err(element.clone(), format!("{attr}: {e}"))),
                }
            };
            let depth = match a
                .attribute("depth")
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                None => None,
                Some(d) => Some(d.parse::<u32>().map_err(|_| {
                    meta_err(element.clone(), format!("depth {d:?} is not a number"))
                })?),
            };
            md.actions.push(ActionInfo {
                name: name.to_string(),
                timeout_ms: duration("timeout")?,
                interval_ms: duration("interval")?,
                role: a.attribute("role").map(str::to_string),
                depth,
                start_delay_ms: duration("start-delay")?,
            });
        }
    }
    Ok(md)
}

/// The metadata Pacemaker makes up for an LSB script: no parameters; start, stop, status, monitor.
pub(crate) fn lsb_metadata_xml(agent: &str) -> String {
    let name = xml_escape(agent);
    format!(
        r#"<?xml version="1.0"?>
<resource-agent name="{name}" version="0.0">
  <version>1.0</version>
  <longdesc lang="en">LSB init script {name}</longdesc>
  <shortdesc lang="en">LSB init script {name}</shortdesc>
  <parameters/>
  <actions>
    <action name="start" timeout="15s"/>
    <action name="stop" timeout="15s"/>
    <action name="status" timeout="15s"/>
    <action name="monitor" timeout="15s" interval="15s"/>
    <action name="meta-data" timeout="5s"/>
  </actions>
</resource-agent>
"#
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs the agent's `meta-data` action (LSB: synthesised) and parses it.
pub async fn metadata(env: &AgentEnv, spec: &AgentSpec) -> Result<Metadata, AgentError> {
    if spec.kind()? == Kind::Lsb {
        // Same checks as running it: the name must be sane and the script present.
        let path = super::agent_path(env, spec)?;
        if !path.is_file() {
            return Err(AgentError::NotInstalled(path));
        }
        return parse_metadata(&lsb_metadata_xml(&spec.agent));
    }
    let path = super::agent_path(env, spec)?;
    let req = AgentRequest {
        spec: spec.clone(),
        instance: String::new(),
        action: "meta-data".into(),
        interval_ms: 0,
        timeout: METADATA_TIMEOUT,
        params: BTreeMap::new(),
        meta: BTreeMap::new(),
    };
    let (result, stdout) = super::invoke(env, &req, true).await;
    if result.op_status == op_status::NOT_INSTALLED {
        return Err(AgentError::NotInstalled(path));
    }
    if result.op_status != op_status::DONE || result.rc != rc::OK {
        return Err(AgentError::MetadataFailed {
            agent: spec.to_string(),
            rc: result.rc,
            op_status: result.op_status,
            reason: result
                .exit_reason
                .unwrap_or_else(|| result.output_tail.clone()),
        });
    }
    let md = parse_metadata(&stdout)?;
    crate::secrets::remember_private(spec, md.private_params());
    Ok(md)
}

/// Metadata per agent, loaded on first use. Agents' defaults may mention the node's directories, so keep one cache
/// per [`AgentEnv`]. Failures are not cached.
#[derive(Debug, Default)]
pub struct MetadataCache {
    entries: Mutex<HashMap<AgentSpec, Arc<Metadata>>>,
}

impl MetadataCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<AgentSpec, Arc<Metadata>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached metadata of `spec`, or runs `meta-data` now. Concurrent first calls may both run the agent; the
    /// results are the same.
    pub async fn get(&self, env: &AgentEnv, spec: &AgentSpec) -> Result<Arc<Metadata>, AgentError> {
        let key = normalize(spec);
        if let Some(md) = self.entries().get(&key) {
            return Ok(md.clone());
        }
        let md = Arc::new(metadata(env, spec).await?);
        self.entries().insert(key, md.clone());
        Ok(md)
    }

    /// Forget one agent (e.g. after a package upgrade).
    pub fn invalidate(&self, spec: &AgentSpec) {
        self.entries().remove(&normalize(spec));
    }

    pub fn clear(&self) {
        self.entries().clear();
    }
}

/// `service:x` and `lsb:x` are the same agent; LSB has no provider.
fn normalize(spec: &AgentSpec) -> AgentSpec {
    match spec.kind() {
        Ok(Kind::Lsb) => AgentSpec::lsb(spec.agent.clone()),
        _ => spec.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("20s"), Ok(20_000));
        assert_eq!(parse_duration_ms("20"), Ok(20_000));
        assert_eq!(parse_duration_ms(" 2min "), Ok(120_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("10 s"), Ok(10_000));
        assert_eq!(parse_duration_ms("1500us"), Ok(1));
        assert_eq!(parse_duration_ms("PT1M30S"), Ok(90_000));
        assert!(parse_duration_ms("abc").is_err());
        assert!(parse_duration_ms("10x").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("PT").is_err());
        assert!(parse_duration_ms("99999999999999999999s").is_err());
    }

    #[test]
    fn private_parameters_are_read() {
        let xml = r#"<resource-agent name="x"><parameters>
            <parameter name="blob" private="1"><content type="string"/></parameter>
            <parameter name="ip" private="0"><content type="string"/></parameter>
            <parameter name="user"><content type="string"/></parameter>
            </parameters></resource-agent>"#;
        let md = parse_metadata(xml).unwrap();
        assert_eq!(md.private_params(), ["blob".to_string()].into());
    }

    #[test]
    fn bad_action_timeout_names_the_action() {
        let xml = r#"<resource-agent name="x"><actions><action name="start" timeout="soon"/></actions></resource-agent>"#;
        let err = parse_metadata(xml).unwrap_err().to_string();
        assert!(err.contains("action name=\"start\""), "{err}");
        assert!(err.contains("timeout"), "{err}");
    }

    #[test]
    fn wrong_root_and_nameless_parameter() {
        let err = parse_metadata("<agent/>").unwrap_err().to_string();
        assert!(err.contains("<agent>"), "{err}");
        let err = parse_metadata(
            r#"<resource-agent><parameters><parameter/></parameters></resource-agent>"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("<parameter>"), "{err}");
        assert!(matches!(parse_metadata("<<"), Err(AgentError::Xml(_))));
    }

    #[test]
    fn lsb_metadata_parses() {
        let md = parse_metadata(&lsb_metadata_xml("a&b")).unwrap();
        assert_eq!(md.name, "a&b");
        assert!(md.params.is_empty());
        assert!(md.action("status").is_some());
        assert_eq!(
            md.monitor_for_role(None).and_then(|a| a.interval_ms),
            Some(15_000)
        );
    }
}
