//! Serializable per-resource status summary (for status JSON) built from a
//! [`State`], with a one-line human `Display`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{ConnectionState, DiskState, ReplicationState, Resource, Role, State};

/// One local volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub volume: u32,
    pub minor: Option<u32>,
    pub disk: Option<DiskState>,
}

/// One peer (connection), volumes folded: `replication`, `peer_disk` and
/// `sync_percent` are those of the lowest volume that has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// `conn-name` (the peer's host name on DRBD 9; `peer` on 8.4).
    pub name: Option<String>,
    pub node_id: Option<u32>,
    pub connection: Option<ConnectionState>,
    pub role: Option<Role>,
    pub replication: Option<ReplicationState>,
    pub peer_disk: Option<DiskState>,
    /// Resync progress while syncing: `done:` if DRBD reported it, else
    /// computed from `out-of-sync:` and the local device size when possible.
    pub sync_percent: Option<f64>,
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    pub name: String,
    pub role: Option<Role>,
    pub devices: Vec<DeviceSummary>,
    pub peers: Vec<PeerSummary>,
    pub split_brain: bool,
}

fn opt<T: fmt::Display>(o: &Option<T>) -> String {
    match o {
        Some(v) => v.to_string(),
        None => "?".to_string(),
    }
}

impl fmt::Display for ResourceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} role:{}", self.name, opt(&self.role))?;
        for d in &self.devices {
            write!(f, " vol{}:{}", d.volume, opt(&d.disk))?;
        }
        for p in &self.peers {
            let who = match (&p.name, p.node_id) {
                (Some(n), _) => n.clone(),
                (None, Some(id)) => format!("node{id}"),
                (None, None) => "?".to_string(),
            };
            write!(
                f,
                " | {who} {} {} {} peer-disk:{}",
                opt(&p.connection),
                opt(&p.role),
                opt(&p.replication),
                opt(&p.peer_disk)
            )?;
            if let Some(pc) = p.sync_percent {
                write!(f, " {pc:.1}%")?;
            }
        }
        if self.split_brain {
            f.write_str(" SPLIT-BRAIN")?;
        }
        Ok(())
    }
}

impl ResourceSummary {
    pub fn from_resource(r: &Resource) -> ResourceSummary {
        let devices = r
            .devices
            .values()
            .map(|d| DeviceSummary {
                volume: d.volume,
                minor: d.minor,
                disk: d.disk.clone(),
            })
            .collect();
        let peers = r
            .connections
            .values()
            .map(|c| {
                let replication = c
                    .peer_devices
                    .values()
                    .find_map(|pd| pd.replication.clone())
                    .or_else(|| c.replication_hint.clone());
                let peer_disk = c.peer_devices.values().find_map(|pd| pd.peer_disk.clone());
                let sync_percent = c.peer_devices.values().find_map(|pd| {
                    if !pd
                        .replication
                        .as_ref()
                        .is_some_and(ReplicationState::is_syncing)
                    {
                        return None;
                    }
                    pd.done.or_else(|| {
                        let size = r.devices.get(&pd.volume)?.size?;
                        let oos = pd.out_of_sync?;
                        if size == 0 || oos > size {
                            return None;
                        }
                        Some(100.0 * (size - oos) as f64 / size as f64)
                    })
                });
                PeerSummary {
                    name: c.conn_name.clone(),
                    node_id: c.node_id,
                    connection: c.connection.clone(),
                    role: c.role.clone(),
                    replication,
                    peer_disk,
                    sync_percent,
                }
            })
            .collect();
        ResourceSummary {
            name: r.name.clone(),
            role: r.role.clone(),
            devices,
            peers,
            split_brain: r.split_brain,
        }
    }
}

impl State {
    /// Summaries of all resources, by name.
    pub fn summary(&self) -> Vec<ResourceSummary> {
        self.resources
            .values()
            .map(ResourceSummary::from_resource)
            .collect()
    }
}
