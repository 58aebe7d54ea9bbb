//! The snapshot on disk and on the wire: the file that holds the current
//! snapshot (sealed frame of meta + data, replaced atomically), and the
//! encoding of the snapshot data (the whole `ClusterState`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{replace_file, seal, unseal};
use crate::error::StoreError;
use crate::state::ClusterState;
use crate::types::SnapshotMeta;

const MAGIC: &[u8; 8] = b"HASNAP01";
/// Version of the snapshot data encoding.
const DATA_FORMAT: u32 = 1;

#[derive(Serialize)]
struct DataOut<'a> {
    format: u32,
    state: &'a ClusterState,
}

#[derive(Deserialize)]
struct DataIn {
    format: u32,
    state: ClusterState,
}

/// Encodes the state as snapshot data.
pub(crate) fn encode_data(state: &ClusterState) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&DataOut {
        format: DATA_FORMAT,
        state,
    })
    .map_err(|source| StoreError::Encode {
        what: "the snapshot",
        source,
    })
}

/// Decodes snapshot data; `path` names where it is (or is going) for the error.
pub(crate) fn decode_data(path: &Path, data: &[u8]) -> Result<ClusterState, StoreError> {
    let d: DataIn = serde_json::from_slice(data).map_err(|source| StoreError::SnapshotDecode {
        path: PathBuf::from(path),
        source,
    })?;
    if d.format != DATA_FORMAT {
        return Err(StoreError::SnapshotCorrupt {
            path: PathBuf::from(path),
            detail: format!(
                "data format {} is not the one this version reads ({DATA_FORMAT})",
                d.format
            ),
        });
    }
    Ok(d.state)
}

/// Writes a snapshot file durably, replacing the previous one atomically.
/// Layout of the sealed body: `meta_len: u32 LE | meta (JSON) | data`.
pub(crate) fn write(path: &Path, meta: &SnapshotMeta, data: &[u8]) -> Result<u64, StoreError> {
    let meta_json = serde_json::to_vec(meta).map_err(|source| StoreError::Encode {
        what: "the snapshot meta",
        source,
    })?;
    let meta_len = u32::try_from(meta_json.len()).map_err(|_| StoreError::SnapshotCorrupt {
        path: PathBuf::from(path),
        detail: "snapshot meta larger than 4 GiB".to_string(),
    })?;
    let mut body = Vec::with_capacity(4 + meta_json.len() + data.len());
    body.extend_from_slice(&meta_len.to_le_bytes());
    body.extend_from_slice(&meta_json);
    body.extend_from_slice(data);
    let sealed = seal(MAGIC, &body);
    replace_file(path, &sealed)?;
    Ok(sealed.len() as u64)
}

/// Reads the snapshot file: `None` if there is none. Checks the frame and
/// decodes the meta; the data is returned as bytes (decode with [`decode_data`]).
pub(crate) fn read(path: &Path) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("cannot read snapshot", path, e)),
    };
    parse(path, &bytes).map(Some)
}

/// Checks a snapshot file's frame and decodes its meta; `path` names it in errors.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), StoreError> {
    let corrupt = |detail: String| StoreError::SnapshotCorrupt {
        path: PathBuf::from(path),
        detail,
    };
    let body = unseal(MAGIC, bytes).map_err(corrupt)?;
    if body.len() < 4 {
        return Err(corrupt("no meta".to_string()));
    }
    let meta_len = u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let rest = &body[4..];
    if rest.len() < meta_len {
        return Err(corrupt(format!(
            "meta length {meta_len} beyond the end of the file"
        )));
    }
    let (meta_json, data) = rest.split_at(meta_len);
    let meta: SnapshotMeta = serde_json::from_slice(meta_json)
        .map_err(|source| corrupt(format!("meta does not decode: {source}")))?;
    Ok((meta, data.to_vec()))
}
