//! Secret parameters of a configuration: which they are (the name rule of
//! [`ha_fencing::is_secret_param`] plus what an OCF agent's metadata marks
//! `private="1"`), hiding them as [`REDACTED`], putting the stored values
//! back into a configuration that comes back with placeholders
//! (`config show > f; config load f`, `config edit`), and hiding their
//! values in free text (agents' exit reasons and output, status, logs).
//!
//! The metadata part: every OCF `meta-data` this process parses is
//! remembered here ([`remember_private`], called by the agent layer);
//! [`private_params`] runs the `meta-data` of agents of a configuration not
//! seen yet (with this node's agent environment, [`set_agent_env`]), so a
//! node that never ran an agent still knows its private parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use ha_fencing::REDACTED;
use ha_scheduler::model::{Config, Primitive, Resource};
use thiserror::Error;

use crate::agent::{AgentEnv, AgentSpec};

/// Parameter names an agent's metadata marks private, by agent
/// (`ocf:PROVIDER:TYPE`).
pub type PrivateParams = BTreeMap<String, BTreeSet<String>>;

/// A configuration that cannot be stored as given.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "resource {resource}: parameter {param} is the placeholder {REDACTED} but {why}: give its value"
    )]
    NoStoredValue {
        resource: String,
        param: String,
        why: &'static str,
    },
    /// The stored values are those of another epoch than the one the
    /// configuration was read at: only a node at that epoch (the leader)
    /// can put them back.
    #[error("{}", ha_raft_store::ApplyError::StaleEpoch { base_epoch: *base_epoch, current_epoch: *current_epoch })]
    NotAtBase { base_epoch: u64, current_epoch: u64 },
}

fn registry() -> &'static Mutex<PrivateParams> {
    static R: OnceLock<Mutex<PrivateParams>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn env_slot() -> &'static OnceLock<AgentEnv> {
    static E: OnceLock<AgentEnv> = OnceLock::new();
    &E
}

/// The agent environment [`private_params`] runs `meta-data` with (the
/// daemon's, set once at startup).
pub fn set_agent_env(env: AgentEnv) {
    let _ = env_slot().set(env);
}

/// Remembers which parameters `spec`'s metadata marks private.
pub fn remember_private(spec: &AgentSpec, private: BTreeSet<String>) {
    if let Ok(mut r) = registry().lock() {
        r.insert(spec.to_string(), private);
    }
}

/// What this process knows so far (no agent is run).
pub fn known_private() -> PrivateParams {
    registry().lock().map(|r| r.clone()).unwrap_or_default()
}

/// The agent key of a primitive (`ocf:heartbeat:IPaddr2`), `None` for
/// classes whose metadata has no `private` (stonith, lsb, systemd...).
fn agent_spec(p: &Primitive) -> Option<AgentSpec> {
    (p.class == "ocf").then(|| AgentSpec {
        class: p.class.clone(),
        provider: p.provider.clone(),
        agent: p.agent.clone(),
    })
}

/// The private parameters of every OCF agent `config` uses: what is known,
/// plus the `meta-data` of agents not seen yet (an agent that is not
/// installed here or fails adds nothing; the name rule still applies).
pub async fn private_params(config: &Config) -> PrivateParams {
    let known = known_private();
    let missing: BTreeSet<AgentSpec> = primitives(config)
        .into_iter()
        .filter_map(agent_spec)
        .filter(|s| !known.contains_key(&s.to_string()))
        .collect();
    if let Some(env) = env_slot().get() {
        for spec in missing {
            // A success registers itself (agent::metadata); a failure is
            // remembered as "nothing private" until the agent runs here.
            if crate::agent::metadata(env, &spec).await.is_err() {
                remember_private(&spec, BTreeSet::new());
            }
        }
    }
    known_private()
}

