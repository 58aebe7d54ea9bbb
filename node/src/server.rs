//! The daemon: opens the Raft store, starts openraft, serves the `Raft`
//! and `Admin` gRPC services over mutual TLS, bootstraps a new cluster, and
//! forwards writes (and status) to the leader (the DC).
//!
//! Roles are read from the caller's certificate (subject OU): `reader` may
//! ask for status, `operator` may also set standby/online, `admin` may also
//! read and load the configuration; Raft traffic needs a `node` certificate.

use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ha_raft_store::types::NodeId;
use ha_raft_store::{Command, Compaction, NodeState, Response as ApplyResponse};
use ha_scheduler::model::{Config, Membership};
use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};
use openraft::BasicNode;
use serde_json::json;
use thiserror::Error;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::network::{member_addr, split_member, Channels, Liveness, NetworkFactory};
use crate::pb;
use crate::tls::{peer_identity, CertKey, Role, TlsError};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] ha_raft_store::StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid Raft settings: {0}")]
    RaftConfig(String),
    #[error("cannot start Raft: {0}")]
    Raft(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    #[error("gRPC server: {0}")]
    Serve(String),
    #[error("cannot set up the agents' directories: {0}")]
    Setup(String),
}

/// What the services share.
#[derive(Clone)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    /// The Raft instance (restartable in place: [`crate::raft_instance`]).
    pub raft: crate::raft_instance::RaftInstance,
    pub sm: ha_raft_store::StateMachineStore,
    pub channels: Channels,
    pub liveness: Liveness,
    /// A peer is shown online if it answered within this.
    pub alive_within: Duration,
    /// Where other nodes reach this one.
    pub advertise: String,
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
    /// The CA with its key, on nodes that admit new nodes.
    pub ca: Option<CertKey>,
    /// Hashes of the join tokens this node issued, with their expiry.
    pub tokens: Arc<Mutex<HashMap<String, Instant>>>,
    /// What the DC loop counted (meaningful on the leader).
    pub dc_stats: Arc<Mutex<crate::dc::DcStats>>,
    /// The DC's lost-node timeout.
    pub node_timeout: Duration,
    /// When this node last knew it was in the majority.
    pub quorum: crate::quorum::QuorumLease,
    /// A witness runs no resources.
    pub witness: bool,
    /// Two-node mode: what this node is doing about a lost peer.
    pub two_node_state: Arc<Mutex<Option<String>>>,
    /// `hactl quorum unblock --i-know-the-peer-is-off` was given
    /// (wait_for_all lifted).
    pub unblocked: Arc<std::sync::atomic::AtomicBool>,
    /// Two-node mode: this process has heard from its peer since it started
    /// (see [`crate::two_node::unblock`]).
    pub peer_seen: Arc<std::sync::atomic::AtomicBool>,
    /// The node's data directory.
    pub data_dir: Option<std::path::PathBuf>,
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let tls = cfg.tls.files();
    let server_tls = tls.server()?;
    let client_tls = tls.client()?;
    // The data directory holds the Raft log (fence passwords): 0700, also
    // when an older version or an operator left it wider.
    match ha_raft_store::private::ensure_dir(&cfg.data_dir) {
        Ok(None) => {}
        Ok(Some(old)) => tracing::warn!(
            "the data directory {} was mode {old:o} (open to group or others): now 700",
            cfg.data_dir.display()
        ),
        Err(e) => {
            return Err(DaemonError::Setup(format!(
                "{}: {e}",
                cfg.data_dir.display()
            )))
        }
    }
    let rejoin_marker = crate::two_node::rejoin_marker(&cfg.data_dir);
    let rejoining = rejoin_marker.exists();
    if rejoining {
        // Fenced out of a two-node cluster: this Raft state may hold entries
        // the survivor never committed; start empty and be added back.
        let dir = cfg.data_dir.join("raft");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| DaemonError::Setup(format!("{}: {e}", dir.display())))?;
        }
        tracing::warn!("rejoining: the Raft state was discarded");
    }
    let (log, sm) = ha_raft_store::open(cfg.data_dir.join("raft"))?;
    let force = crate::two_node::force_marker(&cfg.data_dir);
    if force.exists() {
        let lid = log.force_single_voter(
            cfg.id,
            BasicNode::new(member_addr(&cfg.name, cfg.advertise())),
        )?;
        std::fs::remove_file(&force)
            .map_err(|e| DaemonError::Setup(format!("{}: {e}", force.display())))?;
        tracing::warn!(log_id = %lid, "the peer is fenced: membership rewritten to this node alone");
    }
    let raft_config = Compaction::default().apply_to(openraft::Config {
        cluster_name: "ha-node".to_string(),
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_timeout_min_ms,
        election_timeout_max: cfg.election_timeout_max_ms,
        snapshot_max_chunk_size: crate::gate::limits::SNAPSHOT_CHUNK,
        ..Default::default()
    });
    let raft_config = Arc::new(
        raft_config
            .validate()
            .map_err(|e| DaemonError::RaftConfig(e.to_string()))?,
    );
    let channels = Channels::new(client_tls);
    let liveness = Liveness::default();
    let network = NetworkFactory {
        channels: channels.clone(),
        liveness: liveness.clone(),
    };
    let raft =
        crate::raft_instance::RaftInstance::start(cfg.id, raft_config, network, log, sm.clone())
            .await
            .map_err(DaemonError::Raft)?;
    let ca_pem = crate::tls::read(&cfg.tls.ca)?;
    let ca = match &cfg.tls.ca_key {
        Some(k) => Some(CertKey {
            cert_pem: ca_pem.clone(),
            key_pem: crate::tls::read(k)?,
        }),
        None => None,
    };
    let node = Node {
        advertise: cfg.advertise().to_string(),
        ca_pem,
        ca,
        tokens: Arc::default(),
        id: cfg.id,
        name: cfg.name.clone(),
        raft: raft.clone(),
        sm,
        channels,
        liveness,
        alive_within: Duration::from_millis(cfg.election_timeout_max_ms.max(500) * 2),
        dc_stats: Arc::default(),
        node_timeout: Duration::from_millis(cfg.node_timeout_ms.max(200)),
        quorum: crate::quorum::QuorumLease::default(),
        witness: cfg.witness,
        two_node_state: Arc::default(),
        unblocked: Arc::default(),
        peer_seen: Arc::default(),
        data_dir: Some(cfg.data_dir.clone()),
    };
    // What `secrets::private_params` runs agents' meta-data with.
    let env = agent_env(&cfg)?;
    match env.forget_if_rebooted(&cfg.boot_id_path) {
        Ok(true) => tracing::warn!(
            "this machine rebooted since ha-node last ran: the agents' volatile state (HA_RSCTMP, HA_VARRUN, HA_VARLOCK) is forgotten"
        ),
        Ok(false) => {}
        Err(e) => {
            return Err(DaemonError::Setup(format!(
                "the agents' state directory {}: {e}",
                env.state_dir.display()
            )))
        }
    }
    crate::secrets::set_agent_env(env);
    let executor = crate::executor::Executor::start(
        cfg.name.clone(),
        agent_env(&cfg)?,
        Arc::new(node.clone()),
    );
    tokio::spawn(crate::dc::run(
        node.clone(),
        executor.clone(),
        crate::dc::DcSettings {
            node_timeout: node.node_timeout,
            ..Default::default()
        },
        node.dc_stats.clone(),
    ));
    tokio::spawn(crate::quorum::watch(node.clone(), executor.clone()));
    if !cfg.witness {
        tokio::spawn(crate::drbd_watch::run(
            node.clone(),
            crate::drbd_watch::WatchConfig {
                drbdsetup: cfg.drbd.drbdsetup.clone(),
                module_marker: cfg.drbd.module_marker.clone(),
            },
        ));
    }
    tokio::spawn(crate::two_node::watch(
        node.clone(),
        executor.clone(),
        cfg.data_dir.clone(),
    ));
    tokio::spawn(crate::two_node::check_still_member(
        node.clone(),
        cfg.data_dir.clone(),
    ));
    if rejoining {
        let mut peers = crate::two_node::marker_peers(&rejoin_marker);
        peers.extend(
            cfg.bootstrap
                .iter()
                .map(|p| (p.id, p.name.clone(), p.addr.clone())),
        );
        tokio::spawn(crate::two_node::rejoin(node.clone(), peers, rejoin_marker));
    }
    // This node's executor starts empty: the cluster forgets what it knew
    // ran here and probes again (refused while the node is unclean).
    if !cfg.witness {
        let node = node.clone();
        let executor = executor.clone();
        tokio::spawn(async move {
            let cmd = Command::SetNodeState {
                node: node.name.clone(),
                state: NodeState::Joined,
            };
            loop {
                match node.propose(cmd.clone()).await {
                    Ok(ApplyResponse::Applied(_)) => {
                        executor.set_joined();
                        // What this node had started (an earlier run of the
                        // daemon included) is probed: an orphan is seen.
                        executor.probe_started().await;
                        break;
                    }
                    Ok(ApplyResponse::Rejected(e)) => {
                        tracing::info!("rejoin: {e}");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(e) => {
                        tracing::debug!("rejoin not recorded yet: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
    let addr: SocketAddr = cfg.listen.parse().map_err(|e| DaemonError::Listen {
        addr: cfg.listen.clone(),
        message: format!("{e}"),
    })?;
    if !cfg.bootstrap.is_empty() && !rejoining {
        let initialized = raft
            .get()
            .is_initialized()
            .await
            .map_err(|e| DaemonError::Raft(e.to_string()))?;
        if !initialized {
            let members: BTreeMap<NodeId, BasicNode> = cfg
                .bootstrap
                .iter()
                .map(|p| (p.id, BasicNode::new(member_addr(&p.name, &p.addr))))
                .collect();
            if let Err(e) = raft.get().initialize(members).await {
                tracing::warn!("cluster initialization: {e}");
            } else {
                tracing::info!("initialized a new cluster");
            }
        }
    }
    tracing::info!(name = %cfg.name, id = cfg.id, listen = %cfg.listen, "ha-node up");
    use crate::gate::limits;
    let result = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .tls_config(server_tls)
        .map_err(|e| DaemonError::Serve(e.to_string()))?
        .http2_max_header_list_size(limits::HEADER_LIST)
        .max_concurrent_streams(crate::gate::STREAMS_PER_CONNECTION)
        .layer(crate::gate::GateLayer)
        .add_service(
            pb::raft_server::RaftServer::new(RaftService { node: node.clone() })
                .max_decoding_message_size(limits::RAFT)
                .max_encoding_message_size(limits::REPLY),
        )
        .add_service(
            pb::admin_server::AdminServer::new(AdminService {
                node: node.clone(),
                drbdadm: cfg.drbd.drbdadm.clone(),
            })
            .max_decoding_message_size(limits::ADMIN)
            .max_encoding_message_size(limits::REPLY),
        )
        .add_service(
            pb::membership_server::MembershipServer::new(MembershipService { node: node.clone() })
                .max_decoding_message_size(limits::MEMBERSHIP)
                .max_encoding_message_size(limits::REPLY),
        )
        .add_service(
            pb::executor_server::ExecutorServer::new(ExecutorService {
                executor: executor.clone(),
                witness: cfg.witness,
            })
            .max_decoding_message_size(limits::EXECUTOR)
            .max_encoding_message_size(limits::REPLY),
        )
        .serve_with_shutdown(addr, shutdown)
        .await
        .map_err(|e| DaemonError::Serve(e.to_string()));
    executor.cancel_all();
    raft.shutdown().await;
    result
}

/// The agents' environment of this node: their state under the data dir,
/// and `crm_attribute` (this binary under that name) in `HA_SBIN_DIR`.
fn agent_env(cfg: &NodeConfig) -> Result<crate::agent::AgentEnv, DaemonError> {
    let state_dir = cfg.data_dir.join("agents");
    let sbin_dir = cfg.data_dir.join("sbin");
    let io = |what: &str, e: std::io::Error| DaemonError::Setup(format!("{what}: {e}"));
    for dir in [&state_dir, &sbin_dir] {
        ha_raft_store::private::create_dir(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    }
    // Re-executed after its binary was replaced (two_node::restart_process):
    // link the binary now at that path, not the deleted image.
    let exe = crate::two_node::binary_path().map_err(|e| io("the path of ha-node", e))?;
    for tool in std::iter::once(&"crm_attribute").chain(crate::crm_tools::TOOLS) {
        let link = sbin_dir.join(tool);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&exe, &link).map_err(|e| io(&link.display().to_string(), e))?;
    }
    let mut extra_env: Vec<(String, String)> = cfg
        .agent_env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(src) = &cfg.source {
        extra_env.push(("HA_NODE_CONFIG".into(), src.display().to_string()));
    }
    Ok(crate::agent::AgentEnv {
        node_name: cfg.name.clone(),
        ocf_root: cfg.ocf_root.clone(),
        lsb_dir: cfg.lsb_dir.clone(),
        state_dir,
        sbin_dir,
        extra_env,
    })
}

impl crate::executor::Proposer for Node {
    fn propose(
        &self,
        cmd: Command,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            match Node::propose(self, cmd).await? {
                ApplyResponse::Applied(_) => Ok(()),
                ApplyResponse::Rejected(e) => Err(e.to_string()),
            }
        })
    }
}

impl Node {
    /// Commits `cmd` through Raft: here on the leader, else forwarded to it
    /// (`Admin.Propose`); retried for up to 30 s while there is no leader.
    pub async fn propose(&self, cmd: Command) -> Result<ApplyResponse, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last;
        loop {
            match self.write(cmd.clone()).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(Some(addr))) => {
                    let data = serde_json::to_vec(&cmd).map_err(|e| e.to_string())?;
                    match self.admin_client(&addr) {
                        Ok(mut c) => {
                            let mut req = Request::new(pb::Bytes { data });
                            req.set_timeout(Duration::from_secs(10));
                            match c.propose(req).await {
                                Ok(r) => {
                                    return serde_json::from_slice(&r.into_inner().data)
                                        .map_err(|e| e.to_string())
                                }
                                Err(e) if e.code() == tonic::Code::PermissionDenied => {
                                    return Err(format!("{addr}: {}", e.message()))
                                }
                                Err(e) => last = format!("{addr}: {}", e.message()),
                            }
                        }
                        Err(e) => last = e.message().to_string(),
                    }
                }
                Ok(Err(None)) => last = "no leader known".into(),
                Err(e) => last = e.message().to_string(),
            }
            if Instant::now() > deadline {
                return Err(format!("cannot commit: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Raft term this node leads in, if it is the leader now.
    pub fn leader_term(&self) -> Option<u64> {
        let m = self.raft.get().metrics().borrow().clone();
        (m.current_leader == Some(self.id)).then_some(m.current_term)
    }

    /// Commits a DC command (membership, fencing, the DC's own records) of
    /// the DC that became leader in `term`, here and only here: wrapped in
    /// [`Command::Dc`] so apply refuses it unless this node still leads in
    /// `term`, and never forwarded (a deposed DC's writes go nowhere).
    pub async fn propose_as_dc(&self, term: u64, cmd: Command) -> Result<ApplyResponse, String> {
        let cmd = Command::Dc {
            term,
            command: Box::new(cmd),
        };
        match self.raft.get().client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(format!(
                "this node is no longer the DC (it led in term {term}; leader now: {}): \
                 the DC's write is not forwarded",
                f.leader_id
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "unknown".into())
            )),
            Err(e) => Err(format!("cannot commit: {e}")),
        }
    }
}

struct ExecutorService {
    executor: Arc<crate::executor::Executor>,
    witness: bool,
}

#[tonic::async_trait]
impl pb::executor_server::Executor for ExecutorService {
    async fn execute(&self, request: Request<pb::Bytes>) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "running resource actions")?;
        let req: crate::executor::ExecRequest = decode(request.get_ref())?;
        if self.witness {
            return Err(Status::failed_precondition(format!(
                "this node is a witness: it runs no resources (asked to {} {}); \
                 remove it from the configuration's nodes",
                req.action, req.key
            )));
        }
        match self.executor.execute(req).await {
            Ok(reply) => encode(&reply),
            Err(e) => Err(Status::unavailable(e)),
        }
    }

    async fn in_flight(&self, request: Request<pb::Bytes>) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "asking what is in flight")?;
        let req: crate::executor::InFlightRequest = decode(request.get_ref())?;
        match self.executor.in_flight_for(&req) {
            Ok(reply) => encode(&reply),
            Err(e) => Err(Status::failed_precondition(e)),
        }
    }
}

/// The role and name (CN) of the caller, from its certificate.
fn caller_identity<T>(req: &Request<T>) -> Result<(Role, String), Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let first = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    peer_identity(first.as_ref())
        .map_err(|e| Status::permission_denied(format!("certificate without a role: {e}")))
}

