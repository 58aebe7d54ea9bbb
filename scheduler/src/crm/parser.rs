//! Parser: tokens of each logical line into one [`Stmt`], following crmsh's
//! grammar (`crmsh/parse.py`): keywords are case-insensitive, an attribute
//! list right after a primitive's agent is `params` (after a node's name,
//! `attributes`), and so on.

use super::ast::*;
use super::lexer::{self, Token};
use super::CrmError;
use crate::cib::parse_interval_ms;
use crate::model::{BoolOp, CmpOp, OrderKind, Role, RuleScore, ValueType};
use crate::rules::parse_iso8601;
use crate::score::{self, Score, INFINITY};

/// Words that end an attribute list.
const TERMINATORS: [&str; 9] = [
    "params",
    "meta",
    "utilization",
    "operations",
    "op",
    "op_params",
    "op_meta",
    "rule",
    "attributes",
];

const COMMANDS: &str = "a configure command (node, primitive, group, clone, ms, location, \
     colocation, order, property, rsc_defaults, op_defaults, fencing_topology)";

const ROLES: &str = "a role (Started, Stopped, Promoted, Unpromoted, Master, Slave)";
const ACTIONS: &str = "an action (start, stop, promote, demote)";

/// `date` keys besides `start`/`end` (crmsh's names, Pacemaker's too).
const DATE_KEYS: [&str; 13] = [
    "hours",
    "monthdays",
    "weekdays",
    "yearsdays",
    "yeardays",
    "months",
    "weeks",
    "years",
    "weekyears",
    "moon",
    "minutes",
    "seconds",
    "days",
];

/// Parses a whole text into statements.
pub fn parse(text: &str) -> Result<Vec<Stmt>, CrmError> {
    let mut out = Vec::new();
    for line in lexer::lines(text)? {
        let mut p = P {
            toks: &line.tokens,
            i: 0,
            end: line.end,
        };
        if let Some(s) = p.statement()? {
            out.push(s);
        }
    }
    Ok(out)
}

/// Case-insensitive ASCII prefix strip.
pub(crate) fn strip_ci<'b>(s: &'b str, prefix: &str) -> Option<&'b str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// An XML id as Pacemaker and crmsh accept it: `[A-Za-z_][\w.-]*`.
pub(crate) fn valid_id(s: &str) -> bool {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    cs.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// crmsh's `_SCORE_RE`: `([^:]+):$`.
pub(crate) fn is_score_token(s: &str) -> bool {
    s.len() > 1 && s.ends_with(':') && !s[..s.len() - 1].contains(':')
}

/// crmsh's numeric score: `[+-]?(inf(inity)?|INF(INITY)?|[0-9]+)`.
pub(crate) fn numeric_score(s: &str) -> Option<Score> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = matches!(body, "inf" | "infinity" | "INF" | "INFINITY")
        || (!body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        score::parse(s)
    } else {
        None
    }
}

/// A score that must be a number (`advisory`/`mandatory` too).
fn plain_score(s: &str) -> Option<Score> {
    match s.to_ascii_lowercase().as_str() {
        "advisory" => Some(0),
        "mandatory" => Some(INFINITY),
        _ => numeric_score(s),
    }
}

/// crmsh's booleans.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "n" => Some(false),
        _ => None,
    }
}

fn parse_action(s: &str) -> Option<String> {
    let l = s.to_ascii_lowercase();
    matches!(l.as_str(), "start" | "stop" | "promote" | "demote").then_some(l)
}

/// crmsh's `match_identifier`: `[a-z0-9_#$-][^=]*`.
fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | '$' | '-'))
        && !s.contains('=')
}

/// An operation name: it becomes part of the op's id.
fn is_op_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Qual {
    Role,
    Action,
}

struct P<'a> {
    toks: &'a [Token],
    i: usize,
    end: Pos,
}

type R<T> = Result<T, CrmError>;