/// Is `name` a secret parameter of `p`?
pub fn is_secret(p: &Primitive, name: &str, private: &PrivateParams) -> bool {
    let marked = agent_spec(p)
        .and_then(|s| private.get(&s.to_string()))
        .is_some_and(|names| names.contains(name));
    marked || ha_fencing::is_secret_param(name)
}

/// Every primitive of `config` (group members and clone children included).
pub fn primitives(config: &Config) -> Vec<&Primitive> {
    fn walk<'a>(r: &'a Resource, out: &mut Vec<&'a Primitive>) {
        match r {
            Resource::Primitive(p) => out.push(p),
            Resource::Group(g) => out.extend(g.members.iter()),
            Resource::Clone(c) => walk(&c.child, out),
        }
    }
    let mut out = Vec::new();
    for r in &config.resources {
        walk(r, &mut out);
    }
    out
}

fn primitives_mut(config: &mut Config) -> Vec<&mut Primitive> {
    fn walk<'a>(r: &'a mut Resource, out: &mut Vec<&'a mut Primitive>) {
        match r {
            Resource::Primitive(p) => out.push(p),
            Resource::Group(g) => out.extend(g.members.iter_mut()),
            Resource::Clone(c) => walk(&mut c.child, out),
        }
    }
    let mut out = Vec::new();
    for r in &mut config.resources {
        walk(r, &mut out);
    }
    out
}

/// `config` with the value of every secret parameter replaced by [`REDACTED`].
pub fn redact_config(config: &Config, private: &PrivateParams) -> Config {
    let mut c = config.clone();
    for p in primitives_mut(&mut c) {
        let names: Vec<String> = p
            .params
            .keys()
            .filter(|k| is_secret(p, k, private))
            .cloned()
            .collect();
        for k in names {
            p.params.insert(k, REDACTED.to_string());
        }
    }
    c
}

/// The values of the secret parameters of `config` (non-empty, no
/// placeholders), to search for in free text.
pub fn secret_values(config: &Config, private: &PrivateParams) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for p in primitives(config) {
        for (k, v) in &p.params {
            if !v.is_empty() && v != REDACTED && is_secret(p, k, private) {
                out.insert(v.clone());
            }
        }
    }
    out.into_iter().collect()
}

/// The secret values of one resource's parameters (an agent's request).
pub fn param_secret_values(
    spec: &AgentSpec,
    params: &BTreeMap<String, String>,
    private: &PrivateParams,
) -> Vec<String> {
    let marked = private.get(&spec.to_string());
    params
        .iter()
        .filter(|(k, v)| {
            !v.is_empty()
                && (marked.is_some_and(|m| m.contains(*k)) || ha_fencing::is_secret_param(k))
        })
        .map(|(_, v)| v.clone())
        .collect()
}

/// `text` without any of `values` (see [`ha_fencing::redact_values`]).
pub fn redact_text(text: &str, values: &[String]) -> String {
    ha_fencing::redact_values(text, values.iter().map(String::as_str))
}

/// Every string in `v` without any of `values` (keys are ids and names,
/// left as they are).
pub fn redact_json(v: &mut serde_json::Value, values: &[String]) {
    use serde_json::Value;
    if values.is_empty() {
        return;
    }
    match v {
        Value::String(s) => {
            let r = redact_text(s, values);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_json(x, values)),
        Value::Object(o) => o.values_mut().for_each(|x| redact_json(x, values)),
        _ => {}
    }
}

/// Does any parameter of `config` hold the placeholder [`REDACTED`]?
pub fn has_placeholders(config: &Config) -> bool {
    primitives(config)
        .iter()
        .any(|p| p.params.values().any(|v| v == REDACTED))
}

