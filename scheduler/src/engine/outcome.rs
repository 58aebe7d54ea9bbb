//! Actions and outcome: turn (current, assigned) into stop/start/promote/
//! demote/fence actions, decide which can run (quorum, fencing, mandatory
//! orders, mandatory colocations), and compute the placement reached when
//! every runnable action succeeds.

use std::collections::BTreeMap;

use super::*;
use crate::model::Role;
use crate::transition::{Action, ActionKind, PlacedResource, Placement, Transition};

/// Where a leaf ends up.
#[derive(Debug, Clone)]
struct Fate {
    /// Final nodes and role.
    nodes: Vec<NodeIx>,
    role: Role,
    /// A start (or recovery) at `target` was planned.
    start_at: Option<NodeIx>,
    /// Planned stops.
    stops: Vec<NodeIx>,
}

pub(crate) fn build(w: &mut World, with_scores: bool) -> Transition {
    let fenced: Vec<bool> = (0..w.nodes.len())
        .map(|n| w.nodes[n].unclean && w.can_fence(n))
        .collect();
    for (n, f) in fenced.iter().enumerate() {
        w.nodes[n].fence = *f;
    }
    let no_quorum_stop = !w.have_quorum
        && matches!(
            w.no_quorum_policy,
            NoQuorumPolicy::Stop | NoQuorumPolicy::Suicide | NoQuorumPolicy::Demote
        );
    let no_quorum = !w.have_quorum && w.no_quorum_policy != NoQuorumPolicy::Ignore;
    let leaves: Vec<RscIx> = (0..w.rscs.len())
        .filter(|&r| w.rscs[r].variant == Variant::Primitive)
        .collect();
    let mut fate: BTreeMap<RscIx, Fate> = BTreeMap::new();
    for &r in &leaves {
        let rs = &w.rscs[r];
        let cur: Vec<NodeIx> = rs.running_on.clone();
        // Resources on unclean nodes that cannot be fenced stay there.
        let stuck: Vec<NodeIx> = cur
            .iter()
            .copied()
            .filter(|&n| w.nodes[n].unclean && !fenced[n])
            .collect();
        if !rs.managed {
            fate.insert(
                r,
                Fate {
                    nodes: cur.iter().copied().filter(|&n| !fenced[n]).collect(),
                    role: rs.role,
                    start_at: None,
                    stops: Vec::new(),
                },
            );
            continue;
        }
        let mut target = rs.assigned;
        let mut role = rs.next_role.unwrap_or(Role::Started);
        if role == Role::Stopped {
            target = None;
        }
        if no_quorum && rs.requires_quorum {
            match w.no_quorum_policy {
                NoQuorumPolicy::Freeze => {
                    // nothing new starts; running resources stay
                    if target.is_some_and(|t| !cur.contains(&t)) {
                        target = None;
                    }
                    if role == Role::Promoted && rs.role != Role::Promoted {
                        role = Role::Unpromoted;
                    }
                }
                NoQuorumPolicy::Demote if w.clone_of(r).is_some_and(|c| w.rscs[c].promotable) => {
                    if target.is_some_and(|t| !cur.contains(&t)) {
                        target = None;
                    }
                    if role == Role::Promoted {
                        role = Role::Unpromoted;
                    }
                }
                _ if no_quorum_stop => target = None,
                _ => {}
            }
        }
        if !stuck.is_empty() {
            // cannot be stopped: nothing else may start it
            let keep: Vec<NodeIx> = cur.iter().copied().filter(|&n| !fenced[n]).collect();
            fate.insert(
                r,
                Fate {
                    nodes: keep,
                    role: rs.role,
                    start_at: None,
                    stops: Vec::new(),
                },
            );
            continue;
        }
        let staying = target.is_some_and(|t| cur == vec![t]) && !rs.failed;
        let stops: Vec<NodeIx> = if staying {
            Vec::new()
        } else {
            cur.iter().copied().filter(|&n| !fenced[n]).collect()
        };
        let start_at = if staying { None } else { target };
        let nodes: Vec<NodeIx> = target.into_iter().collect();
        let role = if nodes.is_empty() {
            Role::Stopped
        } else {
            role
        };
        fate.insert(
            r,
            Fate {
                nodes,
                role,
                start_at,
                stops,
            },
        );
    }

    // Mandatory orders and colocations: a start after something that will
    // not be active cannot run. Iterate to a fixpoint.
    let orders = w.orders.clone();
    let colocs = w.colocs.clone();
    let mut notes: Vec<String> = Vec::new();
    for _ in 0..(leaves.len() + 2) {
        let mut changed = false;
        for o in orders.iter().filter(|o| o.mandatory) {
            if !matches!(o.then_action.as_str(), "start" | "promote") {
                continue;
            }
            if !matches!(o.first_action.as_str(), "start" | "promote") {
                continue;
            }
            let want_promoted = o.first_action == "promote";
            let then_leaves = w.leaves(o.then);
            let then_clone = w.rscs[o.then].variant == Variant::Clone;
            let satisfied_on = |fate: &BTreeMap<RscIx, Fate>, node: Option<NodeIx>| -> bool {
                // A blocked resource (failed and unmanaged) stays where it is,
                // but its start cannot run: nothing ordered after it starts.
                let active = |l: &RscIx| {
                    let blocked = w.rscs[*l].failed && !w.rscs[*l].managed;
                    !blocked
                        && fate.get(l).is_some_and(|f| {
                            !f.nodes.is_empty() && (!want_promoted || f.role == Role::Promoted)
                        })
                };
                let active_on = |l: &RscIx, n: NodeIx| {
                    active(l) && fate.get(l).is_some_and(|f| f.nodes.contains(&n))
                };
                let one = |first: RscIx| -> bool {
                    match w.rscs[first].variant {
                        Variant::Clone => {
                            let fc = &w.rscs[first];
                            let interleave =
                                then_clone && w.rscs[o.then].interleave && fc.clone_min == 0;
                            let full = |i: &RscIx, n: Option<NodeIx>| {
                                w.leaves(*i).iter().all(|l| match n {
                                    Some(n) => active_on(l, n),
                                    None => active(l),
                                })
                            };
                            if !o.require_all {
                                fc.children.iter().any(|i| full(i, None))
                            } else if interleave && node.is_some() {
                                fc.children.iter().any(|i| full(i, node))
                            } else {
                                let n_active = fc.children.iter().filter(|i| full(i, None)).count();
                                n_active >= fc.clone_min.max(1)
                            }
                        }
                        _ => w.leaves(first).iter().all(active),
                    }
                };
                if o.require_all {
                    o.firsts.iter().all(|&f| one(f))
                } else {
                    o.firsts.iter().any(|&f| one(f))
                }
            };
            for &t in &then_leaves {
                let Some(f) = fate.get(&t) else { continue };
                if f.nodes.is_empty() || !w.rscs[t].managed {
                    continue;
                }
                let node = f.nodes.first().copied();
                let starting = f.start_at.is_some();
                if satisfied_on(&fate, node) || (!starting && !o.symmetrical) {
                    continue;
                }
                let Some(f) = fate.get_mut(&t) else { continue };
                if o.then_action == "promote" {
                    if f.role == Role::Promoted {
                        f.role = Role::Unpromoted;
                        changed = true;
                    }
                } else {
                    notes.push(format!(
                        "{} cannot run: mandatory order '{}' waits for what cannot run",
                        w.rscs[t].id, o.id
                    ));
                    f.nodes.clear();
                    f.role = Role::Stopped;
                    f.start_at = None;
                    changed = true;
                }
            }
        }
        for c in colocs.iter().filter(|c| c.score >= crate::score::INFINITY) {
            if w.rscs[c.primary].variant != Variant::Primitive {
                continue;
            }
            let pri_active = fate.get(&c.primary).is_some_and(|f| !f.nodes.is_empty());
            let pri_assigned = w.rscs[c.primary].assigned.is_some();
            if pri_active || !pri_assigned {
                continue;
            }
            for d in w.leaves(c.dependent) {
                if let Some(f) = fate.get_mut(&d) {
                    if !f.nodes.is_empty() && w.rscs[d].managed {
                        notes.push(format!(
                            "{} cannot run: colocation '{}' with {}, which cannot run",
                            w.rscs[d].id, c.id, w.rscs[c.primary].id
                        ));
                        f.nodes.clear();
                        f.role = Role::Stopped;
                        f.start_at = None;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }

    notes.sort();
    notes.dedup();
    w.notes.extend(notes);

    // Actions
    let mut t = Transition::default();
    let mut fence_ids: BTreeMap<NodeIx, usize> = BTreeMap::new();
    for (n, f) in fenced.iter().enumerate() {
        if *f {
            let id = t.actions.len();
            t.actions.push(Action {
                id,
                kind: ActionKind::Fence,
                rsc: None,
                node: w.nodes[n].name.clone(),
                reason: "node is unclean".into(),
            });
            fence_ids.insert(n, id);
        }
    }
    let mut start_ids: BTreeMap<RscIx, usize> = BTreeMap::new();
    for (&r, f) in &fate {
        plan_resource(w, &mut t, r, f, &fenced, &fence_ids, &mut start_ids);
    }
    order_promotions_after_clone_changes(w, &mut t, &fence_ids);
    add_probes(w, &mut t, &leaves);
    // Ordering constraints between planned starts.
    for o in &orders {
        for a in o.firsts.iter().flat_map(|&f| w.leaves(f)) {
            for b in w.leaves(o.then) {
                if let (Some(&x), Some(&y)) = (start_ids.get(&a), start_ids.get(&b)) {
                    if x != y {
                        t.edges.push((x, y));
                    }
                }
            }
        }
    }
    // `first-action=promote then-action=start` (a group on the promoted
    // copy of a promotable clone): the promote before the start.
    let mut promotes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for a in &t.actions {
        if let (ActionKind::Promote, Some(rsc)) = (&a.kind, a.rsc.as_deref()) {
            promotes.entry(rsc).or_default().push(a.id);
        }
    }
    let mut promote_edges = Vec::new();
    for o in orders
        .iter()
        .filter(|o| o.first_action == "promote" && o.then_action == "start")
    {
        for a in o.firsts.iter().flat_map(|&f| w.leaves(f)) {
            let Some(ps) = promotes.get(w.rscs[a].id.as_str()) else {
                continue;
            };
            for b in w.leaves(o.then) {
                if let Some(&y) = start_ids.get(&b) {
                    promote_edges.extend(ps.iter().filter(|&&x| x != y).map(|&x| (x, y)));
                }
            }
        }
    }
    t.edges.extend(promote_edges);
    order_inverse_stops(w, &mut t, &orders);
    t.edges.sort_unstable();
    t.edges.dedup();

    // Placement
    let p = placement(
        w,
        &fenced,
        fate.iter().map(|(&r, f)| (r, f.nodes.clone(), f.role)),
    );
    // scores
    for &r in leaves.iter().filter(|_| with_scores) {
        let scores: BTreeMap<String, crate::score::Score> = w.rscs[r]
            .allowed
            .iter()
            .enumerate()
            .filter_map(|(n, s)| s.map(|s| (w.nodes[n].name.clone(), s)))
            .collect();
        t.scores.insert(w.rscs[r].id.clone(), scores);
    }
    t.placement = p;
    t.notes = std::mem::take(&mut w.notes);
    if w.stonith_enabled && !w.have_stonith_resource {
        t.notes.push(
            "stonith-enabled is true but no fencing device is configured: a lost node cannot be fenced, so nothing it held can be recovered"
                .into(),
        );
    }
    t
}

/// The placement format of the conformance suite for resources at
/// `(resource, nodes, role)`; nodes being fenced show offline.
pub(crate) fn placement(
    w: &World,
    fenced: &[bool],
    rscs: impl Iterator<Item = (RscIx, Vec<NodeIx>, Role)>,
) -> Placement {
    let mut p = Placement::default();
    for (n, node) in w.nodes.iter().enumerate() {
        let state = if fenced.get(n).copied().unwrap_or(false) {
            "offline"
        } else if node.unclean {
            "UNCLEAN (offline)"
        } else if !node.online {
            if node.standby {
                "OFFLINE (standby)"
            } else {
                "offline"
            }
        } else if node.pending {
            "pending"
        } else if node.maintenance {
            "maintenance"
        } else if node.standby {
            "standby"
        } else {
            "online"
        };
        p.nodes.insert(node.name.clone(), state.to_string());
    }
    for (r, nodes, f_role) in rscs {
        let rs = &w.rscs[r];
        let mut names: Vec<String> = nodes.iter().map(|&n| w.nodes[n].name.clone()).collect();
        names.sort();
        names.dedup();
        if rs.orphan && names.is_empty() {
            continue; // a stopped orphan is gone (crm_mon hides it too)
        }
        let role = if names.is_empty() {
            Role::Stopped
        } else if f_role == Role::Stopped {
            Role::Started
        } else {
            f_role
        };
        let orphaned = rs.orphan;
        // an anonymous clone's orphan instance is listed like its siblings
        let anonymous = match w.clone_of(r) {
            Some(c) => !w.rscs[c].unique,
            None => rs.orphan && rs.clone_name.is_some(),
        };
        if anonymous {
            for name in &names {
                p.resources.insert(
                    format!("{}@{}", rs.base_id, name),
                    PlacedResource {
                        role,
                        nodes: vec![name.clone()],
                        orphaned,
                    },
                );
            }
        } else {
            p.resources.insert(
                rs.id.clone(),
                PlacedResource {
                    role,
                    nodes: names,
                    orphaned,
                },
            );
        }
    }
    p
}

/// The inverse of a symmetrical order, as Pacemaker adds it: "first then
/// then" also stops "then" before "first" stops (a group's members stop
/// in reverse: the NFS server before the filesystem it exports), and a
/// start after a promote also stops before the demote (the filesystem is
/// unmounted before DRBD turns Secondary).
fn order_inverse_stops(w: &World, t: &mut Transition, orders: &[Ordering]) {
    let mut by_kind: BTreeMap<(ActionKind, &str), Vec<usize>> = BTreeMap::new();
    for a in &t.actions {
        if let (ActionKind::Stop | ActionKind::Demote, Some(rsc)) = (&a.kind, a.rsc.as_deref()) {
            by_kind.entry((a.kind.clone(), rsc)).or_default().push(a.id);
        }
    }
    let mut edges = Vec::new();
    for o in orders
        .iter()
        .filter(|o| o.symmetrical && o.then_action == "start")
    {
        let first_kind = match o.first_action.as_str() {
            "start" => ActionKind::Stop,
            "promote" => ActionKind::Demote,
            _ => continue,
        };
        for b in w.leaves(o.then) {
            let Some(then_stops) = by_kind.get(&(ActionKind::Stop, w.rscs[b].id.as_str())) else {
                continue;
            };
            for a in o.firsts.iter().flat_map(|&f| w.leaves(f)) {
                let Some(first) = by_kind.get(&(first_kind.clone(), w.rscs[a].id.as_str())) else {
                    continue;
                };
                for &x in then_stops {
                    edges.extend(first.iter().filter(|&&y| y != x).map(|&y| (x, y)));
                }
            }
        }
    }
    t.edges.extend(edges);
}

/// A promotable clone promotes only once its instances' starts, stops and
/// demotes of this transition are done (Pacemaker's clone-level
/// `running`/`demoted` before `promote`): the promotion scores the starting
/// instances set count before one is chosen. An instance on a node being
/// fenced is stopped (and demoted) by the fence, so the clone's promotions
/// wait for that fence too: else a copy is promoted while the fenced node's
/// copy may still be promoted (master-max=1 broken; DRBD refuses it, and
/// the promote times out). Found by the VM lab: an nfsd stop failed on the
/// DC, whose fence waited, and node1 was promoted beside node2.
fn order_promotions_after_clone_changes(
    w: &World,
    t: &mut Transition,
    fence_ids: &BTreeMap<NodeIx, usize>,
) {
    let mut by_clone: BTreeMap<RscIx, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    let index: std::collections::HashMap<&str, RscIx> = w
        .rscs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.variant == Variant::Primitive)
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    for a in &t.actions {
        let Some(&r) = a.rsc.as_deref().and_then(|id| index.get(id)) else {
            continue;
        };
        let Some(c) = w.clone_of(r).filter(|&c| w.rscs[c].promotable) else {
            continue;
        };
        let e = by_clone.entry(c).or_default();
        match a.kind {
            ActionKind::Promote => e.1.push(a.id),
            ActionKind::Start | ActionKind::Stop | ActionKind::Demote => e.0.push(a.id),
            _ => {}
        }
    }
    for (&clone, (changes, promotes)) in by_clone.iter_mut() {
        for l in w.leaves(clone) {
            changes.extend(w.rscs[l].running_on.iter().filter_map(|n| fence_ids.get(n)));
        }
        for &c in changes.iter() {
            for &p in promotes.iter() {
                if c != p {
                    t.edges.push((c, p));
                }
            }
        }
    }
}

/// Probes (one-time monitors) of every resource on every node that can run
/// resources and has no record of it; nothing of that resource starts,
/// promotes or migrates in before its probes have answered. An anonymous
/// clone is probed once per node, whatever instance.
fn add_probes(w: &World, t: &mut Transition, leaves: &[RscIx]) {
    let mut probes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut done: std::collections::BTreeSet<(&str, NodeIx)> = std::collections::BTreeSet::new();
    for (n, node) in w.nodes.iter().enumerate() {
        if !node.online || node.unclean || node.pending || node.maintenance || w.maintenance_mode {
            continue;
        }
        for &r in leaves {
            let rs = &w.rscs[r];
            if rs.orphan {
                continue; // known only from its history: never probed
            }
            let anonymous = w.clone_of(r).is_some_and(|c| !w.rscs[c].unique);
            let key = if anonymous {
                rs.base_id.as_str()
            } else {
                rs.id.as_str()
            };
            let known =
                |l: RscIx| w.rscs[l].probed_on.contains(&n) || w.rscs[l].running_on.contains(&n);
            let seen = if anonymous {
                let c = w.clone_of(r);
                leaves
                    .iter()
                    .filter(|&&l| w.rscs[l].base_id == rs.base_id && w.clone_of(l) == c)
                    .any(|&l| known(l))
            } else {
                known(r)
            };
            if seen || !done.insert((key, n)) {
                continue;
            }
            let id = push(
                t,
                ActionKind::Monitor { interval_ms: 0 },
                &rs.id,
                &node.name,
                "probe",
            );
            probes.entry(key).or_default().push(id);
        }
    }
    if probes.is_empty() {
        return;
    }
    let n_before = t.actions.len();
    for a in 0..n_before {
        let act = &t.actions[a];
        if !matches!(
            act.kind,
            ActionKind::Start
                | ActionKind::Promote
                | ActionKind::MigrateFrom
                | ActionKind::MigrateTo
        ) {
            continue;
        }
        let Some(rsc) = act.rsc.as_deref() else {
            continue;
        };
        let base = rsc.split(':').next().unwrap_or(rsc);
        for key in [rsc, base] {
            if let Some(ids) = probes.get(key) {
                for &p in ids {
                    t.edges.push((p, a));
                }
            }
        }
    }
}

fn push(t: &mut Transition, kind: ActionKind, rsc: &str, node: &str, reason: &str) -> usize {
    let id = t.actions.len();
    t.actions.push(Action {
        id,
        kind,
        rsc: Some(rsc.to_string()),
        node: node.to_string(),
        reason: reason.to_string(),
    });
    id
}

/// The actions of one resource instance: demote/stop where it leaves,
/// migrate or start where it goes, promote/demote, recurring monitors and
/// clone notifications, each ordered after what it needs.
fn plan_resource(
    w: &World,
    t: &mut Transition,
    r: RscIx,
    f: &Fate,
    fenced: &[bool],
    fence_ids: &BTreeMap<NodeIx, usize>,
    start_ids: &mut BTreeMap<RscIx, usize>,
) {
    let rs = &w.rscs[r];
    let name = |n: NodeIx| w.nodes[n].name.as_str();
    let target = f.start_at.filter(|_| !f.nodes.is_empty());
    // Live migration instead of stop + start.
    let migrate_from = match (target, f.stops.as_slice()) {
        (Some(to), [from])
            if rs.allow_migrate
                && rs.managed
                && !rs.failed
                && !rs.start_pending
                && rs.role == Role::Started
                && f.role == Role::Started
                && *from != to
                && !fenced[*from]
                && !w.nodes[*from].unclean =>
        {
            Some(*from)
        }
        _ => None,
    };
    let mut first_actions = Vec::new();
    let mut stop_ids = Vec::new();
    let mut placed_id = None;
    if let (Some(from), Some(to)) = (migrate_from, target) {
        let mt = push(
            t,
            ActionKind::MigrateTo,
            &rs.id,
            name(from),
            "live migration",
        );
        let mf = push(
            t,
            ActionKind::MigrateFrom,
            &rs.id,
            name(to),
            "live migration",
        );
        let stop = push(t, ActionKind::Stop, &rs.id, name(from), "migrated away");
        t.edges.push((mt, mf));
        t.edges.push((mf, stop));
        start_ids.insert(r, mf);
        placed_id = Some(mf);
        first_actions.push(mt);
    } else {
        for &n in &f.stops {
            let mut before = None;
            if rs.role == Role::Promoted {
                let d = push(t, ActionKind::Demote, &rs.id, name(n), "demote before stop");
                first_actions.push(d);
                before = Some(d);
            }
            let reason = if rs.orphan {
                "orphan"
            } else if rs.failed {
                "recover"
            } else {
                "move"
            };
            let id = push(t, ActionKind::Stop, &rs.id, name(n), reason);
            if let Some(d) = before {
                t.edges.push((d, id));
            } else {
                first_actions.push(id);
            }
            stop_ids.push(id);
        }
        if let Some(n) = target {
            let id = push(t, ActionKind::Start, &rs.id, name(n), "place");
            start_ids.insert(r, id);
            placed_id = Some(id);
            first_actions.push(id);
            for s in &stop_ids {
                t.edges.push((*s, id));
            }
        }
    }
    // Nothing held by a node being fenced starts elsewhere before the fence.
    if let Some(p) = placed_id {
        for &on in &rs.running_on {
            if let Some(&fid) = fence_ids.get(&on) {
                t.edges.push((fid, p));
            }
        }
    }
    let mut role_id = None;
    if let Some(&n) = f.nodes.first() {
        let was = rs.role;
        if f.role == Role::Promoted && (was != Role::Promoted || placed_id.is_some()) {
            let id = push(t, ActionKind::Promote, &rs.id, name(n), "promote");
            if let Some(p) = placed_id {
                t.edges.push((p, id));
            }
            role_id = Some(id);
        } else if f.role == Role::Unpromoted && was == Role::Promoted && placed_id.is_none() {
            let id = push(t, ActionKind::Demote, &rs.id, name(n), "demote");
            first_actions.push(id);
            role_id = Some(id);
        }
        // Recurring monitors for the role it ends in, after it gets there;
        // where it stays, the ones its history does not show running.
        let after = role_id.or(placed_id);
        for &(interval_ms, role) in &rs.monitors {
            let applies = match role {
                None => true,
                Some(Role::Started) => f.role != Role::Promoted,
                Some(r) => r == f.role,
            };
            let running = after.is_none() && rs.active_monitors.contains(&(n, interval_ms));
            if !applies || running || w.nodes[n].unclean || !w.nodes[n].online {
                continue;
            }
            let m = push(
                t,
                ActionKind::Monitor { interval_ms },
                &rs.id,
                name(n),
                "recurring",
            );
            if let Some(after) = after {
                t.edges.push((after, m));
            }
        }
    }
    // Clone notifications to the other active instances' nodes.
    if let Some(c) = w.clone_of(r) {
        let notify = w.rscs[c]
            .meta
            .get("notify")
            .map(|v| crate::cib::is_true(v))
            .unwrap_or(false);
        if notify {
            let peers: std::collections::BTreeSet<NodeIx> = w
                .leaves(c)
                .into_iter()
                .filter(|&l| l != r)
                .flat_map(|l| w.rscs[l].running_on.clone())
                .filter(|&n| !fenced[n])
                .collect();
            for a in first_actions
                .iter()
                .chain(role_id.iter())
                .copied()
                .collect::<Vec<_>>()
            {
                for &p in &peers {
                    let what = t.actions[a].kind.name();
                    let id = push(
                        t,
                        ActionKind::Notify,
                        &rs.id,
                        name(p),
                        &format!("post-{what}"),
                    );
                    t.edges.push((a, id));
                }
            }
        }
    }
}
