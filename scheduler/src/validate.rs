//! Whole-configuration validation: a config is accepted only if every
//! reference resolves and nothing contradicts; errors name the element.
//! [`validate`] holds for every configuration we read (Pacemaker's own
//! included); [`validate_clone_limits`] is the stricter bound a
//! configuration written through our Admin service must also meet.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ConfigError;
use crate::model::{CloneResource, ColocationForm, Config, OrderForm, OrderKind, Resource};

/// The most instances a clone may have (`clone-max`), and the most of them
/// one node may run (`clone-node-max`), whatever the number of nodes: the
/// scheduler expands every instance, so one configuration write must not
/// make it work on thousands (issue 12, hole 8). Pacemaker sets no limit;
/// its own regression cases stay far below this one.
pub const MAX_CLONE_INSTANCES: u64 = 1024;

/// Checks a configuration as a whole: unique ids, constraint references that
/// resolve, no cycle among mandatory orderings, and clones within
/// [`MAX_CLONE_INSTANCES`].
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut dup = |element: &str, id: &str| -> Result<(), ConfigError> {
        if !ids.insert(id.to_string()) {
            return Err(ConfigError::DuplicateId {
                element: element.into(),
                id: id.into(),
            });
        }
        Ok(())
    };
    fn walk<'a>(
        r: &'a Resource,
        f: &mut dyn FnMut(&str, &str) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        match r {
            Resource::Primitive(p) => f("primitive", &p.id),
            Resource::Group(g) => {
                f("group", &g.id)?;
                for m in &g.members {
                    f("primitive", &m.id)?;
                }
                Ok(())
            }
            Resource::Clone(c) => {
                f("clone", &c.id)?;
                walk(&c.child, f)
            }
        }
    }
    for r in &config.resources {
        walk(r, &mut dup)?;
    }
    let mut node_names = BTreeSet::new();
    for n in &config.nodes {
        if !node_names.insert(n.name.as_str()) {
            return Err(ConfigError::DuplicateId {
                element: "node".into(),
                id: n.name.clone(),
            });
        }
    }
    crate::options::validate(config)?;
    let known = |id: &str| ids.contains(id);
    let unknown = |element: &str, cid: &str, r: &str| ConfigError::UnknownReference {
        element: element.into(),
        id: cid.into(),
        kind: "resource".into(),
        reference: r.into(),
    };
    for l in &config.constraints.locations {
        if !l.rsc_pattern && !known(&l.rsc) {
            return Err(unknown("rsc_location", &l.id, &l.rsc));
        }
    }
    for c in &config.constraints.colocations {
        let refs: Vec<&String> = match &c.form {
            ColocationForm::Pair { rsc, with_rsc, .. } => vec![rsc, with_rsc],
            ColocationForm::Sets(sets) => sets.iter().flat_map(|s| &s.resources).collect(),
        };
        if let Some(r) = refs.into_iter().find(|r| !known(r)) {
            return Err(unknown("rsc_colocation", &c.id, r));
        }
    }
    // Mandatory start orderings form a graph over resources: no cycles.
    let mut edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for o in &config.constraints.orders {
        let mandatory = matches!(o.kind, None | Some(OrderKind::Mandatory));
        let mut pairs: Vec<(&str, &str, Option<&str>, Option<&str>)> = Vec::new();
        match &o.form {
            OrderForm::Pair {
                first,
                then,
                first_action,
                then_action,
                ..
            } => pairs.push((first, then, first_action.as_deref(), then_action.as_deref())),
            OrderForm::Sets(sets) => {
                for s in sets {
                    if let Some(r) = s.resources.iter().find(|r| !known(r)) {
                        return Err(unknown("rsc_order", &o.id, r));
                    }
                    if s.sequential.unwrap_or(true) {
                        for w in s.resources.windows(2) {
                            pairs.push((&w[0], &w[1], s.action.as_deref(), s.action.as_deref()));
                        }
                    }
                }
            }
        }
        for (f, t, fa, ta) in pairs {
            if !known(f) {
                return Err(unknown("rsc_order", &o.id, f));
            }
            if !known(t) {
                return Err(unknown("rsc_order", &o.id, t));
            }
            let fa = fa.unwrap_or("start");
            let ta = ta.unwrap_or(fa);
            if mandatory && fa == "start" && ta == "start" {
                edges.entry(f).or_default().push((t, o.id.as_str()));
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        return Err(ConfigError::OrderCycle { ids: cycle });
    }
    for c in clones(config) {
        let limits = CloneLimits::of(config, c, false)?;
        for (name, v) in [
            ("clone-max", limits.clone_max),
            ("clone-node-max", limits.clone_node_max),
        ] {
            if v > MAX_CLONE_INSTANCES {
                return Err(ConfigError::invalid(
                    "clone",
                    &c.id,
                    format!("{name} {v} exceeds the limit of {MAX_CLONE_INSTANCES}"),
                ));
            }
        }
    }
    Ok(())
}

/// The bound a configuration loaded or changed through our Admin service
/// meets besides [`validate`]: a clone has no more instances than its
/// nodes can run (`clone-max <= nodes x clone-node-max`) and promotes no
/// more than it has (`promoted-max <= clone-max`); the error names the
/// clone. Pacemaker accepts more and leaves the extra instances stopped
/// (several of its regression cases do, so reading a CIB does not check
/// this). Without configured nodes only [`validate`]'s limit applies.
///
/// With `before` (the configuration being replaced), a clone that breaks
/// the bound exactly as it did before is let through: a change elsewhere
/// is not refused for what it did not touch.
pub fn validate_clone_limits(config: &Config, before: Option<&Config>) -> Result<(), ConfigError> {
    for c in clones(config) {
        let Some(e) = clone_limit_error(config, c) else {
            continue;
        };
        let same_before = before.is_some_and(|b| {
            clones(b)
                .find(|o| o.id == c.id)
                .and_then(|o| clone_limit_error(b, o))
                .is_some_and(|old| old == e)
        });
        if !same_before {
            return Err(e);
        }
    }
    Ok(())
}

/// How clone `c` of `config` breaks [`validate_clone_limits`]'s bound.
fn clone_limit_error(config: &Config, c: &CloneResource) -> Option<ConfigError> {
    let nodes = config.nodes.len() as u64;
    let l = match CloneLimits::of(config, c, true) {
        Ok(l) => l,
        Err(e) => return Some(e),
    };
    if nodes > 0 && l.clone_max > nodes.saturating_mul(l.clone_node_max) {
        return Some(ConfigError::invalid(
            "clone",
            &c.id,
            format!(
                "clone-max {} exceeds nodes ({nodes}) x clone-node-max ({})",
                l.clone_max, l.clone_node_max
            ),
        ));
    }
    if c.promotable && l.promoted_max > l.clone_max {
        return Some(ConfigError::invalid(
            "clone",
            &c.id,
            format!(
                "promoted-max {} exceeds clone-max {}",
                l.promoted_max, l.clone_max
            ),
        ));
    }
    None
}

/// Every clone of the configuration (clones hold no clones).
fn clones(config: &Config) -> impl Iterator<Item = &CloneResource> {
    config.resources.iter().filter_map(|r| match r {
        Resource::Clone(c) => Some(c),
        _ => None,
    })
}

/// A clone's instance counts as the scheduler reads them (defaults:
/// clone-max = number of nodes, clone-node-max 1, promoted-max 1; a value
/// that is no number counts as the default, or with `strict` is an error).
struct CloneLimits {
    clone_max: u64,
    clone_node_max: u64,
    promoted_max: u64,
}

impl CloneLimits {
    fn of(config: &Config, c: &CloneResource, strict: bool) -> Result<CloneLimits, ConfigError> {
        let get = |names: &[&str], default: u64| -> Result<u64, ConfigError> {
            let Some((name, v)) = names
                .iter()
                .find_map(|n| c.meta.get(*n).map(|v| (*n, v)))
                .or_else(|| {
                    names
                        .iter()
                        .find_map(|n| config.rsc_defaults.get(*n).map(|v| (*n, v)))
                })
            else {
                return Ok(default);
            };
            // negative counts mean none, as the scheduler reads them
            match v.trim().parse::<i64>() {
                Ok(n) => Ok(n.max(0) as u64),
                Err(_) if !strict => Ok(default),
                Err(_) => Err(ConfigError::invalid(
                    "clone",
                    &c.id,
                    format!("{name} '{v}' is not a whole number"),
                )),
            }
        };
        Ok(CloneLimits {
            clone_max: get(&["clone-max"], config.nodes.len().max(1) as u64)?,
            clone_node_max: get(&["clone-node-max"], 1)?,
            promoted_max: get(&["promoted-max", "master-max"], 1)?,
        })
    }
}

/// A cycle of constraint ids, if the graph has one.
fn find_cycle(edges: &BTreeMap<&str, Vec<(&str, &str)>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for &start in edges.keys() {
        if marks.contains_key(start) {
            continue;
        }
        // iterative DFS: (node, next edge index), path of constraint ids
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        let mut path: Vec<&str> = Vec::new();
        marks.insert(start, Mark::Active);
        while let Some((node, i)) = stack.pop() {
            let out = edges.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if i < out.len() {
                stack.push((node, i + 1));
                let (next, cid) = out[i];
                match marks.get(next) {
                    Some(Mark::Active) => {
                        path.push(cid);
                        return Some(path.iter().map(|s| s.to_string()).collect());
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(next, Mark::Active);
                        path.push(cid);
                        stack.push((next, 0));
                    }
                }
            } else {
                marks.insert(node, Mark::Done);
                path.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn prim(id: &str) -> Resource {
        Resource::Primitive(Primitive {
            id: id.into(),
            class: "ocf".into(),
            agent: "Dummy".into(),
            ..Default::default()
        })
    }

    fn order(id: &str, f: &str, t: &str) -> Order {
        Order {
            id: id.into(),
            kind: None,
            symmetrical: None,
            form: OrderForm::Pair {
                first: f.into(),
                then: t.into(),
                first_action: None,
                then_action: None,
                require_all: None,
            },
        }
    }

    #[test]
    fn cycle_is_named() {
        let mut c = Config {
            resources: vec![prim("a"), prim("b"), prim("c")],
            ..Default::default()
        };
        c.constraints.orders = vec![
            order("o1", "a", "b"),
            order("o2", "b", "c"),
            order("o3", "c", "a"),
        ];
        let e = validate(&c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ordering cycle through constraints o1 -> o2 -> o3"
        );
        c.constraints.orders.pop();
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn unknown_and_duplicate() {
        let mut c = Config {
            resources: vec![prim("a"), prim("a")],
            ..Default::default()
        };
        assert!(matches!(validate(&c), Err(ConfigError::DuplicateId { .. })));
        c.resources.pop();
        c.constraints.orders = vec![order("o1", "a", "ghost")];
        assert_eq!(
            validate(&c).unwrap_err().to_string(),
            "rsc_order 'o1' refers to unknown resource 'ghost'"
        );
    }

    fn clone_config(nodes: usize, meta: &[(&str, &str)], promotable: bool) -> Config {
        Config {
            nodes: (1..=nodes)
                .map(|i| NodeConfig {
                    id: format!("n{i}"),
                    name: format!("n{i}"),
                    ..Default::default()
                })
                .collect(),
            resources: vec![Resource::Clone(CloneResource {
                id: "web-clone".into(),
                meta: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                promotable,
                child: Box::new(prim("web")),
            })],
            ..Default::default()
        }
    }

    #[test]
    fn clone_max_is_bounded_by_nodes_times_clone_node_max() {
        let c = clone_config(3, &[("clone-max", "10000")], false);
        assert_eq!(
            validate_clone_limits(&c, None).unwrap_err().to_string(),
            "clone 'web-clone': clone-max 10000 exceeds nodes (3) x clone-node-max (1)"
        );
        assert_eq!(
            validate(&c).unwrap_err().to_string(),
            "clone 'web-clone': clone-max 10000 exceeds the limit of 1024",
            "the hard limit holds on every path"
        );
        let c = clone_config(3, &[("clone-max", "6"), ("clone-node-max", "2")], false);
        assert!(validate_clone_limits(&c, None).is_ok() && validate(&c).is_ok());
        // Pacemaker's own cases set clone-max above the nodes (the extra
        // instances stay stopped): reading them still works.
        let c = clone_config(3, &[("clone-max", "7"), ("clone-node-max", "2")], false);
        assert!(validate(&c).is_ok());
        assert_eq!(
            validate_clone_limits(&c, None).unwrap_err().to_string(),
            "clone 'web-clone': clone-max 7 exceeds nodes (3) x clone-node-max (2)"
        );
        // defaults: clone-max = nodes
        assert!(validate_clone_limits(&clone_config(3, &[], false), None).is_ok());
        let c = clone_config(3, &[("clone-node-max", "5000")], false);
        assert_eq!(
            validate(&c).unwrap_err().to_string(),
            "clone 'web-clone': clone-node-max 5000 exceeds the limit of 1024"
        );
        let c = clone_config(3, &[("clone-max", "lots")], false);
        assert!(
            validate(&c).is_ok(),
            "read as the default, as the scheduler does"
        );
        assert_eq!(
            validate_clone_limits(&c, None).unwrap_err().to_string(),
            "clone 'web-clone': clone-max 'lots' is not a whole number"
        );
    }

    #[test]
    fn promoted_max_is_bounded_by_clone_max() {
        let c = clone_config(3, &[("clone-max", "2"), ("promoted-max", "3")], true);
        assert_eq!(
            validate_clone_limits(&c, None).unwrap_err().to_string(),
            "clone 'web-clone': promoted-max 3 exceeds clone-max 2"
        );
        let c = clone_config(3, &[("master-max", "4")], true);
        assert_eq!(
            validate_clone_limits(&c, None).unwrap_err().to_string(),
            "clone 'web-clone': promoted-max 4 exceeds clone-max 3"
        );
        let c = clone_config(3, &[("promoted-max", "2")], true);
        assert!(validate_clone_limits(&c, None).is_ok());
        // a clone that is not promotable promotes nothing
        let c = clone_config(3, &[("clone-max", "2"), ("promoted-max", "3")], false);
        assert!(validate_clone_limits(&c, None).is_ok());
    }

    #[test]
    fn an_unchanged_clone_over_the_bound_does_not_block_other_changes() {
        let before = clone_config(3, &[("clone-max", "3")], false);
        let mut fewer = before.clone();
        fewer.nodes.pop();
        // the node list shrank in the same change: refused
        assert_eq!(
            validate_clone_limits(&fewer, Some(&before))
                .unwrap_err()
                .to_string(),
            "clone 'web-clone': clone-max 3 exceeds nodes (2) x clone-node-max (1)"
        );
        // already over the bound, and a change elsewhere: let through
        let mut other = fewer.clone();
        other.resources.push(prim("other"));
        assert!(validate_clone_limits(&other, Some(&fewer)).is_ok());
        // raising it further is a change of the clone: refused
        let mut raised = fewer.clone();
        if let Resource::Clone(c) = &mut raised.resources[0] {
            c.meta.insert("clone-max".into(), "4".into());
        }
        assert!(validate_clone_limits(&raised, Some(&fewer)).is_err());
    }
}
