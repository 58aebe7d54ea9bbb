//! The replicated cluster state (`ClusterState`: configuration, status and
//! their counters) and the deterministic meaning of every [`Command`]. Pure:
//! no clock, no I/O, no randomness; applying the same commands in the same
//! order gives the same state on every node.

use std::collections::BTreeMap;

use ha_scheduler::model::{
    Attrs, Config, FencingEvent, Membership, NodeStatus, ResourceHistory, Status,
};
use ha_scheduler::ConfigError;
use serde::{Deserialize, Serialize};

use crate::command::{ApplyError, AttrChanges, Command, NodeState, OpUpdate, Response, Versions};

/// Permanent node attribute that puts a node in standby.
pub const STANDBY_ATTR: &str = "standby";
/// Permanent node attribute that puts a node in maintenance.
pub const MAINTENANCE_ATTR: &str = "maintenance";
/// Transient attribute prefix of fail counts (`fail-count-<rsc>#<op>_<interval>`).
pub const FAIL_COUNT_PREFIX: &str = "fail-count-";
/// Transient attribute prefix of failure times (`last-failure-<rsc>#<op>_<interval>`).
pub const LAST_FAILURE_PREFIX: &str = "last-failure-";
/// Fencing events kept in the status, newest last (Pacemaker's fencer keeps 500).
pub const FENCING_HISTORY_MAX: usize = 500;
/// Pacemaker's INFINITY, as a fail count.
const INFINITY: i64 = 1_000_000;

/// Everything the cluster agrees on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// What the operator declared.
    pub config: Config,
    /// What happened.
    pub status: Status,
    /// Bumped by every change of `config`; `ApplyConfig` is compared against it.
    pub config_epoch: u64,
    /// Bumped by every accepted status command.
    pub status_version: u64,
}

type Validator<'a> = &'a dyn Fn(&Config) -> Result<(), ConfigError>;

impl ClusterState {
    /// The two counters.
    pub fn versions(&self) -> Versions {
        Versions {
            config_epoch: self.config_epoch,
            status_version: self.status_version,
        }
    }

    /// Applies one command. A rejected command changes nothing and its
    /// error is the response.
    pub fn apply(&mut self, cmd: Command) -> Response {
        self.apply_validated_by(cmd, &ha_scheduler::validate::validate)
    }

    /// [`ClusterState::apply`] with the configuration validator given (tests
    /// use a stricter one than the scheduler's while that one is young).
    pub(crate) fn apply_validated_by(&mut self, cmd: Command, validate: Validator) -> Response {
        let result = match cmd {
            Command::ApplyConfig { base_epoch, config } => {
                self.apply_config(base_epoch, config, validate)
            }
            Command::RecordOps { ops } => {
                self.record_ops(ops);
                self.status_version += 1;
                Ok(())
            }
            Command::SetNodeAttributes {
                node,
                transient,
                permanent,
            } => self.set_node_attributes(&node, &transient, &permanent, validate),
            Command::SetNodeState { node, state } => self.set_node_state(&node, state, validate),
            Command::RecordFencing { event } => {
                self.record_fencing(event);
                self.status_version += 1;
                Ok(())
            }
            Command::ClearFailures { resource, node } => {
                self.clear_failures(&resource, node.as_deref());
                self.status_version += 1;
                Ok(())
            }
        };
        match result {
            Ok(()) => Response::Applied(self.versions()),
            Err(e) => Response::Rejected(e),
        }
    }

    fn apply_config(
        &mut self,
        base_epoch: u64,
        config: Config,
        validate: Validator,
    ) -> Result<(), ApplyError> {
        if base_epoch != self.config_epoch {
            return Err(ApplyError::StaleEpoch {
                base_epoch,
                current_epoch: self.config_epoch,
            });
        }
        validate(&config)?;
        self.config = config;
        self.config_epoch += 1;
        Ok(())
    }