/// [`restore_secrets`] for a configuration written against `base_epoch`,
/// with `current` the configuration of `current_epoch` here: the values
/// are put back only from the configuration it was read at.
pub fn restore_at(
    new: &mut Config,
    base_epoch: u64,
    current_epoch: u64,
    current: &Config,
) -> Result<usize, SecretError> {
    if !has_placeholders(new) {
        return Ok(0);
    }
    if base_epoch != current_epoch {
        return Err(SecretError::NotAtBase {
            base_epoch,
            current_epoch,
        });
    }
    restore_secrets(new, current)
}

/// Puts the stored value back wherever `new` holds the placeholder
/// [`REDACTED`]: the same parameter of the same resource in `current`
/// (the configuration `new` was based on). A placeholder for a resource
/// or parameter that has no stored value is an error naming it. Returns
/// how many values were put back.
pub fn restore_secrets(new: &mut Config, current: &Config) -> Result<usize, SecretError> {
    let stored: BTreeMap<&str, &Primitive> = primitives(current)
        .into_iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    let mut n = 0;
    for p in primitives_mut(new) {
        for (k, v) in p.params.iter_mut() {
            if v != REDACTED {
                continue;
            }
            let old = stored
                .get(p.id.as_str())
                .ok_or(SecretError::NoStoredValue {
                    resource: p.id.clone(),
                    param: k.clone(),
                    why: "the resource is new",
                })?;
            let value = old.params.get(k).ok_or(SecretError::NoStoredValue {
                resource: p.id.clone(),
                param: k.clone(),
                why: "the stored resource has no such parameter",
            })?;
            *v = value.clone();
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(crm: &str) -> Config {
        ha_scheduler::crm::read_crm(crm).unwrap()
    }

    #[test]
    fn redaction_hides_by_name_and_by_metadata_and_restores() {
        let c = config(
            "primitive a ocf:test:X params blob=b-secret-1 passwd=p-secret-2 ip=10.0.0.1\n\
             group g m\nprimitive m ocf:heartbeat:Dummy params token=t-secret-3\n",
        );
        let mut private = PrivateParams::new();
        private.insert("ocf:test:X".into(), ["blob".to_string()].into());
        let r = redact_config(&c, &private);
        let text = ha_scheduler::crm::write_crm(&r);
        for v in ["b-secret-1", "p-secret-2", "t-secret-3"] {
            assert!(!text.contains(v), "{v} in {text}");
        }
        assert!(text.contains("10.0.0.1"), "{text}");
        assert_eq!(
            secret_values(&c, &private),
            vec!["b-secret-1", "p-secret-2", "t-secret-3"]
        );
        let mut back = r.clone();
        assert_eq!(restore_secrets(&mut back, &c), Ok(3));
        assert_eq!(back, c);
    }

    #[test]
    fn a_placeholder_without_a_stored_value_is_refused_naming_it() {
        let current = config("primitive a ocf:heartbeat:Dummy params passwd=x\n");
        let mut new = config(&format!(
            "primitive a ocf:heartbeat:Dummy params passwd=\"{REDACTED}\"\n\
             primitive b ocf:heartbeat:Dummy params passwd=\"{REDACTED}\"\n"
        ));
        let e = restore_secrets(&mut new, &current).unwrap_err().to_string();
        assert!(e.contains("resource b") && e.contains("passwd"), "{e}");
        let mut new = config(&format!(
            "primitive a ocf:heartbeat:Dummy params token=\"{REDACTED}\"\n"
        ));
        let e = restore_secrets(&mut new, &current).unwrap_err().to_string();
        assert!(e.contains("resource a") && e.contains("token"), "{e}");
    }

    #[test]
    fn json_strings_are_redacted_not_numbers() {
        let mut v =
            serde_json::json!({"epoch": 1234, "r": ["say 1234 hunter22", {"x": "hunter22"}]});
        redact_json(&mut v, &["hunter22".to_string(), "1234".to_string()]);
        assert_eq!(v["epoch"], 1234);
        assert_eq!(v["r"][0], format!("say {REDACTED} {REDACTED}"));
        assert_eq!(v["r"][1]["x"], REDACTED);
    }
}
