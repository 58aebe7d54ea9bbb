//! Whole-configuration validation: a config is accepted only if every
//! reference resolves and nothing contradicts; errors name the element.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ConfigError;
use crate::model::{ColocationForm, Config, OrderForm, OrderKind, Resource};

/// Checks a configuration as a whole: unique ids, constraint references that
/// resolve, and no cycle among mandatory orderings.
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
    Ok(())
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
}
