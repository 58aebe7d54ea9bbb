//! Join tokens: one-time secrets an admin creates on a node holding the CA
//! key, carried with the cluster CA certificate and its SHA-256 fingerprint
//! so the joining node trusts only that CA (no trust on first use), and the
//! joining side of `hactl join`.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::config::{ConfigFileError, NodeConfig, TlsPaths};
use crate::pb;
use crate::tls::{self, TlsError, CLUSTER_SERVER_NAME};

const PREFIX: &str = "ha1.";
/// Longest token text accepted (a CA certificate and a few fields).
const MAX_TOKEN_LEN: usize = 64 << 10;

#[derive(Debug, Error)]
pub enum JoinError {
    #[error("not a join token (it starts with '{PREFIX}'; create one with `hactl token create`)")]
    Malformed,
    #[error(
        "the token's CA does not match its fingerprint (sha256:{expected}, CA is sha256:{actual}): \
         the token was altered; get a new one"
    )]
    FingerprintMismatch { expected: String, actual: String },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error("cannot reach {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("join refused by {endpoint}: {message}")]
    Refused { endpoint: String, message: String },
}

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The node that issued it (and will admit the new node).
    pub endpoint: String,
    /// SHA-256 of the cluster CA certificate (DER), hex.
    pub ca_sha256: String,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// The one-time secret.
    pub secret: String,
}

impl Token {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Decodes a token and checks the CA against the fingerprint.
    pub fn decode(s: &str) -> Result<Token, JoinError> {
        if s.len() > MAX_TOKEN_LEN {
            return Err(JoinError::Malformed);
        }
        let body = s.trim().strip_prefix(PREFIX).ok_or(JoinError::Malformed)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| JoinError::Malformed)?;
        let t: Token = serde_json::from_slice(&json).map_err(|_| JoinError::Malformed)?;
        let actual = tls::fingerprint(&t.ca_pem)?;
        if actual != t.ca_sha256 {
            return Err(JoinError::FingerprintMismatch {
                expected: t.ca_sha256,
                actual,
            });
        }
        Ok(t)
    }
}

/// The longest a join token may live (7 days); `0` asks for the default.
pub const MAX_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;
/// A token's life when none is asked for (1 hour).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;
/// Open (unused, unexpired) tokens a node keeps at most.
pub const MAX_OPEN_TOKENS: usize = 1024;
/// Longest node name (a DNS name).
pub const MAX_NODE_NAME: usize = 253;

