//! The Raft service's request decoders (AppendEntries, Vote,
//! InstallSnapshot) on arbitrary bytes, as a node-certified peer could send
//! them: decoding returns a value or an error, never panics.
#![no_main]

use ha_node::wire::decode_json;
use ha_raft_store::TypeConfig;
use libfuzzer_sys::fuzz_target;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(rpc) = decode_json::<AppendEntriesRequest<TypeConfig>>(body) {
                // What the leader's transport would do with it: split by size.
                let _ = ha_node::network::split_append(rpc, 4096);
            }
        }
        1 => {
            let _ = decode_json::<VoteRequest<u64>>(body);
        }
        _ => {
            let _ = decode_json::<InstallSnapshotRequest<TypeConfig>>(body);
        }
    }
});
