//! The cluster's certificates: the CA (`hactl init`), node certificates
//! (serverAuth + clientAuth, OU `node`), client certificates whose role
//! (`reader`, `operator`, `admin`) is their subject's OU, and the tonic TLS
//! settings (mutual TLS: a server accepts only clients of the cluster CA).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The DNS name every node certificate carries and every client checks:
/// a node proves it belongs to the cluster (all nodes are peers of one CA).
pub const CLUSTER_SERVER_NAME: &str = "ha-node.cluster";

/// What a certificate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Status only.
    Reader,
    /// Standby / online, cleanup, move.
    Operator,
    /// Configuration, tokens, membership.
    Admin,
    /// A cluster node (Raft traffic, forwarded writes).
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Node => "node",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            "node" => Some(Role::Node),
            _ => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot create a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the peer's certificate cannot be parsed: {0}")]
    Parse(String),
    #[error("{path}: {why}")]
    BadPem { path: PathBuf, why: String },
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Creates a new cluster CA.
pub fn create_ca(cluster: &str) -> Result<CertKey, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{cluster} cluster CA"));
    dn.push(DnType::OrganizationName, "ha-node");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issue(
    ca: &CertKey,
    cn: &str,
    role: Role,
    sans: Vec<String>,
    server: bool,
) -> Result<CertKey, TlsError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    for san in sans {
        match san.parse::<std::net::IpAddr>() {
            Ok(ip) => params.subject_alt_names.push(SanType::IpAddress(ip)),
            Err(_) => params
                .subject_alt_names
                .push(SanType::DnsName(san.try_into()?)),
        }
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, role.as_str());
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A node certificate (server and client), valid for the cluster name, the
/// node's name and the host of its address.
pub fn issue_node(ca: &CertKey, name: &str, host: &str) -> Result<CertKey, TlsError> {
    let mut sans = vec![CLUSTER_SERVER_NAME.to_string(), name.to_string()];
    if !host.is_empty() && host != name {
        sans.push(host.to_string());
    }
    issue(ca, name, Role::Node, sans, true)
}

/// A client certificate carrying `role` (subject OU).
pub fn issue_client(ca: &CertKey, name: &str, role: Role) -> Result<CertKey, TlsError> {
    issue(ca, name, role, Vec::new(), false)
}

/// The role and common name carried by a peer certificate (DER).
pub fn peer_identity(der: &[u8]) -> Result<(Role, String), TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Parse(e.to_string()))?;
    let subject = cert.subject();
    let ou = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or_else(|| TlsError::Parse("no OU (role) in the subject".to_string()))?;
    let role = Role::parse(ou).ok_or_else(|| TlsError::Parse(format!("unknown role '{ou}'")))?;
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((role, cn))
}

/// SHA-256 of the CA certificate (DER), lowercase hex: what a join token pins.
pub fn fingerprint(ca_pem: &str) -> Result<String, TlsError> {
    let der = pem_to_der(ca_pem)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// DER of a PEM certificate.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, TlsError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| TlsError::Parse(e.to_string()))?;
    Ok(p.contents)
}

/// Reads a PEM file.
pub fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a PEM file, private like every file of a node (0600, its
/// directory created 0700): a certificate is public, but the rule "nothing
/// in a node's directory is readable by others" is one that can be checked.
pub fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        ha_raft_store::private::create_dir(parent).map_err(err)?;
    }
    ha_raft_store::private::write_file(path, text.as_bytes()).map_err(err)
}

/// Paths of a CA certificate and an identity (certificate + key).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads a PEM certificate file and checks it holds a certificate (an
/// empty or truncated file, as a power cut can leave, is named here instead
/// of failing later as a bare TLS "transport error").
fn read_cert(path: &Path) -> Result<String, TlsError> {
    let pem = read(path)?;
    pem_to_der(&pem).map_err(|e| TlsError::BadPem {
        path: path.to_path_buf(),
        why: match e {
            TlsError::Parse(why) if pem.trim().is_empty() => {
                format!("empty file, no PEM certificate ({why})")
            }
            TlsError::Parse(why) => format!("no PEM certificate: {why}"),
            other => other.to_string(),
        },
    })?;
    Ok(pem)
}

/// Reads a PEM private key file and checks it holds a private key block.
fn read_key(path: &Path) -> Result<String, TlsError> {
    let pem = read(path)?;
    let ok = pem.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----")
    });
    if !ok {
        return Err(TlsError::BadPem {
            path: path.to_path_buf(),
            why: if pem.trim().is_empty() {
                "empty file, no PEM private key".into()
            } else {
                "no PEM private key block".into()
            },
        });
    }
    Ok(pem)
}

impl TlsFiles {
    /// Server side: present the node certificate, require a client
    /// certificate of the cluster CA.
    pub fn server(&self) -> Result<ServerTlsConfig, TlsError> {
        let ca = read_cert(&self.ca)?;
        let cert = read_cert(&self.cert)?;
        let key = read_key(&self.key)?;
        // A client certificate is checked against the cluster CA when given;
        // every service but `Join` refuses a caller without one.
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca))
            .client_auth_optional(true))
    }

    /// Client side: trust only the cluster CA, present our certificate.
    pub fn client(&self) -> Result<ClientTlsConfig, TlsError> {
        let ca = read_cert(&self.ca)?;
        let cert = read_cert(&self.cert)?;
        let key = read_key(&self.key)?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name(CLUSTER_SERVER_NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_carry_their_role_and_chain_to_the_ca() {
        let ca = create_ca("t").unwrap();
        for role in [Role::Reader, Role::Operator, Role::Admin] {
            let c = issue_client(&ca, "alice", role).unwrap();
            let der = pem_to_der(&c.cert_pem).unwrap();
            assert_eq!(peer_identity(&der).unwrap(), (role, "alice".to_string()));
        }
        let n = issue_node(&ca, "node1", "127.0.0.1").unwrap();
        let der = pem_to_der(&n.cert_pem).unwrap();
        assert_eq!(peer_identity(&der).unwrap().0, Role::Node);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let ca_der = pem_to_der(&ca.cert_pem).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert_eq!(fingerprint(&ca.cert_pem).unwrap().len(), 64);
    }

    /// A power cut can leave the admin's PEM files empty (seen in the VM
    /// lab): the error names the file and says what is wrong with it.
    #[test]
    fn empty_or_wrong_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca("t").unwrap();
        let c = issue_client(&ca, "admin", Role::Admin).unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("admin.pem"),
            key: dir.path().join("admin.key"),
        };
        write(&files.ca, &ca.cert_pem).unwrap();
        write(&files.cert, "").unwrap();
        write(&files.key, &c.key_pem).unwrap();
        let e = files.client().unwrap_err().to_string();
        assert!(e.contains("admin.pem") && e.contains("empty file"), "{e}");
        write(&files.cert, &c.cert_pem).unwrap();
        write(&files.key, &c.cert_pem).unwrap();
        let e = files.client().unwrap_err().to_string();
        assert!(
            e.contains("admin.key") && e.contains("no PEM private key"),
            "{e}"
        );
        write(&files.key, &c.key_pem).unwrap();
        assert!(files.client().is_ok());
        assert!(files.server().is_ok());
    }
}
