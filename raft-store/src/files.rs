//! The store's own files parsed from their bytes, as `open` reads them: the
//! snapshot file (sealed frame, meta, whole `ClusterState`), the guard file
//! and a log entry as sled holds it. Public so the fuzz targets
//! (`node/fuzz`, target `node_files`) run exactly this code on arbitrary
//! bytes; damaged input is a `StoreError`, never a panic.

use std::path::Path;

use crate::error::StoreError;
use crate::state::ClusterState;
use crate::types::{Entry, SnapshotMeta};

/// Decodes a snapshot file: its meta and the state it holds.
pub fn parse_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, ClusterState), StoreError> {
    let path = Path::new("snapshot");
    let (meta, data) = crate::snapshot_file::parse(path, bytes)?;
    let state = crate::snapshot_file::decode_data(path, &data)?;
    Ok((meta, state))
}

/// Decodes the data of a snapshot (what travels in InstallSnapshot chunks
/// and sits inside the sealed file): the whole state.
pub fn parse_snapshot_data(bytes: &[u8]) -> Result<ClusterState, StoreError> {
    crate::snapshot_file::decode_data(Path::new("snapshot data"), bytes)
}

/// Decodes a guard file.
pub fn parse_guard(bytes: &[u8]) -> Result<(), StoreError> {
    crate::guard::Guard::parse(Path::new("guard"), bytes).map(|_| ())
}

/// Decodes a log entry as stored in sled.
pub fn parse_entry(bytes: &[u8]) -> Result<Entry, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::CorruptEntry {
        path: Path::new("log").to_path_buf(),
        index: 0,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_errors() {
        assert!(parse_snapshot(b"").is_err());
        assert!(parse_snapshot(b"HASNAP01\x00\x00\x00\x00").is_err());
        assert!(parse_guard(b"HAGUARD1{}").is_err());
        assert!(parse_entry(b"{").is_err());
    }
}
