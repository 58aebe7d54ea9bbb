//! Reader for Pacemaker CIB XML: a whole `<cib>` with its `configuration`
//! and `status` sections, into [`Config`] and [`Status`].
//!
//! Features we do not support yet (bundles, templates, tags, tickets, ACLs,
//! remote and guest nodes) are rejected with "not supported yet: <id>".

use std::collections::{BTreeMap, HashMap};

use roxmltree::{Document, Node};

use crate::error::ConfigError;
use crate::model::*;
use crate::rules::parse_iso8601;
use crate::score;

/// A parsed CIB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cib {
    pub config: Config,
    pub status: Status,
    /// The CIB's `execution-date` (seconds since the epoch), if any.
    pub execution_date: Option<i64>,
}

/// Reads a CIB document. The configuration is validated whole
/// ([`crate::validate::validate`]).
pub fn read_cib(xml: &str) -> Result<Cib, ConfigError> {
    let doc = Document::parse(xml).map_err(|e| {
        let pos = e.pos();
        ConfigError::Xml {
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "cib" {
        return Err(ConfigError::invalid(
            root.tag_name().name(),
            "",
            "the document element must be <cib>",
        ));
    }
    let reader = Reader::new(&doc);
    let configuration = child(root, "configuration")
        .ok_or_else(|| ConfigError::invalid("cib", "", "no <configuration> section"))?;
    let config = reader.read_configuration(configuration)?;
    crate::validate::validate(&config)?;
    let status = match child(root, "status") {
        Some(s) => reader.read_status(s, &config)?,
        None => Status::default(),
    };
    let mut status = status;
    status.have_quorum = root.attribute("have-quorum").map(is_true).unwrap_or(false);
    status.dc = root.attribute("dc-uuid").and_then(|dc| {
        config
            .nodes
            .iter()
            .find(|n| n.id == dc)
            .map(|n| n.name.clone())
    });
    let execution_date = match root.attribute("execution-date") {
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            ConfigError::invalid("cib", "execution-date", format!("not a timestamp: '{v}'"))
        })?),
        None => None,
    };
    Ok(Cib {
        config,
        status,
        execution_date,
    })
}

/// Pacemaker's boolean spelling.
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "on" | "yes" | "y" | "1"
    )
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

fn id_of(n: Node) -> String {
    n.attribute("id").unwrap_or("").to_string()
}

fn req<'a>(n: Node<'a, '_>, attr: &str) -> Result<&'a str, ConfigError> {
    n.attribute(attr).ok_or_else(|| {
        ConfigError::invalid(
            n.tag_name().name(),
            &id_of(n),
            format!("missing attribute '{attr}'"),
        )
    })
}

fn parse_score(n: Node, attr: &str, v: &str) -> Result<Score, ConfigError> {
    score::parse(v).ok_or_else(|| {
        ConfigError::invalid(
            n.tag_name().name(),
            &id_of(n),
            format!("invalid {attr} '{v}'"),
        )
    })
}

use crate::score::Score;

/// Resolves `id-ref`s against every element with an id.
struct Reader<'a, 'i> {
    by_id: HashMap<&'a str, Node<'a, 'i>>,
}

impl<'a, 'i> Reader<'a, 'i> {
    fn new(doc: &'a Document<'i>) -> Self {
        let mut by_id = HashMap::new();
        for n in doc.descendants().filter(|n| n.is_element()) {
            if let Some(id) = n.attribute("id") {
                by_id.entry(id).or_insert(n);
            }
        }
        Reader { by_id }
    }

    fn deref(&self, n: Node<'a, 'i>) -> Result<Node<'a, 'i>, ConfigError> {
        match n.attribute("id-ref") {
            Some(r) => self
                .by_id
                .get(r)
                .copied()
                .ok_or_else(|| ConfigError::UnknownReference {
                    element: n.tag_name().name().into(),
                    id: id_of(n),
                    kind: "id".into(),
                    reference: r.into(),
                }),
            None => Ok(n),
        }
    }

