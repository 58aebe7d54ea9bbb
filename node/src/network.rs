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
        // No critical section here can panic: a poisoned lock still holds
        // whole data, so it is recovered rather than skipped.
        let mut m = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(id, Instant::now());
    }

    /// Has answered since `t`.
    pub fn seen_since(&self, id: NodeId, t: Instant) -> bool {
        let m = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&id).is_some_and(|s| *s >= t)
    }

    /// Answered within `within`.
    pub fn alive(&self, id: NodeId, within: Duration) -> bool {
        let m = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&id).is_some_and(|t| t.elapsed() <= within)
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
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
        {
            return Ok(c.clone());
        }
        let ch = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.tls.clone())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_string(), ch.clone());
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
        if data.len() > crate::gate::limits::RAFT {
            return Err(RPCError::Network(NetworkError::new(&Msg(format!(
                "a Raft {which} message of {} bytes exceeds the limit of {} bytes",
                data.len(),
                crate::gate::limits::RAFT
            )))));
        }
        let mut client = pb::raft_client::RaftClient::new(channel)
            .max_decoding_message_size(crate::gate::limits::REPLY)
            .max_encoding_message_size(crate::gate::limits::RAFT);
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

/// Bytes of entries one AppendEntries carries at most: half the Raft message
/// limit, so the request's other fields and JSON framing always fit.
const APPEND_BUDGET: usize = crate::gate::limits::RAFT / 2;

/// Splits an AppendEntries whose entries would exceed `budget` bytes (as
/// JSON) into consecutive requests, each starting where the previous one
/// ended; a follower answers them as it would the whole (it commits no
/// further than it has accepted). An entry larger than the budget alone is
/// an error: the admin limit keeps every proposal far below it.
pub fn split_append(
    rpc: AppendEntriesRequest<TypeConfig>,
    budget: usize,
) -> Result<Vec<AppendEntriesRequest<TypeConfig>>, String> {
    let sizes: Vec<usize> = rpc
        .entries
        .iter()
        .map(|e| {
            serde_json::to_vec(e)
                .map(|v| v.len())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    if sizes.iter().sum::<usize>() <= budget {
        return Ok(vec![rpc]);
    }
    let AppendEntriesRequest {
        vote,
        mut prev_log_id,
        entries,
        leader_commit,
    } = rpc;
    let mut batches = Vec::new();
    let mut batch: Vec<ha_raft_store::types::Entry> = Vec::new();
    let mut used = 0;
    for (entry, size) in entries.into_iter().zip(sizes) {
        if size > budget {
            return Err(format!(
                "log entry {} is {size} bytes, over the {budget} bytes one Raft message carries",
                entry.log_id
            ));
        }
        if used + size > budget && !batch.is_empty() {
            let last = batch.last().map(|e| e.log_id);
            batches.push(AppendEntriesRequest {
                vote,
                prev_log_id,
                entries: std::mem::take(&mut batch),
                leader_commit,
            });
            prev_log_id = last;
            used = 0;
        }
        used += size;
        batch.push(entry);
    }
    batches.push(AppendEntriesRequest {
        vote,
        prev_log_id,
        entries: batch,
        leader_commit,
    });
    Ok(batches)
}

impl RaftNetwork<TypeConfig> for Network {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        let batches = split_append(rpc, APPEND_BUDGET)
            .map_err(|e| RPCError::Network(NetworkError::new(&Msg(e))))?;
        let mut reply = AppendEntriesResponse::Success;
        for batch in batches {
            reply = self.call("append", &batch, option.hard_ttl()).await?;
            if !reply.is_success() {
                break;
            }
        }
        Ok(reply)
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

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};

    fn entries(n: u64) -> Vec<ha_raft_store::types::Entry> {
        (1..=n)
            .map(|i| openraft::Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 1), i),
                payload: EntryPayload::Blank,
            })
            .collect()
    }

    fn request(n: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: None,
            entries: entries(n),
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), n)),
        }
    }

    #[test]
    fn a_batch_over_the_budget_splits_into_consecutive_requests() {
        // The largest entry (index 10 has one digit more than the others).
        let one = serde_json::to_vec(&entries(10)[9]).unwrap().len();
        // Fits: one request, unchanged.
        let b = split_append(request(10), 10 * one).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].entries.len(), 10);
        // Three entries per request: 4 requests, each following the last.
        let b = split_append(request(10), 3 * one).unwrap();
        assert_eq!(
            b.iter().map(|r| r.entries.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert_eq!(b[0].prev_log_id, None);
        for w in b.windows(2) {
            assert_eq!(w[1].prev_log_id, w[0].entries.last().map(|e| e.log_id));
            assert_eq!(w[1].vote, w[0].vote);
        }
        let all: Vec<u64> = b
            .iter()
            .flat_map(|r| r.entries.iter().map(|e| e.log_id.index))
            .collect();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
        // An entry larger than the budget is an error naming it.
        let e = split_append(request(2), 10).unwrap_err();
        assert!(e.contains("bytes"), "{e}");
    }
}
