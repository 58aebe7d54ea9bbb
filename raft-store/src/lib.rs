//! `ha-raft-store`: the cluster's single source of truth, a Raft log on sled.
//!
//! - [`types`]: the openraft type configuration ([`TypeConfig`]).
//! - [`ClusterState`] and [`Command`]: the replicated configuration and
//!   status, changed only by commands applied deterministically on every node.
//! - [`LogStore`] ([`openraft::storage::RaftLogStorage`]) and
//!   [`StateMachineStore`] ([`openraft::storage::RaftStateMachine`]) over one
//!   directory opened with [`open`]: an entry is acknowledged only once it is
//!   on disk (sled flush + fdatasync), snapshots are built, installed and
//!   restored on start, and [`Compaction`] snapshots every N entries and
//!   purges behind them.
//! - Damaged or lost data is a [`StoreError`] naming the path, never a panic
//!   or a silent fresh start.
//! - [`files`]: the store's files parsed from bytes (what the fuzz targets run).
//! - [`private`]: directories 0700 and files created 0600, replaced
//!   atomically (the store's own files, and `ha-node`'s keys and configs).

pub mod command;
mod durable;
pub mod error;
pub mod files;
mod guard;
pub mod log_store;
pub mod private;
mod snapshot_file;
pub mod state;
pub mod state_machine;
pub mod store;
pub mod types;

pub use command::{
    ApplyError, AttrChanges, Command, NodeState, OpUpdate, Response, Versions,
    PROMOTION_FENCE_PREFIX,
};
pub use error::StoreError;
pub use log_store::LogStore;
pub use state::ClusterState;
pub use state_machine::{SnapshotBuilder, SnapshotStats, StateMachineStore};
pub use store::{disk_usage, open, Compaction, StorePaths};
pub use types::TypeConfig;
