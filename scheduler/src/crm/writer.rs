//! Writer: the model in crm `configure` syntax, as `crm configure show`
//! prints it, such that [`super::read_crm`] gives the same model back.
//!
//! Ids that crm syntax only lets crmsh generate are left out when the reader
//! would generate the same ones, and written out (`op ... id=`, `rule
//! $id=`, `operations $id=`, `node $id=`) when not: the writer runs the
//! reader's own lowering on what it is about to print and repeats until
//! every such id comes back unchanged. Top-level resources come out in the
//! order the reader places them (primitives, groups, promotable clones as
//! `ms` while they lead, clones), so a configuration the reader produced
//! comes back identical.
//!
//! What crm syntax cannot say is normalised and, where it loses something,
//! noted in a comment at the top of the output: ids of rule expressions,
//! resource sets and fencing levels other than crmsh's, nested rules, empty
//! rules, `sequential=true`/`require-all=true` written out (the defaults),
//! `kind`/`score` on resource sets, `require-all` on an order pair, node
//! scores, `value` on `defined`/`not_defined`, ocf agents without provider,
//! the stack-managed properties ([`super::lower::STACK_MANAGED`]), and
//! resources in an order crmsh would not produce.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::ast::*;
use super::lower::{self, STACK_MANAGED};
use super::parser;
use crate::cib::parse_interval_ms;
use crate::model::*;
use crate::score;

/// Op and rule slots whose ids must be written out.
#[derive(Default)]
struct Explicit {
    ops: HashSet<(String, usize)>,
    rules: HashSet<(String, usize)>,
}

