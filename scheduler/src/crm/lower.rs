//! Lowering: statements into the model, as crmsh builds the CIB from them.
//! References are resolved (groups, clones, constraints), top-level
//! resources are ordered as crmsh places them (primitives, groups, `ms`,
//! clones, each in the order written), attribute lists are merged as the CIB
//! reader merges nvsets, and the ids crmsh generates are generated with its
//! scheme (crmsh `idmgmt.new`): `<prefix>[-<suffix>]`, or if that is taken,
//! the first free of `...-0`, `...-1`, ... (99 tries).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::ast::*;
use super::CrmError;
use crate::cib::{is_true, parse_interval_ms};
use crate::error::ConfigError;
use crate::model::*;

/// Properties the cluster stack sets itself; crmsh refuses them, so the CIB
/// it writes (and so the model) has none.
pub const STACK_MANAGED: [&str; 2] = ["cluster-infrastructure", "expected-quorum-votes"];

type R<T> = Result<T, CrmError>;

/// The id store: every id in use, and crmsh's way to make a new one.
pub struct Ids {
    used: HashSet<String>,
}

impl Ids {
    pub fn new_id(&mut self, base: String) -> String {
        let id = if self.used.contains(&base) {
            (0..99)
                .map(|i| format!("{base}-{i}"))
                .find(|c| !self.used.contains(c))
                .unwrap_or(base)
        } else {
            base
        };
        self.used.insert(id.clone());
        id
    }
}

/// Every id written explicitly, before any is generated.
fn explicit_ids(stmts: &[Stmt]) -> HashSet<String> {
    let mut used = HashSet::new();
    for s in stmts {
        match s {
            Stmt::Node(n) => {
                used.insert(n.id.clone().unwrap_or_else(|| n.name.text.clone()));
            }
            Stmt::Primitive(p) => {
                used.insert(p.id.text.clone());
                if let Some(o) = &p.ops_id {
                    used.insert(o.clone());
                }
                used.extend(p.ops.iter().filter_map(|o| o.id.clone()));
            }
            Stmt::Group(g) => {
                used.insert(g.id.text.clone());
            }
            Stmt::Clone(c) => {
                used.insert(c.id.text.clone());
            }
            Stmt::Location(l) => {
                used.insert(l.id.text.clone());
                if let LocTarget::Rules(rules) = &l.target {
                    used.extend(
                        rules
                            .iter()
                            .filter_map(|r| r.id.as_ref().map(|i| i.text.clone())),
                    );
                }
            }
            Stmt::Colocation(c) => {
                used.insert(c.id.text.clone());
            }
            Stmt::Order(o) => {
                used.insert(o.id.text.clone());
            }
            Stmt::Nvset(_) | Stmt::Fencing(_) => {}
        }
    }
    used
}