/// The role of the caller, from its certificate.
fn caller_role<T>(req: &Request<T>) -> Result<Role, Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let first = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let (role, _) = peer_identity(first.as_ref())
        .map_err(|e| Status::permission_denied(format!("certificate without a role: {e}")))?;
    Ok(role)
}

fn require<T>(req: &Request<T>, allowed: &[Role], what: &str) -> Result<Role, Status> {
    let role = caller_role(req)?;
    if allowed.contains(&role) {
        Ok(role)
    } else {
        // Operators are told the human roles; a node-only call says node.
        let mut need: Vec<&str> = allowed
            .iter()
            .filter(|r| **r != Role::Node)
            .map(|r| r.as_str())
            .collect();
        if need.is_empty() {
            need.push(Role::Node.as_str());
        }
        Err(Status::permission_denied(format!(
            "{what} needs the role {}; this certificate has the role '{}'",
            need.join(" or "),
            role.as_str()
        )))
    }
}

/// The token table's lock was poisoned by a panic while it was held.
fn tokens_poisoned() -> Status {
    Status::internal(
        "the join token table is unusable after an internal error: restart this node to admit nodes",
    )
}

struct RaftService {
    node: Node,
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Response<pb::Bytes>, Status> {
    serde_json::to_vec(v)
        .map(|data| Response::new(pb::Bytes { data }))
        .map_err(|e| Status::internal(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(b: &pb::Bytes) -> Result<T, Status> {
    crate::wire::decode_json(&b.data).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::Bytes>,
    ) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "Raft replication")?;
        self.node.refuse_non_member(&request)?;
        let rpc = decode(request.get_ref())?;
        let resp = self.node.raft.get().append_entries(rpc).await;
        if matches!(&resp, Ok(r) if r.is_success()) {
            self.node.quorum.heard_from_leader();
        }
        encode(&resp)
    }

    async fn vote(&self, request: Request<pb::Bytes>) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "Raft voting")?;
        self.node.refuse_non_member(&request)?;
        let rpc = decode(request.get_ref())?;
        encode(&self.node.raft.get().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::Bytes>,
    ) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "Raft snapshots")?;
        let rpc = decode(request.get_ref())?;
        encode(&self.node.raft.get().install_snapshot(rpc).await)
    }

    async fn hand_over(
        &self,
        request: Request<pb::HandOverRequest>,
    ) -> Result<Response<pb::HandOverReply>, Status> {
        require(&request, &[Role::Node], "handing the DC over")?;
        self.node.refuse_non_member(&request)?;
        let (_, from) = caller_identity(&request)?;
        let term = request.get_ref().term;
        let raft = self.node.raft.get();
        let (current, leader) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.current_term, m.current_leader)
        };
        if current != term || leader.is_none() || leader == Some(self.node.id) {
            return Err(Status::failed_precondition(format!(
                "{}: not standing for election for {from}: asked in term {term}, this node is in term {current}{}",
                self.node.name,
                if leader == Some(self.node.id) { " and leads it" } else { "" }
            )));
        }
        tracing::warn!(from = %from, term, "the DC must be fenced: standing for election to take over");
        raft.trigger()
            .elect()
            .await
            .map_err(|e| Status::internal(format!("election: {e}")))?;
        Ok(Response::new(pb::HandOverReply {
            detail: format!(
                "{} stands for election (term {term} of {from})",
                self.node.name
            ),
        }))
    }
}

