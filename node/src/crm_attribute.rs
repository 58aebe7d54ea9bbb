//! `crm_attribute`, as resource agents call it (`ha-node` run under that
//! name, from `HA_SBIN_DIR`): set, delete or query node attributes of the
//! cluster, including the promotion score (`--promotion`) that
//! `ocf:pacemaker:Stateful` and other promotable agents set. It speaks to
//! the local `ha-node` (found through `HA_NODE_CONFIG`) with the node's own
//! certificate; writes go through Raft.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ha_raft_store::{Command, Response};

use crate::config::NodeConfig;
use crate::network::Channels;
use crate::pb;

#[derive(Parser, Debug)]
#[command(
    name = "crm_attribute",
    about = "Set, delete or query a node attribute (ha-node's crm_attribute)"
)]
struct Args {
    /// Attribute name.
    #[arg(short = 'n', long = "name")]
    name: Option<String>,
    /// Set the attribute to this value.
    #[arg(short = 'v', long = "update", alias = "attr-value")]
    update: Option<String>,
    /// Delete the attribute.
    #[arg(short = 'D', long = "delete")]
    delete: bool,
    /// Print the attribute's value.
    #[arg(short = 'G', long = "query")]
    query: bool,
    /// The node (default: this node).
    #[arg(short = 'N', long = "node")]
    node: Option<String>,
    /// `reboot` (transient, the default for --promotion) or `forever`.
    #[arg(short = 'l', long = "lifetime")]
    lifetime: Option<String>,
    /// `nodes` or `status` (accepted; the lifetime decides).
    #[arg(short = 't', long = "type")]
    kind: Option<String>,
    /// The promotion score of RESOURCE (default: the calling agent's
    /// `OCF_RESOURCE_INSTANCE`, clone suffix stripped): `master-RESOURCE`.
    #[arg(short = 'p', long = "promotion", num_args = 0..=1, default_missing_value = "")]
    promotion: Option<String>,
    /// Print only the value.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// With --query: the value to print when it is not set.
    #[arg(short = 'd', long = "default")]
    default: Option<String>,
    /// The node's configuration (default: $HA_NODE_CONFIG).
    #[arg(long = "node-config")]
    node_config: Option<PathBuf>,
}

/// Exit codes as Pacemaker's tools: 0 ok, 64 usage, 105 no such attribute,
/// 69 service unavailable.
const EX_USAGE: u8 = 64;
const EX_NOT_FOUND: u8 = 105;
const EX_UNAVAILABLE: u8 = 69;

/// The attribute a `--promotion` call names.
pub fn promotion_attribute(resource: &str) -> String {
    let base = resource.split(':').next().unwrap_or(resource);
    format!("master-{base}")
}

/// The local `ha-node`'s Admin service, reached with the node's own
/// certificate (what the agents' tools and DRBD's handlers use).
pub fn local_admin(
    cfg: &NodeConfig,
) -> Result<pb::admin_client::AdminClient<tonic::transport::Channel>, String> {
    let tls = cfg.tls.files().client().map_err(|e| e.to_string())?;
    let ch = Channels::new(tls)
        .get(cfg.advertise())
        .map_err(|e| e.to_string())?;
    Ok(
        pb::admin_client::AdminClient::new(ch)
            .max_decoding_message_size(crate::gate::limits::REPLY),
    )
}

/// Runs `crm_attribute` with `args` (argv, program name first).
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let a = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { EX_USAGE } else { 0 });
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crm_attribute: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(EX_UNAVAILABLE);
        }
    };
    match rt.block_on(run(a)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err((code, msg)) => {
            eprintln!("crm_attribute: {msg}");
            std::process::ExitCode::from(code)
        }
    }
}

