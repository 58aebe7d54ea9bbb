//! The Admin and Executor request decoders on arbitrary bytes, each followed
//! by what the server does with an accepted request before acting on it:
//! a node's proposal is checked (authz) and applied to a state machine, a
//! configuration is validated. Errors are fine; panics are not.
#![no_main]

use ha_node::wire::decode_json;
use ha_raft_store::{ClusterState, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            if let Ok(cmd) = decode_json::<Command>(body) {
                if ha_node::authz::node_may_propose("node1", &cmd).is_ok() {
                    let mut state = ClusterState::default();
                    let _ = state.apply(cmd);
                }
            }
        }
        1 => {
            let _ = decode_json::<ha_node::executor::ExecRequest>(body);
        }
        2 => {
            let _ = decode_json::<ha_node::executor::InFlightRequest>(body);
        }
        3 => {
            let _ = decode_json::<ha_node::resource::ResourceOp>(body);
        }
        4 => {
            let _ = decode_json::<ha_node::fencer::StonithOp>(body);
        }
        _ => {
            if let Ok(config) = decode_json::<ha_scheduler::model::Config>(body) {
                let _ = ha_scheduler::validate::validate_clone_limits(&config, None);
                // An accepted configuration applied to an empty cluster.
                let mut state = ClusterState::default();
                let _ = state.apply(Command::ApplyConfig {
                    base_epoch: 0,
                    config,
                });
            }
        }
    }
});
