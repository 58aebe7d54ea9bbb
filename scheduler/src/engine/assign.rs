//! Node scores (locations, stickiness), internal constraints of groups and
//! clones, and assignment: primaries first, dependents merged in with scaled
//! scores, the tie-break chain, utilization, clone distribution, promotion.

use super::*;
use crate::model::{LocationTarget, Role};
use crate::rules::{rule_matches, rule_score, RuleContext};
use crate::score::{self, Score, INFINITY};

// ---------------------------------------------------------------------------
// Node criteria

pub(crate) fn apply_node_criteria(w: &mut World) {
    // Unmanaged active resources stay where they are.
    for r in 0..w.rscs.len() {
        if w.rscs[r].variant == Variant::Primitive && !w.rscs[r].managed {
            for n in w.rscs[r].running_on.clone() {
                add_score(w, r, n, INFINITY);
            }
        }
    }
    // Node maintenance: resources found there become unmanaged.
    for r in 0..w.rscs.len() {
        if w.rscs[r].variant == Variant::Primitive
            && w.rscs[r].running_on.iter().any(|&n| w.nodes[n].maintenance)
        {
            w.rscs[r].managed = false;
        }
    }
    apply_stickiness(w);
    internal_constraints(w);
    sort_constraint_lists(w);
}

/// Applies the configured location constraints (needs the config's rules).
pub(crate) fn apply_locations(w: &mut World, config: &crate::model::Config) {
    for loc in &config.constraints.locations {
        if loc.rsc_pattern {
            continue;
        }
        let Some(r) = resolve_config_id(w, &loc.rsc) else {
            continue;
        };
        let promoted_only = loc.role == Some(Role::Promoted);
        let mut hits: Vec<(NodeIx, Score)> = Vec::new();
        match &loc.target {
            LocationTarget::Node { node, score } => {
                if let Some(n) = w.node_ix(node) {
                    hits.push((n, *score));
                }
            }
            LocationTarget::Rules(rules) => {
                let (params, meta) = (w.rscs[r].params.clone(), w.rscs[r].meta.clone());
                for rule in rules {
                    let promoted = promoted_only || rule.role == Some(Role::Promoted);
                    for n in 0..w.nodes.len() {
                        let ctx = RuleContext {
                            node_attrs: &w.nodes[n].attrs,
                            rsc_params: Some(&params),
                            rsc_meta: Some(&meta),
                            now: w.now,
                        };
                        if rule_matches(rule, &ctx) {
                            let s = rule_score(rule, &ctx);
                            if promoted {
                                w.promoted_locations.push((r, n, s));
                            } else {
                                hits.push((n, s));
                            }
                        }
                    }
                }
            }
        }
        for (n, s) in hits {
            if promoted_only {
                w.promoted_locations.push((r, n, s));
            } else {
                apply_location(w, r, n, s);
            }
        }
    }
}

fn resolve_config_id(w: &World, id: &str) -> Option<RscIx> {
    w.by_config_id.get(id).copied()
}

fn add_score(w: &mut World, r: RscIx, n: NodeIx, s: Score) {
    let cur = &mut w.rscs[r].allowed[n];
    *cur = Some(score::add(cur.unwrap_or(0), s));
}

fn apply_location(w: &mut World, r: RscIx, n: NodeIx, s: Score) {
    match w.rscs[r].variant {
        Variant::Primitive => add_score(w, r, n, s),
        Variant::Group => {
            add_score(w, r, n, s);
            let kids = w.rscs[r].children.clone();
            for (i, c) in kids.into_iter().enumerate() {
                apply_location(w, c, n, if i == 0 { s } else { 0 });
            }
        }
        Variant::Clone => {
            add_score(w, r, n, s);
            for c in w.rscs[r].children.clone() {
                apply_location(w, c, n, s);
            }
        }
    }
}

fn apply_stickiness(w: &mut World) {
    for r in 0..w.rscs.len() {
        let rs = &w.rscs[r];
        if rs.variant != Variant::Primitive || !rs.managed || rs.stickiness <= 0 {
            continue;
        }
        if rs.running_on.len() != 1 {
            continue;
        }
        let n = rs.running_on[0];
        if !w.symmetric && rs.allowed[n].is_none() {
            continue;
        }
        let s = rs.stickiness;
        add_score(w, r, n, s);
    }
}

fn internal_constraints(w: &mut World) {
    // Groups: each member with the previous one, ordered after it.
    for g in 0..w.rscs.len() {
        if w.rscs[g].variant != Variant::Group {
            continue;
        }
        let collocated = w.rscs[g]
            .meta
            .get("collocated")
            .map(|v| crate::cib::is_true(v))
            .unwrap_or(true);
        let ordered = w.rscs[g]
            .meta
            .get("ordered")
            .map(|v| crate::cib::is_true(v))
            .unwrap_or(true);
        let kids = w.rscs[g].children.clone();
        for pair in kids.windows(2) {
            if collocated {
                w.colocs.push(Coloc {
                    id: format!("{}-group", w.rscs[g].id),
                    dependent: pair[1],
                    primary: pair[0],
                    score: INFINITY,
                    dependent_role: None,
                    primary_role: None,
                    node_attribute: "#uname".into(),
                    influence: w.rscs[pair[1]].critical,
                });
            }
            if ordered {
                w.orders.push(Ordering {
                    id: format!("{}-group", w.rscs[g].id),
                    firsts: vec![pair[0]],
                    first_action: "start".into(),
                    then: pair[1],
                    then_action: "start".into(),
                    mandatory: true,
                    require_all: true,
                    symmetrical: true,
                });
            }
        }
    }
    // Colocations that name a group act on its members.
    for i in 0..w.colocs.len() {
        let c = w.colocs[i].clone();
        if w.rscs[c.dependent].variant == Variant::Group {
            if let Some(&first) = w.rscs[c.dependent].children.first() {
                w.colocs[i].dependent = first;
            }
        }
        if w.rscs[c.primary].variant == Variant::Group {
            let kids = &w.rscs[c.primary].children;
            let target = if c.score >= INFINITY {
                kids.last()
            } else {
                kids.first()
            };
            if let Some(&t) = target {
                w.colocs[i].primary = t;
            }
        }
    }
    for (i, c) in w.colocs.iter().enumerate() {
        w.rscs[c.dependent].this_with.push(i);
        w.rscs[c.primary].with_this.push(i);
    }
}

