//! The cluster model: what the operator declares (`Config`) and what happened
//! (`Status`). Parsed once at the edge (CIB XML, crm syntax, Raft commands) into
//! these typed values; nothing downstream handles raw XML.
//!
//! Names follow Pacemaker's ("Pacemaker Explained") so that an existing
//! configuration maps one to one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::score::Score;

/// Name/value pairs (instance attributes, meta attributes, node attributes).
pub type Attrs = BTreeMap<String, String>;

/// Everything the operator declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Cluster options (`crm_config`), e.g. `stonith-enabled`.
    pub properties: Attrs,
    /// `rsc_defaults` meta attributes.
    pub rsc_defaults: Attrs,
    /// `op_defaults` meta attributes.
    pub op_defaults: Attrs,
    /// Nodes in configuration order.
    pub nodes: Vec<NodeConfig>,
    /// Top-level resources in configuration order.
    pub resources: Vec<Resource>,
    pub constraints: Constraints,
    /// `fencing-topology` levels.
    pub fencing_levels: Vec<FencingLevel>,
}

/// A configured primitive with what contains it.
#[derive(Debug, Clone, Copy)]
pub struct PrimitiveRef<'a> {
    pub primitive: &'a Primitive,
    pub group: Option<&'a Group>,
    pub clone: Option<&'a CloneResource>,
}

impl PrimitiveRef<'_> {
    /// Its meta attributes as they apply: `rsc_defaults`, then the clone's,
    /// the group's and its own (later wins).
    pub fn effective_meta(&self, config: &Config) -> Attrs {
        let mut m = config.rsc_defaults.clone();
        for layer in [
            self.clone.map(|c| &c.meta),
            self.group.map(|g| &g.meta),
            Some(&self.primitive.meta),
        ]
        .into_iter()
        .flatten()
        {
            m.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        m
    }

    /// Whether instances of it are interchangeable (an anonymous clone):
    /// their history is kept under the primitive's id on each node.
    pub fn anonymous_clone(&self) -> bool {
        self.clone.is_some_and(|c| {
            !c.meta.get("globally-unique").is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "yes" | "on" | "1" | "y"
                )
            })
        })
    }
}

impl Config {
    /// The primitive `id` (a clone instance's `id:N` is accepted).
    pub fn primitive(&self, id: &str) -> Option<PrimitiveRef<'_>> {
        let id = id.split(':').next().unwrap_or(id);
        fn walk<'a>(
            r: &'a Resource,
            id: &str,
            group: Option<&'a Group>,
            clone: Option<&'a CloneResource>,
        ) -> Option<PrimitiveRef<'a>> {
            match r {
                Resource::Primitive(p) => (p.id == id).then_some(PrimitiveRef {
                    primitive: p,
                    group,
                    clone,
                }),
                Resource::Group(g) => g.members.iter().find(|m| m.id == id).map(|p| PrimitiveRef {
                    primitive: p,
                    group: Some(g),
                    clone,
                }),
                Resource::Clone(c) => walk(&c.child, id, group, Some(c)),
            }
        }
        self.resources.iter().find_map(|r| walk(r, id, None, None))
    }

    /// The meta attributes of the resource `id` at any level (primitive,
    /// group, clone, group member).
    pub fn meta_mut(&mut self, id: &str) -> Option<&mut Attrs> {
        fn walk<'a>(r: &'a mut Resource, id: &str) -> Option<&'a mut Attrs> {
            match r {
                Resource::Primitive(p) => (p.id == id).then_some(&mut p.meta),
                Resource::Group(g) => {
                    if g.id == id {
                        return Some(&mut g.meta);
                    }
                    g.members
                        .iter_mut()
                        .find(|m| m.id == id)
                        .map(|m| &mut m.meta)
                }
                Resource::Clone(c) => {
                    if c.id == id {
                        Some(&mut c.meta)
                    } else {
                        walk(&mut c.child, id)
                    }
                }
            }
        }
        self.resources.iter_mut().find_map(|r| walk(r, id))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Pacemaker's node id (often equal to the name).
    pub id: String,
    /// The node name (`uname`).
    pub name: String,
    /// Permanent node attributes (`instance_attributes`).
    pub attributes: Attrs,
    /// Capacity per utilization attribute.
    pub utilization: Attrs,
    /// `<node score=...>`: base score of every resource on this node.
    pub score: Option<Score>,
}