struct AdminService {
    node: Node,
    /// `drbdadm` for `Admin.Drbd`.
    drbdadm: std::path::PathBuf,
}

const READERS: &[Role] = &[Role::Reader, Role::Operator, Role::Admin, Role::Node];
const OPERATORS: &[Role] = &[Role::Operator, Role::Admin, Role::Node];
const ADMINS: &[Role] = &[Role::Admin, Role::Node];

impl Node {
    /// The leader's address if it is another node.
    fn leader_addr(&self) -> Option<String> {
        let m = self.raft.get().metrics().borrow().clone();
        let leader = m.current_leader?;
        if leader == self.id {
            return None;
        }
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| split_member(&n.addr).1.to_string())
    }

    fn admin_client(
        &self,
        addr: &str,
    ) -> Result<pb::admin_client::AdminClient<tonic::transport::Channel>, Status> {
        let ch = self
            .channels
            .get(addr)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(pb::admin_client::AdminClient::new(ch)
            .max_decoding_message_size(crate::gate::limits::REPLY))
    }

    /// Proposes a command; on a follower, `forward` sends it to the leader.
    async fn write(&self, cmd: Command) -> Result<Result<ApplyResponse, Option<String>>, Status> {
        match self.raft.get().client_write(cmd).await {
            Ok(r) => Ok(Ok(r.data)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
                leader_node,
                ..
            }))) => Ok(Err(leader_node.map(|n| split_member(&n.addr).1.to_string()))),
            Err(e) => Err(Status::unavailable(format!("cannot commit: {e}"))),
        }
    }

    /// The cluster status as JSON (computed here; meaningful on the leader).
    pub fn status_json(&self) -> serde_json::Value {
        let m = self.raft.get().metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let is_leader = m.current_leader == Some(self.id);
        let mut online: BTreeMap<String, bool> = BTreeMap::new();
        let mut names: BTreeMap<NodeId, String> = BTreeMap::new();
        let state = self.sm.state();
        for (id, n) in membership.nodes() {
            let (name, _) = split_member(&n.addr);
            names.insert(*id, name.to_string());
            // The leader knows who answers; a follower reports what the
            // leader last wrote (the replicated membership).
            let replicated_online =
                || state.status.nodes.get(name).map(|s| s.membership) == Some(Membership::Online);
            let up = *id == self.id
                || if is_leader {
                    self.liveness.alive(*id, self.alive_within)
                } else {
                    replicated_online()
                };
            online.insert(name.to_string(), up);
        }
        let voters_up = voters
            .iter()
            .filter(|id| {
                names
                    .get(id)
                    .and_then(|n| online.get(n))
                    .copied()
                    .unwrap_or(false)
            })
            .count();
        let quorum = is_leader && voters_up * 2 > voters.len();
        let dc = if is_leader {
            Some(self.name.clone())
        } else {
            None
        };
        let mut status = state.status.clone();
        status.have_quorum = quorum;
        status.dc = dc.clone();
        for n in &state.config.nodes {
            let up = online.get(&n.name).copied().unwrap_or(false);
            let st = status.nodes.entry(n.name.clone()).or_default();
            if up {
                if st.membership != Membership::Unclean {
                    st.membership = Membership::Online;
                }
            } else if st.membership == Membership::Online {
                st.membership = Membership::Offline;
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let t = ha_scheduler::schedule(&state.config, &status, now);
        let target = t.placement.to_json();
        let placement = ha_scheduler::current_placement(&state.config, &status, now).to_json();
        let pending: Vec<serde_json::Value> = t
            .actions
            .iter()
            .take(50)
            .map(|a| json!({"action": a.kind.name(), "resource": a.rsc, "node": a.node, "reason": a.reason}))
            .collect();
        let dc_stats = self
            .dc_stats
            .lock()
            .map_or_else(
                |e| serde_json::to_value(&*e.into_inner()),
                |s| serde_json::to_value(&*s),
            )
            .unwrap_or_default();
        let mut nodes = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, up) in &online {
            let standby = state
                .config
                .nodes
                .iter()
                .find(|n| &n.name == name)
                .and_then(|n| n.attributes.get("standby"))
                .is_some_and(|v| v == "on" || v == "true");
            let st = match (up, standby) {
                (true, true) => "standby",
                (true, false) => "online",
                (false, _) => "offline",
            };
            let voter = names.iter().any(|(id, n)| n == name && voters.contains(id));
            let membership = state
                .status
                .nodes
                .get(name)
                .map(|n| format!("{:?}", n.membership).to_lowercase())
                .unwrap_or_else(|| "offline".into());
            let st = if membership == "unclean" {
                "UNCLEAN"
            } else {
                st
            };
            let witness = !state.config.nodes.is_empty()
                && !state.config.nodes.iter().any(|n| &n.name == name);
            nodes.push(json!({"name": name, "state": st, "member": true, "voter": voter, "membership": membership, "witness": witness}));
            seen.insert(name.clone());
        }
        for n in &state.config.nodes {
            if !seen.contains(&n.name) {
                nodes.push(json!({"name": n.name, "state": "offline", "member": false}));
            }
        }
        let witnesses = nodes
            .iter()
            .filter(|n| n["witness"] == true && n["voter"] == true)
            .count();
        let quorum_mode = match (voters.len(), witnesses) {
            (2, 0) => {
                "two-node (a lost peer is fenced, then the survivor goes on alone)".to_string()
            }
            (n, 0) => format!("majority of {n} voters"),
            (n, w) => format!("majority of {n} voters ({w} witness)"),
        };
        // Failed actions: recorded results that are not what was expected
        // (probes finding a resource stopped are not failures).
        let mut failed = Vec::new();
        let mut in_progress = Vec::new();
        for (node, ns) in &state.status.nodes {
            for (rsc, h) in &ns.history {
                for op in &h.ops {
                    // Recorded as pending before the agent ran (rc 193):
                    // under way, not failed.
                    if op.op_status == -1 {
                        in_progress.push(json!({
                            "resource": rsc, "node": node, "operation": op.operation,
                            "interval_ms": op.interval_ms, "since": op.last_rc_change,
                        }));
                        continue;
                    }
                    if is_failed_action(op) {
                        failed.push(json!({
                            "resource": rsc, "node": node, "operation": op.operation,
                            "interval_ms": op.interval_ms, "rc": op.rc, "op_status": op.op_status,
                            "last_rc_change": op.last_rc_change, "exit_reason": op.exit_reason,
                        }));
                    }
                }
            }
        }
        // The last operation of each resource on each node (`_last_0`).
        let mut last_ops = Vec::new();
        for (node, ns) in &state.status.nodes {
            for (rsc, h) in &ns.history {
                for op in h.ops.iter().filter(|o| o.id.ends_with("_last_0")) {
                    last_ops.push(json!({
                        "node": node, "resource": rsc, "operation": op.operation, "rc": op.rc,
                        "op_status": op.op_status, "completed_ms": op.completed_ms,
                    }));
                }
            }
        }
        let fencing: Vec<serde_json::Value> = state
            .status
            .fencing_history
            .iter()
            .rev()
            .take(20)
            .map(|e| json!({"target": e.target, "action": e.action, "device": e.device, "succeeded": e.succeeded, "time": e.time, "completed_ms": e.completed_ms, "origin": e.origin, "reason": e.reason}))
            .collect();
        let drbd: Vec<serde_json::Value> = crate::drbd_watch::from_attributes(
            state
                .status
                .nodes
                .iter()
                .map(|(n, s)| (n, &s.transient_attributes)),
        )
        .iter()
        .map(|(node, s)| crate::drbd_watch::status_entry(node, s))
        .collect();
        json!({
            "drbd": drbd,
            "failed_actions": failed,
            "in_progress": in_progress,
            "last_ops": last_ops,
            "fencing_history": fencing,
            "dc": dc,
            "quorum": quorum,
            "quorum_mode": quorum_mode,
            "nodes": nodes,
            "resources": placement["resources"],
            "target": target["resources"],
            "pending_actions": pending,
            "node_attributes": state.config.nodes.iter().map(|n| {
                let transient = state.status.nodes.get(&n.name).map(|s| s.transient_attributes.clone()).unwrap_or_default();
                (n.name.clone(), json!({"permanent": n.attributes, "transient": transient}))
            }).collect::<serde_json::Map<String, serde_json::Value>>(),
            "pending_count": t.actions.len(),
            "dc_stats": if is_leader { dc_stats } else { serde_json::Value::Null },
            "config_epoch": state.config_epoch,
            "term": m.current_term,
            "last_applied": m.last_applied.map(|l| l.index),
            "answered_by": self.name,
            "notes": t.notes.iter().cloned()
                .chain(crate::fencer::unclean_notes(&status, &state.config))
                .chain(self.two_node_state.lock().unwrap_or_else(|e| e.into_inner()).clone().map(|s| format!("two-node: {s}")))
                .collect::<Vec<_>>(),
        })
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let role = require(&request, READERS, "status")?;
        if role != Role::Node {
            if let Some(addr) = self.node.leader_addr() {
                let mut client = self.node.admin_client(&addr)?;
                let mut req = Request::new(pb::StatusRequest {});
                req.set_timeout(Duration::from_secs(2));
                if let Ok(r) = client.status(req).await {
                    return Ok(r);
                }
            }
        }
        // status_json runs the scheduler (CPU-bound): off the runtime's
        // workers (issue 12, hole 8).
        let node = self.node.clone();
        let json = tokio::task::spawn_blocking(move || {
            let mut v = node.status_json();
            // An agent's text may echo a secret: no secret value leaves.
            // The values are read under the state lock: no copy of the
            // whole configuration per status request.
            let private = crate::secrets::known_private();
            let values = node
                .sm
                .read(|s| crate::secrets::secret_values(&s.config, &private));
            crate::secrets::redact_json(&mut v, &values);
            v.to_string()
        })
        .await
        .map_err(|e| Status::internal(format!("status: {e}")))?;
        Ok(Response::new(pb::StatusReply { json }))
    }

    async fn get_config(
        &self,
        request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigReply>, Status> {
        // The values of secret parameters only when asked for (an admin's
        // `config show --show-secrets`); else hidden (crate::secrets).
        let show_secrets = request.get_ref().show_secrets;
        let what = if show_secrets {
            "reading the configuration with its secrets (--show-secrets)"
        } else {
            "reading the configuration"
        };
        require(&request, ADMINS, what)?;
        let (epoch, mut config) = self.node.sm.read(|s| (s.config_epoch, s.config.clone()));
        if !show_secrets {
            let private = crate::secrets::private_params(&config).await;
            config = crate::secrets::redact_config(&config, &private);
        }
        let config_json =
            serde_json::to_string(&config).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::GetConfigReply { epoch, config_json }))
    }

    async fn apply_config(
        &self,
        request: Request<pb::ApplyConfigRequest>,
    ) -> Result<Response<pb::ApplyConfigReply>, Status> {
        let role = require(&request, ADMINS, "loading a configuration")?;
        let req = request.into_inner();
        let mut config: Config = crate::wire::decode_json(req.config_json.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("undecodable configuration: {e}")))?;
        let (current_epoch, current) = self.node.sm.read(|s| (s.config_epoch, s.config.clone()));
        // Placeholders of hidden secrets get the values stored at the epoch
        // the configuration was read at (the leader's, if this node is not there).
        match crate::secrets::restore_at(&mut config, req.base_epoch, current_epoch, &current) {
            Ok(_) => {}
            Err(crate::secrets::SecretError::NotAtBase { .. })
                if role != Role::Node && self.node.leader_addr().is_some() =>
            {
                if let Some(addr) = self.node.leader_addr() {
                    let mut client = self.node.admin_client(&addr)?;
                    return client.apply_config(Request::new(req)).await;
                }
            }
            Err(e) => {
                return Err(Status::failed_precondition(format!(
                    "configuration rejected: {e}"
                )))
            }
        }
        ha_scheduler::validate::validate_clone_limits(&config, Some(&current))
            .map_err(|e| Status::failed_precondition(format!("configuration rejected: {e}")))?;
        crate::fencer::check_devices(&config)
            .map_err(|e| Status::invalid_argument(format!("configuration rejected: {e}")))?;
        let cmd = Command::ApplyConfig {
            base_epoch: req.base_epoch,
            config,
        };
        match self.node.write(cmd).await? {
            Ok(resp) => match resp.into_result() {
                Ok(v) => Ok(Response::new(pb::ApplyConfigReply {
                    epoch: v.config_epoch,
                })),
                Err(e) => Err(Status::failed_precondition(e.to_string())),
            },
            Err(Some(addr)) if role != Role::Node => {
                let mut client = self.node.admin_client(&addr)?;
                client.apply_config(Request::new(req)).await
            }
            Err(_) => Err(Status::unavailable(
                "no leader (DC) known: the cluster has no quorum",
            )),
        }
    }

    async fn resource(
        &self,
        request: Request<pb::ResourceRequest>,
    ) -> Result<Response<pb::ResourceReply>, Status> {
        let role = require(&request, OPERATORS, "resource commands")?;
        let req = request.into_inner();
        let op: crate::resource::ResourceOp = crate::wire::decode_json(req.json.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("undecodable resource command: {e}")))?;
        // Checked here, where the caller's own certificate is seen (the
        // leader sees a forwarding node's).
        if role == Role::Operator {
            crate::resource::operator_may(&op)
                .map_err(|e| Status::permission_denied(e.to_string()))?;
        }
        let leader = self.node.raft.get().metrics().borrow().current_leader == Some(self.node.id);
        if leader {
            return self.resource_here(&op).await.map(Response::new);
        }
        match self.node.leader_addr() {
            Some(addr) if role != Role::Node => {
                let mut client = self.node.admin_client(&addr)?;
                client.resource(Request::new(req)).await
            }
            _ => Err(Status::unavailable(
                "no leader (DC) known: the cluster has no quorum",
            )),
        }
    }

    async fn stonith(
        &self,
        request: Request<pb::StonithRequest>,
    ) -> Result<Response<pb::StonithReply>, Status> {
        let role = require(&request, ADMINS, "fencing by hand")?;
        let req = request.into_inner();
        let op: crate::fencer::StonithOp = crate::wire::decode_json(req.json.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("undecodable stonith command: {e}")))?;
        let leader = self.node.raft.get().metrics().borrow().current_leader == Some(self.node.id);
        if leader {
            return match crate::fencer::run_op(&self.node, &op).await {
                Ok(v) => Ok(Response::new(pb::StonithReply {
                    json: v.to_string(),
                })),
                Err(e) => Err(Status::failed_precondition(e)),
            };
        }
        match self.node.leader_addr() {
            Some(addr) if role != Role::Node => {
                let mut client = self.node.admin_client(&addr)?;
                let mut r = Request::new(req);
                r.set_timeout(Duration::from_secs(300));
                client.stonith(r).await
            }
            _ => Err(Status::unavailable(
                "no leader (DC) known: the cluster has no quorum",
            )),
        }
    }

    async fn quorum(
        &self,
        request: Request<pb::QuorumRequest>,
    ) -> Result<Response<pb::QuorumReply>, Status> {
        require(&request, ADMINS, "quorum overrides")?;
        crate::two_node::unblock(&self.node, &request.into_inner().op)
            .map(|message| Response::new(pb::QuorumReply { message }))
            .map_err(Status::failed_precondition)
    }

    async fn drbd(
        &self,
        request: Request<pb::DrbdRequest>,
    ) -> Result<Response<pb::DrbdReply>, Status> {
        require(&request, ADMINS, "DRBD commands")?;
        let call: crate::drbd_ops::DrbdCall =
            crate::wire::decode_json(request.get_ref().json.as_bytes())
                .map_err(|e| Status::invalid_argument(format!("undecodable DRBD command: {e}")))?;
        if call.node != self.node.name {
            return Err(Status::not_found(format!(
                "this is {}, not {}",
                self.node.name, call.node
            )));
        }
        tracing::warn!(op = ?call.op, "DRBD command by an administrator");
        let report = crate::drbd_ops::run(&self.node.name, &self.drbdadm, &call.op).await;
        let json = serde_json::to_string(&report).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::DrbdReply { json }))
    }

    async fn propose(&self, request: Request<pb::Bytes>) -> Result<Response<pb::Bytes>, Status> {
        require(&request, &[Role::Node], "proposing cluster state changes")?;
        self.node.refuse_non_member(&request)?;
        let (_, cert_node) = caller_identity(&request)?;
        let cmd: Command = decode(request.get_ref())?;
        crate::authz::node_may_propose(&cert_node, &cmd)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        if cert_node != self.node.name {
            // Forwarded by another node: committed here or not at all (its
            // sender retries with the leader it learns of).
            return match self.node.write(cmd).await? {
                Ok(resp) => encode(&resp),
                Err(_) => Err(Status::unavailable(
                    "this node is not the leader (DC) any more; retry",
                )),
            };
        }
        // This node's own clients (crm_attribute): forwarded to the leader.
        match self.node.propose(cmd).await {
            Ok(resp) => encode(&resp),
            Err(e) => Err(Status::unavailable(e)),
        }
    }

    async fn set_node_state(
        &self,
        request: Request<pb::SetNodeStateRequest>,
    ) -> Result<Response<pb::SetNodeStateReply>, Status> {
        let role = require(&request, OPERATORS, "standby/online")?;
        let req = request.into_inner();
        let state = match req.state.as_str() {
            "standby" => NodeState::Standby,
            "online" => NodeState::Online,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown node state '{other}': use standby or online"
                )))
            }
        };
        let cmd = Command::SetNodeState {
            node: req.node.clone(),
            state,
        };
        match self.node.write(cmd).await? {
            Ok(resp) => match resp.into_result() {
                Ok(v) => Ok(Response::new(pb::SetNodeStateReply {
                    epoch: v.config_epoch,
                })),
                Err(e) => Err(Status::failed_precondition(e.to_string())),
            },
            Err(Some(addr)) if role != Role::Node => {
                let mut client = self.node.admin_client(&addr)?;
                client.set_node_state(Request::new(req)).await
            }
            Err(_) => Err(Status::unavailable(
                "no leader (DC) known: the cluster has no quorum",
            )),
        }
    }
}