fn variant_rank(w: &World, r: RscIx) -> (i32, bool) {
    let rs = &w.rscs[r];
    let v = match rs.variant {
        Variant::Clone => 2,
        Variant::Group => 1,
        Variant::Primitive => 0,
    };
    (v, rs.promotable)
}

fn sort_constraint_lists(w: &mut World) {
    for r in 0..w.rscs.len() {
        let mut tw = std::mem::take(&mut w.rscs[r].this_with);
        tw.sort_by(|&a, &b| {
            let (pa, pb) = (w.colocs[a].primary, w.colocs[b].primary);
            w.rscs[pb]
                .priority
                .cmp(&w.rscs[pa].priority)
                .then(variant_rank(w, pb).cmp(&variant_rank(w, pa)))
                .then(w.rscs[pa].id.cmp(&w.rscs[pb].id))
        });
        w.rscs[r].this_with = tw;
        let mut wt = std::mem::take(&mut w.rscs[r].with_this);
        wt.sort_by(|&a, &b| {
            let (da, db) = (w.colocs[a].dependent, w.colocs[b].dependent);
            w.rscs[db]
                .priority
                .cmp(&w.rscs[da].priority)
                .then(variant_rank(w, db).cmp(&variant_rank(w, da)))
                .then(w.rscs[da].id.cmp(&w.rscs[db].id))
        });
        w.rscs[r].with_this = wt;
    }
}

// ---------------------------------------------------------------------------
// Assignment

pub(crate) fn assign_all(w: &mut World) {
    let mut order = w.top.clone();
    if w.strategy != Strategy::Default {
        sort_for_utilization(w, &mut order);
    }
    for r in order {
        assign(w, r, None);
    }
}

fn current_node(w: &World, r: RscIx) -> Option<NodeIx> {
    let rs = &w.rscs[r];
    match rs.variant {
        Variant::Primitive => rs.running_on.first().copied(),
        _ => rs.children.first().and_then(|&c| current_node(w, c)),
    }
}

fn is_running(w: &World, r: RscIx) -> bool {
    w.leaves(r)
        .iter()
        .any(|&l| !w.rscs[l].running_on.is_empty())
}

/// Node weights of a top-level resource for the allocation order under a
/// non-default placement strategy: its own table merged with what it is
/// colocated with (Pacemaker's `cmp_resources`).
fn sort_weights(w: &mut World, r: RscIx) -> Vec<Option<Score>> {
    let base = match w.rscs[r].variant {
        Variant::Group => w.rscs[r].children.first().copied().unwrap_or(r),
        _ => r,
    };
    let mut work = w.rscs[base].allowed.clone();
    if !any_available(w, &work) {
        return work;
    }
    w.rscs[base].merging = true;
    if w.rscs[r].variant == Variant::Group {
        // a group's weights carry its later members' (bans included)
        for c in w.rscs[base].with_this.clone() {
            let col = w.colocs[c].clone();
            if w.rscs[col.dependent].parent != Some(r) {
                continue;
            }
            work = merge_weights(
                w,
                col.dependent,
                work,
                &col.node_attribute,
                col.score as f64 / INFINITY as f64,
                false,
            );
        }
    }
    for c in w.rscs[base].this_with.clone() {
        let col = w.colocs[c].clone();
        work = merge_weights_dir(
            w,
            col.primary,
            work,
            &col.node_attribute,
            col.score as f64 / INFINITY as f64,
            false,
            true,
        );
    }
    w.rscs[base].merging = false;
    work
}

fn sort_for_utilization(w: &mut World, order: &mut [RscIx]) {
    let weights: std::collections::HashMap<RscIx, Vec<Option<Score>>> =
        order.iter().map(|&r| (r, sort_weights(w, r))).collect();

    // the node list: by base capacity under balanced, then name (strcmp)
    let mut nodes: Vec<NodeIx> = (0..w.nodes.len()).collect();
    let strategy = w.strategy;
    nodes.sort_by(|&a, &b| {
        let cap = if strategy == Strategy::Balanced {
            compare_capacity(w, a, b)
        } else {
            std::cmp::Ordering::Equal
        };
        cap.then_with(|| w.nodes[a].name.as_bytes().cmp(w.nodes[b].name.as_bytes()))
    });
    let w = &*w;
    let at = |r: RscIx, n: NodeIx| -> Score { weights[&r][n].unwrap_or(-INFINITY) };
    order.sort_by(|&a, &b| {
        w.rscs[b]
            .priority
            .cmp(&w.rscs[a].priority)
            .then_with(|| {
                let wa = current_node(w, a).map(|n| at(a, n)).unwrap_or(-INFINITY);
                let wb = current_node(w, b).map(|n| at(b, n)).unwrap_or(-INFINITY);
                wb.cmp(&wa)
            })
            .then_with(|| {
                for &n in &nodes {
                    let (x, y) = (at(a, n), at(b, n));
                    if x != y {
                        return y.cmp(&x);
                    }
                }
                std::cmp::Ordering::Equal
            })
    });
}

