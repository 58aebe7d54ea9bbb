//! Errors of opening and running the store. Each names the file or
//! directory involved and, where the operator has to act, what to do.

use std::path::PathBuf;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

use crate::types::StorageError;

/// What to do when a node's Raft state cannot be trusted.
const REJOIN: &str = "move the directory aside and rejoin this node to the cluster \
                      (it gets the state back from the other members)";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the Raft log database {path}: {source}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("the Raft log database {path} is corrupt: {detail}; {REJOIN}")]
    CorruptLog { path: PathBuf, detail: String },
    #[error("log entry {index} in {path} does not decode ({source}); {REJOIN}")]
    CorruptEntry {
        path: PathBuf,
        index: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("the Raft state in {path} lost data: {detail}; {REJOIN}")]
    LostData { path: PathBuf, detail: String },
    #[error("the snapshot file {path} is corrupt: {detail}; {REJOIN}")]
    SnapshotCorrupt { path: PathBuf, detail: String },
    #[error("the snapshot in {path} does not decode ({source}); {REJOIN}")]
    SnapshotDecode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the guard file {path} is corrupt: {detail}; {REJOIN}")]
    GuardCorrupt { path: PathBuf, detail: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} in the Raft log database {path}: {source}")]
    Sled {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sled(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: sled::Error,
    ) -> Self {
        StoreError::Sled {
            action,
            path: path.into(),
            source,
        }
    }

    /// Converts into openraft's storage error, keeping this error's text.
    pub(crate) fn into_storage(self, subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}
