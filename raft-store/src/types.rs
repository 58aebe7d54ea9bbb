//! The openraft type configuration of the cluster state: what a log entry
//! carries ([`Command`]), what applying one returns ([`Response`]), how nodes
//! are named and addressed, and short aliases for openraft's generic types.

use std::io::Cursor;

use crate::command::{Command, Response};

openraft::declare_raft_types!(
    /// The openraft type configuration of `ha-node`'s Raft group.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft node id.
pub type NodeId = u64;
/// A Raft node's address book entry.
pub type Node = openraft::BasicNode;
/// A running Raft node over this crate's storage.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id (leader term + index).
pub type LogId = openraft::LogId<NodeId>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A vote (term, candidate, committed).
pub type Vote = openraft::Vote<NodeId>;
/// The membership as of a log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// The error type of openraft's storage traits.
pub type StorageError = openraft::StorageError<NodeId>;
