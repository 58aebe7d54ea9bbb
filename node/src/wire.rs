//! Decoding of the JSON payloads the gRPC services carry (a raft-store
//! `Command`, executor and resource requests, a whole configuration,
//! openraft's messages): one function, so the fuzz targets exercise exactly
//! what the services run. Sizes are bounded before this, by the services'
//! message limits (`gate::limits`).

use serde::de::DeserializeOwned;

/// Decodes a JSON payload.
pub fn decode_json<T: DeserializeOwned>(data: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(data)
}
