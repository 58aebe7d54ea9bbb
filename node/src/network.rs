//! The Raft network over gRPC/mTLS: openraft's `RaftNetworkFactory` whose
//! clients call the `Raft` service of the target node. A member's openraft
//! address is `name@host:port` (see [`member_addr`]). gRPC `Unavailable`
//! maps to openraft's `Unreachable`, so replication backs off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ha_raft_store::types::NodeId;
use ha_raft_store::TypeConfig;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::pb;

/// The openraft address of a member: `name@host:port`.
pub fn member_addr(name: &str, addr: &str) -> String {
    format!("{name}@{addr}")
}

/// Splits a member address into (name, host:port).
pub fn split_member(addr: &str) -> (&str, &str) {
    addr.split_once('@').unwrap_or((addr, addr))
}

/// When each peer last answered a Raft RPC (the leader's view of who is up).
#[derive(Clone, Default)]
pub struct Liveness {
    seen: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

impl Liveness {
    pub fn saw(&self, id: NodeId) {
        if let Ok(mut m) = self.seen.lock() {
            m.insert(id, Instant::now());
        }
    }

    /// Has answered since `t`.
    pub fn seen_since(&self, id: NodeId, t: Instant) -> bool {
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(&id).map(|s| *s >= t))
            .unwrap_or(false)
    }

    /// Answered within `within`.
    pub fn alive(&self, id: NodeId, within: Duration) -> bool {
        self.seen
            .lock()
            .ok()
            .and_then(|m| m.get(&id).map(|t| t.elapsed() <= within))
            .unwrap_or(false)
    }
}

/// gRPC channels to peers, made lazily with this node's TLS identity.
#[derive(Clone)]
pub struct Channels {
    tls: ClientTlsConfig,
    cache: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Channels {
    pub fn new(tls: ClientTlsConfig) -> Channels {
        Channels {
            tls,
            cache: Arc::default(),
        }
    }

    /// A channel to `host:port` (connects on first use).
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        if let Ok(m) = self.cache.lock() {
            if let Some(c) = m.get(addr) {
                return Ok(c.clone());
            }
        }
        let ch = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.tls.clone())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        if let Ok(mut m) = self.cache.lock() {
            m.insert(addr.to_string(), ch.clone());
        }
        Ok(ch)
    }
}

/// Makes a [`Network`] per target.
#[derive(Clone)]
pub struct NetworkFactory {
    pub channels: Channels,
    pub liveness: Liveness,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Network;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Network {
        let (_, addr) = split_member(&node.addr);
        Network {
            target,
            channel: self.channels.get(addr).map_err(|e| e.to_string()),
            liveness: self.liveness.clone(),
        }
    }
}

/// The connection to one peer.
pub struct Network {
    target: NodeId,
    channel: Result<Channel, String>,
    liveness: Liveness,
}

#[derive(Debug)]
struct Msg(String);
impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Msg {}

type RpcErr<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl Network {
    async fn call<Req, Resp, E>(
        &mut self,
        which: &'static str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = match &self.channel {
            Ok(c) => c.clone(),
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&Msg(e.clone())))),
        };
        let data = serde_json::to_vec(req)
            .map_err(|e| RPCError::Network(NetworkError::new(&Msg(e.to_string()))))?;
        let mut client = pb::raft_client::RaftClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let mut request = tonic::Request::new(pb::Bytes { data });
        request.set_timeout(timeout);
        let reply = match which {
            "append" => client.append_entries(request).await,
            "vote" => client.vote(request).await,
            _ => client.install_snapshot(request).await,
        };
        let reply = match reply {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&Msg(s
                    .message()
                    .to_string()))))
            }
            Err(s) => {
                return Err(RPCError::Network(NetworkError::new(&Msg(format!(
                    "{:?}: {}",
                    s.code(),
                    s.message()
                )))))
            }
        };
        self.liveness.saw(self.target);
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&Msg(e.to_string()))))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Network {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call("append", &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(
            "snapshot",
            &rpc,
            option.hard_ttl().max(Duration::from_secs(10)),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}
