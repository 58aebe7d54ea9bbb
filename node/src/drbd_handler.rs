//! DRBD's resource-level fencing handlers, as `ha-node` run under the
//! names [`FENCE_PEER`] and [`UNFENCE_PEER`] (symlinks named in the DRBD
//! configuration's `handlers {}`; the stock `crm-fence-peer.9.sh` is not
//! needed). DRBD runs the fence-peer handler when a Primary loses its peer,
//! with I/O frozen until it answers; it answers with the exit codes DRBD
//! acts on (see [`Verdict`]). Our handler asks the cluster, through the
//! local `ha-node` with the node's own certificate:
//!
//! * the peer is still a cluster member a node-timeout after DRBD lost it
//!   (only the replication link broke; before that, "online" may be a crash
//!   the cluster has not noticed yet): place the `drbd-fence-by-handler-RES-CLONE` constraint (promotion only
//!   here) through Raft, exit 4 — the peer's stale data is never promoted;
//! * the peer is lost: wait until the cluster has fenced it (the fencing
//!   history), then place the constraint, exit 7; without STONITH, once the
//!   cluster declared it down: place the constraint only if the local data
//!   is `UpToDate`, exit 5;
//! * no answer from the cluster before the deadline: exit 1, I/O stays
//!   frozen (safe: this node is then without quorum and gets fenced).
//!
//! The unfence handler (DRBD 8.4's `after-resync-target`, 9's
//! `unfence-peer`) removes the constraint once the peer is in sync.
//!
//! Both find the node's configuration in `HA_NODE_CONFIG`, else
//! [`DEFAULT_NODE_CONFIG`] (DRBD's helpers run with a clean environment).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ha_drbd::ResourceName;
use ha_raft_store::{Command, Response, PROMOTION_FENCE_PREFIX};
use ha_scheduler::model::{Config, Membership, Resource};

use crate::config::NodeConfig;
use crate::pb;

/// The program name of the fence-peer handler.
pub const FENCE_PEER: &str = "ha-drbd-fence-peer";
/// The program name of the unfence handler.
pub const UNFENCE_PEER: &str = "ha-drbd-unfence-peer";
/// Where the handlers look for the node's configuration without
/// `HA_NODE_CONFIG`.
pub const DEFAULT_NODE_CONFIG: &str = "/etc/ha-node/ha-node.toml";
/// How long the fence-peer handler waits for the cluster to fence a lost
/// peer (DRBD holds I/O frozen meanwhile); `HA_DRBD_FENCE_TIMEOUT` (s).
const DEFAULT_WAIT: Duration = Duration::from_secs(90);

/// What the fence-peer handler answers DRBD (its exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 1: could not decide (no cluster, no such resource, timed out).
    Error = 1,
    /// 4: the peer is reachable through the cluster and is fenced from
    /// promotion by the constraint.
    PeerOutdated = 4,
    /// 5: the peer is unreachable and was not fenced (no STONITH); the
    /// constraint is placed only if the local data is `UpToDate`.
    PeerUnreachable = 5,
    /// 7: the peer was fenced by the cluster (STONITH); constraint placed.
    PeerFenced = 7,
}

/// What the handler knows of the peer, from the cluster's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// The peer's membership as the cluster records it.
    pub membership: Membership,
    /// The cluster has fenced the peer successfully since the handler
    /// started (or within the slack before it).
    pub fenced: bool,
}

/// What to do now: `Some((verdict, place_constraint))`, or `None` to wait
/// (the cluster is still deciding about the peer). `settled`: a node-timeout
/// has passed since DRBD lost the peer, so a peer the cluster still calls
/// online has answered since (DRBD may notice a crash before the cluster).
pub fn decide(
    peer: &PeerView,
    stonith: bool,
    local_up_to_date: bool,
    settled: bool,
) -> Option<(Verdict, bool)> {
    if peer.fenced {
        return Some((Verdict::PeerFenced, true));
    }
    match peer.membership {
        // Still a member after a node-timeout: only the replication link broke.
        Membership::Online | Membership::Pending if settled => Some((Verdict::PeerOutdated, true)),
        Membership::Online | Membership::Pending => None,
        // Lost, to be fenced: wait for the fencing.
        Membership::Unclean => None,
        // Gone: fenced without a record we saw (waited on), or declared
        // down without STONITH.
        Membership::Offline if stonith => None,
        Membership::Offline => Some((Verdict::PeerUnreachable, local_up_to_date)),
    }
}

