//! The rest of Pacemaker's command-line tools that resource agents call,
//! as `ha-node` under their names in `HA_SBIN_DIR` (beside
//! `crm_attribute`): `crm_master` (the promotion score, as
//! `ocf:linbit:drbd` sets it), `crm_node` (`ocf_local_nodename`, quorum,
//! the member list) and `crm_resource --locate` (where `ocf:linbit:drbd`
//! looks for the Primary). Each answers from the local `ha-node`'s status,
//! reached with the node's own certificate; nothing here writes except
//! `crm_master`, which is `crm_attribute --promotion`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::NodeConfig;
use crate::pb;

/// The tools this module answers for, by program name.
pub const TOOLS: &[&str] = &["crm_master", "crm_node", "crm_resource"];

/// Exit codes as Pacemaker's tools: 64 usage, 69 service unavailable,
/// 105 no such object.
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_NOT_FOUND: u8 = 105;

/// Runs the tool `name` with `args` (program name first); `None` when
/// `name` is not one of [`TOOLS`].
pub fn main(name: &str, args: Vec<OsString>) -> Option<ExitCode> {
    match name {
        "crm_master" => Some(match crm_master_args(&args) {
            Ok(a) => crate::crm_attribute::main(a),
            Err(e) => {
                eprintln!("crm_master: {e}");
                ExitCode::from(EX_USAGE)
            }
        }),
        "crm_node" => Some(run_query("crm_node", || crm_node_query(&args))),
        "crm_resource" => Some(run_query("crm_resource", || crm_resource_query(&args))),
        _ => None,
    }
}

/// `crm_master ARGS` as the `crm_attribute` argv it means (Pacemaker's
/// `crm_master` is a script doing the same): `--promotion[=RSC]`, `-Q`
/// (deprecated quiet) as `-q`, `-V` and `-i ID` dropped.
pub fn crm_master_args(args: &[OsString]) -> Result<Vec<OsString>, String> {
    let mut out: Vec<OsString> = vec!["crm_attribute".into()];
    let mut resource: Option<OsString> = None;
    let mut rest = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        match s.as_ref() {
            "-Q" | "--quiet" | "-q" => rest.push("-q".into()),
            "-V" | "--verbose" => {}
            "-i" | "--id" | "--attr-id" => {
                it.next().ok_or_else(|| format!("{s} needs a value"))?;
            }
            "-r" | "--resource" => {
                resource = Some(
                    it.next()
                        .ok_or_else(|| format!("{s} needs a value"))?
                        .clone(),
                );
            }
            "--get-value" => rest.push("-G".into()),
            "--delete-attr" => rest.push("-D".into()),
            "-U" | "--uname" => {
                rest.push("-N".into());
                rest.push(
                    it.next()
                        .ok_or_else(|| format!("{s} needs a value"))?
                        .clone(),
                );
            }
            "--attr-value" => {
                rest.push("-v".into());
                rest.push(
                    it.next()
                        .ok_or_else(|| format!("{s} needs a value"))?
                        .clone(),
                );
            }
            _ => rest.push(a.clone()),
        }
    }
    match resource {
        Some(r) => {
            let mut p = OsString::from("--promotion=");
            p.push(r);
            out.push(p);
        }
        None => out.push("--promotion".into()),
    }
    out.extend(rest);
    Ok(out)
}

/// What a query tool prints, or (exit code, message).
type Answer = Result<String, (u8, String)>;

/// Renders a status into what the tool prints.
type Render = Box<dyn FnOnce(&serde_json::Value, &NodeConfig) -> Answer>;

/// What a query needs from the local daemon.
enum Query {
    /// Printed without asking the daemon.
    Local(String),
    /// Answered from the status: the function renders it.
    Status(Render),
}