/// Merges attribute lists as the CIB reader merges nvsets: sets with a
/// higher score first, the first value of a name wins; sets with rules are
/// left out.
pub fn merge(sets: &[NvSet]) -> Attrs {
    let mut v: Vec<(usize, &NvSet)> = sets
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.has_rules)
        .collect();
    v.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(&b.0)));
    let mut out = Attrs::new();
    for (_, s) in v {
        for (k, val) in &s.pairs {
            out.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    out
}

fn first_wins(pairs: &[(String, String)]) -> Attrs {
    let mut out = Attrs::new();
    for (k, v) in pairs {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

/// Where crmsh places a top-level resource of this statement.
fn rank(s: &Stmt) -> u8 {
    match s {
        Stmt::Primitive(_) => 0,
        Stmt::Group(_) => 1,
        Stmt::Clone(c) if c.ms => 2,
        _ => 3,
    }
}

fn stmt_id(s: &Stmt) -> Option<&Ident> {
    match s {
        Stmt::Primitive(p) => Some(&p.id),
        Stmt::Group(g) => Some(&g.id),
        Stmt::Clone(c) => Some(&c.id),
        Stmt::Location(l) => Some(&l.id),
        Stmt::Colocation(c) => Some(&c.id),
        Stmt::Order(o) => Some(&o.id),
        Stmt::Node(n) => Some(&n.name),
        Stmt::Nvset(_) | Stmt::Fencing(_) => None,
    }
}

/// Builds the configuration (not yet validated).
pub fn lower(stmts: &[Stmt]) -> R<Config> {
    let mut ids = Ids {
        used: explicit_ids(stmts),
    };
    let mut config = Config::default();

    // resources: definitions by id
    let mut defs: HashMap<&str, usize> = HashMap::new();
    for (i, s) in stmts.iter().enumerate() {
        if !matches!(s, Stmt::Primitive(_) | Stmt::Group(_) | Stmt::Clone(_)) {
            continue;
        }
        let Some(id) = stmt_id(s) else { continue };
        if let Some(&prev) = defs.get(id.text.as_str()) {
            let line = stmt_id(&stmts[prev]).map_or(0, |p| p.pos.line);
            return Err(CrmError::at(
                id.pos,
                &id.text,
                &format!(
                    "a new resource id ('{}' is already defined on line {line})",
                    id.text
                ),
            ));
        }
        defs.insert(&id.text, i);
    }
    let known = |r: &str| defs.contains_key(r);

    // containers claim their children: groups, then ms, then clones
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut order: Vec<usize> = defs.values().copied().collect();
    order.sort_by_key(|&i| (rank(&stmts[i]), i));
    for &i in &order {
        let (cid, children): (&Ident, Vec<&Ident>) = match &stmts[i] {
            Stmt::Group(g) => (&g.id, g.members.iter().collect()),
            Stmt::Clone(c) => (&c.id, vec![&c.child]),
            _ => continue,
        };
        for ch in children {
            let Some(&ci) = defs.get(ch.text.as_str()) else {
                return Err(CrmError::at(ch.pos, &ch.text, "a defined resource"));
            };
            match (&stmts[i], &stmts[ci]) {
                (Stmt::Group(_), Stmt::Primitive(_)) => {}
                (Stmt::Group(_), _) => {
                    return Err(CrmError::at(
                        ch.pos,
                        &ch.text,
                        "a primitive (a group holds primitives only)",
                    ))
                }
                (Stmt::Clone(_), Stmt::Primitive(_) | Stmt::Group(_)) => {}
                _ => {
                    return Err(CrmError::at(
                        ch.pos,
                        &ch.text,
                        "a primitive or a group (clones cannot be cloned)",
                    ))
                }
            }
            if let Some(p) = parent.get(ch.text.as_str()) {
                return Err(CrmError::at(
                    ch.pos,
                    &ch.text,
                    &format!("a resource not already in '{p}'"),
                ));
            }
            parent.insert(&ch.text, &cid.text);
        }
    }

    // ids generated in the order written
    let mut op_ids: HashMap<&str, Vec<String>> = HashMap::new();
    for s in stmts {
        match s {
            Stmt::Primitive(p) => {
                let prefix = p.ops_id.as_deref().unwrap_or(&p.id.text);
                let v = p
                    .ops
                    .iter()
                    .map(|o| match &o.id {
                        Some(id) => id.clone(),
                        // crmsh: `<prefix>-<op>-<interval>`, interval "0" when
                        // not given, no interval part when given empty
                        None => match o.interval.as_ref().map_or("0", |i| i.text.as_str()) {
                            "" => ids.new_id(format!("{prefix}-{}", o.name)),
                            interval => ids.new_id(format!("{prefix}-{}-{interval}", o.name)),
                        },
                    })
                    .collect();
                op_ids.insert(&p.id.text, v);
            }
            Stmt::Location(l) => {
                if !l.pattern && !known(&l.rsc.text) {
                    return Err(CrmError::at(l.rsc.pos, &l.rsc.text, "a defined resource"));
                }
                config.constraints.locations.push(location(l, &mut ids));
            }
            Stmt::Colocation(c) => {
                let form = match &c.form {
                    ColForm::Pair {
                        rsc,
                        rsc_role,
                        with_rsc,
                        with_rsc_role,
                    } => {
                        check_refs([rsc, with_rsc], &known)?;
                        ColocationForm::Pair {
                            rsc: rsc.text.clone(),
                            with_rsc: with_rsc.text.clone(),
                            rsc_role: *rsc_role,
                            with_rsc_role: *with_rsc_role,
                        }
                    }
                    ColForm::Sets(sets) => {
                        ColocationForm::Sets(resource_sets(&c.id, sets, &mut ids, &known)?)
                    }
                };
                config.constraints.colocations.push(Colocation {
                    id: c.id.text.clone(),
                    score: c.score,
                    node_attribute: c.node_attribute.clone(),
                    influence: c.influence,
                    form,
                });
            }
            Stmt::Order(o) => {
                let form = match &o.form {
                    OrdForm::Pair {
                        first,
                        first_action,
                        then,
                        then_action,
                    } => {
                        check_refs([first, then], &known)?;
                        OrderForm::Pair {
                            first: first.text.clone(),
                            then: then.text.clone(),
                            first_action: first_action.clone(),
                            then_action: then_action.clone(),
                            require_all: None,
                        }
                    }
                    OrdForm::Sets(sets) => {
                        OrderForm::Sets(resource_sets(&o.id, sets, &mut ids, &known)?)
                    }
                };
                config.constraints.orders.push(Order {
                    id: o.id.text.clone(),
                    kind: o.kind,
                    symmetrical: o.symmetrical,
                    form,
                });
            }
            _ => {}
        }
    }

    // nodes
    for s in stmts {
        let Stmt::Node(n) = s else { continue };
        if n.remote {
            continue;
        }
        if config.nodes.iter().any(|c| c.name == n.name.text) {
            return Err(CrmError::at(
                n.name.pos,
                &n.name.text,
                &format!(
                    "a new node name ('{}' is already defined on line {})",
                    n.name.text,
                    stmts
                        .iter()
                        .find_map(|s| match s {
                            Stmt::Node(m) if m.name.text == n.name.text => Some(m.name.pos.line),
                            _ => None,
                        })
                        .unwrap_or(0)
                ),
            ));
        }
        config.nodes.push(NodeConfig {
            id: n.id.clone().unwrap_or_else(|| n.name.text.clone()),
            name: n.name.text.clone(),
            attributes: merge(&n.attributes),
            utilization: merge(&n.utilization),
            score: None,
        });
    }

    // resources, top level in crmsh's order
    let build = Builder {
        stmts,
        defs: &defs,
        op_ids: &op_ids,
    };
    for &i in &order {
        let Some(id) = stmt_id(&stmts[i]) else {
            continue;
        };
        if parent.contains_key(id.text.as_str()) {
            continue;
        }
        config.resources.push(build.resource(i));
    }

    // cluster options: one set per id, later values replace earlier ones;
    // the first set of a name wins
    for kind in [
        NvsetKind::Property,
        NvsetKind::RscDefaults,
        NvsetKind::OpDefaults,
    ] {
        let mut sets: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        for s in stmts {
            let Stmt::Nvset(n) = s else { continue };
            if n.kind != kind || n.has_rules {
                continue;
            }
            let sid = n
                .set_id
                .clone()
                .unwrap_or_else(|| kind.default_set_id().to_string());
            let idx = match sets.iter().position(|(i, _)| *i == sid) {
                Some(i) => i,
                None => {
                    sets.push((sid, BTreeMap::new()));
                    sets.len() - 1
                }
            };
            for (k, v) in &n.pairs {
                sets[idx].1.insert(k.clone(), v.clone());
            }
        }
        let mut attrs = Attrs::new();
        for (_, set) in sets {
            for (k, v) in set {
                attrs.entry(k).or_insert(v);
            }
        }
        match kind {
            NvsetKind::Property => {
                for k in STACK_MANAGED {
                    attrs.remove(k);
                }
                config.properties = attrs;
            }
            NvsetKind::RscDefaults => config.rsc_defaults = attrs,
            NvsetKind::OpDefaults => config.op_defaults = attrs,
        }
    }

    // fencing topology: the last statement is the topology
    if let Some(f) = stmts.iter().rev().find_map(|s| match s {
        Stmt::Fencing(f) => Some(f),
        _ => None,
    }) {
        let mut levels: Vec<(String, Vec<String>)> = Vec::new();
        if f.levels.first().is_some_and(|(t, _)| t.is_none()) {
            for n in &config.nodes {
                for (_, d) in &f.levels {
                    levels.push((n.name.clone(), d.clone()));
                }
            }
        } else {
            for (t, d) in &f.levels {
                levels.push((t.clone().unwrap_or_default(), d.clone()));
            }
        }
        let mut index: HashMap<String, u32> = HashMap::new();
        for (target, devices) in levels {
            let i = index.entry(target.clone()).or_insert(0);
            *i += 1;
            config.fencing_levels.push(FencingLevel {
                id: ids.new_id("fencing".into()),
                target,
                index: *i,
                devices,
            });
        }
    }
    Ok(config)
}

fn check_refs<'a>(
    refs: impl IntoIterator<Item = &'a Ident>,
    known: &dyn Fn(&str) -> bool,
) -> R<()> {
    for r in refs {
        if !known(&r.text) {
            return Err(CrmError::at(r.pos, &r.text, "a defined resource"));
        }
    }
    Ok(())
}

fn resource_sets(
    cid: &Ident,
    sets: &[SetStmt],
    ids: &mut Ids,
    known: &dyn Fn(&str) -> bool,
) -> R<Vec<ResourceSet>> {
    let mut out = Vec::new();
    for s in sets {
        check_refs(&s.resources, known)?;
        out.push(ResourceSet {
            id: ids.new_id(cid.text.clone()),
            resources: s.resources.iter().map(|r| r.text.clone()).collect(),
            sequential: s.sequential,
            require_all: s.require_all,
            role: s.role,
            action: s.action.clone(),
            kind: None,
            score: None,
        });
    }
    Ok(out)
}

fn location(l: &LocationStmt, ids: &mut Ids) -> Location {
    let target = match &l.target {
        LocTarget::Node { score, node } => LocationTarget::Node {
            node: node.clone(),
            score: *score,
        },
        LocTarget::Rules(rules) => LocationTarget::Rules(
            rules
                .iter()
                .map(|r| {
                    let id = match &r.id {
                        Some(i) => i.text.clone(),
                        None => ids.new_id(format!("{}-rule", l.id.text)),
                    };
                    let expressions = r
                        .exprs
                        .iter()
                        .map(|e| {
                            let eid = ids.new_id(format!("{id}-expression"));
                            expression(e, eid)
                        })
                        .collect();
                    Rule {
                        id,
                        score: r.score.clone(),
                        boolean_op: r.bool_op,
                        role: r.role,
                        expressions,
                    }
                })
                .collect(),
        ),
    };
    Location {
        id: l.id.text.clone(),
        rsc: l.rsc.text.clone(),
        rsc_pattern: l.pattern,
        role: l.role,
        target,
        resource_discovery: l.discovery.clone(),
    }
}

fn expression(e: &ExprStmt, id: String) -> Expression {
    match e {
        ExprStmt::Attr {
            attribute,
            op,
            value,
            value_type,
            value_source,
        } => Expression::Attr(AttrExpression {
            id,
            attribute: attribute.clone(),
            op: *op,
            value: value.clone(),
            value_type: *value_type,
            value_source: value_source.clone(),
        }),
        ExprStmt::Date {
            operation,
            start,
            end,
            duration,
            date_spec,
        } => Expression::Date(DateExpression {
            id,
            operation: operation.clone(),
            start: start.clone(),
            end: end.clone(),
            duration: duration.iter().cloned().collect(),
            date_spec: date_spec.iter().cloned().collect(),
        }),
    }
}

struct Builder<'a> {
    stmts: &'a [Stmt],
    defs: &'a HashMap<&'a str, usize>,
    op_ids: &'a HashMap<&'a str, Vec<String>>,
}

impl Builder<'_> {
    fn by_id(&self, id: &str) -> Option<usize> {
        self.defs.get(id).copied()
    }

    fn primitive(&self, p: &PrimitiveStmt) -> Primitive {
        let ids = self.op_ids.get(p.id.text.as_str());
        let ops = p
            .ops
            .iter()
            .enumerate()
            .map(|(i, o)| OpConfig {
                id: ids.and_then(|v| v.get(i)).cloned().unwrap_or_default(),
                name: o.name.clone(),
                interval_ms: o
                    .interval
                    .as_ref()
                    .and_then(|iv| parse_interval_ms(&iv.text))
                    .unwrap_or(0),
                attrs: first_wins(&o.attrs),
            })
            .collect();
        Primitive {
            id: p.id.text.clone(),
            class: p.class.clone(),
            provider: p.provider.clone(),
            agent: p.agent.clone(),
            params: merge(&p.params),
            meta: merge(&p.meta),
            utilization: merge(&p.utilization),
            ops,
        }
    }

    /// The model of a resource definition (children resolved; checked
    /// before, so a missing child is skipped rather than panicking).
    fn resource(&self, i: usize) -> Resource {
        match &self.stmts[i] {
            Stmt::Group(g) => Resource::Group(Group {
                id: g.id.text.clone(),
                meta: merge(&g.meta),
                members: g
                    .members
                    .iter()
                    .filter_map(|m| match self.by_id(&m.text).map(|j| &self.stmts[j]) {
                        Some(Stmt::Primitive(p)) => Some(self.primitive(p)),
                        _ => None,
                    })
                    .collect(),
            }),
            Stmt::Clone(c) => {
                let mut meta = merge(&c.meta);
                if c.ms {
                    meta.insert("promotable".into(), "true".into());
                }
                let promotable = c.ms || meta.get("promotable").is_some_and(|v| is_true(v));
                let child = match self.by_id(&c.child.text) {
                    Some(j) => self.resource(j),
                    None => Resource::Group(Group::default()),
                };
                Resource::Clone(CloneResource {
                    id: c.id.text.clone(),
                    meta,
                    promotable,
                    child: Box::new(child),
                })
            }
            Stmt::Primitive(p) => Resource::Primitive(self.primitive(p)),
            _ => Resource::Group(Group::default()),
        }
    }
}

