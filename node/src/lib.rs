//! `ha-node`: the daemon's library (configuration, TLS, gRPC services, Raft network) shared with `hactl`.

pub mod agent;
pub mod authz;
pub mod client;
pub mod config;
pub mod crm_attribute;
pub mod crm_tools;
pub mod dc;
pub mod drbd_handler;
pub mod drbd_ops;
pub mod drbd_watch;
pub mod executor;
pub mod fencer;
pub mod gate;
pub mod join;
pub mod network;
pub mod quorum;
pub mod raft_instance;
pub mod resource;
pub mod secrets;
pub mod server;
pub mod setup;
pub mod stop_params;
pub mod tls;
pub mod two_node;
pub mod wire;

pub mod pb {
    //! Generated gRPC code of `proto/ha.proto`.
    tonic::include_proto!("ha.v1");
}