/// The constraint id for DRBD resource `res` under clone `clone`.
pub fn constraint_id(res: &str, clone: &str) -> String {
    format!("{PROMOTION_FENCE_PREFIX}{res}-{clone}")
}

/// The promotable clone running `ocf:linbit:drbd` with
/// `drbd_resource=res`, from the configuration.
pub fn clone_of(config: &Config, res: &str) -> Option<String> {
    let is_drbd = |p: &ha_scheduler::model::Primitive| {
        p.agent == "drbd"
            && p.provider.as_deref() == Some("linbit")
            && p.params.get("drbd_resource").map(String::as_str) == Some(res)
    };
    fn runs(r: &Resource, is_drbd: &dyn Fn(&ha_scheduler::model::Primitive) -> bool) -> bool {
        match r {
            Resource::Primitive(p) => is_drbd(p),
            Resource::Group(g) => g.members.iter().any(is_drbd),
            Resource::Clone(c) => runs(&c.child, is_drbd),
        }
    }
    config.resources.iter().find_map(|r| match r {
        Resource::Clone(c) if runs(&c.child, &is_drbd) => Some(c.id.clone()),
        _ => None,
    })
}

/// Runs handler `name` (program name first in `args`); `None` when `name`
/// is neither handler.
pub fn main(name: &str, args: Vec<OsString>) -> Option<ExitCode> {
    let fence = match name {
        FENCE_PEER => true,
        UNFENCE_PEER => false,
        _ => return None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return Some(ExitCode::from(Verdict::Error as u8));
        }
    };
    let result = rt.block_on(run(fence, args));
    Some(match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("{name}: {msg}");
            ExitCode::from(Verdict::Error as u8)
        }
    })
}

/// The DRBD resource: `DRBD_RESOURCE` (what DRBD sets), else the first
/// argument.
fn resource_name(args: &[OsString]) -> Result<ResourceName, String> {
    let raw = std::env::var("DRBD_RESOURCE")
        .ok()
        .or_else(|| args.get(1).map(|a| a.to_string_lossy().into_owned()))
        .ok_or("no DRBD resource: DRBD_RESOURCE is not set and none was given")?;
    ResourceName::new(&raw).map_err(|e| format!("DRBD resource '{raw}': {e}"))
}

struct Cluster {
    cfg: NodeConfig,
    admin: pb::admin_client::AdminClient<tonic::transport::Channel>,
}