fn node_weight(w: &World, r: RscIx, n: NodeIx) -> Score {
    match w.rscs[r].allowed.get(n).copied().flatten() {
        Some(s) if w.nodes[n].available() => s,
        _ => -INFINITY,
    }
}

pub(crate) fn assign(w: &mut World, r: RscIx, prefer: Option<NodeIx>) -> Option<NodeIx> {
    match w.rscs[r].variant {
        Variant::Primitive => assign_primitive(w, r, prefer, &[]),
        Variant::Group => assign_group(w, r, prefer, &[]),
        Variant::Clone => assign_clone(w, r),
    }
}

fn assign_group(
    w: &mut World,
    g: RscIx,
    prefer: Option<NodeIx>,
    inherited: &[usize],
) -> Option<NodeIx> {
    if !w.rscs[g].provisional {
        return w.rscs[g].assigned;
    }
    if w.rscs[g].allocating {
        return None;
    }
    w.rscs[g].allocating = true;
    let mut first = None;
    let kids = w.rscs[g].children.clone();
    for (i, c) in kids.iter().enumerate() {
        let inh: &[usize] = if i == 0 { inherited } else { &[] };
        let n = assign_primitive(w, *c, prefer, inh);
        if i == 0 {
            first = n;
        }
    }
    let gr = &mut w.rscs[g];
    gr.allocating = false;
    gr.provisional = false;
    gr.assigned = first;
    first
}

fn has_influence(w: &World, c: usize) -> bool {
    let col = &w.colocs[c];
    col.influence || !is_running(w, col.primary)
}

/// Whether a colocation changes `dep`'s placement (role filters).
fn colocation_affects(w: &World, dep: RscIx, c: &Coloc) -> bool {
    let pri_next = w.rscs[c.primary].next_role;
    let dep_next = w.rscs[dep].next_role;
    let eqr = |want: Option<Role>, have: Option<Role>| want.map(|r| Some(r) == have);
    if c.score > 0 {
        if eqr(c.dependent_role, dep_next) == Some(false) {
            return false;
        }
        if eqr(c.primary_role, pri_next) == Some(false) {
            return false;
        }
    } else {
        if eqr(c.dependent_role, dep_next) == Some(true) {
            return false;
        }
        if eqr(c.primary_role, pri_next) == Some(true) {
            return false;
        }
    }
    true
}

fn any_available(w: &World, table: &[Option<Score>]) -> bool {
    table
        .iter()
        .enumerate()
        .any(|(n, s)| matches!(s, Some(s) if *s >= 0) && w.nodes[n].available())
}

/// Applies "dep with primary" to dep's node table once the primary is placed.
fn apply_coloc(w: &mut World, dep: RscIx, c: usize) {
    let col = w.colocs[c].clone();
    let pri = col.primary;
    if w.rscs[pri].variant == Variant::Clone {
        apply_coloc_with_clone(w, dep, &col);
        return;
    }
    if !colocation_affects(w, dep, &col) {
        return;
    }
    let placed = w.rscs[pri].assigned;
    if placed.is_none() && col.score < 0 {
        return;
    }
    let classes = w.attr_class(&col.node_attribute).into_owned();
    let value = placed.and_then(|p| classes[p]);
    let mut work = w.rscs[dep].allowed.clone();
    for (n, slot) in work.iter_mut().enumerate() {
        let Some(cur) = *slot else { continue };
        if placed.is_none() {
            *slot = Some(score::add(-col.score, cur));
        } else if value.is_some() && classes[n] == value {
            if col.score < INFINITY {
                *slot = Some(score::add(col.score, cur));
            }
        } else if col.score >= INFINITY {
            *slot = Some(-INFINITY);
        }
    }
    if col.score <= -INFINITY || col.score >= INFINITY || any_available(w, &work) {
        set_table(w, dep, work);
    }
}

/// Sets a node table (for a group: every member gets the same bans).
fn set_table(w: &mut World, r: RscIx, table: Vec<Option<Score>>) {
    w.rscs[r].allowed = table;
}

fn apply_coloc_with_clone(w: &mut World, dep: RscIx, col: &Coloc) {
    let clone = col.primary;
    if w.rscs[clone].provisional {
        return;
    }
    let instances = w.rscs[clone].children.clone();
    // nodes where a matching instance is placed
    let mut hits: Vec<NodeIx> = Vec::new();
    for &i in &instances {
        let Some(n) = w.rscs[i].assigned else {
            continue;
        };
        let role = w.rscs[i].next_role;
        if let Some(want) = col.primary_role {
            if Some(want) != role {
                continue;
            }
        }
        hits.push(n);
    }
    let classes = w.attr_class(&col.node_attribute).into_owned();
    let hit_classes: std::collections::HashSet<u32> =
        hits.iter().filter_map(|&h| classes[h]).collect();
    let matches_hit = |n: NodeIx| classes[n].is_some_and(|c| hit_classes.contains(&c));
    if col.primary_role.is_some() && w.rscs[clone].promotable {
        // dependent with the promoted (or unpromoted) instances
        if col.score >= INFINITY {
            let mut work = w.rscs[dep].allowed.clone();
            for (n, slot) in work.iter_mut().enumerate() {
                if slot.is_some() && !matches_hit(n) {
                    *slot = Some(-INFINITY);
                }
            }
            set_table(w, dep, work);
        } else {
            for h in hits {
                for n in 0..w.nodes.len() {
                    if classes[h].is_some()
                        && classes[h] == classes[n]
                        && w.rscs[dep].allowed[n].is_some()
                    {
                        add_score(w, dep, n, col.score);
                    }
                }
            }
        }
        return;
    }
    if col.score >= INFINITY {
        let mut work = w.rscs[dep].allowed.clone();
        for (n, slot) in work.iter_mut().enumerate() {
            if slot.is_some() && !matches_hit(n) {
                *slot = Some(-INFINITY);
            }
        }
        set_table(w, dep, work);
        return;
    }
    // finite (or -INFINITY): per instance
    for h in hits {
        let mut work = w.rscs[dep].allowed.clone();
        for (n, slot) in work.iter_mut().enumerate() {
            let Some(cur) = *slot else { continue };
            if classes[h].is_some() && classes[h] == classes[n] {
                *slot = Some(score::add(col.score, cur));
            }
        }
        if col.score <= -INFINITY || any_available(w, &work) {
            set_table(w, dep, work);
        }
    }
}