async fn run(a: Args) -> Result<u8, (u8, String)> {
    let usage = |m: &str| (EX_USAGE, m.to_string());
    let cfg_path = a
        .node_config
        .clone()
        .or_else(|| std::env::var_os("HA_NODE_CONFIG").map(PathBuf::from))
        .ok_or_else(|| usage("no node configuration: set HA_NODE_CONFIG or give --node-config"))?;
    let cfg = NodeConfig::load(&cfg_path).map_err(|e| (EX_UNAVAILABLE, e.to_string()))?;
    let name = match (&a.promotion, &a.name) {
        (Some(p), _) => {
            let rsc = if p.is_empty() {
                std::env::var("OCF_RESOURCE_INSTANCE")
                    .map_err(|_| usage("--promotion without a resource outside an agent (no OCF_RESOURCE_INSTANCE)"))?
            } else {
                p.clone()
            };
            promotion_attribute(&rsc)
        }
        (None, Some(n)) => n.clone(),
        (None, None) => return Err(usage("give --name NAME or --promotion")),
    };
    let node = a
        .node
        .clone()
        .or_else(|| std::env::var("OCF_RESKEY_CRM_meta_on_node").ok())
        .unwrap_or_else(|| cfg.name.clone());
    let transient = match a.lifetime.as_deref() {
        None | Some("reboot") | Some("transient") => {
            a.promotion.is_some() || a.lifetime.is_some() || a.kind.as_deref() == Some("status")
        }
        Some("forever") | Some("permanent") => false,
        Some(other) => {
            return Err(usage(&format!(
                "unknown lifetime '{other}': use reboot or forever"
            )))
        }
    };
    let mut client = local_admin(&cfg).map_err(|e| (EX_UNAVAILABLE, e))?;
    if a.query || (a.update.is_none() && !a.delete) {
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(Duration::from_secs(10));
        let st = client
            .status(req)
            .await
            .map_err(|s| (EX_UNAVAILABLE, s.message().to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&st.into_inner().json)
            .map_err(|e| (EX_UNAVAILABLE, e.to_string()))?;
        let attrs = &v["node_attributes"][&node];
        let value = if transient {
            attrs["transient"][&name].as_str()
        } else {
            attrs["permanent"][&name]
                .as_str()
                .or(attrs["transient"][&name].as_str())
        };
        return match value.map(str::to_string).or(a.default.clone()) {
            Some(v) => {
                if a.quiet {
                    println!("{v}");
                } else {
                    let scope = if transient { "status" } else { "nodes" };
                    println!("scope={scope}  name={name} value={v}");
                }
                Ok(0)
            }
            None => Err((EX_NOT_FOUND, format!("no attribute '{name}' on {node}"))),
        };
    }
    let change: BTreeMap<String, Option<String>> =
        [(name.clone(), if a.delete { None } else { a.update.clone() })]
            .into_iter()
            .collect();
    let (t, p) = if transient {
        (change, BTreeMap::new())
    } else {
        (BTreeMap::new(), change)
    };
    let cmd = Command::SetNodeAttributes {
        node: node.clone(),
        transient: t,
        permanent: p,
    };
    let data = serde_json::to_vec(&cmd).map_err(|e| (EX_UNAVAILABLE, e.to_string()))?;
    let mut req = tonic::Request::new(pb::Bytes { data });
    req.set_timeout(Duration::from_secs(20));
    let reply = client
        .propose(req)
        .await
        .map_err(|s| (EX_UNAVAILABLE, s.message().to_string()))?;
    let resp: Response = serde_json::from_slice(&reply.into_inner().data)
        .map_err(|e| (EX_UNAVAILABLE, e.to_string()))?;
    resp.into_result().map_err(|e| (EX_USAGE, e.to_string()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_names_the_base_resource() {
        assert_eq!(promotion_attribute("stateful:1"), "master-stateful");
        assert_eq!(promotion_attribute("db"), "master-db");
    }

    #[test]
    fn stateful_calls_parse() {
        for argv in [
            vec!["crm_attribute", "--promotion", "-v", "10"],
            vec!["crm_attribute", "--promotion", "-D"],
            vec![
                "crm_attribute",
                "-N",
                "n1",
                "-n",
                "x",
                "-v",
                "1",
                "-l",
                "reboot",
            ],
            vec!["crm_attribute", "--name", "x", "--delete"],
            vec!["crm_attribute", "-G", "-q", "-n", "x", "-d", "0"],
        ] {
            assert!(Args::try_parse_from(&argv).is_ok(), "{argv:?}");
        }
        let a = Args::try_parse_from(["crm_attribute", "--promotion", "-v", "10"]).unwrap();
        assert_eq!(a.promotion.as_deref(), Some(""));
        assert_eq!(a.update.as_deref(), Some("10"));
        let a = Args::try_parse_from(["crm_attribute", "--promotion=db", "-v", "5"]).unwrap();
        assert_eq!(a.promotion.as_deref(), Some("db"));
    }
}
