//! Files of a new cluster: the CA, each node's certificate and `ha-node`
//! configuration under `<dir>/<name>/`, and a client certificate with its
//! `hactl.toml`. Used by `hactl init`, `hactl demo` and the tests. Every
//! file is written 0600 and every directory created 0700, whatever the
//! caller's umask.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::{ClientConfig, ConfigFileError, NodeConfig, Peer, TlsPaths};
use crate::tls::{self, CertKey, Role, TlsError};

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error("{0} already exists: choose an empty directory")]
    Exists(PathBuf),
}

/// Where the CA of a cluster lives: `<dir>/ca.pem`, `<dir>/ca.key`.
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CaFiles {
    pub fn in_dir(dir: &Path) -> CaFiles {
        CaFiles {
            cert: dir.join("ca.pem"),
            key: dir.join("ca.key"),
        }
    }

    pub fn load(&self) -> Result<CertKey, TlsError> {
        Ok(CertKey {
            cert_pem: tls::read(&self.cert)?,
            key_pem: tls::read(&self.key)?,
        })
    }
}

/// Creates a CA in `dir` (refuses to overwrite one).
pub fn create_ca(dir: &Path, cluster: &str) -> Result<CertKey, SetupError> {
    let files = CaFiles::in_dir(dir);
    if files.cert.exists() {
        return Err(SetupError::Exists(files.cert));
    }
    let ca = tls::create_ca(cluster)?;
    tls::write(&files.cert, &ca.cert_pem)?;
    tls::write(&files.key, &ca.key_pem)?;
    Ok(ca)
}

fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

/// Writes a node's certificate, key, CA copy and `ha-node.toml` in
/// `node_dir`; the returned config is what was written.
pub fn write_node(
    ca: &CertKey,
    node_dir: &Path,
    peer: &Peer,
    bootstrap: Vec<Peer>,
) -> Result<(NodeConfig, PathBuf), SetupError> {
    let cert = tls::issue_node(ca, &peer.name, host_of(&peer.addr))?;
    let tls_paths = TlsPaths {
        ca: node_dir.join("ca.pem"),
        cert: node_dir.join("node.pem"),
        key: node_dir.join("node.key"),
        ca_key: Some(node_dir.join("ca.key")),
    };
    tls::write(&tls_paths.ca, &ca.cert_pem)?;
    tls::write(&node_dir.join("ca.key"), &ca.key_pem)?;
    tls::write(&tls_paths.cert, &cert.cert_pem)?;
    tls::write(&tls_paths.key, &cert.key_pem)?;
    let cfg = NodeConfig {
        name: peer.name.clone(),
        id: peer.id,
        listen: peer.addr.clone(),
        advertise: None,
        data_dir: node_dir.join("data"),
        tls: tls_paths,
        bootstrap,
        ..NodeConfig::example()
    };
    let path = node_dir.join("ha-node.toml");
    cfg.save(&path)?;
    Ok((cfg, path))
}

/// Writes a client certificate `<dir>/<name>.pem` with `role` and a client
/// config `<dir>/<config_name>` listing `endpoints`.
pub fn write_client(
    ca: &CertKey,
    dir: &Path,
    name: &str,
    role: Role,
    endpoints: Vec<String>,
    config_name: &str,
) -> Result<(ClientConfig, PathBuf), SetupError> {
    let cert = tls::issue_client(ca, name, role)?;
    let tls_paths = TlsPaths {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca_key: None,
    };
    if !tls_paths.ca.exists() {
        tls::write(&tls_paths.ca, &ca.cert_pem)?;
    }
    tls::write(&tls_paths.cert, &cert.cert_pem)?;
    tls::write(&tls_paths.key, &cert.key_pem)?;
    let cfg = ClientConfig {
        endpoints,
        tls: tls_paths,
    };
    let path = dir.join(config_name);
    cfg.save(&path)?;
    Ok((cfg, path))
}

/// A whole cluster on disk: CA in `dir`, node `i` (1-based) named
/// `<prefix><i>` at `addrs[i-1]` under `dir/<name>/`, all bootstrapped as
/// voters by the first node, and `dir/hactl.toml` with an admin certificate.
pub struct ClusterFiles {
    pub ca: CertKey,
    pub nodes: Vec<(NodeConfig, PathBuf)>,
    pub client_config: PathBuf,
}

pub fn write_cluster(
    dir: &Path,
    names: &[String],
    addrs: &[String],
) -> Result<ClusterFiles, SetupError> {
    ha_raft_store::private::create_dir(dir).map_err(|source| {
        SetupError::Config(ConfigFileError::Write {
            path: dir.to_path_buf(),
            source,
        })
    })?;
    let ca = create_ca(dir, "demo")?;
    let peers: Vec<Peer> = names
        .iter()
        .zip(addrs)
        .enumerate()
        .map(|(i, (name, addr))| Peer {
            id: i as u64 + 1,
            name: name.clone(),
            addr: addr.clone(),
        })
        .collect();
    let mut nodes = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let bootstrap = if i == 0 { peers.clone() } else { Vec::new() };
        nodes.push(write_node(&ca, &dir.join(&p.name), p, bootstrap)?);
    }
    let (_, client_config) =
        write_client(&ca, dir, "admin", Role::Admin, addrs.to_vec(), "hactl.toml")?;
    Ok(ClusterFiles {
        ca,
        nodes,
        client_config,
    })
}

/// Free loopback addresses (ports the OS hands out now).
pub fn free_loopback_addrs(n: usize) -> std::io::Result<Vec<String>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect()
}