impl<'a> P<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    fn peek_lower(&self) -> Option<String> {
        self.peek().map(|t| t.text.to_lowercase())
    }

    fn peek_is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.text.eq_ignore_ascii_case(kw))
    }

    fn bump(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// An error at the current token (or the end of the line).
    fn err(&self, expected: &str) -> CrmError {
        match self.peek() {
            Some(t) => CrmError::at(t.pos, &t.text, expected),
            None => CrmError::at(self.end, "", expected),
        }
    }

    fn expect(&mut self, expected: &str) -> R<&'a Token> {
        match self.bump() {
            Some(t) => Ok(t),
            None => Err(CrmError::at(self.end, "", expected)),
        }
    }

    fn done(&self, expected: &str) -> R<()> {
        if self.peek().is_some() {
            Err(self.err(expected))
        } else {
            Ok(())
        }
    }

    /// An object id (XML id syntax).
    fn id(&mut self, what: &str) -> R<Ident> {
        let t = self.expect(what)?;
        if !valid_id(&t.text) {
            return Err(CrmError::at(t.pos, &t.text, what));
        }
        Ok(ident(t))
    }

    fn statement(&mut self) -> R<Option<Stmt>> {
        let Some(first) = self.bump() else {
            return Ok(None);
        };
        let kw = first.text.to_lowercase();
        let s = match kw.as_str() {
            "node" => Stmt::Node(self.node()?),
            "primitive" => Stmt::Primitive(self.primitive()?),
            "group" => Stmt::Group(self.group()?),
            "clone" => Stmt::Clone(self.clone_stmt(false)?),
            "ms" | "master" => Stmt::Clone(self.clone_stmt(true)?),
            "location" => Stmt::Location(self.location()?),
            "colocation" | "collocation" => Stmt::Colocation(self.colocation()?),
            "order" => Stmt::Order(self.order()?),
            "property" => Stmt::Nvset(self.nvset(NvsetKind::Property)?),
            "rsc_defaults" => Stmt::Nvset(self.nvset(NvsetKind::RscDefaults)?),
            "op_defaults" => Stmt::Nvset(self.nvset(NvsetKind::OpDefaults)?),
            "fencing_topology" | "fencing-topology" => Stmt::Fencing(self.fencing()?),
            // Alerts do not take part in placement; the CIB reader skips them too.
            "alert" => return Ok(None),
            "rsc_template" | "bundle" | "rsc_ticket" | "tag" | "user" | "role" | "acl_target"
            | "acl_group" | "xml" => {
                return Err(CrmError::at(
                    first.pos,
                    &first.text,
                    &format!("a supported command ('{kw}' is not supported yet)"),
                ))
            }
            _ => return Err(CrmError::at(first.pos, &first.text, COMMANDS)),
        };
        Ok(Some(s))
    }

    // ----------------------------------------------------------------------
    // attribute lists

    /// `name=value` pairs (and bare names, value ""), up to a keyword.
    fn nvpairs(&mut self) -> R<Vec<(String, String, Pos)>> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            let text = t.text.as_str();
            if TERMINATORS.iter().any(|k| text.eq_ignore_ascii_case(k)) {
                break;
            }
            if text.starts_with('@') {
                return Err(self.err("name=value (@ references are not supported)"));
            }
            if let Some(rest) = text.strip_prefix('$') {
                // $<nvpair-id>:<name>=<value>
                let pair = rest.split_once('=').and_then(|(head, v)| {
                    head.split_once(':')
                        .filter(|(id, n)| !id.is_empty() && !n.is_empty())
                        .map(|(_, n)| (n.to_string(), v.to_string()))
                });
                match pair {
                    Some((n, v)) => out.push((n, v, t.pos)),
                    None => return Err(self.err("name=value")),
                }
            } else if let Some((n, v)) = text.split_once('=') {
                if n.is_empty() {
                    break;
                }
                out.push((n.to_string(), v.to_string(), t.pos));
            } else if !text.is_empty() && !text.contains(':') {
                out.push((text.to_string(), String::new(), t.pos));
            } else {
                break;
            }
            self.i += 1;
        }
        Ok(out)
    }

    /// `[$id=<id>] [<score>:] [rule ...] <name>=<value> ...`; `None` when
    /// `allow_empty` is false and nothing matched.
    fn attr_list(&mut self, allow_empty: bool) -> R<Option<NvSet>> {
        let start = self.i;
        if let Some(t) = self.peek() {
            if strip_ci(&t.text, "$id-ref=").is_some() {
                return Err(self.err("$id=<id> or name=value ($id-ref is not supported)"));
            }
            if strip_ci(&t.text, "$id=").is_some() {
                self.i += 1;
            }
        }
        let mut score = 0;
        if let Some(t) = self.peek() {
            if is_score_token(&t.text) && !t.text.contains('=') {
                score = plain_score(&t.text[..t.text.len() - 1])
                    .ok_or_else(|| self.err("a score (a number, INFINITY or -INFINITY)"))?;
                self.i += 1;
            }
        }
        let has_rules = !self.rules()?.is_empty();
        let pairs = self.nvpairs()?;
        if !allow_empty && self.i == start {
            return Ok(None);
        }
        Ok(Some(NvSet {
            score,
            has_rules,
            pairs: pairs.into_iter().map(|(n, v, _)| (n, v)).collect(),
        }))
    }

    fn description(&mut self) {
        if let Some(t) = self.peek() {
            if strip_ci(&t.text, "description=").is_some_and(|v| !v.is_empty()) {
                self.i += 1;
            }
        }
    }

    /// crmsh's `match_arguments`: keyword lists in any order, the first list
    /// possibly without its keyword (`implicit`). Returns (keyword, list).
    fn arguments(
        &mut self,
        names: &[&str],
        implicit: &str,
        prim: Option<&mut PrimitiveStmt>,
    ) -> R<Vec<(String, NvSet)>> {
        let mut out = Vec::new();
        let mut prim = prim;
        let mut initial = true;
        while let Some(kw) = self.peek_lower() {
            if names.contains(&kw.as_str()) {
                initial = false;
                if kw == "op" || kw == "operations" {
                    let Some(p) = prim.as_deref_mut() else {
                        break;
                    };
                    self.operations(p)?;
                    continue;
                }
                self.i += 1;
                if let Some(l) = self.attr_list(true)? {
                    out.push((kw, l));
                }
            } else if initial {
                initial = false;
                if let Some(l) = self.attr_list(false)? {
                    out.push((implicit.to_string(), l));
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    // ----------------------------------------------------------------------
    // nodes and resources

    fn node(&mut self) -> R<NodeStmt> {
        let mut id = None;
        if let Some(t) = self.peek() {
            if let Some(v) = strip_ci(&t.text, "$id=") {
                if v.is_empty() {
                    return Err(self.err("$id=<node id>"));
                }
                id = Some(v.to_string());
                self.i += 1;
            } else if let Some(v) = t.text.strip_suffix(':') {
                if !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    id = Some(v.to_string());
                    self.i += 1;
                }
            }
        }
        let what = "a node name[:normal|member|ping|remote]";
        let t = self.expect(what)?;
        let (name, ty) = match t.text.split_once(':') {
            None => (t.text.as_str(), None),
            Some((n, ty)) => (n, Some(ty.to_ascii_lowercase())),
        };
        let ty_ok = match ty.as_deref() {
            None => true,
            Some(ty) => matches!(ty, "normal" | "member" | "ping" | "remote"),
        };
        if name.is_empty() || !ty_ok {
            return Err(CrmError::at(t.pos, &t.text, what));
        }
        let remote = ty.as_deref() == Some("remote");
        let name = Ident {
            text: name.to_string(),
            pos: t.pos,
        };
        self.description();
        let lists = self.arguments(&["attributes", "utilization"], "attributes", None)?;
        self.done("attributes, utilization or end of line")?;
        let mut n = NodeStmt {
            id,
            name,
            remote,
            attributes: Vec::new(),
            utilization: Vec::new(),
        };
        for (kw, l) in lists {
            if kw == "utilization" {
                n.utilization.push(l);
            } else {
                n.attributes.push(l);
            }
        }
        Ok(n)
    }

    fn primitive(&mut self) -> R<PrimitiveStmt> {
        let id = self.id("a resource id")?;
        let what = "a resource agent ([class:[provider:]]type)";
        let t = self.expect(what)?;
        if t.text.starts_with('@') {
            return Err(CrmError::at(
                t.pos,
                &t.text,
                "a resource agent (templates are not supported yet)",
            ));
        }
        let parts: Vec<&str> = t.text.split(':').collect();
        let (class, provider, agent) = match parts.as_slice() {
            [ty] if ty.starts_with("fence_") => ("stonith", None, *ty),
            [ty] => ("ocf", Some("heartbeat"), *ty),
            [c, ty] => (*c, (*c == "ocf").then_some("heartbeat"), *ty),
            [c, p, ty] => (*c, (!p.is_empty() || *c == "ocf").then_some(*p), *ty),
            _ => return Err(CrmError::at(t.pos, &t.text, what)),
        };
        if class.is_empty() || agent.is_empty() || provider == Some("") {
            return Err(CrmError::at(t.pos, &t.text, what));
        }
        let mut p = PrimitiveStmt {
            id,
            class: class.to_string(),
            provider: provider.map(str::to_string),
            agent: agent.to_string(),
            params: Vec::new(),
            meta: Vec::new(),
            utilization: Vec::new(),
            ops_id: None,
            ops: Vec::new(),
        };
        self.description();
        let lists = self.arguments(
            &["params", "meta", "utilization", "operations", "op"],
            "params",
            Some(&mut p),
        )?;
        self.done("params, meta, utilization, op or end of line")?;
        for (kw, l) in lists {
            match kw.as_str() {
                "meta" => p.meta.push(l),
                "utilization" => p.utilization.push(l),
                _ => p.params.push(l),
            }
        }
        Ok(p)
    }

    /// `operations $id=<id>` and/or a run of `op ...`.
    fn operations(&mut self, p: &mut PrimitiveStmt) -> R<()> {
        if self.peek_is("operations") {
            self.i += 1;
            let t = self.expect("$id=<id>")?;
            match strip_ci(&t.text, "$id=") {
                Some(v) if valid_id(v) => p.ops_id = Some(v.to_string()),
                _ => {
                    return Err(CrmError::at(
                        t.pos,
                        &t.text,
                        "$id=<id> ($id-ref is not supported)",
                    ))
                }
            }
        }
        while self.peek_is("op") {
            let op = self.op()?;
            p.ops.push(op);
        }
        Ok(())
    }

    fn op(&mut self) -> R<OpStmt> {
        let kw = self.expect("op")?;
        let what = "an operation name (monitor, start, stop...)";
        let t = self.expect(what)?;
        if !is_op_name(&t.text) {
            return Err(CrmError::at(t.pos, &t.text, what));
        }
        let mut op = OpStmt {
            name: t.text.clone(),
            id: None,
            interval: None,
            attrs: Vec::new(),
            pos: kw.pos,
        };
        for (n, v, pos) in self.nvpairs()? {
            match n.as_str() {
                "id" => {
                    if !valid_id(&v) {
                        return Err(CrmError::at(pos, &format!("{n}={v}"), "id=<a valid id>"));
                    }
                    op.id = Some(v);
                }
                "name" => {
                    if !is_op_name(&v) {
                        return Err(CrmError::at(pos, &format!("{n}={v}"), what));
                    }
                    op.name = v;
                }
                "interval" => {
                    if parse_interval_ms(&v).is_none() || v.contains(char::is_whitespace) {
                        return Err(CrmError::at(
                            pos,
                            &format!("{n}={v}"),
                            "interval=<an interval: 10, 10s, 5min, 500ms, PT1M>",
                        ));
                    }
                    op.interval = Some(Ident { text: v, pos });
                }
                _ => op.attrs.push((n, v)),
            }
        }
        while let Some(kw) = self.peek_lower() {
            if kw != "op_params" && kw != "op_meta" {
                break;
            }
            self.i += 1;
            if let Some(l) = self.attr_list(true)? {
                if !l.has_rules {
                    // id, name and interval are the op's own fields
                    op.attrs.extend(
                        l.pairs
                            .into_iter()
                            .filter(|(k, _)| !matches!(k.as_str(), "id" | "name" | "interval")),
                    );
                }
            }
        }
        Ok(op)
    }

    fn group(&mut self) -> R<GroupStmt> {
        let id = self.id("a group id")?;
        let mut members: Vec<Ident> = Vec::new();
        while let Some(t) = self.peek() {
            let l = t.text.to_lowercase();
            if t.text.contains('=') || l == "params" || l == "meta" {
                break;
            }
            if members.iter().any(|m| m.text == t.text) {
                return Err(self.err(&format!("a resource not yet listed in group '{}'", id.text)));
            }
            members.push(ident(t));
            self.i += 1;
        }
        if members.is_empty() {
            return Err(self.err("a group member (a primitive id)"));
        }
        self.description();
        let lists = self.arguments(&["params", "meta"], "params", None)?;
        self.done("params, meta or end of line")?;
        Ok(GroupStmt {
            id,
            members,
            meta: meta_only(lists),
        })
    }

    fn clone_stmt(&mut self, ms: bool) -> R<CloneStmt> {
        let id = self.id("a clone id")?;
        let child = ident(self.expect("the resource to clone (a primitive or group id)")?);
        self.description();
        let lists = self.arguments(&["params", "meta"], "params", None)?;
        self.done("params, meta or end of line")?;
        Ok(CloneStmt {
            id,
            child,
            ms,
            meta: meta_only(lists),
        })
    }

    // ----------------------------------------------------------------------
    // rules

    fn rules(&mut self) -> R<Vec<RuleStmt>> {
        let mut out = Vec::new();
        while self.peek_is("rule") {
            self.i += 1;
            out.push(self.rule()?);
        }
        Ok(out)
    }

    fn rule(&mut self) -> R<RuleStmt> {
        let mut id = None;
        if let Some(t) = self.peek() {
            if strip_ci(&t.text, "$id-ref=").is_some() {
                return Err(self.err("$id=<id> or a score ($id-ref is not supported)"));
            }
            if let Some(v) = strip_ci(&t.text, "$id=") {
                if !valid_id(v) {
                    return Err(self.err("$id=<a valid id>"));
                }
                id = Some(Ident {
                    text: v.to_string(),
                    pos: t.pos,
                });
                self.i += 1;
            }
        }
        let mut role = None;
        if let Some(t) = self.peek() {
            if let Some(v) = strip_ci(&t.text, "$role=").or_else(|| strip_ci(&t.text, "role=")) {
                role = Some(Role::parse(v).ok_or_else(|| self.err(ROLES))?);
                self.i += 1;
            }
        }
        let mut score = RuleScore::Value(INFINITY);
        if let Some(t) = self.peek() {
            if is_score_token(&t.text) {
                let s = &t.text[..t.text.len() - 1];
                score = match plain_score(s) {
                    Some(v) => RuleScore::Value(v),
                    None if !s.contains('=') => RuleScore::Attribute(s.to_string()),
                    None => return Err(self.err("a score or a node attribute name, then ':'")),
                };
                self.i += 1;
            }
        }
        let mut exprs = vec![self.simple_exp()?];
        let mut bool_op: Option<String> = None;
        while let Some(l) = self.peek_lower() {
            if l != "and" && l != "or" {
                break;
            }
            if let Some(prev) = &bool_op {
                if *prev != l {
                    return Err(self.err(&format!("'{prev}' (and/or cannot be mixed in one rule)")));
                }
            }
            bool_op = Some(l);
            self.i += 1;
            exprs.push(self.simple_exp()?);
        }
        Ok(RuleStmt {
            id,
            role,
            score,
            bool_op: if bool_op.as_deref() == Some("or") {
                BoolOp::Or
            } else {
                BoolOp::And
            },
            exprs,
        })
    }

    fn simple_exp(&mut self) -> R<ExprStmt> {
        let what = "an expression (<attribute> <op> <value>, defined <attribute>, \
                    not_defined <attribute> or date ...)";
        let Some(l) = self.peek_lower() else {
            return Err(self.err(what));
        };
        if l == "date" {
            self.i += 1;
            return self.date();
        }
        if l == "defined" || l == "not_defined" {
            self.i += 1;
            let a = self.expect("a node attribute name")?;
            if !is_identifier(&a.text) {
                return Err(CrmError::at(a.pos, &a.text, "a node attribute name"));
            }
            return Ok(ExprStmt::Attr {
                attribute: a.text.clone(),
                op: if l == "defined" {
                    CmpOp::Defined
                } else {
                    CmpOp::NotDefined
                },
                value: None,
                value_type: None,
                value_source: None,
            });
        }
        let a = self.expect(what)?;
        if !is_identifier(&a.text) {
            return Err(CrmError::at(a.pos, &a.text, what));
        }
        let what_op = "a comparison ([string:|integer:|number:|version:]lt, gt, lte, gte, eq, ne)";
        let o = self.expect(what_op)?;
        let lo = o.text.to_ascii_lowercase();
        let (ty, op) = match lo.split_once(':') {
            Some((ty, op)) => (Some(ty), op),
            None => (None, lo.as_str()),
        };
        let value_type = match ty {
            Some(ty) => {
                Some(ValueType::parse(ty).ok_or_else(|| CrmError::at(o.pos, &o.text, what_op))?)
            }
            None => None,
        };
        let op = match CmpOp::parse(op) {
            Some(op) if !matches!(op, CmpOp::Defined | CmpOp::NotDefined) => op,
            _ => return Err(CrmError::at(o.pos, &o.text, what_op)),
        };
        let v = self.expect("a value to compare with")?;
        let (value, value_source) = match value_source(&v.text) {
            Some((src, val)) => (val.to_string(), Some(src.to_string())),
            None => (v.text.clone(), None),
        };
        Ok(ExprStmt::Attr {
            attribute: a.text.clone(),
            op,
            value: Some(value),
            value_type,
            value_source,
        })
    }

    fn date(&mut self) -> R<ExprStmt> {
        let what = "a date operation (lt, gt, in_range, date_spec)";
        let t = self.expect(what)?;
        let iso = "an ISO 8601 date";
        let check = |t: &Token, v: &str| -> R<String> {
            if parse_iso8601(v).is_none() {
                return Err(CrmError::at(t.pos, &t.text, iso));
            }
            Ok(v.to_string())
        };
        let operation;
        let (mut start, mut end) = (None, None);
        let (mut duration, mut date_spec) = (Vec::new(), Vec::new());
        match t.text.to_ascii_lowercase().as_str() {
            op @ ("lt" | "gt") => {
                let v = self.expect(iso)?;
                let d = check(v, &v.text)?;
                operation = op.to_string();
                if op == "lt" {
                    end = Some(d);
                } else {
                    start = Some(d);
                }
            }
            "in" | "in_range" => {
                operation = "in_range".to_string();
                while let Some(t) = self.peek() {
                    let Some((k, v)) = t.text.split_once('=') else {
                        break;
                    };
                    if v.is_empty() {
                        break;
                    }
                    match k {
                        "start" => start = Some(check(t, v)?),
                        "end" => end = Some(check(t, v)?),
                        k if DATE_KEYS.contains(&k) => duration.push((k.into(), v.into())),
                        _ => break,
                    }
                    self.i += 1;
                }
                if start.is_none() && end.is_none() {
                    return Err(self.err("start=<date> and end=<date> or a duration"));
                }
            }
            "spec" | "date_spec" => {
                operation = "date_spec".to_string();
                while let Some(t) = self.peek() {
                    match t.text.split_once('=') {
                        Some((k, v)) if !v.is_empty() && DATE_KEYS.contains(&k) => {
                            date_spec.push((k.into(), v.into()))
                        }
                        _ => break,
                    }
                    self.i += 1;
                }
                if date_spec.is_empty() {
                    return Err(self.err("a date spec (hours=9-16, weekdays=1-5...)"));
                }
            }
            _ => return Err(CrmError::at(t.pos, &t.text, what)),
        }
        Ok(ExprStmt::Date {
            operation,
            start,
            end,
            duration,
            date_spec,
        })
    }

    // ----------------------------------------------------------------------
    // constraints

    fn location(&mut self) -> R<LocationStmt> {
        let id = self.id("a constraint id")?;
        let what = "a resource id or /pattern/";
        let t = self.expect(what)?;
        let (rsc, pattern) =
            if t.text.chars().count() >= 3 && t.text.starts_with('/') && t.text.ends_with('/') {
                (
                    Ident {
                        text: t.text[1..t.text.len() - 1].to_string(),
                        pos: t.pos,
                    },
                    true,
                )
            } else if t.text.starts_with('{') {
                return Err(CrmError::at(
                    t.pos,
                    &t.text,
                    "a resource id (resource sets in locations are not supported yet)",
                ));
            } else {
                (ident(t), false)
            };
        let mut l = LocationStmt {
            id,
            rsc,
            pattern,
            role: None,
            discovery: None,
            target: LocTarget::Rules(Vec::new()),
        };
        let attrs = "role=<role>, resource-discovery=<always|never|exclusive>, \
                     <score>: <node> or rule";
        while let Some(t) = self.peek() {
            let Some((k, v)) = t.text.split_once('=') else {
                break;
            };
            let k = k.strip_prefix('$').unwrap_or(k);
            match k.to_ascii_lowercase().as_str() {
                "role" => l.role = Some(Role::parse(v).ok_or_else(|| self.err(ROLES))?),
                "resource-discovery" if !v.is_empty() => l.discovery = Some(v.to_string()),
                _ => return Err(self.err(attrs)),
            }
            self.i += 1;
        }
        if let Some(t) = self.peek().filter(|t| is_score_token(&t.text)) {
            let score = plain_score(&t.text[..t.text.len() - 1])
                .ok_or_else(|| self.err("a score (a number, INFINITY or -INFINITY)"))?;
            self.i += 1;
            let n = self.expect("a node name")?;
            if !is_identifier(&n.text) {
                return Err(CrmError::at(n.pos, &n.text, "a node name"));
            }
            l.target = LocTarget::Node {
                score,
                node: n.text.clone(),
            };
            if let Some(t) = self.peek() {
                if let Some(v) = strip_ci(&t.text, "role=").or_else(|| strip_ci(&t.text, "$role="))
                {
                    if l.role.is_none() {
                        l.role = Some(Role::parse(v).ok_or_else(|| self.err(ROLES))?);
                        self.i += 1;
                    }
                }
            }
            self.done("end of line")?;
        } else {
            let rules = self.rules()?;
            if rules.is_empty() {
                return Err(self.err(attrs));
            }
            self.done("rule or end of line")?;
            l.target = LocTarget::Rules(rules);
        }
        Ok(l)
    }

    fn colocation(&mut self) -> R<ColocationStmt> {
        let id = self.id("a constraint id")?;
        let what = "<score>: (e.g. inf:)";
        let t = self.expect(what)?;
        let score = if is_score_token(&t.text) {
            plain_score(&t.text[..t.text.len() - 1])
        } else {
            None
        };
        let score = score.ok_or_else(|| CrmError::at(t.pos, &t.text, what))?;
        let mut rest = &self.toks[self.i..];
        let mut node_attribute = None;
        let mut influence = None;
        while let Some(last) = rest.last() {
            if let Some(v) = strip_ci(&last.text, "node-attribute=").filter(|v| !v.is_empty()) {
                node_attribute = Some(v.to_lowercase());
            } else if let Some(v) = strip_ci(&last.text, "influence=") {
                influence =
                    Some(parse_bool(v).ok_or_else(|| {
                        CrmError::at(last.pos, &last.text, "influence=<true|false>")
                    })?);
            } else {
                break;
            }
            rest = &rest[..rest.len() - 1];
        }
        self.i = self.toks.len();
        let form = if rest.len() == 2 {
            let (rsc, rsc_role) = split_ref(&rest[0], Qual::Role)?;
            let (with_rsc, with_rsc_role) = split_ref(&rest[1], Qual::Role)?;
            ColForm::Pair {
                rsc,
                rsc_role: rsc_role.and_then(|q| q.role),
                with_rsc,
                with_rsc_role: with_rsc_role.and_then(|q| q.role),
            }
        } else {
            ColForm::Sets(self.sets(rest, Qual::Role)?)
        };
        Ok(ColocationStmt {
            id,
            score,
            node_attribute,
            influence,
            form,
        })
    }

    fn order(&mut self) -> R<OrderStmt> {
        let id = self.id("a constraint id")?;
        let mut kind = None;
        if let Some(t) = self.peek().filter(|t| is_score_token(&t.text)) {
            let s = &t.text[..t.text.len() - 1];
            kind = Some(match OrderKind::parse(s) {
                Some(k) if !s.eq_ignore_ascii_case("advisory") => k,
                _ => match numeric_score(s) {
                    // crmsh: "0" is Optional, any other score Mandatory
                    Some(_) if s == "0" => OrderKind::Optional,
                    Some(_) => OrderKind::Mandatory,
                    None => {
                        return Err(self.err(
                            "a kind (Mandatory:, Optional:, Serialize:) or a score (inf:, 0:)",
                        ))
                    }
                },
            });
            self.i += 1;
        }
        let mut rest = &self.toks[self.i..];
        let mut symmetrical = None;
        if let Some(last) = rest.last() {
            if let Some(v) = strip_ci(&last.text, "symmetrical=") {
                let b = match v.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" => true,
                    "false" | "no" | "off" => false,
                    _ => {
                        return Err(CrmError::at(
                            last.pos,
                            &last.text,
                            "symmetrical=<true|false>",
                        ))
                    }
                };
                symmetrical = Some(b);
                rest = &rest[..rest.len() - 1];
            }
        }
        self.i = self.toks.len();
        let form = if rest.len() == 2 {
            let (first, fa) = split_ref(&rest[0], Qual::Action)?;
            let (then, ta) = split_ref(&rest[1], Qual::Action)?;
            OrdForm::Pair {
                first,
                first_action: fa.and_then(|q| q.action),
                then,
                then_action: ta.and_then(|q| q.action),
            }
        } else {
            OrdForm::Sets(self.sets(rest, Qual::Action)?)
        };
        Ok(OrderStmt {
            id,
            kind,
            symmetrical,
            form,
        })
    }

    /// crmsh's `ResourceSet`: `a b ( c d:start ) [ e f ]`. `( )` makes a
    /// non-sequential set, `[ ]` also require-all=false; a change of role
    /// (action) starts a new set.
    fn sets(&self, toks: &[Token], q: Qual) -> R<Vec<SetStmt>> {
        let expected = match q {
            Qual::Role => "<rsc>[:<role>] <rsc>[:<role>] or resource sets",
            Qual::Action => "<rsc>[:<action>] <rsc>[:<action>] or resource sets",
        };
        if toks.is_empty() {
            return Err(CrmError::at(self.end, "", expected));
        }
        // split "(a" and "b)" as crmsh does
        let mut ts: Vec<Token> = Vec::new();
        for t in toks {
            let n = t.text.chars().count();
            let first = t.text.chars().next();
            let last = t.text.chars().last();
            let shifted = Pos {
                line: t.pos.line,
                column: t.pos.column.saturating_add(1),
            };
            if n > 1 && matches!(first, Some('(' | '[')) {
                let (a, b) = t.text.split_at(1);
                ts.push(Token {
                    text: a.into(),
                    pos: t.pos,
                });
                ts.push(Token {
                    text: b.into(),
                    pos: shifted,
                });
            } else if n > 1 && matches!(last, Some(')' | ']')) {
                let (a, b) = t.text.split_at(t.text.len() - 1);
                ts.push(Token {
                    text: a.into(),
                    pos: t.pos,
                });
                ts.push(Token {
                    text: b.into(),
                    pos: Pos {
                        line: t.pos.line,
                        column: t
                            .pos
                            .column
                            .saturating_add(u32::try_from(n - 1).unwrap_or(0)),
                    },
                });
            } else {
                ts.push(t.clone());
            }
        }
        let mut out = Vec::new();
        let mut cur: Vec<Ident> = Vec::new();
        let mut prev_q: Option<Qualifier> = None;
        let mut sequential = true;
        let mut require_all = true;
        let mut opened: Option<(char, Pos)> = None;
        let save = |cur: &mut Vec<Ident>,
                    prev_q: &mut Option<Qualifier>,
                    out: &mut Vec<SetStmt>,
                    sequential: bool,
                    require_all: bool| {
            if cur.is_empty() {
                return;
            }
            let qual = prev_q.take();
            out.push(SetStmt {
                resources: std::mem::take(cur),
                sequential: (!sequential).then_some(false),
                require_all: (!require_all).then_some(false),
                role: qual.as_ref().and_then(|q| q.role),
                action: qual.and_then(|q| q.action),
            });
        };
        for t in &ts {
            match t.text.as_str() {
                "_rsc_set_" => {}
                "(" | "[" => {
                    save(&mut cur, &mut prev_q, &mut out, sequential, require_all);
                    if opened.is_some() {
                        return Err(CrmError::at(
                            t.pos,
                            &t.text,
                            "a resource (resource sets cannot be nested)",
                        ));
                    }
                    sequential = false;
                    if t.text == "[" {
                        require_all = false;
                    }
                    opened = t.text.chars().next().map(|c| (c, t.pos));
                }
                ")" | "]" => {
                    if cur.is_empty() {
                        return Err(CrmError::at(
                            t.pos,
                            &t.text,
                            "a resource (empty resource set)",
                        ));
                    }
                    save(&mut cur, &mut prev_q, &mut out, sequential, require_all);
                    match opened {
                        None => {
                            return Err(CrmError::at(
                                t.pos,
                                &t.text,
                                "a resource (no open bracket to close)",
                            ))
                        }
                        Some((o, _)) => {
                            let want = if o == '(' { ")" } else { "]" };
                            if t.text != want {
                                return Err(CrmError::at(
                                    t.pos,
                                    &t.text,
                                    &format!("'{want}' (mismatched bracket)"),
                                ));
                            }
                        }
                    }
                    sequential = true;
                    require_all = true;
                    opened = None;
                }
                text if text.contains('=') => {
                    let what = "sequential=<bool> or require-all=<bool>";
                    let (k, v) = match text.split_once('=') {
                        Some((k, v)) if !v.contains('=') => (k, v),
                        _ => return Err(CrmError::at(t.pos, text, what)),
                    };
                    let b = parse_bool(v).ok_or_else(|| CrmError::at(t.pos, text, what))?;
                    match k {
                        "sequential" => sequential = b,
                        "require-all" => require_all = b,
                        _ => return Err(CrmError::at(t.pos, text, what)),
                    }
                }
                _ => {
                    let (rsc, qual) = split_ref(t, q)?;
                    if qual != prev_q {
                        save(&mut cur, &mut prev_q, &mut out, sequential, require_all);
                        prev_q = qual;
                    }
                    cur.push(rsc);
                }
            }
        }
        if let Some((o, pos)) = opened {
            return Err(CrmError::at(
                pos,
                &o.to_string(),
                "a closing bracket for this resource set",
            ));
        }
        save(&mut cur, &mut prev_q, &mut out, sequential, require_all);
        Ok(out)
    }

    // ----------------------------------------------------------------------
    // cluster options and fencing

    fn nvset(&mut self, kind: NvsetKind) -> R<NvsetStmt> {
        let mut set_id = None;
        if let Some(t) = self.peek() {
            if strip_ci(&t.text, "$id-ref=").is_some() {
                return Err(self.err("$id=<id> or name=value ($id-ref is not supported)"));
            }
            if let Some(v) = strip_ci(&t.text, "$id=") {
                set_id = Some(v.to_string());
                self.i += 1;
            } else if let Some(v) = t.text.strip_suffix(':') {
                if !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    set_id = Some(v.to_string());
                    self.i += 1;
                }
            }
        }
        let has_rules = !self.rules()?.is_empty();
        let pairs = self.nvpairs()?;
        self.done("name=value or end of line")?;
        Ok(NvsetStmt {
            kind,
            set_id,
            has_rules,
            pairs: pairs.into_iter().map(|(n, v, _)| (n, v)).collect(),
        })
    }

    fn fencing(&mut self) -> R<FencingStmt> {
        let mut levels = Vec::new();
        let mut target: Option<String> = None;
        while let Some(t) = self.bump() {
            if strip_ci(&t.text, "attr:").is_some_and(|r| r.contains('=')) {
                return Err(CrmError::at(
                    t.pos,
                    &t.text,
                    "<node>: or pattern:<regex> (attr: targets are not supported yet)",
                ));
            }
            if let Some(p) = strip_ci(&t.text, "pattern:").filter(|p| !p.is_empty()) {
                target = Some(p.to_string());
            } else if is_score_token(&t.text) {
                target = Some(t.text[..t.text.len() - 1].to_string());
            } else {
                let devices: Vec<String> = t
                    .text
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if devices.is_empty() {
                    return Err(CrmError::at(
                        t.pos,
                        &t.text,
                        "fencing devices (comma-separated)",
                    ));
                }
                levels.push((target.clone(), devices));
            }
        }
        if levels.is_empty() {
            return Err(self.err("<node>: and its fencing devices"));
        }
        Ok(FencingStmt { levels })
    }
}

