//! Hostile callers against a real node: a caller without a certificate
//! announcing gigabytes, oversized requests with a certificate, join tokens
//! with absurd lifetimes, joins that ask for a bad name, and node-only RPCs
//! called with a client certificate (issue 13, points 1, 3 and 5).

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ha_node::config::NodeConfig;
use ha_node::pb;
use http_body::Frame;
use http_body_util::BodyExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A gRPC request body: a frame header announcing `announce` bytes, then
/// zeros until `send` bytes went out or the server stopped reading.
struct Flood {
    header: Option<[u8; 5]>,
    left: u64,
    sent: Arc<AtomicU64>,
}

impl http_body::Body for Flood {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(h) = self.header.take() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(&h)))));
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(1 << 16);
        self.left -= n;
        self.sent.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; n as usize])))))
    }
}

fn ca_pem(c: &Cluster) -> String {
    std::fs::read_to_string(c.dir.join("ca.pem")).unwrap()
}

fn addr(c: &Cluster, i: usize) -> String {
    NodeConfig::load(&c.configs[i]).unwrap().listen
}

/// A channel to node `i` that trusts the cluster CA and presents
/// `identity` (none: no client certificate).
async fn channel(c: &Cluster, i: usize, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem(c)))
        .domain_name(ha_node::tls::CLUSTER_SERVER_NAME);
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Endpoint::from_shared(format!("https://{}", addr(c, i)))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The admin identity the harness wrote for hactl.
fn admin_identity(c: &Cluster) -> Identity {
    let cfg = ha_node::config::ClientConfig::load(&c.client_config).unwrap();
    let files = cfg.tls.files();
    Identity::from_pem(
        std::fs::read_to_string(files.cert).unwrap(),
        std::fs::read_to_string(files.key).unwrap(),
    )
}

/// Resident and peak virtual memory of a process, in KiB.
fn mem_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmPeak:"))
}

/// `grpc-message` is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The gRPC status of a reply: its headers (a trailers-only answer) or its
/// trailers.
async fn grpc_status(resp: http::Response<tonic::body::Body>) -> (i32, String) {
    let (parts, body) = resp.into_parts();
    let read = |h: &http::HeaderMap| {
        h.get("grpc-status").map(|v| {
            let code = v.to_str().unwrap().parse::<i32>().unwrap();
            let msg = h
                .get("grpc-message")
                .map(|m| percent_decode(m.to_str().unwrap()))
                .unwrap_or_default();
            (code, msg)
        })
    };
    if let Some(s) = read(&parts.headers) {
        return s;
    }
    let collected = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("the reply ends")
        .expect("a readable reply");
    read(collected.trailers().expect("trailers")).expect("a grpc-status")
}

/// Sends `send` bytes of a frame announcing `announce` bytes to `path`
/// over `ch`, sampling the node's memory meanwhile; returns the status,
/// bytes the body produced and the largest RSS seen (KiB).
async fn flood(
    ch: Channel,
    pid: u32,
    path: &str,
    announce: u32,
    send: u64,
) -> ((i32, String), u64, u64) {
    use tower_service::Service;
    let sent = Arc::new(AtomicU64::new(0));
    let mut header = [0u8; 5];
    header[1..].copy_from_slice(&announce.to_be_bytes());
    let body = Flood {
        header: Some(header),
        left: send,
        sent: sent.clone(),
    };
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://{}{path}",
            ha_node::tls::CLUSTER_SERVER_NAME
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(body))
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut max = 0;
            while !done.load(Ordering::Relaxed) {
                max = max.max(mem_kib(pid).0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            max
        })
    };
    let mut ch = ch;
    std::future::poll_fn(|cx| ch.poll_ready(cx)).await.unwrap();
    let status = match tokio::time::timeout(Duration::from_secs(60), ch.call(req)).await {
        Ok(Ok(resp)) => grpc_status(resp).await,
        Ok(Err(e)) => (-1, format!("transport: {e}")),
        Err(_) => (-2, "no answer in 60 s".to_string()),
    };
    // Keep sampling a moment: a server that buffers does so after answering.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);
    let max = sampler.await.unwrap();
    (status, sent.load(Ordering::Relaxed), max)
}