fn same_attr(w: &World, a: NodeIx, b: NodeIx, attr: &str) -> bool {
    let c = w.attr_class(attr);
    c[a].is_some() && c[a] == c[b]
}

/// Folds `src`'s node preferences into `table` with `factor`, recursing
/// through resources colocated with `src`; rolled back if no node is left.
fn merge_weights(
    w: &mut World,
    src: RscIx,
    table: Vec<Option<Score>>,
    attr: &str,
    factor: f64,
    only_positive: bool,
) -> Vec<Option<Score>> {
    merge_weights_dir(w, src, table, attr, factor, only_positive, false)
}

/// `forward`: recurse through what `src` is colocated with (its primaries)
/// instead of what is colocated with it.
fn merge_weights_dir(
    w: &mut World,
    src: RscIx,
    table: Vec<Option<Score>>,
    attr: &str,
    factor: f64,
    only_positive: bool,
    forward: bool,
) -> Vec<Option<Score>> {
    if w.rscs[src].merging {
        return table;
    }
    w.rscs[src].merging = true;
    // best weight of src per attribute class, over its available nodes
    let classes = w.attr_class(attr).into_owned();
    let mut best: std::collections::HashMap<u32, Score> = std::collections::HashMap::new();
    for (n, s) in w.rscs[src].allowed.iter().enumerate() {
        let (Some(s), Some(c)) = (*s, classes[n]) else {
            continue;
        };
        if !w.nodes[n].available() {
            continue;
        }
        let e = best.entry(c).or_insert(-INFINITY);
        *e = (*e).max(s);
    }
    let mut work = table.clone();
    for (n, slot) in work.iter_mut().enumerate() {
        let Some(cur) = *slot else { continue };
        let sc = classes[n]
            .and_then(|c| best.get(&c).copied())
            .unwrap_or(-INFINITY);
        if factor < 0.0 && sc < 0 {
            continue;
        }
        let f = factor * sc as f64;
        let mut weight = if f < 0.0 {
            (f - 0.5) as i64
        } else {
            (f + 0.5) as i64
        };
        if weight == 0 && sc != 0 {
            weight = if factor > 0.0 {
                1
            } else if factor < 0.0 {
                -1
            } else {
                0
            };
        }
        let new = score::add(weight, cur);
        if only_positive && new < 0 {
            if cur > 0 {
                *slot = Some(1);
            }
            continue;
        }
        *slot = Some(new);
    }
    if any_available(w, &work) {
        let mult = if factor < 0.0 { -1.0 } else { 1.0 };
        let links = if forward {
            w.rscs[src].this_with.clone()
        } else {
            w.rscs[src].with_this.clone()
        };
        for c in links {
            if !forward && !has_influence(w, c) {
                continue;
            }
            let col = w.colocs[c].clone();
            let other = if forward { col.primary } else { col.dependent };
            work = merge_weights_dir(
                w,
                other,
                work,
                &col.node_attribute,
                mult * col.score as f64 / INFINITY as f64,
                only_positive,
                forward,
            );
        }
    } else {
        w.rscs[src].merging = false;
        return table;
    }
    w.rscs[src].merging = false;
    work
}

/// Folds the preferences of what is colocated with `r` (and has influence)
/// into `r`'s own node table; a clone takes only non-negative merges.
fn merge_dependents(w: &mut World, r: RscIx, only_positive: bool) {
    for c in w.rscs[r].with_this.clone() {
        if w.colocs[c].score == 0 || !has_influence(w, c) {
            continue;
        }
        let col = w.colocs[c].clone();
        let table = w.rscs[r].allowed.clone();
        w.rscs[r].allowed = merge_weights(
            w,
            col.dependent,
            table,
            &col.node_attribute,
            col.score as f64 / INFINITY as f64,
            only_positive,
        );
    }
}

fn assign_primitive(
    w: &mut World,
    r: RscIx,
    prefer: Option<NodeIx>,
    inherited: &[usize],
) -> Option<NodeIx> {
    if !w.rscs[r].provisional {
        return w.rscs[r].assigned;
    }
    if w.rscs[r].allocating {
        return None;
    }
    w.rscs[r].allocating = true;
    let mut this_with: Vec<usize> = w.rscs[r].this_with.clone();
    this_with.extend_from_slice(inherited);
    // Primaries first.
    for c in this_with {
        let pri = w.colocs[c].primary;
        if w.colocs[c].score == 0 {
            continue;
        }
        assign(w, pri, None);
        apply_coloc(w, r, c);
    }
    // Dependents' preferences.
    merge_dependents(w, r, false);
    if w.rscs[r].target_role == Some(Role::Stopped) {
        for s in w.rscs[r].allowed.iter_mut().flatten() {
            *s = -INFINITY;
        }
    }
    let chosen = if !w.rscs[r].managed {
        // stays where it is, in its role
        let cur = w.rscs[r].running_on.first().copied();
        w.rscs[r].next_role = Some(if cur.is_some() {
            w.rscs[r].role
        } else {
            Role::Stopped
        });
        cur
    } else if w.stop_all {
        None
    } else if w.no_quorum_policy == NoQuorumPolicy::Freeze
        && !w.have_quorum
        && w.rscs[r].requires_quorum
    {
        // frozen: keep the current node if still usable, never start anew
        w.rscs[r]
            .running_on
            .first()
            .copied()
            .filter(|&n| w.nodes[n].online)
    } else {
        let mut pref = prefer;
        if w.strategy != Strategy::Default {
            if let Some(p) = ban_insufficient_capacity(w, r) {
                pref = pref.or(Some(p));
            }
        }
        best_node(w, r, pref)
    };
    finalize(w, r, chosen);
    w.rscs[r].allocating = false;
    chosen
}

