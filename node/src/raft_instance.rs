//! The node's openraft instance, restartable in place: the two-node
//! takeover rewrites the membership to this node alone and starts Raft
//! again on the same store, while the process — its executor, the agents'
//! monitors, the resources' recorded history — goes on. (Re-executing the
//! whole process instead cost a re-probe of everything the survivor runs
//! and failed when the binary on disk had been replaced.)

use std::sync::{Arc, RwLock};

use ha_raft_store::types::{NodeId, Raft};
use ha_raft_store::{LogStore, StateMachineStore};
use openraft::{BasicNode, LogId};

use crate::network::NetworkFactory;

/// What a Raft instance is made of, kept to make the next one.
struct Parts {
    id: NodeId,
    config: Arc<openraft::Config>,
    network: NetworkFactory,
    log: LogStore,
    sm: StateMachineStore,
    /// One restart at a time.
    restarting: tokio::sync::Mutex<()>,
}

impl Parts {
    /// A Raft instance on the stored log and state machine.
    async fn new_raft(&self) -> Result<Raft, String> {
        Raft::new(
            self.id,
            self.config.clone(),
            self.network.clone(),
            self.log.clone(),
            self.sm.clone(),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// A shared handle to the current Raft instance. Cheap to clone.
#[derive(Clone)]
pub struct RaftInstance {
    current: Arc<RwLock<Raft>>,
    parts: Arc<Parts>,
}

/// Why Raft could not be restarted in place.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error("cannot rewrite the membership in the Raft log: {0}")]
    Store(#[from] ha_raft_store::StoreError),
    #[error("cannot start Raft again: {0}")]
    Start(String),
}

impl RaftInstance {
    /// Starts Raft on `log` and `sm`.
    pub async fn start(
        id: NodeId,
        config: Arc<openraft::Config>,
        network: NetworkFactory,
        log: LogStore,
        sm: StateMachineStore,
    ) -> Result<RaftInstance, String> {
        let parts = Parts {
            id,
            config,
            network,
            log,
            sm,
            restarting: tokio::sync::Mutex::new(()),
        };
        let raft = parts.new_raft().await?;
        Ok(RaftInstance {
            current: Arc::new(RwLock::new(raft)),
            parts: Arc::new(parts),
        })
    }

    /// The Raft instance running now (a call in flight on one being
    /// replaced ends with openraft's "stopped" error; callers retry).
    pub fn get(&self) -> Raft {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The two-node takeover, after the peer was fenced: stops Raft, makes
    /// `me` the only voter in the stored log (a membership entry in a new
    /// term, durable), and starts Raft again on it. The state machine keeps
    /// what it applied; the new instance goes on from there.
    pub async fn restart_single_voter(&self, me: BasicNode) -> Result<LogId<NodeId>, RestartError> {
        let _one = self.parts.restarting.lock().await;
        let old = self.get();
        if let Err(e) = old.shutdown().await {
            tracing::warn!("raft shutdown before the takeover: {e}");
        }
        let p = &self.parts;
        let log_id = p.log.force_single_voter(p.id, me)?;
        let raft = p.new_raft().await.map_err(RestartError::Start)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = raft;
        Ok(log_id)
    }

    /// Stops the running instance (daemon shutdown).
    pub async fn shutdown(&self) {
        if let Err(e) = self.get().shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}
