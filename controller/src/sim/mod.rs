//! The deterministic cluster simulator: one thread, simulated time and
//! network, every choice drawn from one seeded generator, so a seed is a
//! replayable schedule. It runs the real state machines of this crate
//! ([`crate::dc::Dc`], [`crate::lease::Lease`], [`crate::two_node`]) and the
//! real scheduler (`ha_scheduler::schedule`) over a replicated-log model
//! (terms, elections with Raft's vote rule, per-node logs, majority commit,
//! lagging apply), simulated executors and agents, and fence devices.
//!
//! Faults: crash and restart, pause (SIGSTOP), partitions (also one-way),
//! message delay, drop, reordering and duplication, clock jumps, fence
//! devices that fail, time out or lie, agents that fail, hang or are slow,
//! configuration changes (orphans, renames, rejected configs), a node
//! certificate writing another node's fencing, an operator's unblock.
//! After every event the checkers ([`check`]) test ARCHITECTURE.md's
//! invariants against the simulated agents' own state, never the status.

pub mod check;
mod cluster;
pub mod rng;
pub mod scenario;

pub use cluster::{run, DeviceMode, Fault, Outcome, Spec, Target, Trigger};