/// Places a validation error on the statement (and token) it concerns.
pub fn locate(e: &ConfigError, stmts: &[Stmt]) -> CrmError {
    let find =
        |id: &str| -> Option<&Ident> { stmts.iter().filter_map(stmt_id).find(|i| i.text == id) };
    let at = |id: &str, expected: String| -> CrmError {
        match find(id) {
            Some(i) => CrmError::at(i.pos, &i.text, &expected),
            None => CrmError::at(Pos { line: 1, column: 1 }, id, &expected),
        }
    };
    match e {
        ConfigError::DuplicateId { element, id } => {
            let second = stmts
                .iter()
                .filter_map(stmt_id)
                .filter(|i| i.text == *id)
                .nth(1);
            let expected = format!("a unique id ({element} '{id}' is defined twice)");
            match second {
                Some(i) => CrmError::at(i.pos, &i.text, &expected),
                None => at(id, expected),
            }
        }
        ConfigError::UnknownReference {
            element,
            id,
            kind,
            reference,
        } => at(
            id,
            format!("a configured {kind} ({element} '{id}' refers to unknown '{reference}')"),
        ),
        ConfigError::OrderCycle { ids } => {
            let last = ids.last().map(String::as_str).unwrap_or("");
            at(
                last,
                format!(
                    "an order that closes no cycle (ordering cycle {})",
                    ids.join(" -> ")
                ),
            )
        }
        ConfigError::Invalid {
            element,
            id,
            message,
        } => at(id, format!("a valid {element} ({message})")),
        ConfigError::Unsupported { element, id } => at(id, format!("a supported {element}")),
        ConfigError::Xml { message, .. } => at("", message.clone()),
    }
}
