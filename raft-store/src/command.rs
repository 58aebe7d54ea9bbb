//! The commands that change the replicated cluster state (one per Raft log
//! entry), and what applying one answers. Their meaning is defined by
//! [`ClusterState::apply`](crate::ClusterState::apply).

use std::collections::BTreeMap;

use ha_scheduler::model::{Config, FencingEvent, OpRecord};
use ha_scheduler::ConfigError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Attribute changes by name: `Some(value)` sets, `None` deletes.
pub type AttrChanges = BTreeMap<String, Option<String>>;

/// A change to the cluster state. Applied deterministically on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Replace the whole configuration (compare-and-swap): accepted only if
    /// the current config epoch is `base_epoch` and `config` validates.
    /// Bumps the config epoch.
    ApplyConfig { base_epoch: u64, config: Config },
    /// Record operation results (the executor's reports), in order. Also
    /// keeps `fail-count-*` / `last-failure-*` as Pacemaker's controller does.
    /// Bumps the status version.
    RecordOps { ops: Vec<OpUpdate> },
    /// Set or delete node attributes. Transient ones live in the status (and
    /// bump the status version); permanent ones live in the node's entry of
    /// the configuration (and bump the config epoch when they change it; the
    /// node must be configured and the resulting config must validate).
    SetNodeAttributes {
        node: String,
        transient: AttrChanges,
        permanent: AttrChanges,
    },
    /// Change what the cluster knows about a node; see [`NodeState`].
    SetNodeState { node: String, state: NodeState },
    /// Append to the fencing history. A successful `off` or `reboot` also
    /// marks the target fenced ([`NodeState::Fenced`]). Bumps the status version.
    RecordFencing { event: FencingEvent },
    /// Forget failures: delete the `fail-count-*` and `last-failure-*`
    /// transient attributes of `resource` (and of its clone instances
    /// `resource:N`) on `node`, or on every node. Bumps the status version.
    ClearFailures {
        resource: String,
        node: Option<String>,
    },
    /// `hactl resource cleanup`: forget failures (as `ClearFailures`) and
    /// the operation history of `resource` (and its clone instances) on
    /// `node` or on every node, so the cluster probes it again there.
    /// Bumps the status version.
    Cleanup {
        resource: String,
        node: Option<String>,
    },
    /// DRBD's resource-level fencing (ha-node's fence-peer handler, as
    /// `crm-fence-peer.9.sh` does it): the location constraint `id` keeps
    /// the promotable clone `rsc` from being promoted anywhere but on
    /// `keep_on` (one rule: `role=Promoted`, `-INFINITY`, `#uname ne
    /// keep_on`); with `keep_on: None` the constraint `id` is removed (the
    /// unfence after a resync). `id` starts with [`PROMOTION_FENCE_PREFIX`].
    /// Bumps the configuration epoch when it changes the configuration.
    PromotionFence {
        id: String,
        rsc: String,
        keep_on: Option<String>,
    },
    /// A command written by the DC (membership, fencing, the results it
    /// records itself), carrying the Raft term in which the DC became leader:
    /// a fencing token. Applied only if `term` is the term of the log entry
    /// carrying it, so a deposed DC's writes (proposed from a stale view,
    /// or forwarded to the new leader) change nothing.
    Dc { term: u64, command: Box<Command> },
}

/// One operation result of one resource on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpUpdate {
    pub node: String,
    /// The resource id as the executor knows it (`base` or `base:N`).
    pub resource: String,
    /// The agent that ran it (kept in the resource's history).
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    /// The result. Replaces the history record with the same `op.id`
    /// (Pacemaker's keys: `<rsc>_last_0`, `<rsc>_last_failure_0`,
    /// `<rsc>_monitor_<ms>`), so the history stays bounded.
    pub op: OpRecord,
}

/// A node state change, as `crm_mon` names node states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// Member and eligible (`crm node online`): membership `Online`, and the
    /// permanent `standby` and `maintenance` attributes deleted.
    Online,
    /// Member again after a (re)join: membership `Online`, its operation
    /// history deleted (its executor starts empty: probes find what runs
    /// there), attributes kept (a node that was in standby stays in standby,
    /// fail counts stay).
    Joined,
    /// In the membership but not yet joined: membership `Pending`.
    Pending,
    /// Runs nothing (`crm node standby`): permanent `standby=on`; membership unchanged.
    Standby,
    /// Resources left unmanaged (`crm node maintenance`): permanent
    /// `maintenance=on`; membership unchanged.
    Maintenance,
    /// Lost while expected up: membership `Unclean` (must be fenced before
    /// its resources move).
    Unclean,
    /// Confirmed fenced: membership `Offline`, and the node's operation
    /// history and transient attributes deleted (what Pacemaker does after a
    /// successful fencing, so nothing is believed to run there).
    Fenced,
    /// Lost while fencing is disabled (`stonith-enabled=false`): assumed
    /// down, as Pacemaker does: membership `Offline`, history and transient
    /// attributes deleted (like `Fenced`, without a fencing record).
    Down,
    /// Left cleanly: membership `Offline`, transient attributes deleted,
    /// history kept.
    Offline,
}

/// The id prefix of the constraints [`Command::PromotionFence`] places
/// (`drbd-fence-by-handler-RES-CLONE`, the id DRBD's own handler uses).
pub const PROMOTION_FENCE_PREFIX: &str = "drbd-fence-by-handler-";

/// The two counters readers wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// Bumped by every change of the configuration.
    pub config_epoch: u64,
    /// Bumped by every accepted status command.
    pub status_version: u64,
}

/// What applying a log entry answers (the `client_write` response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Applied; the counters after it.
    Applied(Versions),
    /// Rejected; nothing changed.
    Rejected(ApplyError),
}

impl Response {
    /// `Ok(versions)` if applied, the rejection otherwise.
    pub fn into_result(self) -> Result<Versions, ApplyError> {
        match self {
            Response::Applied(v) => Ok(v),
            Response::Rejected(e) => Err(e),
        }
    }
}

/// Why a command was rejected. A rejected command changes nothing.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum ApplyError {
    #[error(
        "the configuration changed since it was read (written against epoch {base_epoch}, \
         now at {current_epoch}): read it again and reapply the change"
    )]
    StaleEpoch { base_epoch: u64, current_epoch: u64 },
    #[error("configuration rejected, nothing applied: {message}")]
    InvalidConfig {
        /// The validation error as text (what travels over the wire).
        message: String,
        /// The structured error, on the node that applied the entry.
        #[serde(skip)]
        error: Option<ConfigError>,
    },
    #[error("node '{node}' is unclean: it rejoins only after it is fenced (or confirmed down)")]
    Unclean { node: String },
    #[error("node '{node}' is not in the configuration, so its {what} cannot be set: add the node first")]
    UnknownNode { node: String, what: String },
    #[error(
        "written by a deposed DC: its term {dc_term} is not the term {entry_term} of the \
         log entry carrying it (a newer DC leads)"
    )]
    StaleTerm { dc_term: u64, entry_term: u64 },
}

impl From<ConfigError> for ApplyError {
    fn from(e: ConfigError) -> Self {
        ApplyError::InvalidConfig {
            message: e.to_string(),
            error: Some(e),
        }
    }
}
