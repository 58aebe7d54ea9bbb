//! The daemon's configuration (`ha-node --config FILE`, TOML) and the
//! client's (`hactl.toml`: every node's endpoint, the CA, the client
//! certificate).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::tls::TlsFiles;

#[derive(Debug, Error)]
pub enum ConfigFileError {
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
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// TLS file paths as written in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPaths {
    /// The cluster CA certificate.
    pub ca: PathBuf,
    /// This node's (or client's) certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The cluster CA's private key, on nodes that may admit new nodes
    /// (sign their certificates when they present a join token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<PathBuf>,
}

impl TlsPaths {
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// A cluster member known at bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub id: u64,
    pub name: String,
    /// host:port of its gRPC endpoint.
    pub addr: String,
}

/// `ha-node --config FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The node's name (as in the cluster configuration: `node NAME`).
    pub name: String,
    /// The Raft node id (unique in the cluster, never reused).
    pub id: u64,
    /// Address the gRPC server listens on (host:port).
    pub listen: String,
    /// Address other nodes and clients reach it at; default `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Where the Raft log, snapshots and state live.
    pub data_dir: PathBuf,
    pub tls: TlsPaths,
    /// Initialize a new cluster with these voters (every member, this node
    /// included) if the Raft state is empty. Leave empty on joining nodes.
    #[serde(default)]
    pub bootstrap: Vec<Peer>,
    /// Raft heartbeat interval, milliseconds.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Raft election timeout range, milliseconds.
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// The DC declares a node lost when it has not answered for this long
    /// (Corosync's token is 3 s; well under it).
    #[serde(default = "default_node_timeout")]
    pub node_timeout_ms: u64,
    /// Where the OCF resource agents are (`OCF_ROOT`).
    #[serde(default = "default_ocf_root")]
    pub ocf_root: PathBuf,
    /// Where the LSB init scripts of `lsb:` resources are.
    #[serde(default = "default_lsb_dir")]
    pub lsb_dir: PathBuf,
    /// Extra environment given to every resource agent.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub agent_env: std::collections::BTreeMap<String, String>,
    /// Where this machine's boot id is read (the kernel's by default): when
    /// it changed since the daemon last started, the machine rebooted, and
    /// what agents keep in `HA_RSCTMP`, `HA_VARRUN` and `HA_VARLOCK` (under
    /// `data_dir`, not `/run`) is forgotten, as a reboot empties `/run`.
    #[serde(default = "default_boot_id_path")]
    pub boot_id_path: PathBuf,
    /// A witness: a Raft voter that runs no resources (it gives a
    /// two-node cluster plain majority quorum). `ha-node --witness`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub witness: bool,
    /// How the node watches its DRBD resources (`drbd_watch`).
    #[serde(default)]
    pub drbd: DrbdSettings,
    /// The file this was loaded from (agents' `crm_attribute` reads it).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[drbd]` of a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdSettings {
    /// `drbdsetup`, run as `drbdsetup events2 --timestamps --statistics`.
    #[serde(default = "default_drbdsetup")]
    pub drbdsetup: PathBuf,
    /// The watcher starts once this exists (the kernel module's
    /// `/proc/drbd`); a node without DRBD runs nothing.
    #[serde(default = "default_drbd_marker")]
    pub module_marker: PathBuf,
    /// `drbdadm`, for `hactl drbd resolve`'s steps on this node.
    #[serde(default = "default_drbdadm")]
    pub drbdadm: PathBuf,
}

impl Default for DrbdSettings {
    fn default() -> Self {
        DrbdSettings {
            drbdsetup: default_drbdsetup(),
            module_marker: default_drbd_marker(),
            drbdadm: default_drbdadm(),
        }
    }
}

fn default_drbdsetup() -> PathBuf {
    PathBuf::from("drbdsetup")
}
fn default_drbdadm() -> PathBuf {
    PathBuf::from("drbdadm")
}
fn default_drbd_marker() -> PathBuf {
    PathBuf::from("/proc/drbd")
}