/// Prints a configuration in crm syntax.
pub fn write(config: &Config) -> String {
    let mut explicit = Explicit::default();
    let (mut stmts, mut notes) = raise(config, &explicit);
    // Write out every generated id the reader would not generate the same.
    for _ in 0..16 {
        let Ok(back) = lower::lower(&stmts) else {
            break;
        };
        let got_ops = op_ids(&back);
        let got_rules = rule_ids(&back);
        let mut changed = false;
        walk_primitives(&config.resources, &mut |p| {
            for (i, op) in p.ops.iter().enumerate() {
                let got = got_ops.get(&p.id).and_then(|v| v.get(i));
                if got != Some(&op.id) && explicit.ops.insert((p.id.clone(), i)) {
                    changed = true;
                }
            }
        });
        for l in &config.constraints.locations {
            if let LocationTarget::Rules(rules) = &l.target {
                for (i, r) in rules.iter().enumerate() {
                    let got = got_rules.get(&l.id).and_then(|v| v.get(i));
                    if got != Some(&r.id) && explicit.rules.insert((l.id.clone(), i)) {
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
        (stmts, notes) = raise(config, &explicit);
    }
    let mut out = String::new();
    for n in &notes {
        let _ = writeln!(out, "# not expressible in crm syntax: {n}");
    }
    for s in &stmts {
        out.push_str(&print(s));
        out.push('\n');
    }
    out
}

fn walk_primitives<'a>(rs: &'a [Resource], f: &mut dyn FnMut(&'a Primitive)) {
    for r in rs {
        match r {
            Resource::Primitive(p) => f(p),
            Resource::Group(g) => g.members.iter().for_each(&mut *f),
            Resource::Clone(c) => walk_primitives(std::slice::from_ref(&c.child), f),
        }
    }
}

fn op_ids(c: &Config) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    walk_primitives(&c.resources, &mut |p| {
        out.entry(p.id.clone())
            .or_insert_with(|| p.ops.iter().map(|o| o.id.clone()).collect());
    });
    out
}

fn rule_ids(c: &Config) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for l in &c.constraints.locations {
        if let LocationTarget::Rules(rules) = &l.target {
            out.entry(l.id.clone())
                .or_insert_with(|| rules.iter().map(|r| r.id.clone()).collect());
        }
    }
    out
}

// --------------------------------------------------------------------------
// model -> statements

fn set(a: &Attrs) -> Vec<NvSet> {
    if a.is_empty() {
        Vec::new()
    } else {
        vec![NvSet::of(
            a.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        )]
    }
}

/// How an interval is written when the op id does not tell.
fn canonical_interval(ms: u64) -> String {
    if ms == 0 {
        "0".into()
    } else if (ms / 1000) * 1000 == ms {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The interval as written, if `id` is `<prefix>-<name>-<interval>`.
fn interval_in_id(id: &str, prefix: &str, name: &str, ms: u64) -> Option<String> {
    if ms == 0 && id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) == Some(name) {
        // written `interval=""`
        return Some(String::new());
    }
    let rest = id
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_prefix(name)?
        .strip_prefix('-')?;
    (parse_interval_ms(rest) == Some(ms) && !rest.is_empty() && rest.trim() == rest)
        .then(|| rest.to_string())
}

/// The `operations $id=` prefix the op ids were made with, if not the
/// primitive's id.
fn ops_prefix(p: &Primitive) -> Option<String> {
    let mut found: Option<String> = None;
    for o in &p.ops {
        if interval_in_id(&o.id, &p.id, &o.name, o.interval_ms).is_some() {
            continue;
        }
        let Some((head, r)) = o.id.rsplit_once('-') else {
            continue;
        };
        if parse_interval_ms(r) != Some(o.interval_ms) {
            continue;
        }
        let Some(prefix) = head.strip_suffix(&format!("-{}", o.name)) else {
            continue;
        };
        if prefix == p.id {
            continue;
        }
        match &found {
            None => found = Some(prefix.to_string()),
            Some(f) if f == prefix => {}
            Some(_) => return None,
        }
    }
    found.filter(|f| super::parser::valid_id(f))
}

fn primitive(p: &Primitive, explicit: &Explicit, notes: &mut Vec<String>) -> PrimitiveStmt {
    if p.class == "ocf" && p.provider.is_none() {
        notes.push(format!(
            "primitive '{}' is ocf without provider (read back as heartbeat)",
            p.id
        ));
    }
    let ops_id = ops_prefix(p);
    let prefix = ops_id.clone().unwrap_or_else(|| p.id.clone());
    let ops = p
        .ops
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let from_id = interval_in_id(&o.id, &prefix, &o.name, o.interval_ms);
            let write_id = from_id.is_none() || explicit.ops.contains(&(p.id.clone(), i));
            let interval = from_id.unwrap_or_else(|| canonical_interval(o.interval_ms));
            OpStmt {
                name: o.name.clone(),
                id: write_id.then(|| o.id.clone()),
                interval: (interval != "0").then(|| Ident::new(interval)),
                attrs: o
                    .attrs
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "id" | "name" | "interval"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                pos: Pos::default(),
            }
        })
        .collect();
    PrimitiveStmt {
        id: Ident::new(&p.id),
        class: p.class.clone(),
        provider: p.provider.clone(),
        agent: p.agent.clone(),
        params: set(&p.params),
        meta: set(&p.meta),
        utilization: set(&p.utilization),
        ops_id,
        ops,
    }
}

fn resource_set(s: &ResourceSet, notes: &mut Vec<String>, cid: &str) -> SetStmt {
    if s.kind.is_some() || s.score.is_some() {
        notes.push(format!("kind/score on resource set '{}' of '{cid}'", s.id));
    }
    SetStmt {
        resources: s.resources.iter().map(Ident::new).collect(),
        sequential: s.sequential.filter(|b| !b),
        require_all: s.require_all.filter(|b| !b),
        role: s.role,
        action: s.action.clone(),
    }
}

fn expression(e: &Expression, rule: &str, notes: &mut Vec<String>) -> Option<ExprStmt> {
    match e {
        Expression::Attr(a) => Some(ExprStmt::Attr {
            attribute: a.attribute.clone(),
            op: a.op,
            value: a.value.clone(),
            value_type: a.value_type,
            value_source: a.value_source.clone(),
        }),
        Expression::Date(d) => Some(ExprStmt::Date {
            operation: d.operation.clone(),
            start: d.start.clone(),
            end: d.end.clone(),
            duration: d
                .duration
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            date_spec: d
                .date_spec
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        Expression::Rule(r) => {
            notes.push(format!(
                "nested rule '{}' in rule '{rule}' (left out)",
                r.id
            ));
            None
        }
    }
}

/// Statements for a configuration, in the order crmsh would place them.
fn raise(c: &Config, explicit: &Explicit) -> (Vec<Stmt>, Vec<String>) {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for n in &c.nodes {
        if n.score.is_some() {
            notes.push(format!("score of node '{}'", n.name));
        }
        out.push(Stmt::Node(NodeStmt {
            id: (n.id != n.name || parser::strip_ci(&n.name, "$id=").is_some())
                .then(|| n.id.clone()),
            name: Ident::new(&n.name),
            remote: false,
            attributes: set(&n.attributes),
            utilization: set(&n.utilization),
        }));
    }
    walk_primitives(&c.resources, &mut |p| {
        out.push(Stmt::Primitive(primitive(p, explicit, &mut notes)));
    });
    let mut groups = Vec::new();
    for r in &c.resources {
        let g = match r {
            Resource::Group(g) => g,
            Resource::Clone(cl) => match cl.child.as_ref() {
                Resource::Group(g) => g,
                _ => continue,
            },
            Resource::Primitive(_) => continue,
        };
        groups.push(Stmt::Group(GroupStmt {
            id: Ident::new(&g.id),
            members: g.members.iter().map(|m| Ident::new(&m.id)).collect(),
            meta: set(&g.meta),
        }));
    }
    out.extend(groups);
    let mut ms_allowed = true;
    for r in &c.resources {
        let Resource::Clone(cl) = r else { continue };
        let ms = ms_allowed
            && cl.promotable
            && cl.meta.get("promotable").map(String::as_str) == Some("true");
        ms_allowed &= ms;
        let mut meta = cl.meta.clone();
        if ms {
            meta.remove("promotable");
        }
        let child = match cl.child.as_ref() {
            Resource::Primitive(p) => &p.id,
            Resource::Group(g) => &g.id,
            Resource::Clone(inner) => {
                notes.push(format!("clone '{}' of clone '{}'", cl.id, inner.id));
                &inner.id
            }
        };
        out.push(Stmt::Clone(CloneStmt {
            id: Ident::new(&cl.id),
            child: Ident::new(child),
            ms,
            meta: set(&meta),
        }));
    }
    for l in &c.constraints.locations {
        let target = match &l.target {
            LocationTarget::Node { node, score } => LocTarget::Node {
                score: *score,
                node: node.clone(),
            },
            LocationTarget::Rules(rules) => {
                let mut v = Vec::new();
                for (i, r) in rules.iter().enumerate() {
                    let exprs: Vec<ExprStmt> = r
                        .expressions
                        .iter()
                        .filter_map(|e| expression(e, &r.id, &mut notes))
                        .collect();
                    if exprs.is_empty() {
                        notes.push(format!("rule '{}' without expressions (left out)", r.id));
                        continue;
                    }
                    v.push(RuleStmt {
                        id: explicit
                            .rules
                            .contains(&(l.id.clone(), i))
                            .then(|| Ident::new(&r.id)),
                        role: r.role,
                        score: r.score.clone(),
                        bool_op: r.boolean_op,
                        exprs,
                    });
                }
                if v.is_empty() {
                    notes.push(format!("location '{}' without rules (left out)", l.id));
                    continue;
                }
                LocTarget::Rules(v)
            }
        };
        out.push(Stmt::Location(LocationStmt {
            id: Ident::new(&l.id),
            rsc: Ident::new(&l.rsc),
            pattern: l.rsc_pattern,
            role: l.role,
            discovery: l.resource_discovery.clone(),
            target,
        }));
    }
    for co in &c.constraints.colocations {
        let form = match &co.form {
            ColocationForm::Pair {
                rsc,
                with_rsc,
                rsc_role,
                with_rsc_role,
            } => ColForm::Pair {
                rsc: Ident::new(rsc),
                rsc_role: *rsc_role,
                with_rsc: Ident::new(with_rsc),
                with_rsc_role: *with_rsc_role,
            },
            ColocationForm::Sets(sets) => ColForm::Sets(
                sets.iter()
                    .map(|s| resource_set(s, &mut notes, &co.id))
                    .collect(),
            ),
        };
        out.push(Stmt::Colocation(ColocationStmt {
            id: Ident::new(&co.id),
            score: co.score,
            node_attribute: co.node_attribute.clone(),
            influence: co.influence,
            form,
        }));
    }
    for o in &c.constraints.orders {
        let form = match &o.form {
            OrderForm::Pair {
                first,
                then,
                first_action,
                then_action,
                require_all,
            } => {
                if require_all.is_some() {
                    notes.push(format!("require-all of order '{}'", o.id));
                }
                OrdForm::Pair {
                    first: Ident::new(first),
                    first_action: first_action.clone(),
                    then: Ident::new(then),
                    then_action: then_action.clone(),
                }
            }
            OrderForm::Sets(sets) => OrdForm::Sets(
                sets.iter()
                    .map(|s| resource_set(s, &mut notes, &o.id))
                    .collect(),
            ),
        };
        out.push(Stmt::Order(OrderStmt {
            id: Ident::new(&o.id),
            kind: o.kind,
            symmetrical: o.symmetrical,
            form,
        }));
    }
    if !c.fencing_levels.is_empty() {
        out.push(Stmt::Fencing(FencingStmt {
            levels: c
                .fencing_levels
                .iter()
                .map(|l| (Some(l.target.clone()), l.devices.clone()))
                .collect(),
        }));
    }
    for (kind, attrs) in [
        (NvsetKind::Property, &c.properties),
        (NvsetKind::RscDefaults, &c.rsc_defaults),
        (NvsetKind::OpDefaults, &c.op_defaults),
    ] {
        let pairs: Vec<(String, String)> = attrs
            .iter()
            .filter(|(k, _)| kind != NvsetKind::Property || !STACK_MANAGED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !pairs.is_empty() {
            out.push(Stmt::Nvset(NvsetStmt {
                kind,
                set_id: None,
                has_rules: false,
                pairs,
            }));
        }
    }
    (out, notes)
}

// --------------------------------------------------------------------------
// statements -> text

/// A token as the shell-like lexer reads it back: bare when safe, else in
/// double quotes with `\` and `"` escaped.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/@%+,#^~".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn pair(k: &str, v: &str) -> String {
    if k.starts_with(['$', '@']) {
        // crmsh's `$<nvpair-id>:<name>=<value>` carries such names
        return quote(&format!("$nv:{k}={v}"));
    }
    format!("{}={}", quote(k), quote(v))
}

fn pairs(kw: &str, sets: &[NvSet]) -> Vec<String> {
    sets.iter()
        .filter(|s| !s.pairs.is_empty())
        .map(|s| {
            let mut l = kw.to_string();
            for (k, v) in &s.pairs {
                l.push(' ');
                l.push_str(&pair(k, v));
            }
            l
        })
        .collect()
}

/// Head, then each clause on a continuation line.
fn lines(head: String, clauses: Vec<String>) -> String {
    let mut s = head;
    for c in clauses {
        s.push_str(" \\\n\t");
        s.push_str(&c);
    }
    s
}

fn score_tok(s: score::Score) -> String {
    format!("{}:", score::format(s))
}

fn rsc_ref(r: &str, q: Option<&str>) -> String {
    match q {
        Some(q) => format!("{}:{q}", quote(r)),
        None => quote(r),
    }
}

fn rule(r: &RuleStmt) -> String {
    let mut s = String::from("rule");
    if let Some(id) = &r.id {
        let _ = write!(s, " $id={}", quote(&id.text));
    }
    if let Some(role) = r.role {
        let _ = write!(s, " $role={}", role.as_str());
    }
    match &r.score {
        RuleScore::Value(v) => {
            let _ = write!(s, " {}", score_tok(*v));
        }
        RuleScore::Attribute(a) => {
            let _ = write!(s, " {}:", quote(a));
        }
    }
    let op = if r.bool_op == BoolOp::Or { "or" } else { "and" };
    for (i, e) in r.exprs.iter().enumerate() {
        if i > 0 {
            let _ = write!(s, " {op}");
        }
        s.push(' ');
        s.push_str(&expr(e));
    }
    s
}

fn expr(e: &ExprStmt) -> String {
    match e {
        ExprStmt::Attr {
            attribute,
            op,
            value,
            value_type,
            value_source,
        } => match op {
            CmpOp::Defined | CmpOp::NotDefined => format!("{} {}", op.as_str(), quote(attribute)),
            _ => {
                let o = match value_type {
                    Some(t) => format!("{}:{}", t.as_str(), op.as_str()),
                    None => op.as_str().to_string(),
                };
                let v = value.clone().unwrap_or_default();
                let v = match value_source {
                    Some(src) => format!("{src}{{{v}}}"),
                    None => v,
                };
                format!("{} {o} {}", quote(attribute), quote(&v))
            }
        },
        ExprStmt::Date {
            operation,
            start,
            end,
            duration,
            date_spec,
        } => {
            let mut s = format!("date {}", quote(operation));
            match operation.as_str() {
                "gt" => {
                    let _ = write!(s, " {}", quote(start.as_deref().unwrap_or("")));
                }
                "lt" => {
                    let _ = write!(s, " {}", quote(end.as_deref().unwrap_or("")));
                }
                _ => {
                    if let Some(v) = start {
                        let _ = write!(s, " {}", pair("start", v));
                    }
                    if let Some(v) = end {
                        let _ = write!(s, " {}", pair("end", v));
                    }
                    for (k, v) in duration.iter().chain(date_spec) {
                        let _ = write!(s, " {}", pair(k, v));
                    }
                }
            }
            s
        }
    }
}

/// Resource sets as crmsh reads them: `( )` for a non-sequential set, `[ ]`
/// with require-all=false too; crmsh keeps `sequential=`/`require-all=`
/// settings until the next bracket, so they are written where a set needs
/// them. A two-token list would read as a pair, so it gets a (default)
/// `sequential=true`.
fn sets(sets: &[SetStmt]) -> Vec<String> {
    let mut t = Vec::new();
    // the reader's state: (sequential, require_all)
    let (mut seq, mut all) = (true, true);
    for s in sets {
        let q = s
            .role
            .map(|r| r.as_str().to_string())
            .or_else(|| s.action.clone());
        let want_all = s.require_all != Some(false);
        let bracket = s.sequential == Some(false);
        if bracket {
            if want_all {
                t.push("(".to_string());
            } else {
                t.push("[".to_string());
                all = false;
            }
            seq = false;
        }
        for r in &s.resources {
            t.push(rsc_ref(&r.text, q.as_deref()));
        }
        if !bracket && !seq {
            t.push("sequential=true".into());
            seq = true;
        }
        if all != want_all {
            t.push(format!("require-all={want_all}"));
            all = want_all;
        }
        if bracket {
            t.push(if all { ")" } else { "]" }.to_string());
            (seq, all) = (true, true);
        }
    }
    if t.len() == 2 {
        t.push("sequential=true".into());
    }
    t
}

fn print(s: &Stmt) -> String {
    match s {
        Stmt::Node(n) => {
            let mut head = "node ".to_string();
            if let Some(id) = &n.id {
                let _ = write!(head, "$id={} ", quote(id));
            }
            head.push_str(&quote(&n.name.text));
            let mut c = pairs("attributes", &n.attributes);
            c.extend(pairs("utilization", &n.utilization));
            lines(head, c)
        }
        Stmt::Primitive(p) => {
            let agent = match &p.provider {
                Some(pr) => format!("{}:{pr}:{}", p.class, p.agent),
                None => format!("{}:{}", p.class, p.agent),
            };
            let head = format!("primitive {} {}", quote(&p.id.text), quote(&agent));
            let mut c = pairs("params", &p.params);
            c.extend(pairs("meta", &p.meta));
            c.extend(pairs("utilization", &p.utilization));
            if let Some(o) = &p.ops_id {
                c.push(format!("operations $id={}", quote(o)));
            }
            for o in &p.ops {
                let mut l = format!("op {}", quote(&o.name));
                if let Some(i) = &o.interval {
                    let _ = write!(l, " {}", pair("interval", &i.text));
                }
                if let Some(id) = &o.id {
                    let _ = write!(l, " {}", pair("id", id));
                }
                for (k, v) in &o.attrs {
                    let _ = write!(l, " {}", pair(k, v));
                }
                c.push(l);
            }
            lines(head, c)
        }
        Stmt::Group(g) => {
            let mut head = format!("group {}", quote(&g.id.text));
            for m in &g.members {
                head.push(' ');
                head.push_str(&quote(&m.text));
            }
            lines(head, pairs("meta", &g.meta))
        }
        Stmt::Clone(c) => {
            let kw = if c.ms { "ms" } else { "clone" };
            let head = format!("{kw} {} {}", quote(&c.id.text), quote(&c.child.text));
            lines(head, pairs("meta", &c.meta))
        }
        Stmt::Location(l) => {
            let rsc = if l.pattern {
                quote(&format!("/{}/", l.rsc.text))
            } else {
                quote(&l.rsc.text)
            };
            let mut head = format!("location {} {rsc}", quote(&l.id.text));
            if let Some(r) = l.role {
                let _ = write!(head, " role={}", r.as_str());
            }
            if let Some(d) = &l.discovery {
                let _ = write!(head, " {}", pair("resource-discovery", d));
            }
            match &l.target {
                LocTarget::Node { score, node } => {
                    let _ = write!(head, " {} {}", score_tok(*score), quote(node));
                    head
                }
                LocTarget::Rules(rules) => lines(head, rules.iter().map(rule).collect()),
            }
        }
        Stmt::Colocation(c) => {
            let mut s = format!("colocation {} {}", quote(&c.id.text), score_tok(c.score));
            let toks = match &c.form {
                ColForm::Pair {
                    rsc,
                    rsc_role,
                    with_rsc,
                    with_rsc_role,
                } => vec![
                    rsc_ref(&rsc.text, rsc_role.map(Role::as_str)),
                    rsc_ref(&with_rsc.text, with_rsc_role.map(Role::as_str)),
                ],
                ColForm::Sets(ss) => sets(ss),
            };
            for t in toks {
                s.push(' ');
                s.push_str(&t);
            }
            if let Some(b) = c.influence {
                let _ = write!(s, " influence={b}");
            }
            if let Some(a) = &c.node_attribute {
                let _ = write!(s, " {}", pair("node-attribute", a));
            }
            s
        }
        Stmt::Order(o) => {
            let mut s = format!("order {}", quote(&o.id.text));
            if let Some(k) = o.kind {
                let _ = write!(s, " {}:", k.as_str());
            }
            let toks = match &o.form {
                OrdForm::Pair {
                    first,
                    first_action,
                    then,
                    then_action,
                } => vec![
                    rsc_ref(&first.text, first_action.as_deref()),
                    rsc_ref(&then.text, then_action.as_deref()),
                ],
                OrdForm::Sets(ss) => sets(ss),
            };
            for t in toks {
                s.push(' ');
                s.push_str(&t);
            }
            if let Some(b) = o.symmetrical {
                let _ = write!(s, " symmetrical={b}");
            }
            s
        }
        Stmt::Fencing(f) => {
            let mut clauses: Vec<String> = Vec::new();
            let mut current: Option<&str> = None;
            for (target, devices) in &f.levels {
                let t = target.as_deref().unwrap_or("");
                let mut d = devices.join(",");
                // not to be read as a target
                if d.ends_with(':') {
                    d.push(',');
                }
                if parser::strip_ci(&d, "pattern:").is_some()
                    || parser::strip_ci(&d, "attr:").is_some()
                {
                    d.insert(0, ',');
                }
                let d = quote(&d);
                match (current, clauses.last_mut()) {
                    (Some(c), Some(last)) if c == t => {
                        last.push(' ');
                        last.push_str(&d);
                    }
                    _ => {
                        let target = if t.contains(':')
                            || parser::strip_ci(t, "pattern:").is_some()
                            || parser::strip_ci(t, "attr:").is_some()
                        {
                            quote(&format!("pattern:{t}"))
                        } else {
                            format!("{}:", quote(t))
                        };
                        clauses.push(format!("{target} {d}"));
                    }
                }
                current = Some(t);
            }
            lines("fencing_topology".into(), clauses)
        }
        Stmt::Nvset(n) => lines(
            n.kind.keyword().to_string(),
            n.pairs.iter().map(|(k, v)| pair(k, v)).collect(),
        ),
    }
}