    /// Merges every `<tag>` set under `n` (sets with a higher score first;
    /// the first value of a name wins, as Pacemaker unpacks them).
    fn nvsets(&self, n: Node<'a, 'i>, tag: &str) -> Result<Attrs, ConfigError> {
        let mut sets = Vec::new();
        for (pos, s) in elements(n)
            .filter(|c| c.tag_name().name() == tag)
            .enumerate()
        {
            let s = self.deref(s)?;
            if child(s, "rule").is_some() {
                // Rule-conditioned sets (per-node parameters, dated meta) do
                // not take part in placement; they are skipped here.
                continue;
            }
            let sc = match s.attribute("score") {
                Some(v) => parse_score(s, "score", v)?,
                None => 0,
            };
            sets.push((sc, pos, s));
        }
        sets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out = Attrs::new();
        for (_, _, s) in sets {
            for p in elements(s).filter(|c| c.tag_name().name() == "nvpair") {
                let p2 = self.deref(p)?;
                let name = p
                    .attribute("name")
                    .or_else(|| p2.attribute("name"))
                    .ok_or_else(|| ConfigError::invalid("nvpair", &id_of(p), "no name"))?;
                let value = p2.attribute("value").unwrap_or("");
                out.entry(name.to_string())
                    .or_insert_with(|| value.to_string());
            }
        }
        Ok(out)
    }