fn default_node_timeout() -> u64 {
    1600
}
fn default_ocf_root() -> PathBuf {
    PathBuf::from("/usr/lib/ocf")
}
fn default_lsb_dir() -> PathBuf {
    PathBuf::from("/etc/init.d")
}
pub fn default_boot_id_path() -> PathBuf {
    PathBuf::from("/proc/sys/kernel/random/boot_id")
}

fn default_heartbeat() -> u64 {
    100
}
fn default_election_min() -> u64 {
    400
}
fn default_election_max() -> u64 {
    800
}

impl NodeConfig {
    /// The configuration `ha-node --print-default-config` prints.
    pub fn example() -> NodeConfig {
        NodeConfig {
            name: "node1".to_string(),
            id: 1,
            listen: "127.0.0.1:7410".to_string(),
            advertise: None,
            data_dir: PathBuf::from("/var/lib/ha-node"),
            tls: TlsPaths {
                ca: PathBuf::from("/etc/ha-node/ca.pem"),
                cert: PathBuf::from("/etc/ha-node/node.pem"),
                key: PathBuf::from("/etc/ha-node/node.key"),
                ca_key: None,
            },
            bootstrap: vec![Peer {
                id: 1,
                name: "node1".to_string(),
                addr: "127.0.0.1:7410".to_string(),
            }],
            heartbeat_ms: default_heartbeat(),
            election_timeout_min_ms: default_election_min(),
            election_timeout_max_ms: default_election_max(),
            node_timeout_ms: default_node_timeout(),
            ocf_root: default_ocf_root(),
            lsb_dir: default_lsb_dir(),
            agent_env: Default::default(),
            boot_id_path: default_boot_id_path(),
            witness: false,
            drbd: DrbdSettings::default(),
            source: None,
        }
    }

    pub fn advertise(&self) -> &str {
        self.advertise.as_deref().unwrap_or(&self.listen)
    }

    pub fn load(path: &Path) -> Result<NodeConfig, ConfigFileError> {
        let mut cfg = NodeConfig::parse(path, &read_text(path)?)?;
        cfg.source = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(cfg)
    }

    /// Parses and checks the text of `ha-node.toml`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<NodeConfig, ConfigFileError> {
        let cfg: NodeConfig = parse_toml(path, text)?;
        crate::join::check_node_name(&cfg.name).map_err(|e| ConfigFileError::Parse {
            path: path.to_path_buf(),
            message: format!("name: {e}"),
        })?;
        Ok(cfg)
    }

    pub fn save(&self, path: &Path) -> Result<(), ConfigFileError> {
        save_toml(path, self)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// `hactl.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// host:port of every node, tried in order.
    pub endpoints: Vec<String>,
    pub tls: TlsPaths,
}

impl ClientConfig {
    pub fn load(path: &Path) -> Result<ClientConfig, ConfigFileError> {
        ClientConfig::parse(path, &read_text(path)?)
    }

    /// Parses the text of `hactl.toml`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ClientConfig, ConfigFileError> {
        parse_toml(path, text)
    }

    pub fn save(&self, path: &Path) -> Result<(), ConfigFileError> {
        save_toml(path, self)
    }
}

/// Longest configuration file read (they are a few hundred bytes).
const MAX_CONFIG_FILE: u64 = 1 << 20;

fn read_text(path: &Path) -> Result<String, ConfigFileError> {
    let read_err = |source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_CONFIG_FILE {
        return Err(ConfigFileError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "{len} bytes, over the {MAX_CONFIG_FILE} bytes a configuration file may hold"
            ),
        });
    }
    std::fs::read_to_string(path).map_err(read_err)
}

fn parse_toml<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ConfigFileError> {
    toml::from_str(text).map_err(|e| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn save_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), ConfigFileError> {
    let text = toml::to_string_pretty(value).map_err(|e| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let err = |source| ConfigFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Private (0600 in a 0700 directory) like every file of a node.
    if let Some(parent) = path.parent() {
        ha_raft_store::private::create_dir(parent).map_err(err)?;
    }
    ha_raft_store::private::write_file(path, text.as_bytes()).map_err(err)
}
