//! `ha-controller`: the DC and the node-local safety logic as pure state
//! machines, in the manner of openraft's `engine/`: each takes the time,
//! one input and a view of the replicated state, and returns the effects a
//! runtime must execute. Nothing here performs I/O, reads a clock, spawns a
//! thread or knows tokio, tonic, openraft or sled; `ha-node` is the runtime.
//!
//! - [`dc`]: the designated controller (runs on the Raft leader):
//!   membership and loss detection (the one place that decides a node is
//!   lost), the new DC's collection round, planning requests (the scheduler
//!   runs off the runtime), dispatch and in-flight tracking, fencing
//!   decisions. Every write and every dispatch carries the DC's term (the
//!   fencing token).
//! - [`lease`]: the quorum lease of one node (`no-quorum-policy`).
//! - [`two_node`]: the two-node fence race, the takeover, and what a node
//!   that booted may do (wait_for_all, the durable survivor record).
//! - [`sim`]: a deterministic in-memory cluster (one thread, simulated time
//!   and network, seeded) running these state machines over a replicated-log
//!   model, with fault injection and checkers for ARCHITECTURE.md's
//!   invariants against the simulated agents' own state.

pub mod dc;
pub mod lease;
pub mod sim;
pub mod two_node;

/// Milliseconds of a monotonic clock, given by the runtime (never read here).
pub type Millis = u64;

/// The safety mechanisms of the design, each of which closes one hole found
/// on the running cluster (issue 12). [`Design::default`] is the design;
/// [`Design::legacy`] is the old design, so that the simulator can show each
/// hole open without the mechanism and closed with it. Only the simulator
/// builds anything but the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Design {
    /// DC writes and dispatches carry the DC's term; apply rejects a DC write
    /// whose term is not its entry's; the DC never forwards its own writes;
    /// executors refuse older terms; fencing runs only after the DC has
    /// confirmed it still leads; a DC that stalled blames nobody for its
    /// own silence. (Hole 1.)
    pub fencing_tokens: bool,
    /// A start / promote / migration is recorded as pending before the agent
    /// runs, the agent runs to completion without its caller, and a new DC
    /// collects every executor's in-flight operations before it plans. (Hole 2.)
    pub pending_ops: bool,
    /// Resources not in the configuration are stopped. (Hole 3.)
    pub stop_orphans: bool,
    /// A two-node survivor remembers it durably; a booted node leads or
    /// unblocks only when the peer cannot have taken over. (Hole 4.)
    pub survivor_record: bool,
    /// Without STONITH a lost node is `Down` only after node-timeout plus its
    /// largest stop timeout, and the lease stops everything at once without
    /// waiting on records. (Hole 5.)
    pub down_after_stops: bool,
    /// Only a node's own operations and attributes are accepted from its
    /// certificate; membership and fencing only from the leader's DC. (Hole 6.)
    pub commands_bound_to_node: bool,
    /// The two-node tie-break depends only on what both sides agree on
    /// (node ids), never on state a follower may not have applied. (Hole 7.)
    pub agreed_tie_break: bool,
    /// The scheduler runs off the runtime and clone counts are bounded by
    /// validation. (Hole 8.)
    pub scheduler_off_runtime: bool,
    /// An action on a resource ordered after (order constraint, group) one
    /// with an operation in flight or pending waits for that operation:
    /// the scheduler counts a pending start as done, so a plan made while
    /// a group member starts would start the next member with it. (Hole 9,
    /// found by the VM lab: a filesystem mounted while its group's first
    /// member still started.)
    pub ordered_dispatch: bool,
}

impl Default for Design {
    fn default() -> Self {
        Design {
            fencing_tokens: true,
            pending_ops: true,
            stop_orphans: true,
            survivor_record: true,
            down_after_stops: true,
            commands_bound_to_node: true,
            agreed_tie_break: true,
            scheduler_off_runtime: true,
            ordered_dispatch: true,
        }
    }
}

impl Design {
    /// The design before issue 12: every mechanism off.
    pub fn legacy() -> Design {
        Design {
            fencing_tokens: false,
            pending_ops: false,
            stop_orphans: false,
            survivor_record: false,
            down_after_stops: false,
            commands_bound_to_node: false,
            agreed_tie_break: false,
            scheduler_off_runtime: false,
            ordered_dispatch: false,
        }
    }

    /// The design with the mechanism `name` off; `None` for an unknown name.
    pub fn without(name: &str) -> Option<Design> {
        let mut d = Design::default();
        let f = match name {
            "fencing_tokens" => &mut d.fencing_tokens,
            "pending_ops" => &mut d.pending_ops,
            "stop_orphans" => &mut d.stop_orphans,
            "survivor_record" => &mut d.survivor_record,
            "down_after_stops" => &mut d.down_after_stops,
            "commands_bound_to_node" => &mut d.commands_bound_to_node,
            "agreed_tie_break" => &mut d.agreed_tie_break,
            "scheduler_off_runtime" => &mut d.scheduler_off_runtime,
            "ordered_dispatch" => &mut d.ordered_dispatch,
            _ => return None,
        };
        *f = false;
        Some(d)
    }
}
