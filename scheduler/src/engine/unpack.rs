//! Unpacking: cluster options, nodes (natural sort), the resource arena with
//! clone instances expanded, operation history replayed per node, fail
//! counts, and constraints expanded into internal colocations and orders.

use std::collections::BTreeMap;

use super::*;
use crate::cib::is_true;
use crate::model::{
    Attrs, ColocationForm, Config, Membership, OpRecord, OrderForm, OrderKind, Resource,
    ResourceHistory, Role, Status,
};
use crate::rules::natural_cmp;
use crate::score::{self, Score, INFINITY};

pub(crate) fn unpack(config: &Config, status: &Status, now: i64) -> World {
    let prop = |k: &str| config.properties.get(k).map(String::as_str);
    let stonith_enabled = prop("stonith-enabled").map(is_true).unwrap_or(true);
    let strategy = match prop("placement-strategy").unwrap_or("default") {
        "utilization" => Strategy::Utilization,
        "minimal" => Strategy::Minimal,
        "balanced" => Strategy::Balanced,
        _ => Strategy::Default,
    };
    let no_quorum_policy = match prop("no-quorum-policy").unwrap_or("stop") {
        "freeze" => NoQuorumPolicy::Freeze,
        "ignore" => NoQuorumPolicy::Ignore,
        "demote" => NoQuorumPolicy::Demote,
        "suicide" => NoQuorumPolicy::Suicide,
        _ => NoQuorumPolicy::Stop,
    };
    let mut w = World {
        nodes: Vec::new(),
        rscs: Vec::new(),
        top: Vec::new(),
        colocs: Vec::new(),
        orders: Vec::new(),
        strategy,
        symmetric: prop("symmetric-cluster").map(is_true).unwrap_or(true),
        stonith_enabled,
        have_stonith_resource: false,
        have_quorum: status.have_quorum,
        no_quorum_policy,
        maintenance_mode: prop("maintenance-mode").map(is_true).unwrap_or(false),
        stop_all: prop("stop-all-resources").map(is_true).unwrap_or(false),
        now,
        notes: Vec::new(),
        promoted_locations: Vec::new(),
        by_config_id: Default::default(),
        attr_classes: Default::default(),
    };
    unpack_nodes(&mut w, config, status);
    unpack_resources(&mut w, config);
    index_config_ids(&mut w);
    unpack_status(&mut w, config, status);
    unpack_constraints(&mut w, config);
    w
}

fn unpack_nodes(w: &mut World, config: &Config, status: &Status) {
    let startup_fencing = config
        .properties
        .get("startup-fencing")
        .map(|v| is_true(v))
        .unwrap_or(true);
    let mut nodes: Vec<&crate::model::NodeConfig> = config.nodes.iter().collect();
    nodes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    for nc in nodes {
        let st = status.nodes.get(&nc.name);
        let mut attrs = nc.attributes.clone();
        if let Some(st) = st {
            for (k, v) in &st.transient_attributes {
                attrs.insert(k.clone(), v.clone());
            }
        }
        attrs.insert("#uname".into(), nc.name.clone());
        attrs.insert("#id".into(), nc.id.clone());
        attrs.insert("#kind".into(), "cluster".into());
        let is_dc = status.dc.as_deref() == Some(nc.name.as_str());
        attrs.insert("#is_dc".into(), if is_dc { "true" } else { "false" }.into());
        let (online, unclean, pending) = match st.map(|s| s.membership) {
            Some(Membership::Online) => (true, false, false),
            Some(Membership::Pending) => (true, false, true),
            Some(Membership::Offline) => (false, false, false),
            Some(Membership::Unclean) => (false, true, false),
            None => (false, w.stonith_enabled && startup_fencing, false),
        };
        let flag = |k: &str| attrs.get(k).map(|v| is_true(v)).unwrap_or(false);
        let capacity = nc
            .utilization
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().parse::<i64>().unwrap_or(0)))
            .collect();
        w.nodes.push(Node {
            name: nc.name.clone(),
            standby: flag("standby"),
            maintenance: flag("maintenance"),
            shutdown: st.map(|s| s.shutdown).unwrap_or(false),
            attrs,
            capacity,
            online,
            unclean,
            pending,
            num_resources: 0,
            fence: false,
        });
    }
}

/// Meta value with Pacemaker's precedence: own, then parents, then rsc_defaults.
fn meta_chain<'a>(chain: &[&'a Attrs], defaults: &'a Attrs, k: &str) -> Option<&'a str> {
    chain
        .iter()
        .find_map(|m| m.get(k))
        .or_else(|| defaults.get(k))
        .map(String::as_str)
}

struct Template<'a> {
    config: &'a Config,
}

