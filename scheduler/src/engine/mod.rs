//! The placement pipeline, read top to bottom:
//! unpack config and status → node scores (location rules, stickiness,
//! failure bans) → colocation chains → assignment (with utilization) →
//! roles (promotion) → actions → ordering and runnability → outcome.
//!
//! Internally resources live in an arena (`Rsc`), clone instances expanded,
//! nodes in Pacemaker's natural sort order.

mod assign;
mod outcome;
mod unpack;

use std::collections::BTreeMap;

use crate::model::{Attrs, Config, Role, Status};
use crate::score::Score;
use crate::transition::Transition;

pub fn run(config: &Config, status: &Status, now: i64, with_scores: bool) -> Transition {
    let mut w = unpack::unpack(config, status, now);
    assign::apply_locations(&mut w, config);
    assign::apply_node_criteria(&mut w);
    assign::assign_all(&mut w);
    outcome::build(&mut w, with_scores)
}

/// Where resources are now, by their recorded history (no scheduling).
pub fn current(config: &Config, status: &Status, now: i64) -> crate::transition::Placement {
    let w = unpack::unpack(config, status, now);
    let leaves = (0..w.rscs.len()).filter(|&r| w.rscs[r].variant == Variant::Primitive);
    outcome::placement(
        &w,
        &[],
        leaves.map(|r| (r, w.rscs[r].running_on.clone(), w.rscs[r].role)),
    )
}

pub(crate) type NodeIx = usize;
pub(crate) type RscIx = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    Default,
    Utilization,
    Minimal,
    Balanced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoQuorumPolicy {
    Stop,
    Freeze,
    Ignore,
    Demote,
    Suicide,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Attrs,
    /// Remaining capacity per utilization attribute.
    pub capacity: BTreeMap<String, i64>,
    pub online: bool,
    pub unclean: bool,
    pub standby: bool,
    pub pending: bool,
    pub maintenance: bool,
    pub shutdown: bool,
    /// Resources assigned to this node during this run.
    pub num_resources: usize,
    /// Will be fenced by this transition.
    pub fence: bool,
}

