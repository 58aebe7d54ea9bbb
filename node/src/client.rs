//! `hactl`'s connection to the cluster: every endpoint of the client config
//! in turn, over mutual TLS, until one answers.

use std::time::Duration;

use thiserror::Error;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::ClientConfig;
use crate::pb;
use crate::pb::admin_client::AdminClient;
use crate::tls::TlsError;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("no endpoint answered: {0}")]
    NoEndpoint(String),
    #[error("{0}")]
    Refused(String),
}

/// A client of the `Admin` service.
pub struct Client {
    endpoints: Vec<String>,
    tls: ClientTlsConfig,
    timeout: Duration,
}

fn describe(s: &tonic::Status) -> String {
    let code = match s.code() {
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "not authenticated",
        tonic::Code::FailedPrecondition => "rejected",
        tonic::Code::InvalidArgument => "invalid request",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::OutOfRange => "too large",
        tonic::Code::ResourceExhausted => "over a limit",
        _ => "error",
    };
    format!("{code}: {}", s.message())
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ClientError> {
        Ok(Client {
            endpoints: cfg.endpoints.clone(),
            tls: cfg.tls.files().client()?,
            timeout: Duration::from_secs(5),
        })
    }

    /// The same client, waiting up to `timeout` for each answer (fencing
    /// by hand takes longer than the default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    async fn channel(&self, addr: &str) -> Result<Channel, String> {
        let ep = Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| e.to_string())?
            .tls_config(self.tls.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(self.timeout);
        ep.connect().await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        })
    }

    /// Runs `f` against the first endpoint that answers. Connection failures
    /// and `Unavailable` move on to the next endpoint; any other answer is final.
    async fn each<T, F, Fut>(&self, f: F) -> Result<T, ClientError>
    where
        F: Fn(AdminClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.each_passing(&[], f).await
    }

    /// [`Self::each`], moving on also on an answer whose code is in `pass`
    /// (a node saying "not me").
    async fn each_passing<T, F, Fut>(&self, pass: &[tonic::Code], f: F) -> Result<T, ClientError>
    where
        F: Fn(AdminClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut errors = Vec::new();
        for addr in &self.endpoints {
            let ch = match self.channel(addr).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let client = AdminClient::new(ch).max_decoding_message_size(crate::gate::limits::REPLY);
            match f(client).await {
                Ok(r) => return Ok(r.into_inner()),
                // A node that does not answer in time (frozen, overloaded)
                // is skipped like one that is down.
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Cancelled
                    ) =>
                {
                    errors.push(format!("{addr}: {}", describe(&s)));
                }
                Err(s) if pass.contains(&s.code()) => {
                    errors.push(format!("{addr}: {}", s.message()));
                }
                Err(s) => return Err(ClientError::Refused(describe(&s))),
            }
        }
        Err(ClientError::NoEndpoint(errors.join("; ")))
    }

    /// The status JSON.
    pub async fn status(&self) -> Result<serde_json::Value, ClientError> {
        let r = self
            .each(|mut c| async move { c.status(pb::StatusRequest {}).await })
            .await?;
        serde_json::from_str(&r.json).map_err(|e| ClientError::Refused(e.to_string()))
    }

    /// The configuration and its epoch, secret values shown as
    /// `ha_fencing::REDACTED` (what `apply_config` turns back into them).
    pub async fn get_config(&self) -> Result<(u64, ha_scheduler::model::Config), ClientError> {
        self.get_config_with(false).await
    }

    /// The configuration and its epoch; with `show_secrets` (admin only)
    /// the secret values as stored.
    pub async fn get_config_with(
        &self,
        show_secrets: bool,
    ) -> Result<(u64, ha_scheduler::model::Config), ClientError> {
        let r = self
            .each(|mut c| async move { c.get_config(pb::GetConfigRequest { show_secrets }).await })
            .await?;
        let cfg = serde_json::from_str(&r.config_json)
            .map_err(|e| ClientError::Refused(format!("undecodable configuration: {e}")))?;
        Ok((r.epoch, cfg))
    }

    /// Replaces the configuration if its epoch is still `base_epoch`; the new epoch.
    pub async fn apply_config(
        &self,
        base_epoch: u64,
        config: &ha_scheduler::model::Config,
    ) -> Result<u64, ClientError> {
        let config_json =
            serde_json::to_string(config).map_err(|e| ClientError::Refused(e.to_string()))?;
        let r = self
            .each(|mut c| {
                let req = pb::ApplyConfigRequest {
                    base_epoch,
                    config_json: config_json.clone(),
                };
                async move { c.apply_config(req).await }
            })
            .await?;
        Ok(r.epoch)
    }

    /// A one-time join token (from the first endpoint that answers).
    pub async fn create_token(&self, ttl_secs: u64) -> Result<String, ClientError> {
        let mut errors = Vec::new();
        for addr in &self.endpoints {
            let ch = match self.channel(addr).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let mut c = pb::membership_client::MembershipClient::new(ch);
            match c.create_token(pb::CreateTokenRequest { ttl_secs }).await {
                Ok(r) => return Ok(r.into_inner().token),
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    errors.push(format!("{addr}: {}", describe(&s)))
                }
                Err(s) => return Err(ClientError::Refused(describe(&s))),
            }
        }
        Err(ClientError::NoEndpoint(errors.join("; ")))
    }

    /// Removes a node from the Raft membership.
    pub async fn remove_member(&self, name: &str) -> Result<(), ClientError> {
        let mut errors = Vec::new();
        for addr in &self.endpoints {
            let ch = match self.channel(addr).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let mut c = pb::membership_client::MembershipClient::new(ch);
            let req = pb::RemoveMemberRequest {
                name: name.to_string(),
            };
            match c.remove_member(req).await {
                Ok(_) => return Ok(()),
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    errors.push(format!("{addr}: {}", describe(&s)))
                }
                Err(s) => return Err(ClientError::Refused(describe(&s))),
            }
        }
        Err(ClientError::NoEndpoint(errors.join("; ")))
    }

    /// A resource command (cleanup, move, ban, clear, meta): what was done.
    pub async fn resource(
        &self,
        op: &crate::resource::ResourceOp,
    ) -> Result<pb::ResourceReply, ClientError> {
        let json = serde_json::to_string(op).unwrap_or_default();
        self.each(|mut c| {
            let req = pb::ResourceRequest { json: json.clone() };
            async move { c.resource(req).await }
        })
        .await
    }

    /// A manual stonith command, run by the DC: its JSON report.
    pub async fn stonith(
        &self,
        op: &crate::fencer::StonithOp,
    ) -> Result<serde_json::Value, ClientError> {
        let json = serde_json::to_string(op).unwrap_or_default();
        let r = self
            .each(|mut c| {
                let req = pb::StonithRequest { json: json.clone() };
                async move { c.stonith(req).await }
            })
            .await?;
        Ok(serde_json::from_str(&r.json).unwrap_or_default())
    }

    /// Runs a DRBD command on the node named `node` (`Admin.Drbd` is not
    /// forwarded: each endpoint refuses a call for another node until the
    /// one that is `node` runs it).
    pub async fn drbd_on(
        &self,
        node: &str,
        op: &crate::drbd_ops::DrbdOp,
    ) -> Result<crate::drbd_ops::DrbdReport, ClientError> {
        let call = crate::drbd_ops::DrbdCall {
            node: node.to_string(),
            op: op.clone(),
        };
        let json = serde_json::to_string(&call).map_err(|e| ClientError::Refused(e.to_string()))?;
        let r = self
            .each_passing(&[tonic::Code::NotFound], |mut c| {
                let req = pb::DrbdRequest { json: json.clone() };
                async move { c.drbd(req).await }
            })
            .await?;
        serde_json::from_str(&r.json).map_err(|e| ClientError::Refused(e.to_string()))
    }

    /// A quorum override on the first node that answers (`unblock`).
    pub async fn quorum(&self, op: &str) -> Result<String, ClientError> {
        let r = self
            .each(|mut c| {
                let req = pb::QuorumRequest { op: op.to_string() };
                async move { c.quorum(req).await }
            })
            .await?;
        Ok(r.message)
    }

    /// `standby` or `online`.
    pub async fn set_node_state(&self, node: &str, state: &str) -> Result<u64, ClientError> {
        let r = self
            .each(|mut c| {
                let req = pb::SetNodeStateRequest {
                    node: node.to_string(),
                    state: state.to_string(),
                };
                async move { c.set_node_state(req).await }
            })
            .await?;
        Ok(r.epoch)
    }
}