fn finalize(w: &mut World, r: RscIx, chosen: Option<NodeIx>) {
    let rs = &mut w.rscs[r];
    rs.provisional = false;
    rs.assigned = chosen;
    match chosen {
        Some(n) => {
            if rs.next_role.is_none() || rs.next_role == Some(Role::Stopped) {
                rs.next_role = Some(Role::Started);
            }
            let util = rs.utilization.clone();
            let node = &mut w.nodes[n];
            node.num_resources += 1;
            for (k, v) in util {
                *node.capacity.entry(k).or_insert(0) -= v;
            }
        }
        None => rs.next_role = Some(Role::Stopped),
    }
}

fn unfinalize(w: &mut World, r: RscIx) {
    if let Some(n) = w.rscs[r].assigned.take() {
        let util = w.rscs[r].utilization.clone();
        let node = &mut w.nodes[n];
        node.num_resources = node.num_resources.saturating_sub(1);
        for (k, v) in util {
            *node.capacity.entry(k).or_insert(0) += v;
        }
    }
    w.rscs[r].provisional = true;
    w.rscs[r].next_role = None;
}

/// Free-capacity vote between two nodes (balanced).
fn compare_capacity(w: &World, a: NodeIx, b: NodeIx) -> std::cmp::Ordering {
    let mut vote = 0i32;
    let keys: std::collections::BTreeSet<&String> = w.nodes[a]
        .capacity
        .keys()
        .chain(w.nodes[b].capacity.keys())
        .collect();
    for k in keys {
        let x = w.nodes[a].capacity.get(k).copied().unwrap_or(0);
        let y = w.nodes[b].capacity.get(k).copied().unwrap_or(0);
        if x > y {
            vote -= 1;
        } else if x < y {
            vote += 1;
        }
    }
    vote.cmp(&0)
}

