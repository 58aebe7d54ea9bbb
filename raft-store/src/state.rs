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
    /// error is the response. Without a log entry there is no term to check
    /// a DC command against ([`Command::Dc`] is applied as what it carries):
    /// the state machine applies entries with [`ClusterState::apply_in_term`].
    pub fn apply(&mut self, cmd: Command) -> Response {
        self.apply_validated_by(cmd, &ha_scheduler::validate::validate)
    }

    /// Applies the command of a log entry written in `entry_term`: a DC
    /// command ([`Command::Dc`]) whose term is not `entry_term` is rejected
    /// ([`ApplyError::StaleTerm`]) and changes nothing.
    pub fn apply_in_term(&mut self, cmd: Command, entry_term: u64) -> Response {
        match cmd {
            Command::Dc { term, command } => {
                if term != entry_term {
                    return Response::Rejected(ApplyError::StaleTerm {
                        dc_term: term,
                        entry_term,
                    });
                }
                self.apply_in_term(*command, entry_term)
            }
            cmd => self.apply(cmd),
        }
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
            Command::PromotionFence { id, rsc, keep_on } => {
                self.promotion_fence(id, rsc, keep_on, validate)
            }
            Command::Dc { command, .. } => return self.apply_validated_by(*command, validate),
            Command::Cleanup { resource, node } => {
                self.clear_failures(&resource, node.as_deref());
                let forget = |ns: &mut NodeStatus| {
                    ns.history.retain(|id, _| {
                        id != &resource
                            && id
                                .strip_prefix(resource.as_str())
                                .is_none_or(|rest| !rest.starts_with(':'))
                    });
                };
                match node.as_deref() {
                    Some(n) => {
                        if let Some(ns) = self.status.nodes.get_mut(n) {
                            forget(ns);
                        }
                    }
                    None => self.status.nodes.values_mut().for_each(forget),
                }
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

    fn promotion_fence(
        &mut self,
        id: String,
        rsc: String,
        keep_on: Option<String>,
        validate: Validator,
    ) -> Result<(), ApplyError> {
        use ha_scheduler::model::{
            AttrExpression, BoolOp, CmpOp, Expression, Location, LocationTarget, Role, Rule,
            RuleScore,
        };
        if !id.starts_with(crate::command::PROMOTION_FENCE_PREFIX) {
            return Err(ApplyError::InvalidConfig {
                message: format!(
                    "promotion fence '{id}': the id must start with {}",
                    crate::command::PROMOTION_FENCE_PREFIX
                ),
                error: None,
            });
        }
        let mut config = self.config.clone();
        config.constraints.locations.retain(|l| l.id != id);
        if let Some(node) = keep_on {
            if !config.nodes.iter().any(|n| n.name == node) {
                return Err(ApplyError::UnknownNode {
                    node,
                    what: format!("promotion fence {id}"),
                });
            }
            config.constraints.locations.push(Location {
                id: id.clone(),
                rsc,
                rsc_pattern: false,
                role: None,
                target: LocationTarget::Rules(vec![Rule {
                    id: format!("{id}-rule"),
                    score: RuleScore::Value(-ha_scheduler::score::INFINITY),
                    boolean_op: BoolOp::And,
                    role: Some(Role::Promoted),
                    expressions: vec![Expression::Attr(AttrExpression {
                        id: format!("{id}-expr"),
                        attribute: "#uname".into(),
                        op: CmpOp::Ne,
                        value: Some(node),
                        value_type: None,
                        value_source: None,
                    })],
                }]),
                resource_discovery: None,
            });
        }
        if config == self.config {
            return Ok(()); // placed (or removed) already: nothing changes
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
            let bump = failure_bump(&u.op, start_failure_is_fatal);
            // A failure is also kept as the resource's last failure (a
            // later success replaces `_last_0`, not this).
            let last_failure = bump.as_ref().map(|_| ha_scheduler::model::OpRecord {
                id: format!("{}_last_failure_0", u.resource),
                ..u.op.clone()
            });
            if let Some(bump) = bump {
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
            for op in std::iter::once(u.op).chain(last_failure) {
                match h.ops.iter_mut().find(|o| o.id == op.id) {
                    Some(slot) => *slot = op,
                    None => h.ops.push(op),
                }
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
            NodeState::Joined => {
                if self.status.nodes.get(node).map(|n| n.membership) == Some(Membership::Unclean) {
                    return Err(ApplyError::Unclean {
                        node: node.to_string(),
                    });
                }
                // A restarted node: what it ran and its reboot-lifetime
                // attributes (promotion scores, fail counts, `shutdown`)
                // belong to its earlier run, as in Pacemaker.
                let ns = self.node_mut(node);
                ns.membership = Membership::Online;
                ns.history.clear();
                ns.transient_attributes.clear();
                ns.shutdown = false;
            }
            NodeState::Down => self.mark_fenced(node),
            NodeState::Pending => self.node_mut(node).membership = Membership::Pending,
            NodeState::Unclean => {
                let ns = self.node_mut(node);
                if ns.membership != Membership::Unclean {
                    ns.declared_lost += 1;
                }
                ns.membership = Membership::Unclean;
            }
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
        if ns.membership != Membership::Unclean {
            ns.declared_lost += 1;
        }
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
        -1 | 1 => false, // pending, cancelled (Pacemaker's numbering: 2 is a timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ha_scheduler::model::{
        LocationTarget, NodeConfig, OpRecord, Primitive, Resource, Role, RuleScore,
    };

    fn node(name: &str) -> NodeConfig {
        NodeConfig {
            id: name.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn prim(id: &str) -> Resource {
        Resource::Primitive(Primitive {
            id: id.into(),
            class: "ocf".into(),
            provider: Some("heartbeat".into()),
            agent: "Dummy".into(),
            ..Default::default()
        })
    }

    fn config(nodes: &[&str], rscs: &[&str]) -> Config {
        Config {
            nodes: nodes.iter().map(|n| node(n)).collect(),
            resources: rscs.iter().map(|r| prim(r)).collect(),
            ..Default::default()
        }
    }

    /// Stricter than the scheduler's (young) validator: no duplicate ids, no
    /// `bad` attribute anywhere.
    fn strict(c: &Config) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for r in &c.resources {
            let Resource::Primitive(p) = r else { continue };
            if !seen.insert(p.id.clone()) {
                return Err(ConfigError::DuplicateId {
                    element: "primitive".into(),
                    id: p.id.clone(),
                });
            }
        }
        for n in &c.nodes {
            if n.attributes.contains_key("bad") {
                return Err(ConfigError::invalid("node", &n.id, "bad attribute"));
            }
        }
        Ok(())
    }

    fn base() -> ClusterState {
        let mut s = ClusterState::default();
        let r = s.apply_validated_by(
            Command::ApplyConfig {
                base_epoch: 0,
                config: config(&["n1", "n2"], &["r1", "r2"]),
            },
            &strict,
        );
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 1,
                status_version: 0
            })
        );
        s
    }

    fn apply(s: &mut ClusterState, c: Command) -> Response {
        s.apply_validated_by(c, &strict)
    }

    fn bytes(s: &ClusterState) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    fn op(id: &str, operation: &str, interval_ms: u64, rc: i32, expected: i32) -> OpRecord {
        OpRecord {
            id: id.into(),
            operation: operation.into(),
            interval_ms,
            call_id: 1,
            rc,
            op_status: 0,
            expected_rc: Some(expected),
            last_rc_change: Some(1000),
            ..Default::default()
        }
    }

    fn upd(node: &str, rsc: &str, op: OpRecord) -> OpUpdate {
        OpUpdate {
            node: node.into(),
            resource: rsc.into(),
            class: "ocf".into(),
            provider: Some("heartbeat".into()),
            agent: "Dummy".into(),
            op,
        }
    }

    fn record(s: &mut ClusterState, ops: Vec<OpUpdate>) -> Response {
        apply(s, Command::RecordOps { ops })
    }

    fn attrs(pairs: &[(&str, Option<&str>)]) -> AttrChanges {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    fn tattr<'a>(s: &'a ClusterState, node: &str, name: &str) -> Option<&'a str> {
        s.status.nodes[node]
            .transient_attributes
            .get(name)
            .map(String::as_str)
    }

    fn pattr<'a>(s: &'a ClusterState, node: &str, name: &str) -> Option<&'a str> {
        s.config
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.attributes.get(name))
            .map(String::as_str)
    }

    // -- ApplyConfig

    #[test]
    fn apply_config_replaces_config_and_bumps_epoch() {
        let mut s = base();
        let c = config(&["n1", "n2", "n3"], &["r1"]);
        let r = apply(
            &mut s,
            Command::ApplyConfig {
                base_epoch: 1,
                config: c.clone(),
            },
        );
        assert_eq!(r.into_result().unwrap().config_epoch, 2);
        assert_eq!(s.config, c);
        assert_eq!(s.status_version, 0);
    }

    #[test]
    fn apply_config_with_stale_epoch_is_rejected_and_changes_nothing() {
        let mut s = base();
        record(
            &mut s,
            vec![upd("n1", "r1", op("r1_last_0", "start", 0, 0, 0))],
        );
        let before = bytes(&s);
        for stale in [0, 2, 99] {
            let r = apply(
                &mut s,
                Command::ApplyConfig {
                    base_epoch: stale,
                    config: config(&["x"], &[]),
                },
            );
            assert_eq!(
                r,
                Response::Rejected(ApplyError::StaleEpoch {
                    base_epoch: stale,
                    current_epoch: 1
                })
            );
            assert_eq!(bytes(&s), before, "state changed by a rejected config");
        }
        let msg = ApplyError::StaleEpoch {
            base_epoch: 0,
            current_epoch: 1,
        }
        .to_string();
        assert!(msg.contains("epoch 0") && msg.contains("now at 1"), "{msg}");
    }

    #[test]
    fn invalid_config_is_rejected_whole_and_changes_nothing() {
        let mut s = base();
        let before = bytes(&s);
        let r = apply(
            &mut s,
            Command::ApplyConfig {
                base_epoch: 1,
                config: config(&["n1"], &["a", "b", "a"]),
            },
        );
        let Response::Rejected(ApplyError::InvalidConfig { message, error }) = r else {
            panic!("expected a rejection, got {r:?}");
        };
        assert!(message.contains("duplicate id 'a'"), "{message}");
        assert!(matches!(error, Some(ConfigError::DuplicateId { .. })));
        assert_eq!(bytes(&s), before);
    }

    #[test]
    fn the_scheduler_validator_is_the_default() {
        let mut s = ClusterState::default();
        let r = s.apply(Command::ApplyConfig {
            base_epoch: 0,
            config: config(&["n1"], &["r1"]),
        });
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 1,
                status_version: 0
            })
        );
        s.apply(Command::RecordOps {
            ops: vec![upd("n1", "r1", op("r1_last_0", "start", 0, 0, 0))],
        });
        let before = bytes(&s);
        // Duplicate ids, and a constraint naming an unknown resource.
        let mut dangling = config(&["n1"], &["r1"]);
        dangling
            .constraints
            .locations
            .push(ha_scheduler::model::Location {
                id: "loc-ghost".into(),
                rsc: "ghost".into(),
                rsc_pattern: false,
                role: None,
                target: ha_scheduler::model::LocationTarget::Node {
                    node: "n1".into(),
                    score: 100,
                },
                resource_discovery: None,
            });
        for bad in [config(&["n1"], &["r1", "r1"]), dangling] {
            let r = s.apply(Command::ApplyConfig {
                base_epoch: 1,
                config: bad,
            });
            let Response::Rejected(ApplyError::InvalidConfig { message, error }) = r else {
                panic!("the scheduler's validator accepted a bad config: {r:?}");
            };
            assert!(error.is_some());
            assert!(
                message.contains("r1") || message.contains("ghost"),
                "{message}"
            );
            assert_eq!(bytes(&s), before, "state changed by a rejected config");
        }
    }

    // -- RecordOps

    #[test]
    fn record_ops_builds_history_replacing_by_op_id() {
        let mut s = base();
        let r = record(
            &mut s,
            vec![
                upd("n1", "r1", op("r1_last_0", "start", 0, 0, 0)),
                upd("n1", "r1", op("r1_monitor_10000", "monitor", 10000, 0, 0)),
                upd("n2", "r1", op("r1_last_0", "monitor", 0, 7, 7)),
            ],
        );
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 1,
                status_version: 1
            })
        );
        let h = &s.status.nodes["n1"].history["r1"];
        assert_eq!((h.class.as_str(), h.agent.as_str()), ("ocf", "Dummy"));
        assert_eq!(h.ops.len(), 2);
        // Same id again: replaced, not appended.
        let mut stop = op("r1_last_0", "stop", 0, 0, 0);
        stop.call_id = 3;
        record(&mut s, vec![upd("n1", "r1", stop.clone())]);
        let h = &s.status.nodes["n1"].history["r1"];
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0], stop);
        assert_eq!(s.status_version, 2);
        // Successful ops and probes that find nothing count no failure.
        assert!(s.status.nodes["n1"].transient_attributes.is_empty());
        assert!(s.status.nodes["n2"].transient_attributes.is_empty());
        // A node seen for the first time is Offline until told otherwise.
        assert_eq!(s.status.nodes["n2"].membership, Membership::Offline);
    }

    #[test]
    fn record_ops_counts_failures_as_pacemaker_does() {
        let mut s = base();
        let mon = op("r1_monitor_10000", "monitor", 10000, 7, 0);
        record(&mut s, vec![upd("n1", "r1", mon.clone())]);
        record(&mut s, vec![upd("n1", "r1", mon)]);
        assert_eq!(tattr(&s, "n1", "fail-count-r1#monitor_10000"), Some("2"));
        assert_eq!(
            tattr(&s, "n1", "last-failure-r1#monitor_10000"),
            Some("1000")
        );
        // Start failure: INFINITY by default (start-failure-is-fatal).
        record(
            &mut s,
            vec![upd("n1", "r2", op("r2_last_0", "start", 0, 1, 0))],
        );
        assert_eq!(tattr(&s, "n1", "fail-count-r2#start_0"), Some("INFINITY"));
        // Stop failure: always INFINITY.
        record(
            &mut s,
            vec![upd("n2", "r2", op("r2_last_0", "stop", 0, 1, 0))],
        );
        assert_eq!(tattr(&s, "n2", "fail-count-r2#stop_0"), Some("INFINITY"));
        // A timeout is a failure whatever the rc.
        let mut t = op("r1_last_0", "promote", 0, 0, 0);
        t.op_status = 3;
        record(&mut s, vec![upd("n2", "r1", t)]);
        assert_eq!(tattr(&s, "n2", "fail-count-r1#promote_0"), Some("1"));
        // Probes never count, even with a surprising rc.
        record(
            &mut s,
            vec![upd("n2", "r9", op("r9_last_0", "monitor", 0, 1, 7))],
        );
        assert_eq!(tattr(&s, "n2", "fail-count-r9#monitor_0"), None);
        // Unknown expected rc: not counted.
        let mut u = op("r1_monitor_5000", "monitor", 5000, 1, 0);
        u.expected_rc = None;
        record(&mut s, vec![upd("n2", "r1", u)]);
        assert_eq!(tattr(&s, "n2", "fail-count-r1#monitor_5000"), None);
    }

    #[test]
    fn start_failure_not_fatal_increments() {
        let mut s = base();
        let mut c = s.config.clone();
        c.properties
            .insert("start-failure-is-fatal".into(), "false".into());
        apply(
            &mut s,
            Command::ApplyConfig {
                base_epoch: 1,
                config: c,
            },
        );
        for _ in 0..2 {
            record(
                &mut s,
                vec![upd("n1", "r1", op("r1_last_0", "start", 0, 1, 0))],
            );
        }
        assert_eq!(tattr(&s, "n1", "fail-count-r1#start_0"), Some("2"));
    }

    // -- SetNodeAttributes

    #[test]
    fn transient_attributes_set_and_delete_and_track_shutdown() {
        let mut s = base();
        let r = apply(
            &mut s,
            Command::SetNodeAttributes {
                node: "n1".into(),
                transient: attrs(&[("master-r1", Some("10")), ("shutdown", Some("1234"))]),
                permanent: AttrChanges::new(),
            },
        );
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 1,
                status_version: 1
            })
        );
        assert_eq!(tattr(&s, "n1", "master-r1"), Some("10"));
        assert!(s.status.nodes["n1"].shutdown);
        apply(
            &mut s,
            Command::SetNodeAttributes {
                node: "n1".into(),
                transient: attrs(&[("shutdown", None)]),
                permanent: AttrChanges::new(),
            },
        );
        assert!(!s.status.nodes["n1"].shutdown);
        assert_eq!(tattr(&s, "n1", "shutdown"), None);
        assert_eq!(s.status_version, 2);
        assert_eq!(s.config_epoch, 1);
    }

    #[test]
    fn reboot_lifetime_attributes_vanish_when_the_node_restarts_or_is_fenced() {
        for state in [NodeState::Joined, NodeState::Fenced, NodeState::Down] {
            let mut s = base();
            apply(
                &mut s,
                Command::SetNodeAttributes {
                    node: "n1".into(),
                    transient: attrs(&[("master-drbd", Some("10000")), ("shutdown", Some("9"))]),
                    permanent: attrs(&[("site", Some("a"))]),
                },
            );
            apply(
                &mut s,
                Command::SetNodeAttributes {
                    node: "n2".into(),
                    transient: attrs(&[("master-drbd", Some("1000"))]),
                    permanent: AttrChanges::new(),
                },
            );
            apply(
                &mut s,
                Command::SetNodeState {
                    node: "n1".into(),
                    state,
                },
            );
            assert_eq!(tattr(&s, "n1", "master-drbd"), None, "{state:?}");
            assert!(!s.status.nodes["n1"].shutdown, "{state:?}");
            assert_eq!(tattr(&s, "n2", "master-drbd"), Some("1000"), "{state:?}");
            let n1 = s.config.nodes.iter().find(|n| n.name == "n1").unwrap();
            assert_eq!(n1.attributes.get("site").map(String::as_str), Some("a"));
        }
    }

    #[test]
    fn a_promotion_fence_is_placed_once_and_lifted() {
        let mut s = base();
        let fence = |keep: Option<&str>| Command::PromotionFence {
            id: "drbd-fence-by-handler-r0-ms".into(),
            rsc: "r1".into(),
            keep_on: keep.map(str::to_string),
        };
        let r = apply(&mut s, fence(Some("n1")));
        assert_eq!(r.into_result().unwrap().config_epoch, 2);
        let l = &s.config.constraints.locations;
        assert_eq!(l.len(), 1);
        let LocationTarget::Rules(rules) = &l[0].target else {
            panic!("{l:?}")
        };
        assert_eq!(rules[0].role, Some(Role::Promoted));
        assert_eq!(
            rules[0].score,
            RuleScore::Value(-ha_scheduler::score::INFINITY)
        );
        // Again: nothing changes (DRBD may call the handler twice).
        let r = apply(&mut s, fence(Some("n1")));
        assert_eq!(r.into_result().unwrap().config_epoch, 2);
        // Unknown node, foreign id: refused, nothing changes.
        let before = bytes(&s);
        assert!(apply(&mut s, fence(Some("n9"))).into_result().is_err());
        let other = Command::PromotionFence {
            id: "cli-ban-r1".into(),
            rsc: "r1".into(),
            keep_on: Some("n1".into()),
        };
        assert!(apply(&mut s, other).into_result().is_err());
        assert_eq!(bytes(&s), before);
        // Lifted.
        let r = apply(&mut s, fence(None));
        assert_eq!(r.into_result().unwrap().config_epoch, 3);
        assert!(s.config.constraints.locations.is_empty());
    }

    #[test]
    fn permanent_attributes_live_in_config_and_bump_epoch() {
        let mut s = base();
        let set = |v: Option<&str>| Command::SetNodeAttributes {
            node: "n2".into(),
            transient: AttrChanges::new(),
            permanent: attrs(&[("site", v)]),
        };
        let r = apply(&mut s, set(Some("a")));
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 2,
                status_version: 0
            })
        );
        assert_eq!(pattr(&s, "n2", "site"), Some("a"));
        // The same value again changes nothing: no epoch bump.
        apply(&mut s, set(Some("a")));
        assert_eq!(s.config_epoch, 2);
        apply(&mut s, set(None));
        assert_eq!(pattr(&s, "n2", "site"), None);
        assert_eq!(s.config_epoch, 3);
    }

    #[test]
    fn permanent_attributes_of_unknown_node_or_invalid_result_are_rejected_whole() {
        let mut s = base();
        let before = bytes(&s);
        let r = apply(
            &mut s,
            Command::SetNodeAttributes {
                node: "ghost".into(),
                transient: attrs(&[("x", Some("1"))]),
                permanent: attrs(&[("site", Some("a"))]),
            },
        );
        assert!(matches!(
            r,
            Response::Rejected(ApplyError::UnknownNode { ref node, .. }) if node == "ghost"
        ));
        assert_eq!(bytes(&s), before);
        let r = apply(
            &mut s,
            Command::SetNodeAttributes {
                node: "n1".into(),
                transient: attrs(&[("x", Some("1"))]),
                permanent: attrs(&[("bad", Some("1"))]),
            },
        );
        assert!(matches!(
            r,
            Response::Rejected(ApplyError::InvalidConfig { .. })
        ));
        assert_eq!(
            bytes(&s),
            before,
            "transient part applied despite rejection"
        );
    }

    // -- SetNodeState

    #[test]
    fn each_time_a_node_is_declared_lost_is_counted() {
        let mut s = ClusterState::default();
        let lost = |s: &ClusterState| s.status.nodes["n1"].declared_lost;
        set_state(&mut s, "n1", NodeState::Joined);
        assert_eq!(lost(&s), 0);
        // Unclean, then fenced: one loss.
        set_state(&mut s, "n1", NodeState::Unclean);
        set_state(&mut s, "n1", NodeState::Fenced);
        assert_eq!(lost(&s), 1);
        // Re-joined by anyone, then down without fencing: counted again,
        // and the count survives the rejoin that clears the history.
        set_state(&mut s, "n1", NodeState::Joined);
        set_state(&mut s, "n1", NodeState::Down);
        set_state(&mut s, "n1", NodeState::Joined);
        assert_eq!(lost(&s), 2);
        // A clean shutdown is no loss.
        set_state(&mut s, "n1", NodeState::Offline);
        assert_eq!(lost(&s), 2);
    }

    fn set_state(s: &mut ClusterState, node: &str, state: NodeState) -> Response {
        apply(
            s,
            Command::SetNodeState {
                node: node.into(),
                state,
            },
        )
    }

    #[test]
    fn standby_and_maintenance_are_permanent_attributes() {
        let mut s = base();
        let r = set_state(&mut s, "n1", NodeState::Standby);
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 2,
                status_version: 0
            })
        );
        assert_eq!(pattr(&s, "n1", STANDBY_ATTR), Some("on"));
        set_state(&mut s, "n1", NodeState::Maintenance);
        assert_eq!(pattr(&s, "n1", MAINTENANCE_ATTR), Some("on"));
        assert_eq!(s.config_epoch, 3);
        // Again: no change, no bump.
        set_state(&mut s, "n1", NodeState::Maintenance);
        assert_eq!(s.config_epoch, 3);
        // A joining node keeps its flags.
        set_state(&mut s, "n1", NodeState::Joined);
        assert_eq!(s.status.nodes["n1"].membership, Membership::Online);
        assert_eq!(pattr(&s, "n1", STANDBY_ATTR), Some("on"));
        // Online clears both.
        let r = set_state(&mut s, "n1", NodeState::Online);
        assert_eq!(
            r,
            Response::Applied(Versions {
                config_epoch: 4,
                status_version: 2
            })
        );
        assert_eq!(pattr(&s, "n1", STANDBY_ATTR), None);
        assert_eq!(pattr(&s, "n1", MAINTENANCE_ATTR), None);
        assert_eq!(s.status.nodes["n1"].membership, Membership::Online);
    }

    #[test]
    fn standby_of_unknown_node_is_rejected() {
        let mut s = base();
        let before = bytes(&s);
        for st in [NodeState::Standby, NodeState::Maintenance] {
            let r = set_state(&mut s, "ghost", st);
            assert!(matches!(
                r,
                Response::Rejected(ApplyError::UnknownNode { .. })
            ));
            assert_eq!(bytes(&s), before);
        }
        // Online of an unconfigured node only sets membership.
        set_state(&mut s, "ghost", NodeState::Online);
        assert_eq!(s.status.nodes["ghost"].membership, Membership::Online);
        assert_eq!(s.config_epoch, 1);
    }

    #[test]
    fn membership_states() {
        let mut s = base();
        set_state(&mut s, "n1", NodeState::Pending);
        assert_eq!(s.status.nodes["n1"].membership, Membership::Pending);
        set_state(&mut s, "n1", NodeState::Unclean);
        assert_eq!(s.status.nodes["n1"].membership, Membership::Unclean);
        assert_eq!(s.status_version, 2);
        assert_eq!(s.config_epoch, 1);
    }

    fn busy_node(s: &mut ClusterState, node: &str) {
        set_state(s, node, NodeState::Joined);
        record(
            s,
            vec![upd(
                node,
                "r1",
                op("r1_monitor_1000", "monitor", 1000, 1, 0),
            )],
        );
        apply(
            s,
            Command::SetNodeAttributes {
                node: node.into(),
                transient: attrs(&[("shutdown", Some("5"))]),
                permanent: AttrChanges::new(),
            },
        );
        assert!(!s.status.nodes[node].transient_attributes.is_empty());
        assert!(s.status.nodes[node].shutdown);
    }

    #[test]
    fn fenced_clears_history_and_transient_attributes() {
        let mut s = base();
        busy_node(&mut s, "n1");
        set_state(&mut s, "n1", NodeState::Fenced);
        let ns = &s.status.nodes["n1"];
        assert_eq!(ns.membership, Membership::Offline);
        assert!(ns.history.is_empty());
        assert!(ns.transient_attributes.is_empty());
        assert!(!ns.shutdown);
    }

    #[test]
    fn offline_clears_transient_attributes_keeps_history() {
        let mut s = base();
        busy_node(&mut s, "n1");
        set_state(&mut s, "n1", NodeState::Offline);
        let ns = &s.status.nodes["n1"];
        assert_eq!(ns.membership, Membership::Offline);
        assert_eq!(ns.history.len(), 1);
        assert!(ns.transient_attributes.is_empty());
        assert!(!ns.shutdown);
    }

    // -- RecordFencing

    fn fence(target: &str, action: &str, ok: bool, time: i64) -> Command {
        Command::RecordFencing {
            event: FencingEvent {
                target: target.into(),
                action: action.into(),
                device: Some("ipmi-1".into()),
                succeeded: ok,
                time,
                origin: Some("n2".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn successful_fencing_marks_the_target_fenced() {
        let mut s = base();
        busy_node(&mut s, "n1");
        set_state(&mut s, "n1", NodeState::Unclean);
        let v = s.status_version;
        apply(&mut s, fence("n1", "reboot", false, 10));
        assert_eq!(s.status.nodes["n1"].membership, Membership::Unclean);
        assert_eq!(s.status.nodes["n1"].history.len(), 1);
        apply(&mut s, fence("n1", "on", true, 11));
        assert_eq!(s.status.nodes["n1"].membership, Membership::Unclean);
        apply(&mut s, fence("n1", "off", true, 12));
        let ns = &s.status.nodes["n1"];
        assert_eq!(ns.membership, Membership::Offline);
        assert!(ns.history.is_empty() && ns.transient_attributes.is_empty());
        assert_eq!(s.status.fencing_history.len(), 3);
        assert_eq!(s.status.fencing_history[2].time, 12);
        assert_eq!(s.status_version, v + 3);
    }

    #[test]
    fn fencing_history_is_bounded() {
        let mut s = base();
        for t in 0..(FENCING_HISTORY_MAX as i64 + 20) {
            apply(&mut s, fence("n9", "reboot", false, t));
        }
        let h = &s.status.fencing_history;
        assert_eq!(h.len(), FENCING_HISTORY_MAX);
        assert_eq!(h[0].time, 20);
        assert_eq!(h[h.len() - 1].time, FENCING_HISTORY_MAX as i64 + 19);
    }

    // -- ClearFailures

    fn with_failures() -> ClusterState {
        let mut s = base();
        for n in ["n1", "n2"] {
            for r in ["r1", "r1:0", "r1:1", "r10", "r1-db"] {
                record(
                    &mut s,
                    vec![upd(n, r, op(&format!("{r}_monitor_1"), "monitor", 1, 1, 0))],
                );
            }
            apply(
                &mut s,
                Command::SetNodeAttributes {
                    node: n.into(),
                    transient: attrs(&[("fail-count-r1", Some("3")), ("other", Some("x"))]),
                    permanent: AttrChanges::new(),
                },
            );
        }
        s
    }

    fn failure_attrs(s: &ClusterState, node: &str) -> Vec<String> {
        s.status.nodes[node]
            .transient_attributes
            .keys()
            .filter(|k| k.starts_with("fail-count-") || k.starts_with("last-failure-"))
            .cloned()
            .collect()
    }

    #[test]
    fn clear_failures_on_one_node() {
        let mut s = with_failures();
        let v = s.status_version;
        let r = apply(
            &mut s,
            Command::ClearFailures {
                resource: "r1".into(),
                node: Some("n1".into()),
            },
        );
        assert_eq!(r.into_result().unwrap().status_version, v + 1);
        assert_eq!(
            failure_attrs(&s, "n1"),
            vec![
                "fail-count-r1-db#monitor_1",
                "fail-count-r10#monitor_1",
                "last-failure-r1-db#monitor_1",
                "last-failure-r10#monitor_1",
            ]
        );
        assert_eq!(tattr(&s, "n1", "other"), Some("x"));
        assert_eq!(failure_attrs(&s, "n2").len(), 11);
        // History is kept.
        assert_eq!(s.status.nodes["n1"].history.len(), 5);
    }

    #[test]
    fn a_failure_counts_once_and_is_kept_as_the_last_failure() {
        let mut s = base();
        let mut timed_out = op("r1_monitor_10000", "monitor", 10000, 1, 0);
        timed_out.op_status = 2; // Pacemaker's "timeout"
        record(&mut s, vec![upd("n1", "r1", timed_out)]);
        assert_eq!(tattr(&s, "n1", "fail-count-r1#monitor_10000"), Some("1"));
        let h = &s.status.nodes["n1"].history["r1"];
        let ids: Vec<&str> = h.ops.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["r1_monitor_10000", "r1_last_failure_0"]);
        // A success replaces its own record, not the last failure.
        record(
            &mut s,
            vec![upd(
                "n1",
                "r1",
                op("r1_monitor_10000", "monitor", 10000, 0, 0),
            )],
        );
        let h = &s.status.nodes["n1"].history["r1"];
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[1].rc, 1);
        assert_eq!(tattr(&s, "n1", "fail-count-r1#monitor_10000"), Some("1"));
        // Cancelled and pending results are not failures.
        for status in [-1, 1] {
            let mut o = op("r1_monitor_20000", "monitor", 20000, 1, 0);
            o.op_status = status;
            record(&mut s, vec![upd("n1", "r1", o)]);
        }
        assert_eq!(tattr(&s, "n1", "fail-count-r1#monitor_20000"), None);
    }

    #[test]
    fn an_unclean_node_cannot_rejoin_before_it_is_fenced() {
        let mut s = with_failures();
        set_state(&mut s, "n1", NodeState::Unclean);
        let r = set_state(&mut s, "n1", NodeState::Joined);
        assert!(
            matches!(r, Response::Rejected(ApplyError::Unclean { .. })),
            "{r:?}"
        );
        assert_eq!(s.status.nodes["n1"].membership, Membership::Unclean);
        assert_eq!(s.status.nodes["n1"].history.len(), 5, "nothing changed");
        set_state(&mut s, "n1", NodeState::Fenced);
        let r = set_state(&mut s, "n1", NodeState::Joined);
        assert!(matches!(r, Response::Applied(_)));
    }

    #[test]
    fn cleanup_forgets_failures_and_history_of_the_resource_and_its_instances() {
        let mut s = with_failures();
        let v = s.status_version;
        let r = apply(
            &mut s,
            Command::Cleanup {
                resource: "r1".into(),
                node: Some("n1".into()),
            },
        );
        assert_eq!(r.into_result().unwrap().status_version, v + 1);
        let left: Vec<&String> = s.status.nodes["n1"].history.keys().collect();
        assert_eq!(left, ["r1-db", "r10"]);
        assert!(!failure_attrs(&s, "n1")
            .iter()
            .any(|a| a.ends_with("-r1#monitor_1") || a == "fail-count-r1"));
        assert_eq!(s.status.nodes["n2"].history.len(), 5);
        apply(
            &mut s,
            Command::Cleanup {
                resource: "r10".into(),
                node: None,
            },
        );
        for n in ["n1", "n2"] {
            assert!(!s.status.nodes[n].history.contains_key("r10"));
            assert!(s.status.nodes[n].history.contains_key("r1-db"));
        }
    }

    #[test]
    fn joined_and_down_forget_history_and_reboot_lifetime_attributes() {
        let mut s = with_failures();
        set_state(&mut s, "n1", NodeState::Joined);
        assert!(s.status.nodes["n1"].history.is_empty());
        assert_eq!(s.status.nodes["n1"].membership, Membership::Online);
        // A restarted node's attributes were its earlier run's (Pacemaker
        // erases a leaving node's transient attributes).
        assert_eq!(tattr(&s, "n1", "other"), None);
        set_state(&mut s, "n2", NodeState::Down);
        assert!(s.status.nodes["n2"].history.is_empty());
        assert!(s.status.nodes["n2"].transient_attributes.is_empty());
        assert_eq!(s.status.nodes["n2"].membership, Membership::Offline);
    }

    #[test]
    fn clear_failures_everywhere_and_on_unknown_node() {
        let mut s = with_failures();
        apply(
            &mut s,
            Command::ClearFailures {
                resource: "r10".into(),
                node: None,
            },
        );
        for n in ["n1", "n2"] {
            assert!(!failure_attrs(&s, n).iter().any(|a| a.contains("r10")));
            assert_eq!(failure_attrs(&s, n).len(), 9);
        }
        let r = apply(
            &mut s,
            Command::ClearFailures {
                resource: "r1".into(),
                node: Some("ghost".into()),
            },
        );
        assert!(r.into_result().is_ok());
    }

    // -- determinism, encoding

    fn sequence() -> Vec<Command> {
        vec![
            Command::ApplyConfig {
                base_epoch: 1,
                config: config(&["n1", "n2", "n3"], &["r1", "r2"]),
            },
            Command::RecordOps {
                ops: vec![upd("n1", "r1", op("r1_last_0", "start", 0, 1, 0))],
            },
            Command::SetNodeState {
                node: "n3".into(),
                state: NodeState::Standby,
            },
            fence("n2", "reboot", true, 7),
            Command::ClearFailures {
                resource: "r1".into(),
                node: None,
            },
            Command::ApplyConfig {
                base_epoch: 1,
                config: Config::default(),
            },
        ]
    }

    #[test]
    fn same_commands_same_state() {
        let (mut a, mut b) = (base(), base());
        let ra: Vec<_> = sequence().into_iter().map(|c| apply(&mut a, c)).collect();
        let rb: Vec<_> = sequence()
            .into_iter()
            .map(|c| {
                // Through the wire encoding, as a follower gets them.
                let wire = serde_json::to_vec(&c).unwrap();
                apply(&mut b, serde_json::from_slice(&wire).unwrap())
            })
            .collect();
        assert_eq!(ra, rb);
        assert_eq!(bytes(&a), bytes(&b));
        assert!(matches!(
            ra[5],
            Response::Rejected(ApplyError::StaleEpoch { .. })
        ));
    }

    // -- DC commands (fencing tokens)

    fn dc(term: u64, command: Command) -> Command {
        Command::Dc {
            term,
            command: Box::new(command),
        }
    }

    fn with_history() -> ClusterState {
        let mut s = base();
        set_state(&mut s, "n1", NodeState::Joined);
        set_state(&mut s, "n2", NodeState::Joined);
        let ops = vec![upd("n2", "r1", op("r1_last_0", "start", 0, 0, 0))];
        apply(&mut s, Command::RecordOps { ops });
        s
    }

    #[test]
    fn a_dc_command_of_the_entry_term_is_applied() {
        let mut s = with_history();
        let down = Command::SetNodeState {
            node: "n2".into(),
            state: NodeState::Down,
        };
        let r = s.apply_in_term(dc(5, down), 5);
        assert!(matches!(r, Response::Applied(_)), "{r:?}");
        let ns = &s.status.nodes["n2"];
        assert_eq!(ns.membership, Membership::Offline);
        assert!(ns.history.is_empty(), "{:?}", ns.history);
    }

    #[test]
    fn a_dc_command_of_another_term_is_rejected_and_changes_nothing() {
        for (dc_term, entry_term) in [(4, 5), (6, 5), (0, 5)] {
            let mut s = with_history();
            let before = bytes(&s);
            let down = Command::SetNodeState {
                node: "n2".into(),
                state: NodeState::Down,
            };
            assert_eq!(
                s.apply_in_term(dc(dc_term, down), entry_term),
                Response::Rejected(ApplyError::StaleTerm {
                    dc_term,
                    entry_term
                })
            );
            let fenced = Command::RecordFencing {
                event: FencingEvent {
                    target: "n2".into(),
                    action: "reboot".into(),
                    succeeded: true,
                    ..Default::default()
                },
            };
            assert!(matches!(
                s.apply_in_term(dc(dc_term, fenced), entry_term),
                Response::Rejected(ApplyError::StaleTerm { .. })
            ));
            assert_eq!(bytes(&s), before, "a stale DC command changed the state");
        }
    }

    #[test]
    fn commands_of_nodes_carry_no_term_and_keep_their_encoding() {
        let mut s = with_history();
        let cmd = Command::RecordOps {
            ops: vec![upd("n1", "r2", op("r2_last_0", "start", 0, 0, 0))],
        };
        assert!(matches!(
            s.apply_in_term(cmd.clone(), 9),
            Response::Applied(_)
        ));
        let json = serde_json::to_string(&cmd).unwrap();
        assert!(
            json.starts_with(r#"{"RecordOps":{"ops":[{"node":"n1""#),
            "{json}"
        );
        let old = r#"{"SetNodeState":{"node":"n1","state":"Standby"}}"#;
        assert_eq!(
            serde_json::from_str::<Command>(old).unwrap(),
            Command::SetNodeState {
                node: "n1".into(),
                state: NodeState::Standby
            }
        );
    }
}
