//! Every file the daemon reads, parsed from arbitrary bytes by the daemon's
//! own functions: `ha-node.toml`, `hactl.toml`, a join token, the Raft
//! store's snapshot and guard files and a stored log entry, an agent's
//! meta-data, a peer certificate's identity. Errors are fine; panics,
//! overflows and runaway allocations are not.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(body).ok();
    let path = Path::new("fuzz");
    match which % 8 {
        0 => {
            if let Some(t) = text {
                let _ = ha_node::config::NodeConfig::parse(path, t);
            }
        }
        1 => {
            if let Some(t) = text {
                let _ = ha_node::config::ClientConfig::parse(path, t);
            }
        }
        2 => {
            if let Some(t) = text {
                let _ = ha_node::join::Token::decode(t);
            }
        }
        3 => {
            // The sealed file (its CRC stops most mutations), and the data
            // inside it as InstallSnapshot delivers it (no CRC).
            let _ = ha_raft_store::files::parse_snapshot(body);
            let _ = ha_raft_store::files::parse_snapshot_data(body);
        }
        4 => {
            let _ = ha_raft_store::files::parse_guard(body);
        }
        5 => {
            let _ = ha_raft_store::files::parse_entry(body);
        }
        6 => {
            if let Some(t) = text {
                let _ = ha_node::agent::metadata::parse_metadata(t);
            }
        }
        _ => {
            let _ = ha_node::tls::peer_identity(body);
        }
    }
});