fn run_query(tool: &str, parse: impl FnOnce() -> Result<Query, String>) -> ExitCode {
    let q = match parse() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("{tool}: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let answer = match q {
        Query::Local(s) => Ok(s),
        Query::Status(render) => status().and_then(|(v, cfg)| render(&v, &cfg)),
    };
    match answer {
        Ok(s) => {
            if !s.is_empty() {
                println!("{s}");
            }
            ExitCode::SUCCESS
        }
        Err((code, msg)) => {
            eprintln!("{tool}: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The local node's configuration, from `HA_NODE_CONFIG`.
fn node_config() -> Result<NodeConfig, (u8, String)> {
    let path = std::env::var_os("HA_NODE_CONFIG")
        .map(PathBuf::from)
        .ok_or((
            EX_USAGE,
            "no node configuration: HA_NODE_CONFIG is not set".to_string(),
        ))?;
    NodeConfig::load(&path).map_err(|e| (EX_UNAVAILABLE, e.to_string()))
}

/// The local daemon's status and this node's configuration.
fn status() -> Result<(serde_json::Value, NodeConfig), (u8, String)> {
    let cfg = node_config()?;
    let unavailable = |e: String| (EX_UNAVAILABLE, e);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unavailable(format!("cannot start the async runtime: {e}")))?;
    let v = rt.block_on(async {
        let mut client = crate::crm_attribute::local_admin(&cfg).map_err(unavailable)?;
        let mut req = tonic::Request::new(pb::StatusRequest {});
        req.set_timeout(Duration::from_secs(10));
        let st = client
            .status(req)
            .await
            .map_err(|s| unavailable(s.message().to_string()))?;
        serde_json::from_str::<serde_json::Value>(&st.into_inner().json)
            .map_err(|e| unavailable(e.to_string()))
    })?;
    Ok((v, cfg))
}

/// `crm_node -n | -q | -l | -p | -i`.
fn crm_node_query(args: &[OsString]) -> Result<Query, String> {
    let flags: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let has = |short: &str, long: &str| flags.iter().any(|f| f == short || f == long);
    if has("-n", "--name") {
        // The local node's name needs no daemon (ocf_local_nodename).
        let cfg = node_config().map_err(|(_, m)| m)?;
        return Ok(Query::Local(cfg.name));
    }
    if has("-i", "--cluster-id") {
        let cfg = node_config().map_err(|(_, m)| m)?;
        return Ok(Query::Local(cfg.id.to_string()));
    }
    if has("-q", "--quorum") {
        return Ok(Query::Status(Box::new(|v, _| {
            // A follower's status says no quorum; the cluster has it while
            // this node is a member in the majority (it has a leader).
            let q = v["quorum"].as_bool().unwrap_or(false) || node_online(v, &v["answered_by"]);
            Ok(if q { "1" } else { "0" }.to_string())
        })));
    }
    if has("-l", "--list") {
        return Ok(Query::Status(Box::new(|v, _| {
            let lines: Vec<String> = members(v)
                .enumerate()
                .map(|(i, (name, up))| {
                    format!("{} {name} {}", i + 1, if up { "member" } else { "lost" })
                })
                .collect();
            Ok(lines.join("\n"))
        })));
    }
    if has("-p", "--partition") {
        return Ok(Query::Status(Box::new(|v, _| {
            let up: Vec<String> = members(v).filter(|(_, up)| *up).map(|(n, _)| n).collect();
            Ok(up.join(" "))
        })));
    }
    Err("give -n (this node's name), -i, -q (quorum), -l (members) or -p (partition)".into())
}

fn node_online(v: &serde_json::Value, name: &serde_json::Value) -> bool {
    v["nodes"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| &n["name"] == name && n["state"] != "offline")
    })
}

/// Every member node and whether it is up, from the status.
fn members(v: &serde_json::Value) -> impl Iterator<Item = (String, bool)> + '_ {
    v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["member"] == true && n["witness"] != true)
        .filter_map(|n| {
            let name = n["name"].as_str()?.to_string();
            let up = matches!(n["state"].as_str(), Some("online" | "standby"));
            Some((name, up))
        })
}

/// `crm_resource --resource RSC --locate` (also `-r RSC -W`).
fn crm_resource_query(args: &[OsString]) -> Result<Query, String> {
    let mut resource = None;
    let mut locate = false;
    let mut it = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "-r" | "--resource" => resource = it.next(),
            "-W" | "--locate" => locate = true,
            "-Q" | "--quiet" => {}
            other => {
                if let Some(r) = other.strip_prefix("--resource=") {
                    resource = Some(r.to_string());
                } else {
                    return Err(format!(
                        "'{other}' is not supported here: only --resource RSC --locate"
                    ));
                }
            }
        }
    }
    let (Some(rsc), true) = (resource, locate) else {
        return Err("give --resource RSC --locate".into());
    };
    Ok(Query::Status(Box::new(move |v, _| locate_lines(v, &rsc))))
}