impl Node {
    /// Can run resources (Pacemaker's `pcmk__node_available` without score).
    pub fn available(&self) -> bool {
        self.online
            && !self.unclean
            && !self.standby
            && !self.pending
            && !self.maintenance
            && !self.shutdown
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Primitive,
    Group,
    Clone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OnFail {
    Ignore,
    Demote,
    Restart,
    Migrate,
    Block,
    Stop,
    Standby,
    Fence,
}

#[derive(Debug, Clone)]
pub(crate) struct Rsc {
    pub id: String,
    /// For clone instances: the configured id without `:N`.
    pub base_id: String,
    pub variant: Variant,
    pub parent: Option<RscIx>,
    pub children: Vec<RscIx>,
    pub meta: Attrs,
    pub params: Attrs,
    pub utilization: BTreeMap<String, i64>,
    /// Recurring monitors: (interval ms, role they run in; `None` = any).
    pub monitors: Vec<(u64, Option<Role>)>,
    pub allow_migrate: bool,
    pub priority: Score,
    pub stickiness: Score,
    pub managed: bool,
    pub migration_threshold: i64,
    pub failure_timeout: i64,
    pub critical: bool,
    pub target_role: Option<Role>,
    /// Clone settings (for clones; instances read their parent's).
    pub promotable: bool,
    pub unique: bool,
    pub clone_max: usize,
    pub clone_node_max: usize,
    pub promoted_max: usize,
    pub promoted_node_max: usize,
    pub interleave: bool,
    pub clone_min: usize,
    pub requires_quorum: bool,
    /// The name this instance has in the history (anonymous clones).
    pub clone_name: Option<String>,
    /// Not in the configuration: made from its operation history on some
    /// node (Pacemaker's `pe_rsc_orphan`), active there. With
    /// `stop-orphan-resources=true` (the default) it is banned everywhere
    /// and stopped; otherwise unmanaged and left running.
    pub orphan: bool,

    // -- status
    /// Nodes where it is active (with its role there).
    pub running_on: Vec<NodeIx>,
    pub role: Role,
    pub failed: bool,
    pub on_fail: OnFail,
    /// A partially migrated resource: (source, target).
    pub partial_migration: Option<(NodeIx, NodeIx)>,
    /// A start recorded as pending (begun, result not yet recorded) on
    /// some node: active there, and not live-migrated.
    pub start_pending: bool,
    /// Has been probed (or was active) on these nodes.
    pub probed_on: Vec<NodeIx>,
    /// Recurring monitors the history says run: (node, interval ms).
    pub active_monitors: Vec<(NodeIx, u64)>,

    // -- scheduling
    /// Node weights; `None` = not allowed.
    pub allowed: Vec<Option<Score>>,
    /// Colocation ids where this is the dependent / the primary.
    pub this_with: Vec<usize>,
    pub with_this: Vec<usize>,
    pub provisional: bool,
    pub allocating: bool,
    pub merging: bool,
    pub assigned: Option<NodeIx>,
    pub next_role: Option<Role>,
    /// Per-node instance count (clones).
    pub node_count: Vec<usize>,
    /// Promotion priority (promotable instances).
    pub sort_index: Score,
}

#[derive(Debug, Clone)]
pub(crate) struct Coloc {
    pub id: String,
    pub dependent: RscIx,
    pub primary: RscIx,
    pub score: Score,
    pub dependent_role: Option<Role>,
    pub primary_role: Option<Role>,
    pub node_attribute: String,
    pub influence: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Ordering {
    pub id: String,
    /// With `require_all == false` (a one-or-more set), any one suffices.
    pub firsts: Vec<RscIx>,
    pub first_action: String,
    pub then: RscIx,
    pub then_action: String,
    pub mandatory: bool,
    pub require_all: bool,
    /// Symmetrical orders also stop "then" when "first" stops.
    pub symmetrical: bool,
}

/// The whole scheduling state of one run.
pub(crate) struct World {
    pub nodes: Vec<Node>,
    pub rscs: Vec<Rsc>,
    /// Top-level resources in allocation order.
    pub top: Vec<RscIx>,
    pub colocs: Vec<Coloc>,
    pub orders: Vec<Ordering>,
    pub strategy: Strategy,
    pub symmetric: bool,
    pub stonith_enabled: bool,
    pub have_stonith_resource: bool,
    pub have_quorum: bool,
    pub no_quorum_policy: NoQuorumPolicy,
    pub maintenance_mode: bool,
    pub stop_all: bool,
    pub now: i64,
    pub notes: Vec<String>,
    /// Location constraints with `role=Promoted`: (rsc, node, score).
    pub promoted_locations: Vec<(RscIx, NodeIx, Score)>,
    /// Configured id -> resource (a clone's child id maps to the clone).
    pub by_config_id: std::collections::HashMap<String, RscIx>,
    /// For each node attribute colocations compare on: per node, a class
    /// number shared by nodes whose values are equal (case-insensitive).
    pub attr_classes: std::collections::HashMap<String, Vec<Option<u32>>>,
}

impl World {
    pub fn node_ix(&self, name: &str) -> Option<NodeIx> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// All primitives under `r` (itself if a primitive).
    pub fn leaves(&self, r: RscIx) -> Vec<RscIx> {
        let mut out = Vec::new();
        let mut stack = vec![r];
        while let Some(x) = stack.pop() {
            if self.rscs[x].variant == Variant::Primitive {
                out.push(x);
            } else {
                for &c in self.rscs[x].children.iter().rev() {
                    stack.push(c);
                }
            }
        }
        out
    }

    /// The clone above `r`, if any.
    pub fn clone_of(&self, r: RscIx) -> Option<RscIx> {
        let mut cur = self.rscs[r].parent;
        while let Some(p) = cur {
            if self.rscs[p].variant == Variant::Clone {
                return Some(p);
            }
            cur = self.rscs[p].parent;
        }
        None
    }

    /// Per-node value classes of a node attribute.
    pub fn attr_class(&self, attr: &str) -> std::borrow::Cow<'_, [Option<u32>]> {
        match self.attr_classes.get(attr) {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => std::borrow::Cow::Owned(compute_attr_class(&self.nodes, attr)),
        }
    }

    pub fn can_fence(&self, node: NodeIx) -> bool {
        // Pacemaker's simulation fences even when no device is configured;
        // the controller reports the missing device when it tries.
        if !self.stonith_enabled {
            return false;
        }
        if self.have_quorum || self.no_quorum_policy == NoQuorumPolicy::Ignore {
            return true;
        }
        self.nodes[node].online
    }
}

pub(crate) fn compute_attr_class(nodes: &[Node], attr: &str) -> Vec<Option<u32>> {
    let mut ids: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    nodes
        .iter()
        .map(|n| {
            n.attrs.get(attr).map(|v| {
                let next = ids.len() as u32;
                *ids.entry(v.to_ascii_lowercase()).or_insert(next)
            })
        })
        .collect()
}