    fn read_configuration(&self, c: Node<'a, 'i>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for e in elements(c) {
            match e.tag_name().name() {
                "crm_config" => config.properties = self.nvsets(e, "cluster_property_set")?,
                "rsc_defaults" => config.rsc_defaults = self.nvsets(e, "meta_attributes")?,
                "op_defaults" => config.op_defaults = self.nvsets(e, "meta_attributes")?,
                "nodes" => {
                    for n in elements(e).filter(|n| n.tag_name().name() == "node") {
                        if let Some(node) = self.read_node(n)? {
                            config.nodes.push(node);
                        }
                    }
                }
                "resources" => {
                    for r in elements(e) {
                        config.resources.push(self.read_resource(r)?);
                    }
                }
                "constraints" => self.read_constraints(e, &mut config.constraints)?,
                "fencing-topology" => {
                    for l in elements(e).filter(|l| l.tag_name().name() == "fencing-level") {
                        // A node-attribute target is kept in crm shell's
                        // notation, `attr:NAME=VALUE`.
                        let by_attr = l.attribute("target-attribute").map(|a| {
                            format!("attr:{a}={}", l.attribute("target-value").unwrap_or(""))
                        });
                        let target = match by_attr {
                            Some(t) => t,
                            None => l
                                .attribute("target")
                                .or_else(|| l.attribute("target-pattern"))
                                .ok_or_else(|| {
                                    ConfigError::invalid("fencing-level", &id_of(l), "no target")
                                })?
                                .to_string(),
                        };
                        let index = req(l, "index")?.parse::<u32>().map_err(|_| {
                            ConfigError::invalid(
                                "fencing-level",
                                &id_of(l),
                                "index is not a number",
                            )
                        })?;
                        config.fencing_levels.push(FencingLevel {
                            id: id_of(l),
                            target,
                            index,
                            devices: req(l, "devices")?
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect(),
                        });
                    }
                }
                "tags" | "acls" | "tickets" => {
                    if let Some(first) = elements(e).next() {
                        return Err(ConfigError::Unsupported {
                            element: first.tag_name().name().into(),
                            id: id_of(first),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(config)
    }

    fn read_node(&self, n: Node<'a, 'i>) -> Result<Option<NodeConfig>, ConfigError> {
        let id = id_of(n);
        let name = n.attribute("uname").unwrap_or(&id).to_string();
        match n.attribute("type") {
            None | Some("member") | Some("normal") => {}
            Some("ping") => {}
            // A remote node entry without its connection resource (which is
            // rejected as unsupported) runs nothing: skip it.
            Some("remote") => return Ok(None),
            Some(other) => {
                return Err(ConfigError::Unsupported {
                    element: format!("{other} node"),
                    id: name,
                })
            }
        }
        Ok(Some(NodeConfig {
            id,
            attributes: self.nvsets(n, "instance_attributes")?,
            utilization: self.nvsets(n, "utilization")?,
            score: match n.attribute("score") {
                Some(v) => Some(parse_score(n, "score", v)?),
                None => None,
            },
            name,
        }))
    }

    fn read_primitive(&self, p: Node<'a, 'i>) -> Result<Primitive, ConfigError> {
        let id = req(p, "id")?.to_string();
        if p.attribute("template").is_some() {
            return Err(ConfigError::Unsupported {
                element: "template reference".into(),
                id,
            });
        }
        let mut ops = Vec::new();
        if let Some(o) = child(p, "operations") {
            let o = self.deref(o)?;
            for op in elements(o).filter(|c| c.tag_name().name() == "op") {
                let op = self.deref(op)?;
                let name = req(op, "name")?.to_string();
                let interval_ms = match op.attribute("interval") {
                    Some(v) => parse_interval_ms(v).ok_or_else(|| {
                        ConfigError::invalid("op", &id_of(op), format!("invalid interval '{v}'"))
                    })?,
                    None => 0,
                };
                let mut attrs: Attrs = op
                    .attributes()
                    .filter(|a| !matches!(a.name(), "id" | "name" | "interval"))
                    .map(|a| (a.name().to_string(), a.value().to_string()))
                    .collect();
                for tag in ["meta_attributes", "instance_attributes"] {
                    for (k, v) in self.nvsets(op, tag)? {
                        attrs.entry(k).or_insert(v);
                    }
                }
                ops.push(OpConfig {
                    id: id_of(op),
                    name,
                    interval_ms,
                    attrs,
                });
            }
        }
        Ok(Primitive {
            class: req(p, "class")?.to_string(),
            provider: p.attribute("provider").map(str::to_string),
            agent: req(p, "type")?.to_string(),
            params: self.nvsets(p, "instance_attributes")?,
            meta: self.nvsets(p, "meta_attributes")?,
            utilization: self.nvsets(p, "utilization")?,
            ops,
            id,
        })
    }

    fn read_resource(&self, r: Node<'a, 'i>) -> Result<Resource, ConfigError> {
        let tag = r.tag_name().name();
        match tag {
            "primitive" => Ok(Resource::Primitive(self.read_primitive(r)?)),
            "group" => {
                let mut members = Vec::new();
                for m in elements(r) {
                    match m.tag_name().name() {
                        "primitive" => members.push(self.read_primitive(m)?),
                        "meta_attributes" | "instance_attributes" | "utilization" => {}
                        other => {
                            return Err(ConfigError::invalid(
                                "group",
                                &id_of(r),
                                format!("a group may hold only primitives, found <{other}>"),
                            ))
                        }
                    }
                }
                Ok(Resource::Group(Group {
                    id: req(r, "id")?.to_string(),
                    meta: self.nvsets(r, "meta_attributes")?,
                    members,
                }))
            }
            "clone" | "master" => {
                let mut meta = self.nvsets(r, "meta_attributes")?;
                let promotable =
                    tag == "master" || meta.get("promotable").map(|v| is_true(v)).unwrap_or(false);
                if tag == "master" {
                    meta.insert("promotable".into(), "true".into());
                }
                let inner = elements(r)
                    .find(|c| matches!(c.tag_name().name(), "primitive" | "group"))
                    .ok_or_else(|| {
                        ConfigError::invalid(tag, &id_of(r), "no primitive or group to clone")
                    })?;
                Ok(Resource::Clone(CloneResource {
                    id: req(r, "id")?.to_string(),
                    meta,
                    promotable,
                    child: Box::new(self.read_resource(inner)?),
                }))
            }
            "bundle" | "template" => Err(ConfigError::Unsupported {
                element: tag.into(),
                id: id_of(r),
            }),
            other => Err(ConfigError::invalid(
                other,
                &id_of(r),
                "unknown resource element",
            )),
        }
    }

    fn read_role(&self, n: Node, attr: &str) -> Result<Option<Role>, ConfigError> {
        match n.attribute(attr) {
            None => Ok(None),
            Some(v) => Role::parse(v).map(Some).ok_or_else(|| {
                ConfigError::invalid(
                    n.tag_name().name(),
                    &id_of(n),
                    format!("invalid {attr} '{v}'"),
                )
            }),
        }
    }

    fn read_sets(&self, c: Node<'a, 'i>) -> Result<Vec<ResourceSet>, ConfigError> {
        let mut sets = Vec::new();
        for s in elements(c).filter(|s| s.tag_name().name() == "resource_set") {
            let s = self.deref(s)?;
            let resources = elements(s)
                .filter(|r| r.tag_name().name() == "resource_ref")
                .map(|r| req(r, "id").map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            sets.push(ResourceSet {
                id: id_of(s),
                resources,
                sequential: s.attribute("sequential").map(is_true),
                require_all: s.attribute("require-all").map(is_true),
                role: self.read_role(s, "role")?,
                action: s.attribute("action").map(str::to_string),
                kind: match s.attribute("kind") {
                    Some(k) => Some(OrderKind::parse(k).ok_or_else(|| {
                        ConfigError::invalid(
                            "resource_set",
                            &id_of(s),
                            format!("invalid kind '{k}'"),
                        )
                    })?),
                    None => None,
                },
                score: match s.attribute("score") {
                    Some(v) => Some(parse_score(s, "score", v)?),
                    None => None,
                },
            });
        }
        Ok(sets)
    }

    fn read_constraints(&self, c: Node<'a, 'i>, out: &mut Constraints) -> Result<(), ConfigError> {
        for e in elements(c) {
            let id = id_of(e);
            match e.tag_name().name() {
                "rsc_location" => {
                    let (rsc, rsc_pattern) = match (e.attribute("rsc"), e.attribute("rsc-pattern"))
                    {
                        (Some(r), _) => (r.to_string(), false),
                        (None, Some(p)) => (p.to_string(), true),
                        (None, None) => {
                            if child(e, "resource_set").is_some() {
                                return Err(ConfigError::Unsupported {
                                    element: "rsc_location with resource sets".into(),
                                    id,
                                });
                            }
                            return Err(ConfigError::invalid("rsc_location", &id, "no rsc"));
                        }
                    };
                    let target = if let Some(node) = e.attribute("node") {
                        let sc = parse_score(e, "score", req(e, "score")?)?;
                        LocationTarget::Node {
                            node: node.to_string(),
                            score: sc,
                        }
                    } else {
                        let mut rules = Vec::new();
                        for r in elements(e).filter(|r| r.tag_name().name() == "rule") {
                            rules.push(self.read_rule(r)?);
                        }
                        if rules.is_empty() {
                            return Err(ConfigError::invalid(
                                "rsc_location",
                                &id,
                                "neither a node nor a rule",
                            ));
                        }
                        LocationTarget::Rules(rules)
                    };
                    out.locations.push(Location {
                        rsc,
                        rsc_pattern,
                        role: self.read_role(e, "role")?,
                        target,
                        resource_discovery: e.attribute("resource-discovery").map(str::to_string),
                        id,
                    });
                }
                "rsc_colocation" => {
                    let sets = self.read_sets(e)?;
                    let score = match e.attribute("score") {
                        Some(v) => parse_score(e, "score", v)?,
                        // Pacemaker reads a missing score as 0: the constraint is ignored.
                        None => 0,
                    };
                    let form = if !sets.is_empty() {
                        ColocationForm::Sets(sets)
                    } else {
                        ColocationForm::Pair {
                            rsc: req(e, "rsc")?.to_string(),
                            with_rsc: req(e, "with-rsc")?.to_string(),
                            rsc_role: self.read_role(e, "rsc-role")?,
                            with_rsc_role: self.read_role(e, "with-rsc-role")?,
                        }
                    };
                    out.colocations.push(Colocation {
                        score,
                        node_attribute: e.attribute("node-attribute").map(str::to_string),
                        influence: e.attribute("influence").map(is_true),
                        form,
                        id,
                    });
                }
                "rsc_order" => {
                    // An unknown kind is read as Mandatory, as Pacemaker does.
                    let mut kind = e
                        .attribute("kind")
                        .map(|k| OrderKind::parse(k).unwrap_or(OrderKind::Mandatory));
                    if kind.is_none() {
                        if let Some(s) = e.attribute("score") {
                            if parse_score(e, "score", s)? == 0 {
                                kind = Some(OrderKind::Optional);
                            }
                        }
                    }
                    let sets = self.read_sets(e)?;
                    let form = if !sets.is_empty() {
                        OrderForm::Sets(sets)
                    } else {
                        OrderForm::Pair {
                            first: req(e, "first")?.to_string(),
                            then: req(e, "then")?.to_string(),
                            first_action: e.attribute("first-action").map(str::to_string),
                            then_action: e.attribute("then-action").map(str::to_string),
                            require_all: e.attribute("require-all").map(is_true),
                        }
                    };
                    out.orders.push(Order {
                        kind,
                        symmetrical: e.attribute("symmetrical").map(is_true),
                        form,
                        id,
                    });
                }
                "rsc_ticket" => {
                    return Err(ConfigError::Unsupported {
                        element: "rsc_ticket".into(),
                        id,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read_rule(&self, r: Node<'a, 'i>) -> Result<Rule, ConfigError> {
        let r = self.deref(r)?;
        let id = id_of(r);
        let score = match (r.attribute("score"), r.attribute("score-attribute")) {
            (Some(s), _) => RuleScore::Value(parse_score(r, "score", s)?),
            (None, Some(a)) => RuleScore::Attribute(a.to_string()),
            (None, None) => RuleScore::Value(0),
        };
        let boolean_op = match r.attribute("boolean-op") {
            None | Some("and") => BoolOp::And,
            Some("or") => BoolOp::Or,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "rule",
                    &id,
                    format!("invalid boolean-op '{other}'"),
                ))
            }
        };
        let mut expressions = Vec::new();
        for e in elements(r) {
            let eid = id_of(e);
            match e.tag_name().name() {
                "expression" => {
                    let op_s = req(e, "operation")?;
                    let op = CmpOp::parse(op_s).ok_or_else(|| {
                        ConfigError::invalid(
                            "expression",
                            &eid,
                            format!("invalid operation '{op_s}'"),
                        )
                    })?;
                    let value_type = match e.attribute("type") {
                        Some(t) => Some(ValueType::parse(t).ok_or_else(|| {
                            ConfigError::invalid("expression", &eid, format!("invalid type '{t}'"))
                        })?),
                        None => None,
                    };
                    expressions.push(Expression::Attr(AttrExpression {
                        attribute: req(e, "attribute")?.to_string(),
                        op,
                        value: e.attribute("value").map(str::to_string),
                        value_type,
                        value_source: e.attribute("value-source").map(str::to_string),
                        id: eid,
                    }));
                }
                "date_expression" => {
                    let operation = e.attribute("operation").unwrap_or("in_range").to_string();
                    for attr in ["start", "end"] {
                        if let Some(v) = e.attribute(attr) {
                            if parse_iso8601(v).is_none() {
                                return Err(ConfigError::invalid(
                                    "date_expression",
                                    &eid,
                                    format!("invalid {attr} date '{v}'"),
                                ));
                            }
                        }
                    }
                    let attrs_of = |tag: &str| -> Attrs {
                        child(e, tag)
                            .map(|d| {
                                d.attributes()
                                    .filter(|a| a.name() != "id")
                                    .map(|a| (a.name().to_string(), a.value().to_string()))
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    expressions.push(Expression::Date(DateExpression {
                        operation,
                        start: e.attribute("start").map(str::to_string),
                        end: e.attribute("end").map(str::to_string),
                        duration: attrs_of("duration"),
                        date_spec: attrs_of("date_spec"),
                        id: eid,
                    }));
                }
                "rule" => expressions.push(Expression::Rule(self.read_rule(e)?)),
                "rsc_expression" | "op_expression" => {
                    return Err(ConfigError::Unsupported {
                        element: e.tag_name().name().into(),
                        id: eid,
                    })
                }
                _ => {}
            }
        }
        Ok(Rule {
            score,
            boolean_op,
            role: self.read_role(r, "role")?,
            expressions,
            id,
        })
    }

    fn read_status(&self, s: Node<'a, 'i>, config: &Config) -> Result<Status, ConfigError> {
        let stonith_enabled = config
            .properties
            .get("stonith-enabled")
            .map(|v| is_true(v))
            .unwrap_or(true);
        let mut status = Status::default();
        let name_of_id: BTreeMap<&str, &str> = config
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.name.as_str()))
            .collect();
        for ns in elements(s).filter(|n| n.tag_name().name() == "node_state") {
            let id = id_of(ns);
            let name = match ns.attribute("uname") {
                Some(u) => u.to_string(),
                None => match name_of_id.get(id.as_str()) {
                    Some(n) => n.to_string(),
                    None => continue,
                },
            };
            if ns.attribute("remote_node").map(is_true).unwrap_or(false) {
                continue;
            }
            let transient_attributes = match child(ns, "transient_attributes") {
                Some(t) => self.nvsets(t, "instance_attributes")?,
                None => Attrs::new(),
            };
            let shutdown = transient_attributes
                .get("shutdown")
                .map(|v| v != "0" && !v.is_empty())
                .unwrap_or(false);
            let terminate = transient_attributes
                .get("terminate")
                .map(|v| is_true(v))
                .unwrap_or(false);
            let membership = node_membership(ns, stonith_enabled, shutdown, terminate);
            let mut history = BTreeMap::new();
            if let Some(lrm) = child(ns, "lrm") {
                if let Some(lrs) = child(lrm, "lrm_resources") {
                    for lr in elements(lrs).filter(|n| n.tag_name().name() == "lrm_resource") {
                        let rid = req(lr, "id")?.to_string();
                        let mut ops = Vec::new();
                        for op in elements(lr).filter(|n| n.tag_name().name() == "lrm_rsc_op") {
                            ops.push(read_op(op)?);
                        }
                        history.insert(
                            rid,
                            ResourceHistory {
                                class: lr.attribute("class").unwrap_or("").to_string(),
                                provider: lr.attribute("provider").map(str::to_string),
                                agent: lr.attribute("type").unwrap_or("").to_string(),
                                ops,
                            },
                        );
                    }
                }
            }
            status.nodes.insert(
                name,
                NodeStatus {
                    membership,
                    shutdown,
                    transient_attributes,
                    history,
                    declared_lost: 0,
                },
            );
        }
        Ok(status)
    }
}

/// Works out a node's membership from its `node_state`, as Pacemaker does
/// (with fencing: a node lost while expected up is unclean).
fn node_membership(ns: Node, stonith_enabled: bool, shutdown: bool, terminate: bool) -> Membership {
    let in_ccm = ns.attribute("in_ccm");
    let in_ccm_true = in_ccm.map(is_true).unwrap_or(false);
    let crmd_online = ns
        .attribute("crmd")
        .map(|v| v.eq_ignore_ascii_case("online"))
        .unwrap_or(false);
    let join = ns.attribute("join").unwrap_or("");
    let expected = ns.attribute("expected").unwrap_or("down");
    if !stonith_enabled {
        return if !in_ccm_true {
            Membership::Offline
        } else if crmd_online {
            if join.eq_ignore_ascii_case("member") {
                Membership::Online
            } else {
                Membership::Pending
            }
        } else if !expected.eq_ignore_ascii_case("member") {
            Membership::Offline
        } else {
            Membership::Unclean
        };
    }
    if shutdown {
        return if in_ccm_true {
            Membership::Online
        } else {
            Membership::Offline
        };
    }
    if in_ccm.is_none() || join.eq_ignore_ascii_case("nack") {
        return Membership::Unclean;
    }
    if !terminate && expected.eq_ignore_ascii_case("down") {
        return if in_ccm_true || crmd_online {
            Membership::Pending
        } else {
            Membership::Offline
        };
    }
    if terminate && join.eq_ignore_ascii_case("down") && !in_ccm_true && !crmd_online {
        return Membership::Offline;
    }
    if !in_ccm_true || !crmd_online || terminate {
        return Membership::Unclean;
    }
    if join.eq_ignore_ascii_case("member") {
        Membership::Online
    } else if join.eq_ignore_ascii_case("pending") || join.eq_ignore_ascii_case("down") {
        Membership::Pending
    } else {
        Membership::Unclean
    }
}

fn read_op(op: Node) -> Result<OpRecord, ConfigError> {
    let id = id_of(op);
    let int = |attr: &str| -> Result<Option<i64>, ConfigError> {
        match op.attribute(attr) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ConfigError::invalid("lrm_rsc_op", &id, format!("{attr} is not a number: '{v}'"))
            }),
        }
    };
    // transition-key: "action:transition:expected-rc:uuid"
    let expected_rc = op
        .attribute("transition-key")
        .and_then(|k| k.split(':').nth(2))
        .and_then(|v| v.parse::<i32>().ok());
    let (mut rc, mut op_status) = (int("rc-code")?, int("op-status")?);
    if let Some(magic) = op.attribute("transition-magic") {
        // "op-status:rc;key"
        if let Some((st, rest)) = magic.split_once(':') {
            if let Some((r, _)) = rest.split_once(';') {
                if op_status.is_none() {
                    op_status = st.parse().ok();
                }
                if rc.is_none() {
                    rc = r.parse().ok();
                }
            }
        }
    }
    Ok(OpRecord {
        operation: req(op, "operation")?.to_string(),
        interval_ms: op
            .attribute("interval")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0),
        call_id: int("call-id")?.unwrap_or(-1),
        rc: rc.unwrap_or(0) as i32,
        op_status: op_status.unwrap_or(0) as i32,
        expected_rc,
        last_rc_change: int("last-rc-change")?.or(int("last-run")?),
        migrate_source: op.attribute("migrate_source").map(str::to_string),
        migrate_target: op.attribute("migrate_target").map(str::to_string),
        op_digest: op.attribute("op-digest").map(str::to_string),
        exit_reason: op
            .attribute("exit-reason")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        completed_ms: None,
        id,
    })
}

/// Parses an operation interval: plain seconds, with a unit (`10s`, `5min`,
/// `1h`, `500ms`), or ISO 8601 (`PT10S`). Returns milliseconds.
pub fn parse_interval_ms(v: &str) -> Option<u64> {
    let t = v.trim();
    if t.is_empty() {
        return Some(0);
    }
    if let Some(iso) = t
        .strip_prefix("PT")
        .or_else(|| t.strip_prefix("pt"))
        .or_else(|| t.strip_prefix('P'))
    {
        let mut total = 0u64;
        let mut num = String::new();
        for ch in iso.chars() {
            if ch.is_ascii_digit() {
                num.push(ch);
            } else {
                let n: u64 = num.parse().ok()?;
                num.clear();
                let ms = match ch.to_ascii_uppercase() {
                    'H' => n.checked_mul(3_600_000)?,
                    'M' => n.checked_mul(60_000)?,
                    'S' => n.checked_mul(1000)?,
                    _ => return None,
                };
                total = total.checked_add(ms)?;
            }
        }
        return if num.is_empty() { Some(total) } else { None };
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1000,
        "ms" | "msec" | "msecs" => 1,
        "us" | "usec" | "usecs" => return Some(n / 1000),
        "m" | "min" | "mins" => 60_000,
        "h" | "hr" | "hrs" => 3_600_000,
        _ => return None,
    };
    // Overflow is no interval (an error naming the item where it is read).
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval_ms("10"), Some(10_000));
        assert_eq!(parse_interval_ms("10s"), Some(10_000));
        assert_eq!(parse_interval_ms("18446744073709551615h"), None);
        assert_eq!(parse_interval_ms("PT18446744073709551615H"), None);
        assert_eq!(parse_interval_ms("PT18446744073709551S1S"), None);
        assert_eq!(parse_interval_ms("2min"), Some(120_000));
        assert_eq!(parse_interval_ms("500ms"), Some(500));
        assert_eq!(parse_interval_ms("PT1M30S"), Some(90_000));
        assert_eq!(parse_interval_ms("ten"), None);
    }

    #[test]
    fn malformed_xml_names_position() {
        let err = read_cib("<cib><configuration>").unwrap_err();
        assert!(matches!(err, ConfigError::Xml { line: 1, .. }), "{err}");
    }

    #[test]
    fn unsupported_bundle_is_named() {
        let x = r#"<cib><configuration><crm_config/><nodes/><resources>
            <bundle id="web-bundle"/></resources><constraints/></configuration></cib>"#;
        let err = read_cib(x).unwrap_err();
        assert_eq!(err.to_string(), "not supported yet: bundle 'web-bundle'");
    }
}