impl AdminService {
    /// `move`/`ban` without a node: where the resource runs now.
    fn active_nodes(&self, rsc: &str) -> Vec<String> {
        let (config, status) = self.node.sm.read(|s| (s.config.clone(), s.status.clone()));
        let p = ha_scheduler::current_placement(&config, &status, crate::dc::now_secs());
        let mut leaves: Vec<String> = Vec::new();
        fn walk(r: &ha_scheduler::model::Resource, id: &str, inside: bool, out: &mut Vec<String>) {
            use ha_scheduler::model::Resource;
            match r {
                Resource::Primitive(p) => {
                    if inside || p.id == id {
                        out.push(p.id.clone());
                    }
                }
                Resource::Group(g) => {
                    let inside = inside || g.id == id;
                    for m in &g.members {
                        if inside || m.id == id {
                            out.push(m.id.clone());
                        }
                    }
                }
                Resource::Clone(c) => walk(&c.child, id, inside || c.id == id, out),
            }
        }
        for r in &config.resources {
            walk(r, rsc, false, &mut leaves);
        }
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        for (key, placed) in &p.resources {
            let base = key.split(['@', ':']).next().unwrap_or(key);
            if leaves.iter().any(|l| l == base) {
                nodes.extend(placed.nodes.iter().cloned());
            }
        }
        nodes.into_iter().collect()
    }

