//! Operator commands on resources (`hactl resource cleanup|move|ban|clear|
//! restart`) and the configuration changes they make, as pure functions:
//! `move` and `ban` add Pacemaker's `cli-prefer-RSC` / `cli-ban-RSC-on-NODE`
//! location constraints, `clear` removes them, `meta` sets a meta attribute
//! (`restart` is `target-role=Stopped`, wait, then the old value back);
//! the `operator` role may change only [`OPERATOR_META`].

use ha_scheduler::model::{Config, Location, LocationTarget, Role};
use ha_scheduler::score::INFINITY;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What `Admin.Resource` carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ResourceOp {
    /// Forget failures and history (re-probe) on `node` or everywhere.
    Cleanup {
        resource: String,
        node: Option<String>,
    },
    /// Prefer `node` (INFINITY); without a node, ban it from where it runs.
    Move {
        resource: String,
        node: Option<String>,
    },
    /// Keep it off `node` (-INFINITY); without a node, off where it runs.
    Ban {
        resource: String,
        node: Option<String>,
    },
    /// Remove the constraints `move`/`ban` made (only those naming `node`).
    Clear {
        resource: String,
        node: Option<String>,
    },
    /// Set (or with `None` delete) a meta attribute.
    Meta {
        resource: String,
        name: String,
        value: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResourceError {
    #[error("no resource '{0}' in the configuration")]
    UnknownResource(String),
    #[error("no node '{0}' in the configuration")]
    UnknownNode(String),
    #[error("'{resource}' is not running anywhere: name the node (--node NODE)")]
    NotRunning { resource: String },
    #[error("'{resource}' runs on {nodes}: name the node (--node NODE)")]
    RunsOnSeveral { resource: String, nodes: String },
    #[error("'{resource}' has no constraint from move/ban{on} to clear")]
    NothingToClear { resource: String, on: String },
    #[error(
        "the operator role may change only the meta attributes target-role, is-managed and maintenance; '{0}' needs the admin role"
    )]
    OperatorMeta(String),
}

/// The id of the constraint `move` adds.
pub fn prefer_id(rsc: &str) -> String {
    format!("cli-prefer-{rsc}")
}

/// The id of the constraint `ban` adds.
pub fn ban_id(rsc: &str, node: &str) -> String {
    format!("cli-ban-{rsc}-on-{node}")
}

fn resource_exists(config: &Config, id: &str) -> bool {
    use ha_scheduler::model::Resource;
    fn walk(r: &Resource, id: &str) -> bool {
        match r {
            Resource::Primitive(p) => p.id == id,
            Resource::Group(g) => g.id == id || g.members.iter().any(|m| m.id == id),
            Resource::Clone(c) => c.id == id || walk(&c.child, id),
        }
    }
    config.resources.iter().any(|r| walk(r, id))
}

fn check(config: &Config, rsc: &str, node: Option<&str>) -> Result<(), ResourceError> {
    if !resource_exists(config, rsc) {
        return Err(ResourceError::UnknownResource(rsc.to_string()));
    }
    if let Some(n) = node {
        if !config.nodes.iter().any(|c| c.name == n) {
            return Err(ResourceError::UnknownNode(n.to_string()));
        }
    }
    Ok(())
}

fn location(id: String, rsc: &str, node: &str, score: i64) -> Location {
    Location {
        id,
        rsc: rsc.to_string(),
        rsc_pattern: false,
        role: None,
        target: LocationTarget::Node {
            node: node.to_string(),
            score,
        },
        resource_discovery: None,
    }
}

/// The one node `rsc` runs on (for `move`/`ban` without a node), from the
/// nodes it is active on.
pub fn only_node(rsc: &str, active_on: &[String]) -> Result<String, ResourceError> {
    match active_on {
        [] => Err(ResourceError::NotRunning {
            resource: rsc.to_string(),
        }),
        [one] => Ok(one.clone()),
        many => Err(ResourceError::RunsOnSeveral {
            resource: rsc.to_string(),
            nodes: many.join(", "),
        }),
    }
}