/// Why a token request or a join request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("a join token may live at most {MAX_TOKEN_TTL_SECS} s (7 days); {0} s was asked for")]
    TtlTooLong(u64),
    #[error(
        "node name {name:?} is not valid: {why} (letters, digits, '-', '_' and '.', at most \
         {MAX_NODE_NAME} characters, starting with a letter or digit)"
    )]
    Name { name: String, why: &'static str },
    #[error("address {addr:?} is not valid: {why} (expected host:port, e.g. 192.0.2.7:7420)")]
    Addr { addr: String, why: &'static str },
}

/// When a token created at `now` for `ttl_secs` expires.
pub fn token_expiry(now: Instant, ttl_secs: u64) -> Result<Instant, RequestError> {
    let ttl = match ttl_secs {
        0 => DEFAULT_TOKEN_TTL_SECS,
        t if t > MAX_TOKEN_TTL_SECS => return Err(RequestError::TtlTooLong(t)),
        t => t,
    };
    now.checked_add(Duration::from_secs(ttl))
        .ok_or(RequestError::TtlTooLong(ttl))
}

/// Checks a node name: it becomes a certificate's CN, a Raft member's
/// `name@addr` and the key of its history, so it is a plain DNS-style name.
pub fn check_node_name(name: &str) -> Result<(), RequestError> {
    let bad = |why| {
        Err(RequestError::Name {
            name: name.chars().take(80).collect(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NODE_NAME {
        return bad("it is too long");
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return bad("it must start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("it holds a character other than letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Checks what a joining node asks for, returning the host of its address
/// (for its certificate).
pub fn check_join_request(name: &str, addr: &str) -> Result<String, RequestError> {
    check_node_name(name)?;
    let bad = |why| {
        Err(RequestError::Addr {
            addr: addr.chars().take(80).collect(),
            why,
        })
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("it has no port");
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return bad("the port is not a number from 1 to 65535");
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_err() && check_node_name(host).is_err() {
        return bad("the host is neither an IP address nor a DNS name");
    }
    Ok(host.to_string())
}

/// A random secret, hex.
pub fn new_secret() -> Result<String, TlsError> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| TlsError::Parse("no randomness".to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// SHA-256 of a secret, hex (what a node keeps).
pub fn secret_hash(secret: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

/// Joins the cluster of `token` as `name` at `addr`: the node that issued
/// the token signs a certificate for it and adds it (learner, then voter)
/// once it runs. Writes `data_dir/ha-node.toml` and the TLS files.
pub async fn join(
    token: &Token,
    name: &str,
    addr: &str,
    data_dir: &Path,
) -> Result<(NodeConfig, std::path::PathBuf), JoinError> {
    check_join_request(name, addr)?;
    let endpoint = token.endpoint.clone();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&token.ca_pem))
        .domain_name(CLUSTER_SERVER_NAME);
    let connect_err = |e: &dyn std::fmt::Display| JoinError::Connect {
        endpoint: endpoint.clone(),
        message: e.to_string(),
    };
    let ch = Endpoint::from_shared(format!("https://{endpoint}"))
        .map_err(|e| connect_err(&e))?
        .tls_config(tls)
        .map_err(|e| connect_err(&e))?
        .connect()
        .await
        .map_err(|e| connect_err(&e))?;
    let mut client = pb::membership_client::MembershipClient::new(ch);
    let reply = client
        .join(pb::JoinRequest {
            secret: token.secret.clone(),
            name: name.to_string(),
            addr: addr.to_string(),
        })
        .await
        .map_err(|s| JoinError::Refused {
            endpoint: endpoint.clone(),
            message: s.message().to_string(),
        })?
        .into_inner();
    let tls_paths = TlsPaths {
        ca: data_dir.join("ca.pem"),
        cert: data_dir.join("node.pem"),
        key: data_dir.join("node.key"),
        ca_key: None,
    };
    tls::write(&tls_paths.ca, &token.ca_pem)?;
    tls::write(&tls_paths.cert, &reply.cert_pem)?;
    tls::write(&tls_paths.key, &reply.key_pem)?;
    let cfg = NodeConfig {
        name: name.to_string(),
        id: reply.id,
        listen: addr.to_string(),
        advertise: None,
        data_dir: data_dir.join("data"),
        tls: tls_paths,
        bootstrap: Vec::new(),
        ..NodeConfig::example()
    };
    let path = data_dir.join("ha-node.toml");
    cfg.save(&path)?;
    Ok((cfg, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_a_swapped_ca_is_detected() {
        let ca = tls::create_ca("t").unwrap();
        let t = Token {
            endpoint: "127.0.0.1:7410".to_string(),
            ca_sha256: tls::fingerprint(&ca.cert_pem).unwrap(),
            ca_pem: ca.cert_pem.clone(),
            secret: new_secret().unwrap(),
        };
        assert_eq!(Token::decode(&t.encode()).unwrap(), t);
        let forged = Token {
            ca_pem: tls::create_ca("evil").unwrap().cert_pem,
            ..t.clone()
        };
        assert!(matches!(
            Token::decode(&forged.encode()),
            Err(JoinError::FingerprintMismatch { .. })
        ));
        assert!(matches!(
            Token::decode("garbage"),
            Err(JoinError::Malformed)
        ));
        assert_ne!(secret_hash(&t.secret), t.secret);
        assert!(matches!(
            Token::decode(&format!("{PREFIX}{}", "A".repeat(MAX_TOKEN_LEN))),
            Err(JoinError::Malformed)
        ));
    }

    #[test]
    fn token_lifetimes_are_bounded_without_overflow() {
        let now = Instant::now();
        assert_eq!(
            token_expiry(now, 0).unwrap(),
            now + Duration::from_secs(DEFAULT_TOKEN_TTL_SECS)
        );
        assert_eq!(
            token_expiry(now, 60).unwrap(),
            now + Duration::from_secs(60)
        );
        let e = token_expiry(now, u64::MAX).unwrap_err();
        assert_eq!(e, RequestError::TtlTooLong(u64::MAX));
        assert!(e.to_string().contains("at most 604800 s"), "{e}");
        assert!(token_expiry(now, MAX_TOKEN_TTL_SECS).is_ok());
        assert!(token_expiry(now, MAX_TOKEN_TTL_SECS + 1).is_err());
    }

    #[test]
    fn join_requests_name_a_plain_node_and_a_host_port() {
        assert_eq!(
            check_join_request("node4", "127.0.0.4:7420").unwrap(),
            "127.0.0.4"
        );
        assert_eq!(
            check_join_request("db-2.example", "[::1]:7420").unwrap(),
            "::1"
        );
        assert_eq!(check_join_request("n5", "n5.lan:7420").unwrap(), "n5.lan");
        for name in ["", "a@b", "-x", "node 4", "n:4", &"x".repeat(254)] {
            let e = check_join_request(name, "127.0.0.4:7420").unwrap_err();
            assert!(matches!(e, RequestError::Name { .. }), "{name:?}: {e}");
        }
        for addr in [
            "127.0.0.4",
            "127.0.0.4:0",
            "127.0.0.4:99999",
            "a@b:7420",
            ":7420",
        ] {
            let e = check_join_request("node4", addr).unwrap_err();
            assert!(matches!(e, RequestError::Addr { .. }), "{addr:?}: {e}");
        }
    }
}