impl Cluster {
    fn connect() -> Result<Cluster, String> {
        let path = std::env::var_os("HA_NODE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NODE_CONFIG));
        let cfg = NodeConfig::load(&path).map_err(|e| e.to_string())?;
        let admin = crate::crm_attribute::local_admin(&cfg)?;
        Ok(Cluster { cfg, admin })
    }

    async fn config(&mut self) -> Result<Config, String> {
        let mut req = tonic::Request::new(pb::GetConfigRequest {
            show_secrets: false,
        });
        req.set_timeout(Duration::from_secs(10));
        let reply = self
            .admin
            .get_config(req)
            .await
            .map_err(|s| s.message().to_string())?;
        serde_json::from_str(&reply.into_inner().config_json).map_err(|e| e.to_string())
    }

    async fn status(&mut self) -> Result<serde_json::Value, String> {
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(Duration::from_secs(10));
        let st = self
            .admin
            .status(req)
            .await
            .map_err(|s| s.message().to_string())?;
        serde_json::from_str(&st.into_inner().json).map_err(|e| e.to_string())
    }

    async fn propose(&mut self, cmd: Command) -> Result<(), String> {
        let data = serde_json::to_vec(&cmd).map_err(|e| e.to_string())?;
        let mut req = tonic::Request::new(pb::Bytes { data });
        req.set_timeout(Duration::from_secs(20));
        let reply = self
            .admin
            .propose(req)
            .await
            .map_err(|s| s.message().to_string())?;
        let resp: Response =
            serde_json::from_slice(&reply.into_inner().data).map_err(|e| e.to_string())?;
        resp.into_result().map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The peer's view from a status: its recorded membership, and whether it
/// is fenced: `Offline` and the latest fencing of it (`off`/`reboot`)
/// succeeded — however long ago, as long as it has not come back (a peer
/// fenced before DRBD called, still off, counts; one lost again, `Unclean`,
/// does not count until this loss is fenced).
pub fn peer_view(status: &serde_json::Value, peer: &str) -> PeerView {
    let membership = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == peer)
        .and_then(|n| n["membership"].as_str())
        .map(|m| match m {
            "online" => Membership::Online,
            "unclean" => Membership::Unclean,
            "pending" => Membership::Pending,
            _ => Membership::Offline,
        })
        .unwrap_or(Membership::Offline);
    // Newest first.
    let latest = status["fencing_history"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["target"] == peer && matches!(e["action"].as_str(), Some("off" | "reboot")));
    let fenced =
        membership == Membership::Offline && latest.is_some_and(|e| e["succeeded"] == true);
    PeerView { membership, fenced }
}

/// `drbdadm dstate RES` says the local disk is `UpToDate`.
fn local_up_to_date(res: &ResourceName) -> bool {
    std::process::Command::new("drbdadm")
        .args(["dstate", res.as_str()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim_start()
                .starts_with("UpToDate")
        })
}

async fn run(fence: bool, args: Vec<OsString>) -> Result<u8, String> {
    let res = resource_name(&args)?;
    let mut cluster = Cluster::connect()?;
    // This node's copy of the configuration may trail a load just committed
    // on the leader by a few heartbeats: look again for a few seconds before
    // saying the clone is not there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (config, clone) = loop {
        let config = cluster.config().await?;
        if let Some(clone) = clone_of(&config, res.as_str()) {
            break (config, clone);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "no promotable clone of ocf:linbit:drbd with drbd_resource={res} in the configuration"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = constraint_id(res.as_str(), &clone);
    if !fence {
        cluster
            .propose(Command::PromotionFence {
                id: id.clone(),
                rsc: clone,
                keep_on: None,
            })
            .await?;
        eprintln!("{UNFENCE_PEER}: removed {id}");
        return Ok(0);
    }
    let me = cluster.cfg.name.clone();
    let peers: Vec<String> = config
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .filter(|n| *n != me)
        .collect();
    // DRBD 8.4 names the peer's host in DRBD_PEER; else the other node of
    // a two-node cluster.
    let peer = match std::env::var("DRBD_PEER")
        .ok()
        .filter(|p| peers.contains(p))
    {
        Some(p) => p,
        None if peers.len() == 1 => peers[0].clone(),
        None => {
            return Err(format!(
                "cannot tell the peer of {res} among {peers:?}: set DRBD_PEER"
            ))
        }
    };
    let stonith = config
        .properties
        .get("stonith-enabled")
        .is_none_or(|v| ha_scheduler::cib::is_true(v));
    let wait = std::env::var("HA_DRBD_FENCE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WAIT);
    let started = Instant::now();
    let deadline = started + wait;
    // The cluster declares a silent node lost after node-timeout; one more
    // second for the DC's write to reach this node.
    let settle = Duration::from_millis(cluster.cfg.node_timeout_ms) + Duration::from_secs(1);
    loop {
        match cluster.status().await {
            Ok(status) => {
                let view = peer_view(&status, &peer);
                let settled = started.elapsed() >= settle;
                if let Some((verdict, place)) =
                    decide(&view, stonith, local_up_to_date(&res), settled)
                {
                    if place {
                        cluster
                            .propose(Command::PromotionFence {
                                id: id.clone(),
                                rsc: clone.clone(),
                                keep_on: Some(me.clone()),
                            })
                            .await?;
                    }
                    eprintln!(
                        "{FENCE_PEER}: {res}: peer {peer} {:?}; {} ; exit {}",
                        view.membership,
                        if place {
                            format!("placed {id}")
                        } else {
                            "no constraint (local data not UpToDate)".into()
                        },
                        verdict as u8
                    );
                    return Ok(verdict as u8);
                }
            }
            Err(e) => eprintln!("{FENCE_PEER}: {e}; retrying"),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{res}: the cluster did not fence or confirm peer {peer} within {wait:?}; I/O stays frozen"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(m: Membership, fenced: bool) -> PeerView {
        PeerView {
            membership: m,
            fenced,
        }
    }

    #[test]
    fn verdicts_follow_what_the_cluster_knows_of_the_peer() {
        use Membership::*;
        // Replication link only: the peer, still answering the cluster a
        // node-timeout later, is outdated by the constraint.
        assert_eq!(
            decide(&view(Online, false), true, true, true),
            Some((Verdict::PeerOutdated, true))
        );
        // Before that, "online" may be a crash the cluster has not seen yet.
        assert_eq!(decide(&view(Online, false), true, true, false), None);
        // Lost: wait for the cluster's fencing, however long.
        assert_eq!(decide(&view(Unclean, false), true, true, true), None);
        assert_eq!(decide(&view(Offline, false), true, true, true), None);
        // Fenced: constraint, 7.
        assert_eq!(
            decide(&view(Offline, true), true, true, false),
            Some((Verdict::PeerFenced, true))
        );
        assert_eq!(
            decide(&view(Unclean, true), true, false, true),
            Some((Verdict::PeerFenced, true))
        );
        // No STONITH: declared down; constraint only with good local data.
        assert_eq!(
            decide(&view(Offline, false), false, true, true),
            Some((Verdict::PeerUnreachable, true))
        );
        assert_eq!(
            decide(&view(Offline, false), false, false, true),
            Some((Verdict::PeerUnreachable, false))
        );
    }

    #[test]
    fn the_peer_view_reads_membership_and_the_latest_fencing() {
        let st = |membership: &str, latest_ok: bool| {
            serde_json::json!({
                "nodes": [{"name": "node2", "membership": membership}],
                "fencing_history": [
                    {"target": "node2", "action": "off", "succeeded": latest_ok, "completed_ms": 2000},
                    {"target": "node2", "action": "off", "succeeded": true, "completed_ms": 500},
                ]
            })
        };
        // Fenced long ago and still off: fenced.
        assert_eq!(
            peer_view(&st("offline", true), "node2"),
            view(Membership::Offline, true)
        );
        // Lost again: an old fencing does not count.
        assert_eq!(
            peer_view(&st("unclean", true), "node2"),
            view(Membership::Unclean, false)
        );
        // The latest attempt failed: not fenced.
        assert_eq!(
            peer_view(&st("offline", false), "node2"),
            view(Membership::Offline, false)
        );
        assert_eq!(
            peer_view(&st("offline", true), "node9").membership,
            Membership::Offline
        );
        assert!(!peer_view(&st("offline", true), "node9").fenced);
    }

    #[test]
    fn the_clone_is_found_by_its_drbd_resource() {
        let crm = "node node1\nnode node2\n\
            primitive d ocf:linbit:drbd params drbd_resource=r0 op monitor interval=29s role=Promoted op monitor interval=31s role=Unpromoted\n\
            clone ms-d d meta promotable=true notify=true\n\
            primitive other ocf:heartbeat:Dummy\n";
        let config = ha_scheduler::crm::read_crm(crm).unwrap();
        assert_eq!(clone_of(&config, "r0").as_deref(), Some("ms-d"));
        assert_eq!(clone_of(&config, "r1"), None);
        assert_eq!(constraint_id("r0", "ms-d"), "drbd-fence-by-handler-r0-ms-d");
    }
}
