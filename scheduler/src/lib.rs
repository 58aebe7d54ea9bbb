//! `ha-scheduler`: the cluster model and the placement engine.
//!
//! [`schedule`] is a pure, deterministic function of the configuration, the
//! status and "now": it reads no clock, touches no file and spawns nothing.
//! Readers turn Pacemaker CIB XML ([`cib`]) into the model.
//!
//! The engine follows Pacemaker's documented semantics so that an existing
//! Pacemaker configuration places resources the same way; the pipeline reads
//! top to bottom in [`engine`]: unpack → node scores → colocations →
//! assignment (with utilization) → roles → actions → ordering → outcome.

pub mod cib;
pub mod crm;
pub mod engine;
pub mod error;
pub mod model;
pub mod options;
pub mod rules;
pub mod score;
pub mod transition;
pub mod validate;

pub use error::ConfigError;
pub use model::{Config, Status};
pub use transition::{Placement, Transition};

/// Computes the transition that takes the cluster from `status` to the
/// placement `config` asks for. `now` is seconds since the Unix epoch (used by
/// date rules and failure-timeout).
pub fn schedule(config: &Config, status: &Status, now: i64) -> Transition {
    engine::run(config, status, now, false)
}

/// Where resources are now according to the recorded operation history
/// (what `hactl status` shows), in the placement format of [`schedule`].
pub fn current_placement(config: &Config, status: &Status, now: i64) -> Placement {
    engine::current(config, status, now)
}

/// [`schedule`], also filling [`Transition::scores`] with every resource's
/// node scores (for `--show-scores`; costs memory on large clusters).
pub fn schedule_with_scores(config: &Config, status: &Status, now: i64) -> Transition {
    engine::run(config, status, now, true)
}