/// `move RSC NODE`: replaces any earlier preference of `rsc` by `node`.
pub fn prefer(config: &Config, rsc: &str, node: &str) -> Result<Config, ResourceError> {
    check(config, rsc, Some(node))?;
    let mut c = config.clone();
    let id = prefer_id(rsc);
    c.constraints.locations.retain(|l| l.id != id);
    // A ban of the target node would win: moving there lifts it.
    let ban = ban_id(rsc, node);
    c.constraints.locations.retain(|l| l.id != ban);
    c.constraints
        .locations
        .push(location(id, rsc, node, INFINITY));
    Ok(c)
}

/// `ban RSC NODE`.
pub fn ban(config: &Config, rsc: &str, node: &str) -> Result<Config, ResourceError> {
    check(config, rsc, Some(node))?;
    let mut c = config.clone();
    let id = ban_id(rsc, node);
    c.constraints.locations.retain(|l| l.id != id);
    // A preference for the banned node would contradict it.
    let prefer = prefer_id(rsc);
    c.constraints.locations.retain(|l| {
        !(l.id == prefer && matches!(&l.target, LocationTarget::Node { node: n, .. } if n == node))
    });
    c.constraints
        .locations
        .push(location(id, rsc, node, -INFINITY));
    Ok(c)
}

/// `clear RSC [NODE]`.
pub fn clear(config: &Config, rsc: &str, node: Option<&str>) -> Result<Config, ResourceError> {
    check(config, rsc, node)?;
    let mut c = config.clone();
    let before = c.constraints.locations.len();
    let prefer = prefer_id(rsc);
    let ban_prefix = format!("cli-ban-{rsc}-on-");
    c.constraints.locations.retain(|l| {
        let made_by_us = l.rsc == rsc && (l.id == prefer || l.id.starts_with(&ban_prefix));
        let on_node = match (node, &l.target) {
            (None, _) => true,
            (Some(n), LocationTarget::Node { node, .. }) => node == n,
            (Some(_), LocationTarget::Rules(_)) => false,
        };
        !(made_by_us && on_node)
    });
    if c.constraints.locations.len() == before {
        return Err(ResourceError::NothingToClear {
            resource: rsc.to_string(),
            on: node.map(|n| format!(" on {n}")).unwrap_or_default(),
        });
    }
    Ok(c)
}

/// `meta RSC NAME [VALUE]`; `target-role` values are checked.
pub fn set_meta(
    config: &Config,
    rsc: &str,
    name: &str,
    value: Option<&str>,
) -> Result<Config, ResourceError> {
    check(config, rsc, None)?;
    let mut c = config.clone();
    let meta = c
        .meta_mut(rsc)
        .ok_or_else(|| ResourceError::UnknownResource(rsc.to_string()))?;
    match value {
        Some(v) => {
            meta.insert(name.to_string(), v.to_string());
        }
        None => {
            meta.remove(name);
        }
    }
    Ok(c)
}

/// The meta attributes the `operator` role may change (start/stop,
/// unmanage, maintenance); every other one (`clone-max`, `priority`,
/// stickiness...) changes the configuration's design and needs the admin
/// role (issue 12: an operator's `clone-max=10000` stalled the cluster).
pub const OPERATOR_META: &[&str] = &["target-role", "is-managed", "maintenance"];

/// Whether a caller with the `operator` role may run `op`: any command but
/// a `meta` change outside [`OPERATOR_META`]; the error names the attribute.
pub fn operator_may(op: &ResourceOp) -> Result<(), ResourceError> {
    match op {
        ResourceOp::Meta { name, .. } if !OPERATOR_META.contains(&name.as_str()) => {
            Err(ResourceError::OperatorMeta(name.clone()))
        }
        _ => Ok(()),
    }
}

