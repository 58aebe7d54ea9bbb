//! The guard file: a small, separately fsynced record of what the sled log
//! must at least contain (the last vote, and a floor under its last index,
//! raised at every purge). sled recovers a damaged log by silently dropping
//! its tail; checking the log against the guard on open turns such a loss
//! into an error instead of a node that forgot what it promised.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{replace_file, seal, unseal};
use crate::error::StoreError;
use crate::types::Vote;

const MAGIC: &[u8; 8] = b"HAGUARD1";

/// What the log must at least hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Guard {
    /// The log database was created (so a missing one is a loss).
    pub log_created: bool,
    /// The last vote saved.
    pub vote: Option<Vote>,
    /// Every index up to this one was durable in the log at some point:
    /// the log (or the snapshot) must reach at least this far.
    pub floor: u64,
}

impl Guard {
    /// Reads the guard at `path`; `None` if there is none.
    pub(crate) fn read(path: &Path) -> Result<Option<Guard>, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("cannot read", path, e)),
        };
        Guard::parse(path, &bytes).map(Some)
    }

    /// Decodes a guard file's bytes; `path` names it in errors.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Guard, StoreError> {
        let corrupt = |detail: String| StoreError::GuardCorrupt {
            path: PathBuf::from(path),
            detail,
        };
        let body = unseal(MAGIC, bytes).map_err(corrupt)?;
        serde_json::from_slice(body).map_err(|e| corrupt(format!("does not decode: {e}")))
    }

    /// Writes the guard durably (atomic replace).
    pub(crate) fn write(&self, path: &Path) -> Result<(), StoreError> {
        let body = serde_json::to_vec(self).map_err(|source| StoreError::Encode {
            what: "the guard",
            source,
        })?;
        replace_file(path, &seal(MAGIC, &body))
    }
}
