//! The front door of a node's gRPC server: who may reach which service,
//! decided from the TLS connection and the request path before a byte of the
//! body is read, and how large a message each service accepts.
//!
//! A client certificate is optional at the TLS layer so that `Join` (whose
//! one-time secret is the credential) works; every other path needs a
//! certificate of the cluster CA, and the node-to-node services (Raft,
//! Executor, membership changes) need a node certificate. A refused request
//! is answered with a gRPC status at once; its body is never polled, so a
//! caller announcing gigabytes costs the node nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use crate::tls::{peer_identity, Role};

/// The one path a caller without a certificate may use.
pub const JOIN_PATH: &str = "/ha.v1.Membership/Join";

/// Largest request each service decodes (bytes). The Raft transport splits
/// a batch of entries that would not fit (see `network`), and snapshots
/// travel in chunks of [`SNAPSHOT_CHUNK`].
pub mod limits {
    /// Raft: AppendEntries, Vote, InstallSnapshot (node certificates only).
    pub const RAFT: usize = 64 << 20;
    /// Admin: the largest is a whole configuration (ApplyConfig).
    pub const ADMIN: usize = 16 << 20;
    /// Executor: one operation request from the DC.
    pub const EXECUTOR: usize = 4 << 20;
    /// Membership: tokens, join and member changes (Join is unauthenticated).
    pub const MEMBERSHIP: usize = 64 << 10;
    /// Replies a client or peer accepts from a node (status of a large
    /// cluster, a whole configuration): generous but bounded.
    pub const REPLY: usize = 256 << 20;
    /// Bytes of snapshot data per InstallSnapshot chunk.
    pub const SNAPSHOT_CHUNK: u64 = 1 << 20;
    /// Largest header block a caller may send.
    pub const HEADER_LIST: u32 = 16 << 10;
}

/// Requests one connection may have open at once.
pub const STREAMS_PER_CONNECTION: u32 = 64;

/// Who a caller is, as far as the gate is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No client certificate.
    Anonymous,
    /// A certificate of the cluster CA with a role.
    Certified(Role),
    /// A certificate of the cluster CA whose role cannot be read.
    Unreadable,
}

/// Whether `caller` may send a request to `path`; the refusal names what is
/// needed.
pub fn admit(path: &str, caller: Caller) -> Result<(), Status> {
    if path == JOIN_PATH {
        return Ok(());
    }
    let role = match caller {
        Caller::Anonymous => {
            return Err(Status::unauthenticated(format!(
                "{path} needs a client certificate of the cluster CA (only {JOIN_PATH} is open \
                 without one)"
            )))
        }
        Caller::Unreadable => {
            return Err(Status::permission_denied(format!(
                "{path}: the client certificate carries no readable role"
            )))
        }
        Caller::Certified(role) => role,
    };
    if node_only(path) && role != Role::Node {
        return Err(Status::permission_denied(format!(
            "{path} is cluster-internal: it needs the role node; this certificate has the role \
             '{}'",
            role.as_str()
        )));
    }
    Ok(())
}

/// Paths only cluster nodes call.
fn node_only(path: &str) -> bool {
    path.starts_with("/ha.v1.Raft/")
        || path.starts_with("/ha.v1.Executor/")
        || path == "/ha.v1.Membership/AddMember"
        || path == "/ha.v1.Membership/IsMember"
}

/// The caller of a request, from the TLS connection tonic recorded in its
/// extensions.
fn caller<B>(req: &http::Request<B>) -> Caller {
    let certs = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.peer_certs());
    match certs.as_ref().and_then(|c| c.first()) {
        None => Caller::Anonymous,
        Some(der) => match peer_identity(der.as_ref()) {
            Ok((role, _)) => Caller::Certified(role),
            Err(_) => Caller::Unreadable,
        },
    }
}

/// The tower layer in front of every service.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateLayer;

impl<S> tower_layer::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Gate<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match admit(req.uri().path(), caller(&req)) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(status) => {
                tracing::debug!(path = %req.uri().path(), "refused at the gate: {}", status.message());
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_alone_is_open_and_node_services_need_a_node() {
        assert!(admit(JOIN_PATH, Caller::Anonymous).is_ok());
        for path in [
            "/ha.v1.Raft/AppendEntries",
            "/ha.v1.Admin/Status",
            "/ha.v1.Membership/CreateToken",
            "/ha.v1.Nope/Nothing",
        ] {
            let e = admit(path, Caller::Anonymous).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{path}");
            assert!(e.message().contains(JOIN_PATH));
        }
        for path in [
            "/ha.v1.Raft/Vote",
            "/ha.v1.Executor/Execute",
            "/ha.v1.Membership/AddMember",
        ] {
            let e = admit(path, Caller::Certified(Role::Admin)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied);
            assert!(
                e.message().contains("needs the role node"),
                "{}",
                e.message()
            );
            assert!(e.message().contains("'admin'"), "{}", e.message());
            assert!(admit(path, Caller::Certified(Role::Node)).is_ok());
        }
        assert!(admit("/ha.v1.Admin/Status", Caller::Certified(Role::Reader)).is_ok());
        assert_eq!(
            admit("/ha.v1.Admin/Status", Caller::Unreadable)
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
    }
}