/// Whether `role` (a `target-role` value) stops the resource.
pub fn stops(role: Option<&str>) -> bool {
    role.and_then(Role::parse) == Some(Role::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        ha_scheduler::crm::read_crm(
            "node n1\nnode n2\nprimitive a ocf:heartbeat:Dummy\nprimitive b ocf:heartbeat:Dummy\n\
             group g b\nlocation keep a rule 10: #uname eq n1\n",
        )
        .unwrap()
    }

    fn ids(c: &Config) -> Vec<&str> {
        c.constraints
            .locations
            .iter()
            .map(|l| l.id.as_str())
            .collect()
    }

    #[test]
    fn move_ban_clear_round_trip() {
        let c = config();
        let moved = prefer(&c, "a", "n2").unwrap();
        assert_eq!(ids(&moved), ["keep", "cli-prefer-a"]);
        let moved_again = prefer(&moved, "a", "n1").unwrap();
        assert_eq!(ids(&moved_again), ["keep", "cli-prefer-a"]);
        let banned = ban(&moved_again, "a", "n1").unwrap();
        assert_eq!(
            ids(&banned),
            ["keep", "cli-ban-a-on-n1"],
            "the ban lifts the preference"
        );
        let banned2 = ban(&banned, "a", "n2").unwrap();
        let cleared = clear(&banned2, "a", Some("n1")).unwrap();
        assert_eq!(ids(&cleared), ["keep", "cli-ban-a-on-n2"]);
        let cleared = clear(&cleared, "a", None).unwrap();
        assert_eq!(ids(&cleared), ["keep"]);
        assert_eq!(
            clear(&cleared, "a", None).unwrap_err(),
            ResourceError::NothingToClear {
                resource: "a".into(),
                on: String::new()
            }
        );
        assert!(ha_scheduler::validate::validate(&banned2).is_ok());
    }

    #[test]
    fn unknown_names_are_refused() {
        let c = config();
        assert_eq!(
            prefer(&c, "nope", "n1").unwrap_err(),
            ResourceError::UnknownResource("nope".into())
        );
        assert_eq!(
            ban(&c, "a", "n9").unwrap_err(),
            ResourceError::UnknownNode("n9".into())
        );
        assert_eq!(
            only_node("a", &[]).unwrap_err(),
            ResourceError::NotRunning {
                resource: "a".into()
            }
        );
        assert!(only_node("a", &["n1".into(), "n2".into()])
            .unwrap_err()
            .to_string()
            .contains("n1, n2"));
    }

    #[test]
    fn meta_on_groups_and_members() {
        let c = config();
        let c2 = set_meta(&c, "g", "target-role", Some("Stopped")).unwrap();
        let c3 = set_meta(&c2, "b", "migration-threshold", Some("2")).unwrap();
        let p = c3.primitive("b").unwrap();
        let m = p.effective_meta(&c3);
        assert_eq!(m.get("target-role").map(String::as_str), Some("Stopped"));
        assert_eq!(m.get("migration-threshold").map(String::as_str), Some("2"));
        let c4 = set_meta(&c3, "g", "target-role", None).unwrap();
        assert!(!c4
            .primitive("b")
            .unwrap()
            .effective_meta(&c4)
            .contains_key("target-role"));
        assert!(stops(Some("stopped")) && !stops(Some("Started")) && !stops(None));
    }

    #[test]
    fn operators_change_only_target_role_is_managed_and_maintenance() {
        let meta = |name: &str| ResourceOp::Meta {
            resource: "a".into(),
            name: name.into(),
            value: Some("1".into()),
        };
        for name in OPERATOR_META {
            assert_eq!(operator_may(&meta(name)), Ok(()));
        }
        for name in [
            "clone-max",
            "promoted-max",
            "resource-stickiness",
            "priority",
        ] {
            let e = operator_may(&meta(name)).unwrap_err();
            assert_eq!(e, ResourceError::OperatorMeta(name.into()));
            assert!(
                e.to_string()
                    .contains(&format!("'{name}' needs the admin role")),
                "{e}"
            );
        }
        let deleting = ResourceOp::Meta {
            resource: "a".into(),
            name: "clone-max".into(),
            value: None,
        };
        assert!(operator_may(&deleting).is_err(), "deleting is changing too");
        let ban = ResourceOp::Ban {
            resource: "a".into(),
            node: None,
        };
        assert_eq!(operator_may(&ban), Ok(()));
    }
}
