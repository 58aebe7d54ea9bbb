//! The scheduler's output: the actions that take the cluster from its status
//! to the target placement, with ordering edges, and the placement the
//! cluster reaches when every runnable action succeeds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::Role;
use crate::score::Score;

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ActionKind {
    Start,
    Stop,
    Promote,
    Demote,
    MigrateTo,
    MigrateFrom,
    /// A recurring monitor (`interval_ms > 0`) or a probe (`0`).
    Monitor {
        interval_ms: u64,
    },
    Notify,
    /// Power off (or reboot) `node`.
    Fence,
}

impl ActionKind {
    pub fn name(&self) -> String {
        match self {
            ActionKind::Start => "start".into(),
            ActionKind::Stop => "stop".into(),
            ActionKind::Promote => "promote".into(),
            ActionKind::Demote => "demote".into(),
            ActionKind::MigrateTo => "migrate_to".into(),
            ActionKind::MigrateFrom => "migrate_from".into(),
            ActionKind::Monitor { interval_ms } => format!("monitor_{interval_ms}"),
            ActionKind::Notify => "notify".into(),
            ActionKind::Fence => "fence".into(),
        }
    }
}

/// One action of a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Index in `Transition::actions`.
    pub id: usize,
    pub kind: ActionKind,
    /// The resource instance (`rsc`, `rsc:N`); `None` for fencing.
    pub rsc: Option<String>,
    /// Where it runs (for fencing: the target).
    pub node: String,
    /// Why it is scheduled (e.g. "move", "recover", "node unclean").
    pub reason: String,
}

/// The planned actions and their ordering: `(before, after)` pairs of action ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub actions: Vec<Action>,
    pub edges: Vec<(usize, usize)>,
    /// Where everything is once every runnable action has succeeded.
    pub placement: Placement,
    /// Allocation scores per resource instance and node, as the engine saw
    /// them when it chose (for `--show-scores`).
    pub scores: BTreeMap<String, BTreeMap<String, Score>>,
    /// Why some resources cannot run (operator-facing notes).
    pub notes: Vec<String>,
}

/// Resource and node states, in the placement format of the conformance suite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Node name -> crm_mon wording (`online`, `standby`, `OFFLINE (standby)`...).
    pub nodes: BTreeMap<String, String>,
    /// Leaf key (`vip`, `dlm@node1`, `ip:0`) -> role and nodes.
    pub resources: BTreeMap<String, PlacedResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedResource {
    pub role: Role,
    /// Sorted node names where it is active.
    pub nodes: Vec<String>,
    /// Not in the configuration: known from its operation history only
    /// (crm_mon's `ORPHANED`), still active.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orphaned: bool,
}

impl Placement {
    /// The JSON of `hactl simulate --output json`.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: serde_json::Map<String, serde_json::Value> = self
            .nodes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let resources: serde_json::Map<String, serde_json::Value> = self
            .resources
            .iter()
            .map(|(k, v)| {
                let mut r = serde_json::json!({"role": v.role.as_str(), "nodes": v.nodes});
                if v.orphaned {
                    r["orphaned"] = serde_json::Value::Bool(true);
                }
                (k.clone(), r)
            })
            .collect();
        serde_json::json!({"nodes": nodes, "resources": resources})
    }
}