#[test]
fn no_certificate_no_memory_and_oversized_requests_name_the_limit() {
    let c = Cluster::start(1);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let pid = c.pid(0);
    std::thread::sleep(Duration::from_millis(500));
    let (idle_rss, idle_peak) = mem_kib(pid);

    rt.block_on(async {
        // No certificate: refused at the gate before the body is read,
        // whatever the frame announces and however much follows.
        for path in [
            "/ha.v1.Raft/AppendEntries",
            "/ha.v1.Admin/ApplyConfig",
            "/ha.v1.Executor/Execute",
        ] {
            let ch = channel(&c, 0, None).await;
            let ((code, msg), sent, max_rss) = flood(ch, pid, path, u32::MAX, 800 << 20).await;
            let (_, peak) = mem_kib(pid);
            eprintln!(
                "{path}: status {code} {msg:?}; body produced {} MiB; RSS idle {} KiB, max {} KiB; VmPeak {} -> {} KiB",
                sent >> 20,
                idle_rss,
                max_rss,
                idle_peak,
                peak
            );
            assert_eq!(code, tonic::Code::Unauthenticated as i32, "{path}: {msg}");
            assert!(msg.contains("client certificate"), "{msg}");
            assert!(
                max_rss < idle_rss + 20 * 1024,
                "{path}: RSS rose from {idle_rss} KiB to {max_rss} KiB"
            );
            assert!(
                peak < idle_peak + 1024 * 1024,
                "{path}: VmPeak rose from {idle_peak} KiB to {peak} KiB (a 4 GiB reservation?)"
            );
        }
        // Join is open without a certificate, and bounded: a 4 GiB
        // announcement is refused by size.
        let ch = channel(&c, 0, None).await;
        let ((code, msg), sent, max_rss) =
            flood(ch, pid, "/ha.v1.Membership/Join", u32::MAX, 800 << 20).await;
        eprintln!(
            "Join: status {code} {msg:?}; body produced {} MiB; RSS max {max_rss} KiB",
            sent >> 20
        );
        assert_eq!(code, tonic::Code::OutOfRange as i32, "{msg}");
        assert!(msg.contains("65536"), "the limit is named: {msg}");
        assert!(max_rss < idle_rss + 20 * 1024, "RSS {idle_rss} -> {max_rss} KiB");

        // With the admin's certificate: an oversized configuration is
        // refused, naming the limit; nothing is applied.
        let before = client.status().await.unwrap()["config_epoch"].clone();
        let ch = channel(&c, 0, Some(admin_identity(&c))).await;
        let mut admin = pb::admin_client::AdminClient::new(ch);
        let err = admin
            .apply_config(pb::ApplyConfigRequest {
                base_epoch: 0,
                config_json: "x".repeat((16 << 20) + 1),
            })
            .await
            .unwrap_err();
        eprintln!("oversized ApplyConfig: {:?} {}", err.code(), err.message());
        assert_eq!(err.code(), tonic::Code::OutOfRange);
        assert!(err.message().contains("16777216"), "{}", err.message());
        let after = client.status().await.unwrap()["config_epoch"].clone();
        assert_eq!(before, after);
        let (rss, _) = mem_kib(pid);
        eprintln!("RSS after the oversized request: {rss} KiB (idle {idle_rss} KiB)");
    });
}

#[test]
fn tokens_outlive_a_hostile_ttl_and_joins_check_the_name_first() {
    let c = Cluster::start(1);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));

    // An absurd lifetime is refused with the limit; the token table works on.
    let out = c.hactl(&["token", "create", "--ttl", "18446744073709551615"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at most 604800 s"),
        "{}",
        stderr(&out)
    );
    let out = c.hactl(&["token", "create", "--ttl", "600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = ha_node::join::Token::decode(stdout(&out).trim()).unwrap();

    rt.block_on(async {
        let ch = channel(&c, 0, None).await;
        let mut m = pb::membership_client::MembershipClient::new(ch);
        // A name with '@' (it would break member addresses) is refused
        // before the token is spent.
        for (name, addr) in [("evil@node", "127.0.0.9:7420"), ("node9", "127.0.0.9")] {
            let e = m
                .join(pb::JoinRequest {
                    secret: token.secret.clone(),
                    name: name.into(),
                    addr: addr.into(),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        }
        // The same token still admits a good name, once.
        let reply = m
            .join(pb::JoinRequest {
                secret: token.secret.clone(),
                name: "node9".into(),
                addr: "127.0.0.9:7420".into(),
            })
            .await
            .expect("the token survived the bad requests")
            .into_inner();
        assert!(reply.id > 1);
        let e = m
            .join(pb::JoinRequest {
                secret: token.secret.clone(),
                name: "node10".into(),
                addr: "127.0.0.10:7420".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);

        // A node-only RPC called with the admin's certificate names the role.
        let ch = channel(&c, 0, Some(admin_identity(&c))).await;
        let mut ex = pb::executor_client::ExecutorClient::new(ch);
        let e = ex
            .in_flight(pb::Bytes {
                data: b"{}".to_vec(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(
            e.message().contains("needs the role node"),
            "{}",
            e.message()
        );
    });
}