/// A role or action qualifier on a resource reference.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Qualifier {
    role: Option<Role>,
    action: Option<String>,
}

/// `rsc[:role]` / `rsc[:action]`.
fn split_ref(t: &Token, q: Qual) -> R<(Ident, Option<Qualifier>)> {
    let parts: Vec<&str> = t.text.split(':').collect();
    let what = match q {
        Qual::Role => ROLES,
        Qual::Action => ACTIONS,
    };
    match parts.as_slice() {
        [r] if !r.is_empty() => Ok((ident(t), None)),
        [r, x] if !r.is_empty() => {
            let qual = match q {
                Qual::Role => Role::parse(x).map(|role| Qualifier {
                    role: Some(role),
                    action: None,
                }),
                Qual::Action => parse_action(x).map(|a| Qualifier {
                    role: None,
                    action: Some(a),
                }),
            };
            let qual = qual.ok_or_else(|| CrmError::at(t.pos, &t.text, what))?;
            Ok((
                Ident {
                    text: r.to_string(),
                    pos: t.pos,
                },
                Some(qual),
            ))
        }
        _ => Err(CrmError::at(
            t.pos,
            &t.text,
            &format!(
                "<rsc>[:<{}>]",
                if q == Qual::Role { "role" } else { "action" }
            ),
        )),
    }
}

/// crmsh's `value-source` form: `param{name}` or `meta{name}`.
fn value_source(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_suffix('}')?;
    let (src, val) = body.split_once('{')?;
    let ok_src = !src.is_empty()
        && !src
            .chars()
            .any(|c| c.is_whitespace() || c == '{' || c == '}');
    let ok_val = !val.is_empty() && !val.chars().any(char::is_whitespace);
    (ok_src && ok_val).then_some((src, val))
}

fn ident(t: &Token) -> Ident {
    Ident {
        text: t.text.clone(),
        pos: t.pos,
    }
}

/// Group and clone `params` are instance attributes the model does not
/// keep (as the CIB reader); `meta` lists are kept.
fn meta_only(lists: Vec<(String, NvSet)>) -> Vec<NvSet> {
    lists
        .into_iter()
        .filter(|(kw, _)| kw == "meta")
        .map(|(_, l)| l)
        .collect()
}