    fn record_ops(&mut self, ops: Vec<OpUpdate>) {
        let start_failure_is_fatal = self
            .config
            .properties
            .get("start-failure-is-fatal")
            .map(|v| is_true(v))
            .unwrap_or(true);
        for u in ops {
            let ns = self.status.nodes.entry(u.node).or_default();
            if let Some(bump) = failure_bump(&u.op, start_failure_is_fatal) {
                let key = format!("{}#{}_{}", u.resource, u.op.operation, u.op.interval_ms);
                let name = format!("{FAIL_COUNT_PREFIX}{key}");
                let old = ns
                    .transient_attributes
                    .get(&name)
                    .map(|v| parse_count(v))
                    .unwrap_or(0);
                let new = match bump {
                    FailBump::Increment => old.saturating_add(1).min(INFINITY),
                    FailBump::Infinity => INFINITY,
                };
                ns.transient_attributes.insert(name, format_count(new));
                if let Some(t) = u.op.last_rc_change {
                    ns.transient_attributes
                        .insert(format!("{LAST_FAILURE_PREFIX}{key}"), t.to_string());
                }
            }
            let h = ns
                .history
                .entry(u.resource)
                .or_insert_with(|| ResourceHistory {
                    class: u.class.clone(),
                    provider: u.provider.clone(),
                    agent: u.agent.clone(),
                    ops: Vec::new(),
                });
            h.class = u.class;
            h.provider = u.provider;
            h.agent = u.agent;
            match h.ops.iter_mut().find(|o| o.id == u.op.id) {
                Some(slot) => *slot = u.op,
                None => h.ops.push(u.op),
            }
        }
    }

    fn set_node_attributes(
        &mut self,
        node: &str,
        transient: &AttrChanges,
        permanent: &AttrChanges,
        validate: Validator,
    ) -> Result<(), ApplyError> {
        let config_changed = if permanent.is_empty() {
            false
        } else {
            self.change_permanent(node, "permanent attributes", validate, |attrs| {
                apply_changes(attrs, permanent)
            })?
        };
        if !transient.is_empty() {
            let ns = self.status.nodes.entry(node.to_string()).or_default();
            apply_changes(&mut ns.transient_attributes, transient);
            ns.shutdown = shutdown_requested(&ns.transient_attributes);
            self.status_version += 1;
        }
        if config_changed {
            self.config_epoch += 1;
        }
        Ok(())
    }

    /// Changes the permanent attributes of a configured node, validating the
    /// result; on error restores them. Returns whether anything changed (the
    /// caller bumps the epoch).
    fn change_permanent(
        &mut self,
        node: &str,
        what: &str,
        validate: Validator,
        change: impl FnOnce(&mut Attrs),
    ) -> Result<bool, ApplyError> {
        let Some(ix) = self.config.nodes.iter().position(|n| n.name == node) else {
            return Err(ApplyError::UnknownNode {
                node: node.to_string(),
                what: what.to_string(),
            });
        };
        let before = self.config.nodes[ix].attributes.clone();
        change(&mut self.config.nodes[ix].attributes);
        if self.config.nodes[ix].attributes == before {
            return Ok(false);
        }
        if let Err(e) = validate(&self.config) {
            self.config.nodes[ix].attributes = before;
            return Err(e.into());
        }
        Ok(true)
    }