fn best_node(w: &World, r: RscIx, prefer: Option<NodeIx>) -> Option<NodeIx> {
    let cur = w.rscs[r].running_on.first().copied();
    let strategy = w.strategy;
    let cmp = |a: NodeIx, b: NodeIx| {
        let (wa, wb) = (node_weight(w, r, a), node_weight(w, r, b));
        wb.cmp(&wa)
            .then_with(|| {
                if strategy == Strategy::Balanced {
                    compare_capacity(w, a, b)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| {
                if strategy == Strategy::Minimal {
                    std::cmp::Ordering::Equal
                } else {
                    w.nodes[a].num_resources.cmp(&w.nodes[b].num_resources)
                }
            })
            .then_with(|| {
                if strategy == Strategy::Minimal {
                    std::cmp::Ordering::Equal
                } else {
                    (Some(b) == cur).cmp(&(Some(a) == cur))
                }
            })
            .then_with(|| w.nodes[a].name.as_bytes().cmp(w.nodes[b].name.as_bytes()))
    };
    // The first node in that order (a linear scan; no need to sort them all).
    let cands: Vec<NodeIx> = (0..w.nodes.len())
        .filter(|&n| w.rscs[r].allowed[n].is_some())
        .collect();
    let best = cands.iter().copied().min_by(|&a, &b| cmp(a, b))?;
    let best_w = node_weight(w, r, best);
    let mut chosen = best;
    let unique_instance = w.clone_of(r).map(|c| w.rscs[c].unique).unwrap_or(false);
    if let Some(p) = prefer.filter(|&p| w.rscs[r].allowed[p].is_some()) {
        if w.nodes[p].available() && node_weight(w, r, p) >= best_w {
            chosen = p;
        }
    }
    if chosen == best && best_w > 0 && !unique_instance {
        if let Some(c) = cur {
            if node_weight(w, r, c) == best_w && w.nodes[c].available() {
                chosen = c;
            }
        }
    }
    let cw = node_weight(w, r, chosen);
    if cw < 0 || !w.nodes[chosen].available() {
        return None;
    }
    Some(chosen)
}

/// Resources that must land with `r` (mandatory colocations, both ways),
/// still unassigned.
fn colocated_group(w: &World, r: RscIx) -> Vec<RscIx> {
    let mut seen = vec![r];
    let mut stack = vec![r];
    while let Some(x) = stack.pop() {
        let links = w.rscs[x]
            .this_with
            .iter()
            .map(|&c| w.colocs[c].primary)
            .chain(w.rscs[x].with_this.iter().map(|&c| w.colocs[c].dependent))
            .zip(
                w.rscs[x]
                    .this_with
                    .iter()
                    .chain(w.rscs[x].with_this.iter())
                    .map(|&c| w.colocs[c].score),
            )
            .collect::<Vec<_>>();
        for (y, s) in links {
            if s >= INFINITY
                && !seen.contains(&y)
                && w.rscs[y].variant == Variant::Primitive
                && w.rscs[y].provisional
            {
                seen.push(y);
                stack.push(y);
            }
        }
    }
    seen
}

fn fits(w: &World, n: NodeIx, need: &BTreeMap<String, i64>) -> bool {
    need.iter()
        .all(|(k, v)| w.nodes[n].capacity.get(k).copied().unwrap_or(0) >= *v)
}

/// Bans nodes without the capacity `r` (and what must go with it) needs;
/// returns the node with most free capacity when no node can hold it all.
fn ban_insufficient_capacity(w: &mut World, r: RscIx) -> Option<NodeIx> {
    let group = colocated_group(w, r);
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    for &g in &group {
        for (k, v) in &w.rscs[g].utilization {
            *total.entry(k.clone()).or_insert(0) += v;
        }
    }
    let own = w.rscs[r].utilization.clone();
    // only nodes the resource can use count (available, score >= 0)
    let nodes: Vec<NodeIx> = (0..w.nodes.len())
        .filter(|&n| w.rscs[r].allowed[n].is_some_and(|s| s >= 0) && w.nodes[n].available())
        .collect();
    let any_all = nodes.iter().any(|&n| fits(w, n, &total));
    let need = if any_all { &total } else { &own };
    for &n in &nodes {
        if !fits(w, n, need) {
            w.rscs[r].allowed[n] = Some(-INFINITY);
        }
    }
    if any_all {
        return None;
    }
    // most free capacity among available nodes
    let mut best: Option<NodeIx> = None;
    for &n in &nodes {
        best = match best {
            None => Some(n),
            Some(b) => {
                if compare_capacity(w, n, b) == std::cmp::Ordering::Less {
                    Some(n)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

// ---------------------------------------------------------------------------
// Clones

fn instance_failed(w: &World, i: RscIx) -> bool {
    w.leaves(i).iter().any(|&l| w.rscs[l].failed)
}

fn instance_nodes(w: &World, i: RscIx) -> Vec<NodeIx> {
    let mut out: Vec<NodeIx> = Vec::new();
    for l in w.leaves(i) {
        for &n in &w.rscs[l].running_on {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

fn instance_number(id: &str) -> u64 {
    id.rsplit(':')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn sort_instances(w: &World, clone: RscIx, insts: &mut [RscIx]) {
    insts.sort_by(|&a, &b| {
        let (na, nb) = (instance_nodes(w, a), instance_nodes(w, b));
        let ord = |x: bool, y: bool| y.cmp(&x);
        let mut o = std::cmp::Ordering::Equal;
        if !na.is_empty() && !nb.is_empty() {
            o = na.len().cmp(&nb.len());
        }
        let ca = na.first().map(|&n| w.nodes[n].available()).unwrap_or(false);
        let cb = nb.first().map(|&n| w.nodes[n].available()).unwrap_or(false);
        o.then(ord(ca, cb))
            .then(w.rscs[b].priority.cmp(&w.rscs[a].priority))
            .then(ord(!na.is_empty(), !nb.is_empty()))
            .then_with(|| {
                let pa = na
                    .first()
                    .map(|&n| w.rscs[clone].allowed[n].is_some_and(|s| s >= 0))
                    .unwrap_or(false);
                let pb = nb
                    .first()
                    .map(|&n| w.rscs[clone].allowed[n].is_some_and(|s| s >= 0))
                    .unwrap_or(false);
                ord(pa, pb)
            })
            .then(ord(!instance_failed(w, a), !instance_failed(w, b)))
            .then(instance_number(&w.rscs[a].id).cmp(&instance_number(&w.rscs[b].id)))
    });
}

fn add_promotion_scores(w: &mut World, clone: RscIx) {
    for i in w.rscs[clone].children.clone() {
        for n in 0..w.nodes.len() {
            if !w.nodes[n].available() || w.rscs[i].allowed[n].is_none() {
                continue;
            }
            if let Some(s) = promotion_score(w, clone, i, n) {
                if s > 0 {
                    for l in w.leaves(i) {
                        if w.rscs[l].allowed[n].is_some() {
                            add_score(w, l, n, s);
                        }
                    }
                    if w.rscs[i].variant != Variant::Primitive {
                        add_score(w, i, n, s);
                    }
                }
            }
        }
    }
}

/// The `master-<name>` node attribute for an instance, if it applies there.
fn promotion_score(w: &World, clone: RscIx, inst: RscIx, n: NodeIx) -> Option<Score> {
    let unique = w.rscs[clone].unique;
    let leaves = w.leaves(inst);
    let leaf = *leaves.first()?;
    if !unique {
        // This instance's status is known nowhere yet (e.g. a new
        // instance): every node's promotion score counts for it.
        let any_probed = w
            .leaves(inst)
            .iter()
            .any(|&l| !w.rscs[l].probed_on.is_empty() || !w.rscs[l].running_on.is_empty());
        let active_here = w.rscs[clone]
            .children
            .iter()
            .find(|&&i| instance_nodes(w, i).contains(&n))
            .copied();
        let applies = match active_here {
            Some(a) => a == inst,
            None => {
                !any_probed
                    || w.rscs[clone].children.iter().any(|&i| {
                        w.leaves(i)
                            .iter()
                            .any(|&l| w.rscs[l].probed_on.contains(&n))
                    })
            }
        };
        if !applies {
            return None;
        }
    }
    let attrs = &w.nodes[n].attrs;
    let id = w.rscs[leaf].clone_name.as_ref().unwrap_or(&w.rscs[leaf].id);
    let base = &w.rscs[leaf].base_id;
    let v = attrs.get(&format!("master-{id}")).or_else(|| {
        if unique {
            None
        } else {
            attrs.get(&format!("master-{base}"))
        }
    })?;
    Some(score::parse(v).unwrap_or(0))
}

fn assign_clone(w: &mut World, clone: RscIx) -> Option<NodeIx> {
    if !w.rscs[clone].provisional || w.rscs[clone].allocating {
        return None;
    }
    w.rscs[clone].allocating = true;
    if w.rscs[clone].promotable {
        add_promotion_scores(w, clone);
    }
    for c in w.rscs[clone].this_with.clone() {
        if w.colocs[c].score != 0 {
            let p = w.colocs[c].primary;
            assign(w, p, None);
        }
    }
    merge_dependents(w, clone, true);
    let mut insts = w.rscs[clone].children.clone();
    sort_instances(w, clone, &mut insts);
    distribute(w, clone, &insts);
    if w.rscs[clone].promotable {
        set_instance_roles(w, clone);
    }
    w.rscs[clone].allocating = false;
    w.rscs[clone].provisional = false;
    None
}

fn distribute(w: &mut World, clone: RscIx, insts: &[RscIx]) {
    let max = w.rscs[clone].clone_max;
    let node_max = w.rscs[clone].clone_node_max;
    let available = (0..w.nodes.len())
        .filter(|&n| w.rscs[clone].allowed[n].is_some() && w.nodes[n].available())
        .count();
    let loop_max = max.checked_div(available).unwrap_or(1).max(1);
    let all_coloc = max < available;
    // The clone's colocations, handed to each instance.
    let inherited: Vec<usize> = w.rscs[clone]
        .this_with
        .iter()
        .copied()
        .filter(|&c| all_coloc || w.colocs[c].score < 0 || w.colocs[c].score >= INFINITY)
        .collect();
    let mut allocated = 0usize;
    // Pass 1: keep active instances where they are.
    for &i in insts {
        if !w.rscs[i].provisional || instance_failed(w, i) {
            continue;
        }
        let nodes = instance_nodes(w, i);
        let Some(&cur) = nodes.first() else { continue };
        let parent_ok = w.rscs[clone].allowed[cur].is_some_and(|s| s >= 0);
        if parent_ok
            && w.nodes[cur].available()
            && w.rscs[clone].node_count[cur] < loop_max
            && allocated < max
            && allocate_instance(w, clone, i, Some(cur), &inherited, loop_max).is_some()
        {
            allocated += 1;
        }
    }
    // Pass 2: the rest.
    for &i in insts {
        if !w.rscs[i].provisional {
            continue;
        }
        if allocated >= max {
            for l in w.leaves(i) {
                if w.rscs[l].provisional {
                    finalize(w, l, None);
                }
            }
            if w.rscs[i].variant == Variant::Group {
                w.rscs[i].provisional = false;
                w.rscs[i].assigned = None;
            }
            continue;
        }
        if allocate_instance(w, clone, i, None, &inherited, node_max).is_some() {
            allocated += 1;
        }
    }
}

fn allocate_instance(
    w: &mut World,
    clone: RscIx,
    inst: RscIx,
    prefer: Option<NodeIx>,
    inherited: &[usize],
    limit: usize,
) -> Option<NodeIx> {
    if let Some(p) = prefer {
        if w.rscs[inst].allowed[p].is_none_or(|s| s < 0) {
            return None;
        }
    }
    // can_run_instance: ban nodes the clone cannot use or that are full
    let subtree: Vec<RscIx> = {
        let mut v = vec![inst];
        v.extend(w.rscs[inst].children.iter().copied());
        v
    };
    let backup: Vec<(RscIx, Vec<Option<Score>>)> = subtree
        .iter()
        .map(|&x| (x, w.rscs[x].allowed.clone()))
        .collect();
    for n in 0..w.nodes.len() {
        if w.rscs[inst].allowed[n].is_none() {
            continue;
        }
        let parent_ok = w.rscs[clone].allowed[n].is_some_and(|s| s >= 0);
        if !w.nodes[n].available() || !parent_ok || w.rscs[clone].node_count[n] >= limit {
            for &x in &subtree {
                if w.rscs[x].allowed[n].is_some() {
                    w.rscs[x].allowed[n] = Some(-INFINITY);
                }
            }
        }
    }
    let chosen = match w.rscs[inst].variant {
        Variant::Primitive => assign_primitive(w, inst, prefer, inherited),
        Variant::Group => assign_group(w, inst, prefer, inherited),
        Variant::Clone => None,
    };
    if let (Some(c), Some(p)) = (chosen, prefer) {
        if c != p {
            for (x, t) in backup {
                w.rscs[x].allowed = t;
            }
            for l in w.leaves(inst) {
                unfinalize(w, l);
            }
            w.rscs[inst].provisional = true;
            w.rscs[inst].assigned = None;
            return None;
        }
    }
    if let Some(c) = chosen {
        w.rscs[clone].node_count[c] += 1;
    }
    chosen
}

/// Pacemaker's `sort_promotable_instances`: each placed instance's
/// priority is added to the clone's own weight on its node; the
/// preferences of what the promoted role is colocated with, and (non-negative,
/// with influence) of what is colocated with the promoted role, are merged
/// in; the result is the instance's sort index. So a group colocated with
/// the promoted role pulls the promotion to the node it prefers (a
/// `cli-prefer` of the group fails DRBD back with it).
fn sort_promotable_instances(w: &mut World, clone: RscIx, insts: &[RscIx]) {
    for &i in insts {
        let Some(n) = w.rscs[i].assigned else {
            continue;
        };
        let prio = w.rscs[i].sort_index;
        if prio < 0 {
            continue;
        }
        let cur = w.rscs[clone].allowed[n].unwrap_or(0);
        w.rscs[clone].allowed[n] = Some(score::add(prio, cur));
    }
    // What the promoted role is colocated with (forward), then what is
    // colocated with the promoted role (non-negative, with influence).
    let links: Vec<(usize, bool)> = w.rscs[clone]
        .this_with
        .iter()
        .map(|&c| (c, true))
        .chain(w.rscs[clone].with_this.iter().map(|&c| (c, false)))
        .collect();
    for (c, forward) in links {
        let col = w.colocs[c].clone();
        let applies = if forward {
            col.dependent_role == Some(Role::Promoted)
        } else {
            col.primary_role == Some(Role::Promoted) && has_influence(w, c)
        };
        if !applies || col.score == 0 {
            continue;
        }
        let src = if forward { col.primary } else { col.dependent };
        let table = w.rscs[clone].allowed.clone();
        w.rscs[clone].allowed = merge_weights_dir(
            w,
            src,
            table,
            &col.node_attribute,
            col.score as f64 / INFINITY as f64,
            !forward,
            forward,
        );
    }
    for &i in insts {
        let leaves = w.leaves(i);
        let unmanaged = leaves.iter().any(|&l| !w.rscs[l].managed);
        let promoted = leaves.iter().any(|&l| w.rscs[l].role == Role::Promoted);
        if unmanaged && promoted {
            w.rscs[i].sort_index = INFINITY;
            continue;
        }
        let Some(n) = w.rscs[i].assigned else {
            continue;
        };
        if w.rscs[i].sort_index >= 0 {
            w.rscs[i].sort_index = w.rscs[clone].allowed[n].unwrap_or(0);
        }
    }
}

fn set_instance_roles(w: &mut World, clone: RscIx) {
    let insts = w.rscs[clone].children.clone();
    let no_quorum_freeze = !w.have_quorum && w.no_quorum_policy == NoQuorumPolicy::Freeze;
    for &i in &insts {
        let node = w.rscs[i].assigned;
        let leaves = w.leaves(i);
        let mut prio = match node {
            None => -INFINITY,
            Some(n) => {
                let explicit = leaves.iter().any(|&l| {
                    matches!(
                        w.rscs[l].target_role,
                        Some(Role::Unpromoted) | Some(Role::Stopped)
                    )
                });
                if explicit {
                    -INFINITY
                } else {
                    promotion_score(w, clone, i, n).unwrap_or(-1)
                }
            }
        };
        if let Some(n) = node {
            for &(r, ln, s) in &w.promoted_locations.clone() {
                if ln == n && (r == clone || r == i || leaves.contains(&r)) {
                    prio = score::add(prio, s);
                }
            }
            // colocations of the promoted role of this clone with others
            for c in w.rscs[clone].this_with.clone() {
                let col = w.colocs[c].clone();
                let unpromoted = col.dependent_role == Some(Role::Unpromoted);
                if col.dependent_role != Some(Role::Promoted) && !unpromoted {
                    continue;
                }
                let pri = col.primary;
                let pri_nodes: Vec<NodeIx> = if w.rscs[pri].variant == Variant::Clone {
                    w.rscs[pri]
                        .children
                        .iter()
                        .filter(|&&x| {
                            col.primary_role.is_none() || w.rscs[x].next_role == col.primary_role
                        })
                        .filter_map(|&x| w.rscs[x].assigned)
                        .collect()
                } else {
                    w.rscs[pri].assigned.into_iter().collect()
                };
                let together = pri_nodes
                    .iter()
                    .any(|&p| same_attr(w, p, n, &col.node_attribute));
                if unpromoted {
                    // where the unpromoted side must be, promotion is disfavoured
                    if together {
                        prio = score::add(prio, -col.score);
                    }
                } else if together {
                    prio = score::add(prio, col.score);
                } else if col.score >= INFINITY {
                    prio = -INFINITY;
                }
            }
        }
        w.rscs[i].sort_index = prio;
    }
    // Pacemaker keeps an instance's promotion priority as its `priority`,
    // which the instance comparison below breaks ties with.
    for &i in &insts {
        if w.rscs[i].assigned.is_some() {
            w.rscs[i].priority = w.rscs[i].sort_index;
        }
    }
    sort_promotable_instances(w, clone, &insts);
    let mut order = insts.clone();
    sort_instances(w, clone, &mut order);
    let current_role = |w: &World, i: RscIx| {
        w.leaves(i)
            .iter()
            // a current Started counts as Unpromoted (Pacemaker relabels it)
            .map(|&l| match w.rscs[l].role {
                Role::Started => Role::Unpromoted,
                r => r,
            })
            .max()
            .unwrap_or(Role::Stopped)
    };
    order.sort_by(|&a, &b| {
        w.rscs[b]
            .sort_index
            .cmp(&w.rscs[a].sort_index)
            .then(current_role(w, b).cmp(&current_role(w, a)))
    });
    let mut promoted = 0usize;
    let mut per_node = vec![0usize; w.nodes.len()];
    let max = w.rscs[clone].promoted_max;
    let node_max = w.rscs[clone].promoted_node_max;
    for i in order {
        let Some(n) = w.rscs[i].assigned else {
            continue;
        };
        let leaves = w.leaves(i);
        let currently_promoted = leaves.iter().any(|&l| w.rscs[l].role == Role::Promoted);
        let managed = leaves.iter().all(|&l| w.rscs[l].managed);
        let ok = w.rscs[i].sort_index >= 0
            && promoted < max
            && per_node[n] < node_max
            && (managed || currently_promoted)
            && (!no_quorum_freeze || currently_promoted);
        let unmanaged_keep = !managed;
        let role = if unmanaged_keep {
            if currently_promoted {
                Role::Promoted
            } else {
                Role::Unpromoted
            }
        } else if ok {
            Role::Promoted
        } else {
            Role::Unpromoted
        };
        if role == Role::Promoted {
            promoted += 1;
            per_node[n] += 1;
        }
        w.rscs[i].next_role = Some(role);
        for l in leaves {
            w.rscs[l].next_role = Some(role);
        }
    }
}