/// A resource as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Resource {
    Primitive(Primitive),
    Group(Group),
    Clone(CloneResource),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Primitive {
    pub id: String,
    /// `ocf`, `lsb`, `systemd`, `stonith`, `service`.
    pub class: String,
    pub provider: Option<String>,
    /// The agent name (`type` in the CIB).
    pub agent: String,
    /// Instance attributes (`params` in crm syntax).
    pub params: Attrs,
    pub meta: Attrs,
    pub utilization: Attrs,
    pub ops: Vec<OpConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub meta: Attrs,
    pub members: Vec<Primitive>,
}

/// A clone; `promotable` for a promotable clone (Pacemaker's old `master`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneResource {
    pub id: String,
    pub meta: Attrs,
    pub promotable: bool,
    /// A primitive or a group.
    pub child: Box<Resource>,
}

/// A configured operation (`op`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpConfig {
    pub id: String,
    /// `start`, `stop`, `monitor`, `promote`, ...
    pub name: String,
    pub interval_ms: u64,
    /// Every other attribute as written (`timeout`, `role`, `on-fail`, `enabled`...).
    pub attrs: Attrs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Stopped,
    Started,
    Unpromoted,
    Promoted,
}

impl Role {
    /// Parses old and new role names (`Master`/`Slave` too).
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "stopped" => Some(Role::Stopped),
            "started" => Some(Role::Started),
            "unpromoted" | "slave" => Some(Role::Unpromoted),
            "promoted" | "master" => Some(Role::Promoted),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Unpromoted => "Unpromoted",
            Role::Promoted => "Promoted",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    pub locations: Vec<Location>,
    pub colocations: Vec<Colocation>,
    pub orders: Vec<Order>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    /// A resource id, or with `rsc_pattern` a regular expression.
    pub rsc: String,
    pub rsc_pattern: bool,
    pub role: Option<Role>,
    pub target: LocationTarget,
    /// `always` (default), `never`, `exclusive`.
    pub resource_discovery: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LocationTarget {
    Node { node: String, score: Score },
    Rules(Vec<Rule>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub score: RuleScore,
    pub boolean_op: BoolOp,
    pub role: Option<Role>,
    pub expressions: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RuleScore {
    Value(Score),
    /// `score-attribute`: the node attribute's value is the score.
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoolOp {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expression {
    Attr(AttrExpression),
    Date(DateExpression),
    Rule(Rule),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrExpression {
    pub id: String,
    pub attribute: String,
    pub op: CmpOp,
    pub value: Option<String>,
    pub value_type: Option<ValueType>,
    /// `literal` (default), `param`, `meta`.
    pub value_source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Lt,
    Gt,
    Lte,
    Gte,
    Eq,
    Ne,
    Defined,
    NotDefined,
}

impl CmpOp {
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            "lt" => CmpOp::Lt,
            "gt" => CmpOp::Gt,
            "lte" => CmpOp::Lte,
            "gte" => CmpOp::Gte,
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "defined" => CmpOp::Defined,
            "not_defined" => CmpOp::NotDefined,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "lt",
            CmpOp::Gt => "gt",
            CmpOp::Lte => "lte",
            CmpOp::Gte => "gte",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Defined => "defined",
            CmpOp::NotDefined => "not_defined",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueType {
    String,
    Integer,
    Number,
    Version,
}

impl ValueType {
    pub fn parse(s: &str) -> Option<ValueType> {
        Some(match s {
            "string" => ValueType::String,
            "integer" | "int" => ValueType::Integer,
            "number" => ValueType::Number,
            "version" => ValueType::Version,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Version => "version",
        }
    }
}

/// A `date_expression`: `in_range`, `gt`, `lt` or `date_spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateExpression {
    pub id: String,
    pub operation: String,
    pub start: Option<String>,
    pub end: Option<String>,
    /// `duration` or `date_spec` fields (years, months, hours, weekdays...).
    pub duration: Attrs,
    pub date_spec: Attrs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Colocation {
    pub id: String,
    pub score: Score,
    pub node_attribute: Option<String>,
    pub influence: Option<bool>,
    pub form: ColocationForm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColocationForm {
    /// `rsc` (the dependent) with `with_rsc` (the primary).
    Pair {
        rsc: String,
        with_rsc: String,
        rsc_role: Option<Role>,
        with_rsc_role: Option<Role>,
    },
    Sets(Vec<ResourceSet>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSet {
    pub id: String,
    pub resources: Vec<String>,
    /// Default true.
    pub sequential: Option<bool>,
    pub require_all: Option<bool>,
    pub role: Option<Role>,
    pub action: Option<String>,
    pub kind: Option<OrderKind>,
    pub score: Option<Score>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    Mandatory,
    Optional,
    Serialize,
}

impl OrderKind {
    pub fn parse(s: &str) -> Option<OrderKind> {
        match s.to_ascii_lowercase().as_str() {
            "mandatory" => Some(OrderKind::Mandatory),
            "optional" | "advisory" => Some(OrderKind::Optional),
            "serialize" => Some(OrderKind::Serialize),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Mandatory => "Mandatory",
            OrderKind::Optional => "Optional",
            OrderKind::Serialize => "Serialize",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    /// `None` means Mandatory (or Optional when a legacy `score="0"` was given:
    /// readers store that as `Some(Optional)`).
    pub kind: Option<OrderKind>,
    pub symmetrical: Option<bool>,
    pub form: OrderForm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderForm {
    Pair {
        first: String,
        then: String,
        first_action: Option<String>,
        then_action: Option<String>,
        /// `require-all` (clone-min semantics for `first`).
        require_all: Option<bool>,
    },
    Sets(Vec<ResourceSet>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FencingLevel {
    pub id: String,
    /// A node name, a name pattern, or `attr:NAME=VALUE` for the nodes
    /// with that attribute (crm shell's notation).
    pub target: String,
    pub index: u32,
    pub devices: Vec<String>,
}

// ---------------------------------------------------------------------------
// Status

/// What happened: membership, operation history, node attributes, fencing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub have_quorum: bool,
    /// The designated controller (our Raft leader), if known.
    pub dc: Option<String>,
    /// Per node name; a configured node with no entry was never seen.
    pub nodes: BTreeMap<String, NodeStatus>,
    /// Fencing history, oldest first.
    pub fencing_history: Vec<FencingEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub membership: Membership,
    /// The node asked to shut down (transient `shutdown` attribute).
    pub shutdown: bool,
    /// Transient attributes (`fail-count-*`, `master-*`, `standby`...).
    pub transient_attributes: Attrs,
    /// Operation history per resource id (as recorded: clone instances may
    /// appear as `base` or `base:N`).
    pub history: BTreeMap<String, ResourceHistory>,
    /// How often the cluster declared this node lost (down without fencing,
    /// unclean, fenced): a running node that sees it grow knows its
    /// resources are being recovered elsewhere, even if it was re-joined
    /// before it looked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub declared_lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How the cluster sees a node's membership.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    /// Member of the cluster, controller up, joined.
    Online,
    /// In the membership but not (yet) joined: runs nothing.
    Pending,
    /// Cleanly down (or fenced).
    #[default]
    Offline,
    /// Lost while expected up: must be fenced before its resources move.
    Unclean,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceHistory {
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    /// Operations in the order recorded; the scheduler orders them by `call_id`.
    pub ops: Vec<OpRecord>,
}

/// One operation result (`lrm_rsc_op`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    pub id: String,
    pub operation: String,
    pub interval_ms: u64,
    pub call_id: i64,
    pub rc: i32,
    /// Execution status (Pacemaker's `PCMK_EXEC_*`): -1 pending (begun,
    /// not finished: rc is then 193), 0 done, 1 cancelled, 2 timeout,
    /// 3 not supported, 4 error, 5 hard error, 6 fatal error, 7 not
    /// installed...
    pub op_status: i32,
    /// The rc the controller expected (from the transition key); `None` if unknown.
    pub expected_rc: Option<i32>,
    /// Seconds since the epoch of the last rc change / execution.
    pub last_rc_change: Option<i64>,
    pub migrate_source: Option<String>,
    pub migrate_target: Option<String>,
    pub op_digest: Option<String>,
    pub exit_reason: Option<String>,
    /// When it finished, milliseconds since the epoch (ours; Pacemaker's
    /// CIB has seconds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FencingEvent {
    pub target: String,
    pub action: String,
    pub device: Option<String>,
    pub succeeded: bool,
    /// Seconds since the epoch.
    pub time: i64,
    pub origin: Option<String>,
    /// Why it failed (redacted: no secrets), for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it completed, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<i64>,
}