impl Template<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        w: &mut World,
        res: &Resource,
        parent: Option<RscIx>,
        suffix: &str,
        chain: &[&Attrs],
        in_clone: bool,
    ) -> RscIx {
        let forced_anonymous;
        let (id, variant, own_meta) = match res {
            Resource::Primitive(p) => (&p.id, Variant::Primitive, &p.meta),
            Resource::Group(g) => (&g.id, Variant::Group, &g.meta),
            Resource::Clone(c) => {
                // Agents of classes that cannot run unique instances (LSB,
                // systemd...) make the whole clone anonymous.
                forced_anonymous = {
                    let mut m = c.meta.clone();
                    if has_anonymous_only_class(&c.child) {
                        m.insert("globally-unique".into(), "false".into());
                    }
                    m
                };
                (&c.id, Variant::Clone, &forced_anonymous)
            }
        };
        let mut chain2: Vec<&Attrs> = vec![own_meta];
        chain2.extend_from_slice(chain);
        let defaults = &self.config.rsc_defaults;
        let get = |k: &str| meta_chain(&chain2, defaults, k);
        let mut meta = defaults.clone();
        for m in chain2.iter().rev() {
            for (k, v) in m.iter() {
                meta.insert(k.clone(), v.clone());
            }
        }
        let n_nodes = self.config.nodes.len().max(1);
        let stickiness =
            match get("resource-stickiness").or_else(|| get("default-resource-stickiness")) {
                Some(v) if v != "default" => score::parse(v).unwrap_or(0),
                _ if in_clone || variant == Variant::Clone => 1,
                _ => 0,
            };
        let target_role = get("target-role").and_then(Role::parse);
        let managed = get("is-managed").map(is_true).unwrap_or(true)
            && !get("maintenance").map(is_true).unwrap_or(false);
        let num = |k: &str, d: usize| -> usize {
            get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(|v| v.max(0) as usize)
                .unwrap_or(d)
        };
        let ix = w.rscs.len();
        let (class, params, utilization) = match res {
            Resource::Primitive(p) => (
                p.class.clone(),
                p.params.clone(),
                p.utilization
                    .iter()
                    .map(|(k, v)| (k.clone(), v.trim().parse::<i64>().unwrap_or(0)))
                    .collect(),
            ),
            _ => (String::new(), Attrs::new(), BTreeMap::new()),
        };
        let monitors: Vec<(u64, Option<Role>)> = match res {
            Resource::Primitive(p) => p
                .ops
                .iter()
                .filter(|o| o.name == "monitor" && o.interval_ms > 0)
                .filter(|o| o.attrs.get("enabled").map(|v| is_true(v)).unwrap_or(true))
                .map(|o| {
                    (
                        o.interval_ms,
                        o.attrs.get("role").and_then(|r| Role::parse(r)),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let promotable = matches!(res, Resource::Clone(c) if c.promotable);
        let unique = get("globally-unique").map(is_true).unwrap_or(false);
        let mt = match get("migration-threshold") {
            Some(v) => score::parse(v).unwrap_or(INFINITY),
            None => INFINITY,
        };
        let ft = get("failure-timeout")
            .and_then(crate::cib::parse_interval_ms)
            .map(|ms| (ms / 1000) as i64)
            .unwrap_or(0);
        let requires = get("requires");
        if class == "stonith" {
            w.have_stonith_resource = true;
        }
        let requires_quorum = match requires {
            Some("nothing") => false,
            _ => w.no_quorum_policy != NoQuorumPolicy::Ignore,
        };
        let clone_max = num("clone-max", n_nodes);
        let clone_node_max = if unique {
            num("clone-node-max", 1).max(1)
        } else {
            1
        };
        w.rscs.push(Rsc {
            id: format!("{id}{suffix}"),
            base_id: id.clone(),
            variant,
            parent,
            children: Vec::new(),
            params,
            utilization,
            monitors,
            allow_migrate: get("allow-migrate").map(is_true).unwrap_or(false),
            priority: get("priority").and_then(score::parse).unwrap_or(0),
            stickiness,
            managed,
            migration_threshold: mt,
            failure_timeout: ft,
            critical: get("critical").map(is_true).unwrap_or(true),
            target_role,
            promotable,
            unique,
            clone_max,
            clone_node_max,
            promoted_max: num("promoted-max", num("master-max", 1)),
            promoted_node_max: num("promoted-node-max", num("master-node-max", 1)),
            interleave: get("interleave").map(is_true).unwrap_or(false),
            clone_min: num("clone-min", 0),
            requires_quorum,
            clone_name: None,
            orphan: false,
            meta,
            running_on: Vec::new(),
            role: Role::Stopped,
            failed: false,
            on_fail: OnFail::Ignore,
            partial_migration: None,
            start_pending: false,
            probed_on: Vec::new(),
            active_monitors: Vec::new(),
            allowed: Vec::new(),
            this_with: Vec::new(),
            with_this: Vec::new(),
            provisional: true,
            allocating: false,
            merging: false,
            assigned: None,
            next_role: None,
            node_count: Vec::new(),
            sort_index: 0,
        });
        match res {
            Resource::Primitive(_) => {}
            Resource::Group(g) => {
                for m in &g.members {
                    let c = self.add(
                        w,
                        &Resource::Primitive(m.clone()),
                        Some(ix),
                        suffix,
                        &chain2,
                        in_clone,
                    );
                    w.rscs[ix].children.push(c);
                }
            }
            Resource::Clone(c) => {
                for i in 0..clone_max {
                    let ch = self.add(w, &c.child, Some(ix), &format!(":{i}"), &chain2, true);
                    w.rscs[ix].children.push(ch);
                }
            }
        }
        ix
    }
}

/// Whether a clone's child holds an agent class without unique instances.
fn has_anonymous_only_class(r: &Resource) -> bool {
    let anon = |class: &str| matches!(class, "lsb" | "systemd" | "service" | "upstart" | "nagios");
    match r {
        Resource::Primitive(p) => anon(&p.class),
        Resource::Group(g) => g.members.iter().any(|m| anon(&m.class)),
        Resource::Clone(c) => has_anonymous_only_class(&c.child),
    }
}

fn unpack_resources(w: &mut World, config: &Config) {
    let t = Template { config };
    let mut tops = Vec::new();
    for r in &config.resources {
        tops.push(t.add(w, r, None, "", &[], false));
    }
    // CIB order, stable-sorted by priority (highest first).
    tops.sort_by(|a, b| w.rscs[*b].priority.cmp(&w.rscs[*a].priority));
    w.top = tops;
    let n = w.nodes.len();
    let unmanage_all = w.maintenance_mode;
    for r in &mut w.rscs {
        r.allowed = vec![None; n];
        r.node_count = vec![0; n];
        if unmanage_all {
            r.managed = false;
        }
    }
    if w.symmetric {
        let base: Vec<Score> = config
            .nodes
            .iter()
            .map(|nc| nc.score.unwrap_or(0))
            .collect();
        // base is in config order; map by name
        for (ni, node) in w.nodes.clone().iter().enumerate() {
            let s = config
                .nodes
                .iter()
                .position(|nc| nc.name == node.name)
                .map(|p| base[p])
                .unwrap_or(0);
            for r in &mut w.rscs {
                r.allowed[ni] = Some(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Status

/// The result of replaying one resource's history on one node.
#[derive(Debug, Default)]
struct Replay {
    role: Option<Role>,
    active: bool,
    on_fail: Option<OnFail>,
    ban_node: bool,
    ban_all: bool,
    stop_failed: bool,
    migrated_to: Option<String>,
    migrate_from_ok: bool,
    migrate_from_failed: bool,
    probed: bool,
    /// A pending start was found.
    start_pending: bool,
    /// Recurring monitors (intervals) running since the last state change.
    monitors: Vec<u64>,
}

/// `op_status` of an operation begun and not finished (Pacemaker's
/// `PCMK_EXEC_PENDING`; its rc is 193, `PCMK_OCF_UNKNOWN`).
pub(crate) const PENDING: i32 = -1;

fn on_fail_for(w: &World, config_ops: &[crate::model::OpConfig], op: &OpRecord) -> OnFail {
    let configured = config_ops
        .iter()
        .find(|o| o.name == op.operation && o.interval_ms == op.interval_ms)
        .and_then(|o| o.attrs.get("on-fail"));
    match configured.map(String::as_str) {
        Some("ignore") => OnFail::Ignore,
        Some("block") => OnFail::Block,
        Some("stop") => OnFail::Stop,
        Some("standby") => OnFail::Standby,
        Some("fence") => {
            if w.stonith_enabled {
                OnFail::Fence
            } else {
                OnFail::Block
            }
        }
        Some("migrate") => OnFail::Migrate,
        Some("demote") => OnFail::Demote,
        Some("restart") => OnFail::Restart,
        _ => {
            if op.operation == "stop" {
                if w.stonith_enabled {
                    OnFail::Fence
                } else {
                    OnFail::Block
                }
            } else {
                OnFail::Restart
            }
        }
    }
}

fn replay(
    w: &World,
    r: RscIx,
    hist: &ResourceHistory,
    config_ops: &[crate::model::OpConfig],
) -> Replay {
    let mut ops: Vec<&OpRecord> = hist.ops.iter().collect();
    ops.sort_by_key(|o| if o.call_id < 0 { i64::MAX } else { o.call_id });
    let rsc = &w.rscs[r];
    let promotable = w.clone_of(r).map(|c| w.rscs[c].promotable).unwrap_or(false);
    let mut rp = Replay::default();
    let mut role = Role::Stopped;
    let mut on_fail: Option<OnFail> = None;
    for op in ops {
        let task = op.operation.as_str();
        let is_probe = task == "monitor" && op.interval_ms == 0;
        if is_probe {
            rp.probed = true;
        }
        // cancelled and unsupported operations say nothing
        if op.op_status == 1 || op.op_status == 3 {
            if task == "monitor" && op.interval_ms > 0 {
                rp.monitors.retain(|&ms| ms != op.interval_ms);
            }
            continue;
        }
        if op.op_status == PENDING {
            // Begun, result not recorded yet (the agent may be running, or
            // its node was lost while it ran): possibly active, as
            // Pacemaker's unpack_rsc_op treats PCMK_EXEC_PENDING. A start
            // or migration counts as done; a promote as promoted; a stop
            // or demote has not taken effect yet (our history keeps one
            // `_last_0` record, so the pending one replaced the result that
            // made it active).
            let active = if promotable {
                Role::Unpromoted
            } else {
                Role::Started
            };
            match task {
                "start" => {
                    role = role.max(active);
                    rp.start_pending = true;
                }
                "migrate_from" | "migrate_to" | "stop" => role = role.max(active),
                "promote" | "demote" => role = Role::Promoted,
                _ => {}
            }
            continue;
        }
        let expected = op.expected_rc.unwrap_or(if is_probe { 7 } else { 0 });
        let mut rc = op.rc;
        if rc == 190 {
            rc = 0;
        } else if rc == 191 {
            rc = 8;
        }
        // failure-timeout: expired failures are ignored
        let expired = |w: &World| {
            rsc.failure_timeout > 0
                && op
                    .last_rc_change
                    .is_some_and(|t| t + rsc.failure_timeout <= w.now)
        };
        #[derive(PartialEq)]
        enum Kind {
            Ok,
            Soft,
            Hard,
            Fatal,
        }
        // Done (0) and error (4) are judged by the rc against the expected
        // one; any other execution status is final.
        let kind = match op.op_status {
            0 | 4 => match rc {
                0 => {
                    if is_probe || expected == 0 || task == "stop" || expected == 7 {
                        Kind::Ok
                    } else {
                        Kind::Soft
                    }
                }
                7 => {
                    if is_probe || expected == 7 || task == "stop" {
                        Kind::Ok
                    } else {
                        Kind::Soft
                    }
                }
                8 => {
                    if is_probe || expected == 8 {
                        Kind::Ok
                    } else {
                        Kind::Soft
                    }
                }
                2..=5 => Kind::Hard,
                6 => Kind::Fatal,
                _ => Kind::Soft,
            },
            5 | 7 => Kind::Hard,
            6 => Kind::Fatal,
            _ => Kind::Soft,
        };
        if kind != Kind::Ok && expired(w) && task != "stop" {
            continue;
        }
        // A state change cancels the recurring monitors; a recurring
        // monitor's record says it runs.
        match task {
            "start" | "stop" | "promote" | "demote" | "migrate_from" | "migrate_to" => {
                rp.monitors.clear()
            }
            "monitor" if op.interval_ms > 0 && !rp.monitors.contains(&op.interval_ms) => {
                rp.monitors.push(op.interval_ms)
            }
            _ => {}
        }
        if kind == Kind::Ok {
            match task {
                "start" => {
                    role = if promotable {
                        Role::Unpromoted
                    } else {
                        Role::Started
                    };
                    on_fail = None;
                }
                "migrate_from" => {
                    role = Role::Started;
                    rp.migrate_from_ok = true;
                    on_fail = None;
                }
                "stop" => {
                    role = Role::Stopped;
                    on_fail = None;
                    rp.migrated_to = None;
                }
                "promote" => {
                    role = Role::Promoted;
                    on_fail = None;
                }
                "demote" => {
                    role = Role::Unpromoted;
                    on_fail = None;
                }
                "migrate_to" => {
                    rp.migrated_to = op.migrate_target.clone();
                    role = role.max(Role::Started);
                }
                "monitor" => {
                    if rc == 7 {
                        role = Role::Stopped;
                        if is_probe {
                            on_fail = None;
                        }
                    } else if rc == 8 {
                        role = Role::Promoted;
                    } else if role == Role::Stopped || role == Role::Promoted && is_probe {
                        role = if promotable {
                            Role::Unpromoted
                        } else {
                            Role::Started
                        };
                    }
                }
                _ => {}
            }
            continue;
        }
        // failures
        let of = on_fail_for(w, config_ops, op);
        if of == OnFail::Ignore {
            continue;
        }
        match kind {
            Kind::Hard => rp.ban_node = true,
            Kind::Fatal => rp.ban_all = true,
            _ => {}
        }
        if is_probe && rc == 5 || is_probe && kind == Kind::Hard && rc != 0 && rc != 8 {
            // not installed here: not active
            continue;
        }
        on_fail = Some(on_fail.map_or(of, |cur| cur.max(of)));
        match task {
            "stop" => {
                rp.stop_failed = true;
                role = role.max(Role::Started);
            }
            "promote" => role = Role::Promoted,
            "demote" => role = Role::Promoted,
            "migrate_from" => {
                rp.migrate_from_failed = true;
                role = role.max(Role::Started);
            }
            _ => {
                if rc == 8 || rc == 9 {
                    role = Role::Promoted;
                } else if role == Role::Stopped {
                    role = if promotable {
                        Role::Unpromoted
                    } else {
                        Role::Started
                    };
                }
            }
        }
    }
    rp.role = Some(role);
    rp.active = role != Role::Stopped;
    rp.on_fail = on_fail;
    rp
}

fn ops_index(config: &Config) -> BTreeMap<&str, &[crate::model::OpConfig]> {
    fn walk<'a>(r: &'a Resource, out: &mut BTreeMap<&'a str, &'a [crate::model::OpConfig]>) {
        match r {
            Resource::Primitive(p) => {
                out.insert(p.id.as_str(), p.ops.as_slice());
            }
            Resource::Group(g) => {
                for m in &g.members {
                    out.insert(m.id.as_str(), m.ops.as_slice());
                }
            }
            Resource::Clone(c) => walk(&c.child, out),
        }
    }
    let mut out = BTreeMap::new();
    for r in &config.resources {
        walk(r, &mut out);
    }
    out
}

fn unpack_status(w: &mut World, config: &Config, status: &Status) {
    let stop_orphans = config
        .properties
        .get("stop-orphan-resources")
        .map(|v| is_true(v))
        .unwrap_or(true);
    // id -> primitive (non-clone)
    let mut by_id: BTreeMap<String, RscIx> = BTreeMap::new();
    // base id -> instances (clone leaves)
    let mut by_base: BTreeMap<String, Vec<RscIx>> = BTreeMap::new();
    for (i, r) in w.rscs.iter().enumerate() {
        if r.variant != Variant::Primitive {
            continue;
        }
        if w.clone_of(i).is_some() {
            by_base.entry(r.base_id.clone()).or_default().push(i);
            by_id.insert(r.id.clone(), i);
        } else {
            by_id.insert(r.id.clone(), i);
        }
    }
    // Mapping (clone instance top, node) used for anonymous clones.
    let mut used_on: BTreeMap<(RscIx, NodeIx), bool> = BTreeMap::new();
    let ops_of = ops_index(config);
    // orphan id -> its resource (one per id; anonymous clone orphans one
    // per node)
    let mut orphans: BTreeMap<String, RscIx> = BTreeMap::new();
    let node_names: Vec<String> = w.nodes.iter().map(|n| n.name.clone()).collect();
    for (ni, name) in node_names.iter().enumerate() {
        let Some(st) = status.nodes.get(name) else {
            continue;
        };
        let node = &w.nodes[ni];
        // Without fencing, offline nodes' histories are not read.
        if !w.stonith_enabled && !node.online && !node.unclean {
            continue;
        }
        if !node.online && !node.unclean && !w.stonith_enabled {
            continue;
        }
        for (hid, hist) in &st.history {
            let base = hid.split(':').next().unwrap_or(hid).to_string();
            let target: Option<RscIx> = if let Some(&r) = by_id.get(hid) {
                if w.clone_of(r).is_some() && !w.rscs[w.clone_of(r).unwrap_or(r)].unique {
                    None // anonymous: map below
                } else {
                    Some(r)
                }
            } else {
                None
            };
            let target = match target {
                Some(t) => Some(t),
                None => match by_base.get(&base) {
                    Some(insts) => {
                        let clone = w.clone_of(insts[0]).unwrap_or(insts[0]);
                        if w.rscs[clone].unique {
                            by_id.get(hid).copied()
                        } else {
                            let ops = ops_of.get(base.as_str()).copied().unwrap_or(&[]);
                            let probe = replay(w, insts[0], hist, ops);
                            pick_anonymous(w, insts, ni, probe.active, &mut used_on)
                        }
                    }
                    None => None,
                },
            };
            let Some(r) = target else {
                let clone = by_base.get(&base).map(|insts| insts[0]);
                unpack_orphan(w, &mut orphans, hid, clone, hist, ni, stop_orphans);
                continue;
            };
            let ops = ops_of
                .get(w.rscs[r].base_id.as_str())
                .copied()
                .unwrap_or(&[]);
            let rp = replay(w, r, hist, ops);
            if hid != &w.rscs[r].id && (rp.active || w.rscs[r].clone_name.is_none()) {
                w.rscs[r].clone_name = Some(hid.clone());
            }
            apply_replay(w, r, ni, rp);
        }
    }
    for &r in orphans.values() {
        let rs = &w.rscs[r];
        let on: Vec<&str> = rs
            .running_on
            .iter()
            .map(|&n| w.nodes[n].name.as_str())
            .collect();
        let note = if stop_orphans {
            format!(
                "orphan {} (no longer configured) is stopped on {}",
                rs.id,
                on.join(", ")
            )
        } else {
            format!(
                "orphan {} (no longer configured) left active on {}: stop-orphan-resources=false",
                rs.id,
                on.join(", ")
            )
        };
        w.notes.push(note);
    }
    // Fail counts and migration-threshold.
    apply_fail_counts(w, status);
}

/// History of a resource the configuration does not hold, or of a clone
/// instance beyond what its clone allows (Pacemaker's
/// `process_orphan_resource` / orphan clone instances). Active, it becomes
/// a resource of its own, made from the history's agent: with
/// `stop-orphan-resources=true` (the default) banned everywhere, so it is
/// stopped; otherwise unmanaged and left running. Inactive, it says nothing.
fn unpack_orphan(
    w: &mut World,
    orphans: &mut BTreeMap<String, RscIx>,
    hid: &str,
    clone_leaf: Option<RscIx>,
    hist: &ResourceHistory,
    ni: NodeIx,
    stop: bool,
) {
    let base = hid.split(':').next().unwrap_or(hid);
    // An anonymous clone's history has no instance number: each node's
    // active copy beyond clone-max is an instance of its own, numbered
    // after the configured ones.
    let anonymous = clone_leaf
        .and_then(|l| w.clone_of(l))
        .is_some_and(|c| !w.rscs[c].unique);
    // The same history id active on several nodes (an anonymous clone
    // removed from the configuration, or a primitive active on two nodes):
    // each node's copy is an orphan of its own, with its own role, so a
    // promoted copy is demoted and each is stopped where it runs.
    let existing = if anonymous {
        None
    } else {
        orphans
            .get(hid)
            .copied()
            .filter(|&r| w.rscs[r].running_on.iter().all(|&n| n == ni))
    };
    let r = match existing {
        Some(r) => r,
        None => {
            let numbered = anonymous || orphans.contains_key(hid);
            let id = if numbered {
                let first = clone_leaf
                    .and_then(|l| w.clone_of(l))
                    .map(|c| w.rscs[c].clone_max)
                    .unwrap_or(0);
                let taken = orphans
                    .keys()
                    .filter(|k| k.split(':').next() == Some(base))
                    .count();
                (first + taken..)
                    .map(|i| format!("{base}:{i}"))
                    .find(|id| !orphans.contains_key(id) && w.rscs.iter().all(|r| &r.id != id))
                    .unwrap_or_else(|| hid.to_string())
            } else {
                hid.to_string()
            };
            let n = w.nodes.len();
            let managed = stop && !w.maintenance_mode;
            w.rscs.push(Rsc {
                id,
                base_id: base.to_string(),
                variant: Variant::Primitive,
                parent: None,
                children: Vec::new(),
                meta: Attrs::new(),
                params: Attrs::new(),
                utilization: BTreeMap::new(),
                monitors: Vec::new(),
                allow_migrate: false,
                priority: 0,
                stickiness: 0,
                managed,
                migration_threshold: INFINITY,
                failure_timeout: 0,
                critical: true,
                target_role: None,
                promotable: false,
                unique: false,
                clone_max: 0,
                clone_node_max: 1,
                promoted_max: 0,
                promoted_node_max: 0,
                interleave: false,
                clone_min: 0,
                requires_quorum: w.no_quorum_policy != NoQuorumPolicy::Ignore,
                clone_name: numbered.then(|| hid.to_string()),
                orphan: true,
                running_on: Vec::new(),
                role: Role::Stopped,
                failed: false,
                on_fail: OnFail::Ignore,
                partial_migration: None,
                start_pending: false,
                probed_on: Vec::new(),
                active_monitors: Vec::new(),
                // __orphan_do_not_run__: -INFINITY on every node
                allowed: vec![Some(if stop { -INFINITY } else { 0 }); n],
                this_with: Vec::new(),
                with_this: Vec::new(),
                provisional: true,
                allocating: false,
                merging: false,
                assigned: None,
                next_role: None,
                node_count: vec![0; n],
                sort_index: 0,
            });
            w.rscs.len() - 1
        }
    };
    let rp = replay(w, r, hist, &[]);
    if !rp.active {
        if existing.is_none() {
            w.rscs.pop();
        }
        return;
    }
    if existing.is_none() {
        let id = w.rscs[r].id.clone();
        orphans.insert(id, r);
    }
    apply_replay(w, r, ni, rp);
}

/// Maps a history entry of an anonymous clone onto an instance: the
/// instance already used on this node, else a free one.
fn pick_anonymous(
    w: &World,
    insts: &[RscIx],
    node: NodeIx,
    active: bool,
    used_on: &mut BTreeMap<(RscIx, NodeIx), bool>,
) -> Option<RscIx> {
    // Cloned groups: instances are the group instances; leaves map by base id.
    let top_inst = |leaf: RscIx| -> RscIx {
        let clone = w.clone_of(leaf).unwrap_or(leaf);
        let mut x = leaf;
        while let Some(p) = w.rscs[x].parent {
            if p == clone {
                break;
            }
            x = p;
        }
        x
    };
    // Already an instance with history (of a sibling) on this node?
    for &l in insts {
        let ti = top_inst(l);
        if let Some(flag) = used_on.get_mut(&(ti, node)) {
            let leaf_has =
                w.rscs[l].probed_on.contains(&node) || w.rscs[l].running_on.contains(&node);
            if !leaf_has {
                *flag = *flag || active;
                return Some(l);
            }
        }
    }
    let used_anywhere = |ti: RscIx, used_on: &BTreeMap<(RscIx, NodeIx), bool>| {
        used_on.iter().any(|((t, _), act)| *t == ti && *act)
    };
    if active {
        for &l in insts {
            let ti = top_inst(l);
            if !used_anywhere(ti, used_on) && !used_on.contains_key(&(ti, node)) {
                used_on.insert((ti, node), true);
                return Some(l);
            }
        }
        return None;
    }
    for &l in insts.iter() {
        let ti = top_inst(l);
        if !used_on.contains_key(&(ti, node)) && !w.rscs[l].probed_on.contains(&node) {
            used_on.insert((ti, node), false);
            return Some(l);
        }
    }
    None
}

fn apply_replay(w: &mut World, r: RscIx, ni: NodeIx, rp: Replay) {
    let n_nodes = w.nodes.len();
    if rp.probed || rp.active {
        w.rscs[r].probed_on.push(ni);
    }
    if rp.start_pending && rp.active {
        w.rscs[r].start_pending = true;
    }
    for &ms in &rp.monitors {
        w.rscs[r].active_monitors.push((ni, ms));
    }
    if rp.ban_node {
        ban(w, r, ni);
    }
    if rp.ban_all {
        for n in 0..n_nodes {
            ban(w, r, n);
        }
    }
    if rp.migrate_from_ok {
        // remember: the source of this migration is dangling if still "active" there
        w.rscs[r].partial_migration = None;
    }
    if let Some(t) = &rp.migrated_to {
        if let Some(tn) = w.node_ix(t) {
            if rp.active {
                w.rscs[r].partial_migration = Some((ni, tn));
            }
        }
    }
    if !rp.active {
        return;
    }
    let role = rp.role.unwrap_or(Role::Started);
    {
        let rs = &mut w.rscs[r];
        if !rs.running_on.contains(&ni) {
            rs.running_on.push(ni);
        }
        if role > rs.role || rs.role == Role::Stopped {
            rs.role = role;
        }
    }
    let node_online = w.nodes[ni].online;
    if !node_online && w.rscs[r].managed && !w.nodes[ni].maintenance && w.stonith_enabled {
        // thought to be active on a node that is down: fence it
        w.nodes[ni].unclean = true;
    }
    if let Some(of) = rp.on_fail {
        let rs = &mut w.rscs[r];
        rs.on_fail = rs.on_fail.max(of);
        match of {
            OnFail::Ignore => {}
            OnFail::Restart | OnFail::Demote => rs.failed = true,
            // a node that will be fenced releases what it blocked
            OnFail::Block if !(w.stonith_enabled && w.nodes[ni].unclean) => {
                rs.managed = false;
                rs.failed = true;
            }
            OnFail::Block => rs.failed = true,
            OnFail::Migrate => {
                rs.failed = true;
                ban(w, r, ni);
            }
            OnFail::Stop => {
                rs.failed = true;
                rs.target_role = Some(Role::Stopped);
            }
            OnFail::Standby => {
                rs.failed = true;
                w.nodes[ni].standby = true;
            }
            OnFail::Fence => {
                rs.failed = true;
                w.nodes[ni].unclean = true;
            }
        }
    }
    if rp.stop_failed {
        ban(w, r, ni);
    }
}

/// -INFINITY for `r` on node `n` (for an anonymous clone instance: the
/// whole clone there).
pub(crate) fn ban(w: &mut World, r: RscIx, n: NodeIx) {
    let targets = match w.clone_of(r) {
        Some(c) if !w.rscs[c].unique => {
            let mut t = w.leaves(c);
            let mut x = r;
            // the instance containers (cloned groups) and the clone itself
            while let Some(p) = w.rscs[x].parent {
                t.push(p);
                x = p;
            }
            // every instance's copy of the same member
            let base = w.rscs[r].base_id.clone();
            t.retain(|&l| w.rscs[l].variant != Variant::Primitive || w.rscs[l].base_id == base);
            t.push(c);
            t
        }
        _ => vec![r],
    };
    for t in targets {
        if let Some(s) = w.rscs[t].allowed.get_mut(n) {
            *s = Some(score::add(s.unwrap_or(0), -INFINITY));
        }
    }
}

fn apply_fail_counts(w: &mut World, status: &Status) {
    for ni in 0..w.nodes.len() {
        let name = w.nodes[ni].name.clone();
        let Some(st) = status.nodes.get(&name) else {
            continue;
        };
        // resource id as recorded -> (fail count, last failure)
        let mut per_rsc: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (k, v) in &st.transient_attributes {
            if let Some(rest) = k.strip_prefix("fail-count-") {
                let rid = rest.split('#').next().unwrap_or(rest);
                let e = per_rsc.entry(rid).or_insert((0, 0));
                e.0 = score::add(e.0, score::parse(v).unwrap_or(0));
            } else if let Some(rest) = k.strip_prefix("last-failure-") {
                let rid = rest.split('#').next().unwrap_or(rest);
                let e = per_rsc.entry(rid).or_insert((0, 0));
                e.1 = e.1.max(v.trim().parse().unwrap_or(0));
            }
        }
        if per_rsc.is_empty() {
            continue;
        }
        for r in 0..w.rscs.len() {
            if w.rscs[r].variant != Variant::Primitive {
                continue;
            }
            let threshold = w.rscs[r].migration_threshold;
            if threshold <= 0 {
                continue;
            }
            let anonymous = w.clone_of(r).map(|c| !w.rscs[c].unique).unwrap_or(false);
            let (id, base) = (&w.rscs[r].id, &w.rscs[r].base_id);
            let mut count: i64 = 0;
            let mut last: i64 = 0;
            for (rid, (c, l)) in &per_rsc {
                let hit = *rid == id.as_str()
                    || (anonymous && rid.split(':').next() == Some(base.as_str()));
                if hit {
                    count = score::add(count, *c);
                    last = last.max(*l);
                }
            }
            if count <= 0 {
                continue;
            }
            let ft = w.rscs[r].failure_timeout;
            if ft > 0 && last > 0 && w.now > last + ft {
                continue;
            }
            if count >= threshold {
                ban(w, r, ni);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Constraints

fn index_config_ids(w: &mut World) {
    let mut map = std::collections::HashMap::new();
    for (i, r) in w.rscs.iter().enumerate() {
        match w.clone_of(i) {
            None => {
                map.insert(r.id.clone(), i);
            }
            Some(c) if r.id.ends_with(":0") => {
                map.entry(r.base_id.clone()).or_insert(c);
            }
            Some(_) => {}
        }
    }
    w.by_config_id = map;
}

/// Resolves a constraint's resource id: a configured resource, or the
/// template child of a clone (which maps onto the clone).
fn resolve(w: &World, id: &str) -> Option<RscIx> {
    w.by_config_id.get(id).copied()
}

fn role_opt(r: Option<Role>) -> Option<Role> {
    match r {
        Some(Role::Started) | None => None,
        x => x,
    }
}

fn unpack_constraints(w: &mut World, config: &Config) {
    // Locations are applied in assign::apply_node_criteria (they need rules);
    // here: colocations and orders.
    let mut colocs: Vec<Coloc> = Vec::new();
    for c in &config.constraints.colocations {
        if c.score == 0 {
            continue;
        }
        let node_attribute = c.node_attribute.clone().unwrap_or_else(|| "#uname".into());
        let mut push =
            |w: &World, d: &str, p: &str, dr: Option<Role>, pr: Option<Role>, score: Score| {
                let (Some(dep), Some(pri)) = (resolve(w, d), resolve(w, p)) else {
                    return;
                };
                if dep == pri {
                    return;
                }
                let influence = c.influence.unwrap_or(w.rscs[dep].critical);
                colocs.push(Coloc {
                    id: c.id.clone(),
                    dependent: dep,
                    primary: pri,
                    score,
                    dependent_role: role_opt(dr),
                    primary_role: role_opt(pr),
                    node_attribute: node_attribute.clone(),
                    influence,
                });
            };
        match &c.form {
            ColocationForm::Pair {
                rsc,
                with_rsc,
                rsc_role,
                with_rsc_role,
            } => push(w, rsc, with_rsc, *rsc_role, *with_rsc_role, c.score),
            ColocationForm::Sets(sets) => {
                // within a sequential set: each member with the previous one
                for s in sets {
                    let score = s.score.unwrap_or(c.score);
                    if s.sequential.unwrap_or(true) {
                        for pair in s.resources.windows(2) {
                            push(w, &pair[1], &pair[0], s.role, s.role, score);
                        }
                    } else if score < 0 {
                        for (i, a) in s.resources.iter().enumerate() {
                            for b in &s.resources[i + 1..] {
                                push(w, a, b, s.role, s.role, score);
                                push(w, b, a, s.role, s.role, score);
                            }
                        }
                    }
                }
                // between sets: the earlier set depends on the later one
                for pair in sets.windows(2) {
                    let (a, b) = (&pair[0], &pair[1]);
                    if a.sequential.unwrap_or(true) {
                        if let Some(first) = a.resources.first() {
                            if b.sequential.unwrap_or(true) {
                                if let Some(last) = b.resources.last() {
                                    push(w, first, last, a.role, b.role, c.score);
                                }
                            } else {
                                for y in &b.resources {
                                    push(w, first, y, a.role, b.role, c.score);
                                }
                            }
                        }
                    } else {
                        for x in &a.resources {
                            if b.sequential.unwrap_or(true) {
                                if let Some(last) = b.resources.last() {
                                    push(w, x, last, a.role, b.role, c.score);
                                }
                            } else {
                                for y in &b.resources {
                                    push(w, x, y, a.role, b.role, c.score);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let mut attrs: Vec<String> = colocs.iter().map(|c| c.node_attribute.clone()).collect();
    attrs.push("#uname".into());
    attrs.sort();
    attrs.dedup();
    for a in attrs {
        let classes = compute_attr_class(&w.nodes, &a);
        w.attr_classes.insert(a, classes);
    }
    w.colocs = colocs;
    // Orders
    let mut orders = Vec::new();
    for o in &config.constraints.orders {
        let kind = o.kind.unwrap_or(OrderKind::Mandatory);
        let mandatory = kind == OrderKind::Mandatory;
        let symmetrical = o.symmetrical.unwrap_or(kind != OrderKind::Serialize);
        let mut push =
            |w: &World, fs: &[&String], fa: &str, t: &str, ta: &str, require_all: bool| {
                let firsts: Vec<RscIx> = fs.iter().filter_map(|f| resolve(w, f)).collect();
                let Some(then) = resolve(w, t) else {
                    return;
                };
                if firsts.is_empty() || firsts.contains(&then) {
                    return;
                }
                orders.push(Ordering {
                    id: o.id.clone(),
                    firsts,
                    first_action: fa.to_string(),
                    then,
                    then_action: ta.to_string(),
                    mandatory,
                    require_all,
                    symmetrical,
                });
            };
        match &o.form {
            OrderForm::Pair {
                first,
                then,
                first_action,
                then_action,
                require_all,
            } => {
                let fa = first_action.clone().unwrap_or_else(|| "start".into());
                let ta = then_action.clone().unwrap_or_else(|| fa.clone());
                push(w, &[first], &fa, then, &ta, require_all.unwrap_or(true));
            }
            OrderForm::Sets(sets) => {
                for s in sets {
                    if s.sequential.unwrap_or(true) {
                        let a = s.action.clone().unwrap_or_else(|| "start".into());
                        for pair in s.resources.windows(2) {
                            push(w, &[&pair[0]], &a, &pair[1], &a, true);
                        }
                    }
                }
                for pair in sets.windows(2) {
                    let (a, b) = (&pair[0], &pair[1]);
                    let fa = a.action.clone().unwrap_or_else(|| "start".into());
                    let ta = b.action.clone().unwrap_or_else(|| "start".into());
                    let require_all = a.require_all.unwrap_or(true);
                    let firsts: Vec<&String> = if a.sequential.unwrap_or(true) && require_all {
                        a.resources.last().into_iter().collect()
                    } else {
                        a.resources.iter().collect()
                    };
                    let thens: Vec<&String> = if b.sequential.unwrap_or(true) {
                        b.resources.first().into_iter().collect()
                    } else {
                        b.resources.iter().collect()
                    };
                    for t in &thens {
                        if require_all {
                            for f in &firsts {
                                push(w, &[f], &fa, t, &ta, true);
                            }
                        } else {
                            push(w, &firsts, &fa, t, &ta, false);
                        }
                    }
                }
            }
        }
    }
    w.orders = orders;
}