    /// Applies a resource command here (the leader).
    async fn resource_here(
        &self,
        op: &crate::resource::ResourceOp,
    ) -> Result<pb::ResourceReply, Status> {
        use crate::resource::{self as r, ResourceOp};
        let write = |cmd: Command| async move {
            match self.node.write(cmd).await? {
                Ok(resp) => resp
                    .into_result()
                    .map_err(|e| Status::failed_precondition(e.to_string())),
                Err(_) => Err(Status::unavailable("this node stopped being the DC; retry")),
            }
        };
        if let ResourceOp::Cleanup { resource, node } = op {
            let exists = self.node.sm.read(|s| {
                s.config.primitive(resource).is_some()
                    || s.status
                        .nodes
                        .values()
                        .any(|n| n.history.contains_key(resource.as_str()))
            });
            if !exists {
                return Err(Status::not_found(format!(
                    "no resource '{resource}' in the configuration or the history"
                )));
            }
            let v = write(Command::Cleanup {
                resource: resource.clone(),
                node: node.clone(),
            })
            .await?;
            return Ok(pb::ResourceReply {
                message: format!(
                    "cleaned up {resource} on {}: failures and history forgotten, it is probed again",
                    node.as_deref().unwrap_or("every node")
                ),
                config_epoch: v.config_epoch,
                status_version: v.status_version,
            });
        }
        for _ in 0..5 {
            let (epoch, config) = self.node.sm.read(|s| (s.config_epoch, s.config.clone()));
            let bad = |e: r::ResourceError| Status::failed_precondition(e.to_string());
            let (new, message) = match op {
                ResourceOp::Move { resource, node: Some(n) } => (
                    r::prefer(&config, resource, n).map_err(bad)?,
                    format!("{resource} prefers {n} (constraint {}); `hactl resource clear {resource}` lifts it", r::prefer_id(resource)),
                ),
                ResourceOp::Move { resource, node: None } | ResourceOp::Ban { resource, node: None } => {
                    let n = r::only_node(resource, &self.active_nodes(resource)).map_err(bad)?;
                    (
                        r::ban(&config, resource, &n).map_err(bad)?,
                        format!("{resource} banned from {n} (constraint {}); `hactl resource clear {resource}` lifts it", r::ban_id(resource, &n)),
                    )
                }
                ResourceOp::Ban { resource, node: Some(n) } => (
                    r::ban(&config, resource, n).map_err(bad)?,
                    format!("{resource} banned from {n} (constraint {}); `hactl resource clear {resource}` lifts it", r::ban_id(resource, n)),
                ),
                ResourceOp::Clear { resource, node } => (
                    r::clear(&config, resource, node.as_deref()).map_err(bad)?,
                    format!("cleared the move/ban constraints of {resource}"),
                ),
                ResourceOp::Meta { resource, name, value } => (
                    {
                        let new = r::set_meta(&config, resource, name, value.as_deref()).map_err(bad)?;
                        ha_scheduler::validate::validate_clone_limits(&new, Some(&config))
                            .map_err(|e| Status::failed_precondition(e.to_string()))?;
                        new
                    },
                    match value {
                        Some(v) => format!("{resource}: {name}={v}"),
                        None => format!("{resource}: {name} deleted"),
                    },
                ),
                ResourceOp::Cleanup { .. } => unreachable!("handled above"),
            };
            match write(Command::ApplyConfig {
                base_epoch: epoch,
                config: new,
            })
            .await
            {
                Ok(v) => {
                    return Ok(pb::ResourceReply {
                        message,
                        config_epoch: v.config_epoch,
                        status_version: v.status_version,
                    })
                }
                Err(e) if e.message().contains("changed since it was read") => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Status::aborted("the configuration kept changing; retry"))
    }
}

impl Node {
    /// Raft traffic from a node this one no longer counts as a member (a
    /// fenced two-node peer coming back with its old state) is refused: it
    /// must rejoin instead of disturbing the survivor's term.
    fn refuse_non_member<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(cert) = req.peer_certs().and_then(|c| c.first().cloned()) else {
            return Ok(());
        };
        let Ok((_, name)) = peer_identity(cert.as_ref()) else {
            return Ok(());
        };
        let m = self.raft.get().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let me_voter = membership.voter_ids().any(|v| v == self.id);
        let known = membership
            .nodes()
            .any(|(_, n)| split_member(&n.addr).0 == name);
        if me_voter && !known {
            return Err(Status::failed_precondition(format!(
                "{name} is not a member of this cluster any more (fenced): rejoin"
            )));
        }
        Ok(())
    }

