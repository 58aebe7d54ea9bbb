//! Join tokens: one-time secrets an admin creates on a node holding the CA
//! key, carried with the cluster CA certificate and its SHA-256 fingerprint
//! so the joining node trusts only that CA (no trust on first use), and the
//! joining side of `hactl join`.

use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::config::{ConfigFileError, NodeConfig, TlsPaths};
use crate::pb;
use crate::tls::{self, TlsError, CLUSTER_SERVER_NAME};

const PREFIX: &str = "ha1.";

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
    }
}