/// Pacemaker's `--locate` lines for `rsc` (its clone instances too):
/// `resource RSC is running on: NODE` with ` Master` for a promoted one.
pub fn locate_lines(v: &serde_json::Value, rsc: &str) -> Answer {
    let base = rsc.split([':', '@']).next().unwrap_or(rsc);
    let Some(resources) = v["resources"].as_object() else {
        return Err((EX_UNAVAILABLE, "the status holds no resources".into()));
    };
    let mut found = false;
    let mut lines = Vec::new();
    for (key, r) in resources {
        // Instances are `RSC:N` (unique) or `RSC@NODE` (anonymous).
        let key_base = key.split([':', '@']).next().unwrap_or(key);
        if key != rsc && key_base != base {
            continue;
        }
        found = true;
        let promoted = matches!(r["role"].as_str(), Some("Promoted" | "Master"));
        for node in r["nodes"].as_array().into_iter().flatten() {
            if let Some(node) = node.as_str() {
                let role = if promoted { " Master" } else { "" };
                lines.push(format!("resource {base} is running on: {node}{role}"));
            }
        }
    }
    if !found {
        return Err((EX_NOT_FOUND, format!("no resource '{rsc}'")));
    }
    if lines.is_empty() {
        return Err((EX_NOT_FOUND, format!("resource {base} is NOT running")));
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn crm_master_is_crm_attribute_promotion() {
        assert_eq!(
            crm_master_args(&os(&["crm_master", "-Q", "-l", "reboot", "-v", "10000"])).unwrap(),
            os(&[
                "crm_attribute",
                "--promotion",
                "-q",
                "-l",
                "reboot",
                "-v",
                "10000"
            ])
        );
        assert_eq!(
            crm_master_args(&os(&["crm_master", "-q", "-l", "reboot", "-G"])).unwrap(),
            os(&["crm_attribute", "--promotion", "-q", "-l", "reboot", "-G"])
        );
        assert_eq!(
            crm_master_args(&os(&["crm_master", "-r", "db", "-l", "reboot", "-D"])).unwrap(),
            os(&["crm_attribute", "--promotion=db", "-l", "reboot", "-D"])
        );
        assert!(crm_master_args(&os(&["crm_master", "-r"])).is_err());
    }

    #[test]
    fn locate_prints_pacemakers_lines() {
        let v = serde_json::json!({"resources": {
            "store_drbd:0": {"role": "Promoted", "nodes": ["node1"]},
            "store_drbd@node2": {"role": "Unpromoted", "nodes": ["node2"]},
            "store_fs": {"role": "Started", "nodes": ["node1"]},
            "idle": {"role": "Stopped", "nodes": []},
        }});
        let out = locate_lines(&v, "store_drbd:1").unwrap();
        assert_eq!(
            out,
            "resource store_drbd is running on: node1 Master\nresource store_drbd is running on: node2"
        );
        // What ocf:linbit:drbd's sed takes from it.
        assert!(out
            .lines()
            .any(|l| l.ends_with(" Master") && l.contains("is running on: node1")));
        assert_eq!(
            locate_lines(&v, "store_fs").unwrap(),
            "resource store_fs is running on: node1"
        );
        assert_eq!(locate_lines(&v, "idle").unwrap_err().0, EX_NOT_FOUND);
        assert_eq!(locate_lines(&v, "nosuch").unwrap_err().0, EX_NOT_FOUND);
    }

    #[test]
    fn crm_node_lists_members() {
        let v = serde_json::json!({"nodes": [
            {"name": "node1", "state": "online", "member": true},
            {"name": "node2", "state": "offline", "member": true},
            {"name": "w", "state": "online", "member": true, "witness": true},
        ]});
        let m: Vec<(String, bool)> = members(&v).collect();
        assert_eq!(m, vec![("node1".into(), true), ("node2".into(), false)]);
        assert!(crm_node_query(&os(&["crm_node", "--bogus"])).is_err());
    }
}