    /// Asks the node at `addr` to add `id` back (learner, then voter).
    pub async fn ask_to_add(
        &self,
        addr: &str,
        id: NodeId,
        name: &str,
        advertise: &str,
    ) -> Result<(), String> {
        let mut c = self
            .membership_client(addr)
            .map_err(|e| e.message().to_string())?;
        c.add_member(pb::AddMemberRequest {
            id,
            name: name.to_string(),
            addr: advertise.to_string(),
        })
        .await
        .map(|_| ())
        .map_err(|e| e.message().to_string())
    }

    /// Whether the node at `addr` counts `name` as a member; an error when
    /// it does not answer (or has no voters itself).
    pub async fn is_member_at(&self, addr: &str, name: &str) -> Result<bool, String> {
        let mut c = self
            .membership_client(addr)
            .map_err(|e| e.message().to_string())?;
        let mut req = Request::new(pb::IsMemberRequest {
            name: name.to_string(),
        });
        req.set_timeout(Duration::from_secs(2));
        let r = c
            .is_member(req)
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        if r.voters == 0 || !r.leader {
            return Err("it does not lead a cluster".into());
        }
        Ok(r.member)
    }

    fn membership_client(
        &self,
        addr: &str,
    ) -> Result<pb::membership_client::MembershipClient<tonic::transport::Channel>, Status> {
        let ch = self
            .channels
            .get(addr)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(pb::membership_client::MembershipClient::new(ch))
    }