    fn set_node_state(
        &mut self,
        node: &str,
        state: NodeState,
        validate: Validator,
    ) -> Result<(), ApplyError> {
        let set_flag = |attr: &'static str| {
            move |attrs: &mut Attrs| {
                attrs.insert(attr.to_string(), "on".to_string());
            }
        };
        match state {
            NodeState::Standby | NodeState::Maintenance => {
                let (attr, what) = if state == NodeState::Standby {
                    (STANDBY_ATTR, "standby attribute")
                } else {
                    (MAINTENANCE_ATTR, "maintenance attribute")
                };
                if self.change_permanent(node, what, validate, set_flag(attr))? {
                    self.config_epoch += 1;
                }
                return Ok(());
            }
            NodeState::Online => {
                // Clearing flags of an unconfigured node is a no-op, not an error.
                let configured = self.config.nodes.iter().any(|n| n.name == node);
                let changed = configured
                    && self.change_permanent(node, "attributes", validate, |attrs| {
                        attrs.remove(STANDBY_ATTR);
                        attrs.remove(MAINTENANCE_ATTR);
                    })?;
                self.node_mut(node).membership = Membership::Online;
                if changed {
                    self.config_epoch += 1;
                }
            }
            NodeState::Joined => self.node_mut(node).membership = Membership::Online,
            NodeState::Pending => self.node_mut(node).membership = Membership::Pending,
            NodeState::Unclean => self.node_mut(node).membership = Membership::Unclean,
            NodeState::Fenced => self.mark_fenced(node),
            NodeState::Offline => {
                let ns = self.node_mut(node);
                ns.membership = Membership::Offline;
                ns.shutdown = false;
                ns.transient_attributes.clear();
            }
        }
        self.status_version += 1;
        Ok(())
    }

    fn node_mut(&mut self, node: &str) -> &mut NodeStatus {
        self.status.nodes.entry(node.to_string()).or_default()
    }

    fn mark_fenced(&mut self, node: &str) {
        let ns = self.node_mut(node);
        ns.membership = Membership::Offline;
        ns.shutdown = false;
        ns.transient_attributes.clear();
        ns.history.clear();
    }

    fn record_fencing(&mut self, event: FencingEvent) {
        if event.succeeded && matches!(event.action.as_str(), "off" | "reboot") {
            self.mark_fenced(&event.target);
        }
        let h = &mut self.status.fencing_history;
        h.push(event);
        if h.len() > FENCING_HISTORY_MAX {
            let excess = h.len() - FENCING_HISTORY_MAX;
            h.drain(..excess);
        }
    }

    fn clear_failures(&mut self, resource: &str, node: Option<&str>) {
        let clear = |ns: &mut NodeStatus| {
            ns.transient_attributes
                .retain(|name, _| !is_failure_attr_of(name, resource));
        };
        match node {
            Some(n) => {
                if let Some(ns) = self.status.nodes.get_mut(n) {
                    clear(ns);
                }
            }
            None => self.status.nodes.values_mut().for_each(clear),
        }
    }
}

enum FailBump {
    Increment,
    Infinity,
}

/// Whether an operation result counts as a failure, and how it moves the
/// fail count (Pacemaker's `update_failcount`): probes and notifications never
/// count; a failed start counts INFINITY when `start-failure-is-fatal`, a
/// failed stop always; anything else adds one. An op fails when it timed out
/// or errored (`op_status` 3..), or completed with an rc other than expected.
fn failure_bump(
    op: &ha_scheduler::model::OpRecord,
    start_failure_is_fatal: bool,
) -> Option<FailBump> {
    let probe = op.operation == "monitor" && op.interval_ms == 0;
    if probe || op.operation == "notify" {
        return None;
    }
    let failed = match op.op_status {
        0 => op.expected_rc.is_some_and(|e| e != op.rc),
        1 | 2 => false, // pending, cancelled
        _ => true,
    };
    if !failed {
        return None;
    }
    Some(match op.operation.as_str() {
        "start" if start_failure_is_fatal => FailBump::Infinity,
        "stop" => FailBump::Infinity,
        _ => FailBump::Increment,
    })
}

fn parse_count(v: &str) -> i64 {
    match ha_scheduler::score::parse(v) {
        Some(n) => n.max(0),
        None => 0,
    }
}

fn format_count(n: i64) -> String {
    if n >= INFINITY {
        "INFINITY".to_string()
    } else {
        n.to_string()
    }
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "on" | "yes" | "y" | "1"
    )
}

/// Pacemaker's `shutdown` transient attribute: set and not "0".
fn shutdown_requested(attrs: &Attrs) -> bool {
    attrs
        .get("shutdown")
        .is_some_and(|v| !v.is_empty() && v != "0")
}

fn apply_changes(attrs: &mut BTreeMap<String, String>, changes: &AttrChanges) {
    for (name, value) in changes {
        match value {
            Some(v) => {
                attrs.insert(name.clone(), v.clone());
            }
            None => {
                attrs.remove(name);
            }
        }
    }
}

/// `fail-count-<rsc>[#<op>_<interval>]` or `last-failure-...` of `resource`
/// or of one of its clone instances (`resource:N`).
fn is_failure_attr_of(name: &str, resource: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(FAIL_COUNT_PREFIX)
        .or_else(|| name.strip_prefix(LAST_FAILURE_PREFIX))
    else {
        return false;
    };
    let rsc = rest.split('#').next().unwrap_or(rest);
    if rsc == resource {
        return true;
    }
    match rsc.strip_prefix(resource).and_then(|r| r.strip_prefix(':')) {
        Some(instance) => !instance.is_empty() && instance.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}