    /// Adds a node as a learner, then as a voter (on the leader; forwarded
    /// there from a follower). Waits until the learner has caught up.
    pub async fn add_member(&self, id: NodeId, name: &str, addr: &str) -> Result<(), Status> {
        let is_leader = self.raft.get().metrics().borrow().current_leader == Some(self.id);
        if !is_leader {
            let leader = self
                .leader_addr()
                .ok_or_else(|| Status::unavailable("no leader (DC) known"))?;
            let mut c = self.membership_client(&leader)?;
            c.add_member(pb::AddMemberRequest {
                id,
                name: name.to_string(),
                addr: addr.to_string(),
            })
            .await?;
            return Ok(());
        }
        self.raft
            .get()
            .add_learner(id, BasicNode::new(member_addr(name, addr)), true)
            .await
            .map_err(|e| Status::unavailable(format!("cannot add {name} as a learner: {e}")))?;
        let ids: BTreeSet<NodeId> = [id].into_iter().collect();
        self.raft
            .get()
            .change_membership(openraft::ChangeMembers::AddVoterIds(ids), false)
            .await
            .map_err(|e| Status::unavailable(format!("cannot make {name} a voter: {e}")))?;
        tracing::info!(name, id, "admitted as a voter");
        Ok(())
    }
}

impl Node {
    /// Removes a member (voter or learner) by name, on the leader.
    pub async fn remove_member(&self, name: &str, forwarded: bool) -> Result<(), Status> {
        let m = self.raft.get().metrics().borrow().clone();
        let is_leader = m.current_leader == Some(self.id);
        if !is_leader {
            if forwarded {
                return Err(Status::unavailable("not the leader"));
            }
            let leader = self
                .leader_addr()
                .ok_or_else(|| Status::unavailable("no leader (DC) known"))?;
            let mut c = self.membership_client(&leader)?;
            c.remove_member(pb::RemoveMemberRequest {
                name: name.to_string(),
            })
            .await?;
            return Ok(());
        }
        let membership = m.membership_config.membership().clone();
        let id = membership
            .nodes()
            .find(|(_, n)| split_member(&n.addr).0 == name)
            .map(|(id, _)| *id)
            .ok_or_else(|| Status::not_found(format!("{name} is not a member")))?;
        let ids: BTreeSet<NodeId> = [id].into_iter().collect();
        if membership.voter_ids().any(|v| v == id) {
            self.raft
                .get()
                .change_membership(openraft::ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(|e| Status::failed_precondition(format!("cannot remove {name}: {e}")))?;
        }
        let still = self
            .raft
            .get()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some();
        if still {
            self.raft
                .get()
                .change_membership(openraft::ChangeMembers::RemoveNodes(ids), false)
                .await
                .map_err(|e| Status::failed_precondition(format!("cannot remove {name}: {e}")))?;
        }
        tracing::info!(name, id, "removed from the membership");
        Ok(())
    }
}

struct MembershipService {
    node: Node,
}

#[tonic::async_trait]
impl pb::membership_server::Membership for MembershipService {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenReply>, Status> {
        require(&request, ADMINS, "creating a join token")?;
        if self.node.ca.is_none() {
            return Err(Status::failed_precondition(
                "this node holds no CA key, so it cannot admit nodes: ask a node configured with tls.ca_key",
            ));
        }
        let now = Instant::now();
        let expires = crate::join::token_expiry(now, request.get_ref().ttl_secs)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let secret = crate::join::new_secret().map_err(|e| Status::internal(e.to_string()))?;
        let ca_sha256 = crate::tls::fingerprint(&self.node.ca_pem)
            .map_err(|e| Status::internal(e.to_string()))?;
        {
            let mut t = self.node.tokens.lock().map_err(|_| tokens_poisoned())?;
            t.retain(|_, exp| *exp > now);
            if t.len() >= crate::join::MAX_OPEN_TOKENS {
                return Err(Status::resource_exhausted(format!(
                    "{} join tokens are open on this node, the most it keeps: use or let some \
                     expire first",
                    t.len()
                )));
            }
            t.insert(crate::join::secret_hash(&secret), expires);
        }
        let token = crate::join::Token {
            endpoint: self.node.advertise.clone(),
            ca_sha256,
            ca_pem: self.node.ca_pem.clone(),
            secret,
        };
        Ok(Response::new(pb::CreateTokenReply {
            token: token.encode(),
        }))
    }

    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinReply>, Status> {
        let req = request.into_inner();
        let Some(ca) = &self.node.ca else {
            return Err(Status::failed_precondition("this node cannot admit nodes"));
        };
        let hash = crate::join::secret_hash(&req.secret);
        let unknown = || {
            Status::permission_denied(
                "the join token is unknown, used or expired: create a new one with `hactl token create`",
            )
        };
        // The request is checked whole before the token is spent: a
        // mistyped name or address leaves the token usable.
        let (id, host) = {
            let mut tokens = self.node.tokens.lock().map_err(|_| tokens_poisoned())?;
            if tokens.get(&hash).is_none_or(|exp| *exp <= Instant::now()) {
                return Err(unknown());
            }
            let host = crate::join::check_join_request(&req.name, &req.addr)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let m = self.node.raft.get().metrics().borrow().clone();
            let membership = m.membership_config.membership().clone();
            if membership
                .nodes()
                .any(|(_, n)| split_member(&n.addr).0 == req.name)
            {
                return Err(Status::already_exists(format!(
                    "a node named {} is already a member",
                    req.name
                )));
            }
            let id = membership.nodes().map(|(id, _)| *id).max().unwrap_or(0) + 1;
            tokens.remove(&hash).ok_or_else(unknown)?;
            (id, host)
        };
        let host = host.as_str();
        let cert = crate::tls::issue_node(ca, &req.name, host)
            .map_err(|e| Status::internal(e.to_string()))?;
        let node = self.node.clone();
        let (name, addr) = (req.name.clone(), req.addr.clone());
        tokio::spawn(async move {
            if let Err(e) = node.add_member(id, &name, &addr).await {
                tracing::warn!("admitting {name}: {}", e.message());
            }
        });
        Ok(Response::new(pb::JoinReply {
            id,
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        }))
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::AddMemberReply>, Status> {
        require(&request, &[Role::Node], "changing the membership")?;
        let r = request.into_inner();
        self.node.add_member(r.id, &r.name, &r.addr).await?;
        Ok(Response::new(pb::AddMemberReply {}))
    }

    async fn is_member(
        &self,
        request: Request<pb::IsMemberRequest>,
    ) -> Result<Response<pb::IsMemberReply>, Status> {
        require(&request, &[Role::Node], "membership checks")?;
        let name = request.into_inner().name;
        let m = self.node.raft.get().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let member = membership
            .nodes()
            .any(|(_, n)| split_member(&n.addr).0 == name);
        Ok(Response::new(pb::IsMemberReply {
            member,
            leader: m.current_leader == Some(self.node.id),
            voters: membership.voter_ids().count() as u32,
        }))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberReply>, Status> {
        let role = require(&request, ADMINS, "removing a node")?;
        let r = request.into_inner();
        self.node.remove_member(&r.name, role == Role::Node).await?;
        Ok(Response::new(pb::RemoveMemberReply {}))
    }
}

/// Whether a recorded result is a failed action (`hactl status`'s "Failed
/// Resource Actions"): not what was expected, or not done. A probe finds a
/// resource stopped (7), running (0) or promoted (8): each is an answer, not
/// a failure (Pacemaker's "probe found it active").
pub fn is_failed_action(op: &ha_scheduler::model::OpRecord) -> bool {
    let expected = op.expected_rc.unwrap_or(0);
    let probe_answer =
        op.operation == "monitor" && op.interval_ms == 0 && matches!(op.rc, 0 | 7 | 8);
    (op.rc != expected && !probe_answer) || op.op_status > 1
}

#[cfg(test)]
mod failed_action_tests {
    use super::is_failed_action;
    use ha_scheduler::model::OpRecord;

    fn op(operation: &str, interval_ms: u64, rc: i32, expected: i32, op_status: i32) -> OpRecord {
        OpRecord {
            operation: operation.into(),
            interval_ms,
            rc,
            expected_rc: Some(expected),
            op_status,
            ..Default::default()
        }
    }

    #[test]
    fn a_probe_that_finds_a_resource_active_is_not_a_failure() {
        for rc in [0, 7, 8] {
            assert!(
                !is_failed_action(&op("monitor", 0, rc, 7, 0)),
                "probe rc {rc}"
            );
        }
        assert!(is_failed_action(&op("monitor", 0, 1, 7, 0)), "probe rc 1");
        assert!(
            is_failed_action(&op("monitor", 0, 7, 7, 2)),
            "probe timed out"
        );
        assert!(
            is_failed_action(&op("monitor", 10_000, 7, 0, 0)),
            "recurring monitor 7"
        );
        assert!(is_failed_action(&op("start", 0, 1, 0, 0)), "start rc 1");
        assert!(!is_failed_action(&op("start", 0, 0, 0, 0)), "start ok");
    }
}
