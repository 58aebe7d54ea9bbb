//! Golden files: our users' configurations (deploy/examples) must place
//! exactly as Pacemaker 2.1.5 does, and every placement must hold the
//! invariants of the architecture page (one node per primitive, at most
//! promoted-max promoted instances).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ha_scheduler::cib::read_cib;
use ha_scheduler::model::{Membership, Resource, Role};
use ha_scheduler::transition::{ActionKind, Placement};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

/// Every node up, quorum, as `crm_simulate -u NODE... -q true -S`.
fn simulate_all_up(xml: &str) -> (ha_scheduler::cib::Cib, Placement) {
    let mut cib = read_cib(xml).expect("example parses");
    for n in &cib.config.nodes {
        cib.status
            .nodes
            .entry(n.name.clone())
            .or_default()
            .membership = Membership::Online;
    }
    cib.status.have_quorum = true;
    let t = ha_scheduler::schedule(&cib.config, &cib.status, 0);
    (cib, t.placement)
}

/// Invariants 1 and 2 of ARCHITECTURE.md on one placement.
fn check_invariants(cib: &ha_scheduler::cib::Cib, p: &Placement) {
    for (key, r) in &p.resources {
        assert!(
            r.nodes.len() <= 1,
            "invariant 1: {key} active on {} nodes: {:?}",
            r.nodes.len(),
            r.nodes
        );
    }
    for res in &cib.config.resources {
        if let Resource::Clone(c) = res {
            if !c.promotable {
                continue;
            }
            let max: usize = c
                .meta
                .get("promoted-max")
                .or_else(|| c.meta.get("master-max"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let leaves: Vec<String> = match c.child.as_ref() {
                Resource::Primitive(p) => vec![p.id.clone()],
                Resource::Group(g) => g.members.iter().map(|m| m.id.clone()).collect(),
                Resource::Clone(_) => vec![],
            };
            for leaf in leaves {
                let promoted = p
                    .resources
                    .iter()
                    .filter(|(k, r)| {
                        r.role == Role::Promoted
                            && (k.starts_with(&format!("{leaf}@"))
                                || k.starts_with(&format!("{leaf}:")))
                    })
                    .count();
                assert!(
                    promoted <= max,
                    "invariant 2: {promoted} promoted > {max} for {leaf}"
                );
            }
        }
    }
}

fn expected(name: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let text = std::fs::read_to_string(examples().join(format!("{name}.expected.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["resources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, r)| {
            let nodes = r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            (k.clone(), (r["role"].as_str().unwrap().to_string(), nodes))
        })
        .collect()
}

fn actual(p: &Placement) -> BTreeMap<String, (String, Vec<String>)> {
    p.resources
        .iter()
        .filter(|(_, r)| r.role != Role::Stopped || !r.nodes.is_empty())
        .map(|(k, r)| (k.clone(), (r.role.as_str().to_string(), r.nodes.clone())))
        .collect()
}

fn running_only(
    m: BTreeMap<String, (String, Vec<String>)>,
) -> BTreeMap<String, (String, Vec<String>)> {
    m.into_iter()
        .filter(|(_, (role, _))| role != "Stopped")
        .collect()
}

#[test]
fn users_examples_place_like_pacemaker() {
    for (name, file) in [
        ("firewall-pair", "firewall-pair.cib.xml"),
        ("mysql-vip", "mysql-vip.cib.xml"),
        ("nfs-samba-drbd", "nfs-samba-drbd.cib.xml"),
        ("ocfs2-dual-primary", "ocfs2-dual-primary.cib.xml"),
        ("xen-active-active", "xen-active-active.xml"),
    ] {
        let xml = std::fs::read_to_string(examples().join(file)).unwrap();
        let (cib, p) = simulate_all_up(&xml);
        check_invariants(&cib, &p);
        assert_eq!(
            running_only(actual(&p)),
            running_only(expected(name)),
            "{name}: placement differs from Pacemaker's"
        );
    }
}

#[test]
fn schedule_is_deterministic() {
    let xml = std::fs::read_to_string(examples().join("ocfs2-dual-primary.cib.xml")).unwrap();
    let (_, a) = simulate_all_up(&xml);
    let (_, b) = simulate_all_up(&xml);
    assert_eq!(a, b);
}

/// Table of small scenarios with the placement Pacemaker computes for them
/// (tie-breaks and traps from SCHEDULER-NOTES.md).
#[test]
fn scenario_table() {
    let node_state = |n: &str| {
        format!(
            r#"<node_state id="{n}" uname="{n}" in_ccm="true" crmd="online" join="member" expected="member"/>"#
        )
    };
    let cib = |props: &str, resources: &str, constraints: &str, status: &str| {
        format!(
            r#"<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="p">
            <nvpair id="p1" name="stonith-enabled" value="false"/>{props}</cluster_property_set></crm_config>
            <nodes><node id="node1" uname="node1"/><node id="node2" uname="node2"/></nodes>
            <resources>{resources}</resources><constraints>{constraints}</constraints></configuration>
            <status>{}{}{status}</status></cib>"#,
            node_state("node1"),
            node_state("node2")
        )
    };
    let prim = |id: &str| {
        format!(r#"<primitive id="{id}" class="ocf" provider="heartbeat" type="Dummy"/>"#)
    };
    // (what, CIB, expected node per resource; "" = stopped)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "round robin by resources assigned, then name",
            cib(
                "",
                &format!("{}{}{}", prim("a"), prim("b"), prim("c")),
                "",
                "",
            ),
            vec![("a", "node1"), ("b", "node2"), ("c", "node1")],
        ),
        (
            "mandatory colocation follows the primary",
            cib(
                "",
                &format!("{}{}", prim("a"), prim("b")),
                r#"<rsc_location id="l" rsc="b" node="node2" score="10"/>
                   <rsc_colocation id="c" rsc="a" with-rsc="b" score="INFINITY"/>"#,
                "",
            ),
            vec![("a", "node2"), ("b", "node2")],
        ),
        (
            "-INFINITY wins over +INFINITY",
            cib(
                "",
                &prim("a"),
                r#"<rsc_location id="l1" rsc="a" node="node1" score="INFINITY"/>
                   <rsc_location id="l2" rsc="a" node="node1" score="-INFINITY"/>"#,
                "",
            ),
            vec![("a", "node2")],
        ),
        (
            "asymmetric cluster: only listed nodes",
            cib(
                r#"<nvpair id="p2" name="symmetric-cluster" value="false"/>"#,
                &format!("{}{}", prim("a"), prim("b")),
                r#"<rsc_location id="l" rsc="a" node="node2" score="0"/>"#,
                "",
            ),
            vec![("a", "node2"), ("b", "")],
        ),
        (
            "order after an unplaceable resource keeps then stopped",
            cib(
                "",
                &format!("{}{}", prim("a"), prim("b")),
                r#"<rsc_location id="l1" rsc="a" node="node1" score="-INFINITY"/>
                   <rsc_location id="l2" rsc="a" node="node2" score="-INFINITY"/>
                   <rsc_order id="o" first="a" then="b"/>"#,
                "",
            ),
            vec![("a", ""), ("b", "")],
        ),
    ];
    for (what, xml, want) in cases {
        let c = read_cib(&xml).unwrap_or_else(|e| panic!("{what}: {e}"));
        let t = ha_scheduler::schedule(&c.config, &c.status, 0);
        for (rsc, node) in want {
            let got = t
                .placement
                .resources
                .get(rsc)
                .map(|r| r.nodes.join(","))
                .unwrap_or_default();
            assert_eq!(got, node, "{what}: {rsc}");
        }
    }
}

#[test]
fn bad_input_names_the_element() {
    let cases = [
        ("<cib><configuration>", "malformed XML at line 1"),
        (
            r#"<cib><configuration><resources><primitive id="a" class="ocf" type="Dummy"/></resources>
               <constraints><rsc_colocation id="c1" rsc="a" with-rsc="ghost" score="10"/></constraints></configuration></cib>"#,
            "rsc_colocation 'c1' refers to unknown resource 'ghost'",
        ),
        (
            r#"<cib><configuration><resources><primitive id="a" class="ocf" type="Dummy"/></resources>
               <constraints><rsc_location id="l1" rsc="a" node="n1" score="lots"/></constraints></configuration></cib>"#,
            "rsc_location 'l1': invalid score 'lots'",
        ),
        (
            r#"<cib><configuration><resources><primitive id="a" class="ocf" type="Dummy"/></resources>
               <constraints><rsc_location id="l1" rsc="a"><rule id="r1" score="1">
               <expression id="e1" attribute="x" operation="like" value="1"/></rule></rsc_location></constraints></configuration></cib>"#,
            "expression 'e1': invalid operation 'like'",
        ),
        (
            r#"<cib><configuration><resources><template id="t1" class="ocf" type="Dummy"/></resources></configuration></cib>"#,
            "not supported yet: template 't1'",
        ),
    ];
    for (xml, msg) in cases {
        let e = read_cib(xml).expect_err(msg);
        assert!(e.to_string().contains(msg), "got '{e}', want '{msg}'");
    }
}

/// A CIB with two nodes and `rsc` (Dummy, with a 10 s monitor) running on node1.
fn two_nodes_rsc_on_node1(node1_state: &str, props: &str, meta: &str) -> String {
    format!(
        r#"<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="p">{props}</cluster_property_set></crm_config>
        <nodes><node id="node1" uname="node1"/><node id="node2" uname="node2"/></nodes>
        <resources>
          <primitive id="fence" class="stonith" type="fence_ipmilan"/>
          <primitive id="rsc" class="ocf" provider="heartbeat" type="Dummy">{meta}
            <operations><op id="rsc-mon" name="monitor" interval="10s"/></operations></primitive>
        </resources><constraints/></configuration>
        <status>
          <node_state id="node1" uname="node1" {node1_state}>
            <lrm id="node1"><lrm_resources><lrm_resource id="rsc" class="ocf" provider="heartbeat" type="Dummy">
              <lrm_rsc_op id="rsc_start_0" operation="start" call-id="2" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x"/>
            </lrm_resource></lrm_resources></lrm>
          </node_state>
          <node_state id="node2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>
        </status></cib>"#
    )
}

fn action_ids(t: &ha_scheduler::Transition, kind: &str, node: &str) -> Vec<usize> {
    t.actions
        .iter()
        .filter(|a| a.kind.name() == kind && a.node == node)
        .map(|a| a.id)
        .collect()
}

/// Invariant 3: a resource of a lost node starts elsewhere only after the
/// fence of that node, and not at all if the node cannot be fenced.
#[test]
fn recovery_waits_for_fencing() {
    let lost = r#"in_ccm="false" crmd="offline" join="down" expected="member""#;
    let xml = two_nodes_rsc_on_node1(lost, "", "");
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let fence = action_ids(&t, "fence", "node1");
    let start = action_ids(&t, "start", "node2")
        .into_iter()
        .filter(|&i| t.actions[i].rsc.as_deref() == Some("rsc"))
        .collect::<Vec<_>>();
    assert_eq!((fence.len(), start.len()), (1, 1), "{:?}", t.actions);
    assert!(
        t.edges.contains(&(fence[0], start[0])),
        "start must follow the fence: {:?}",
        t.edges
    );
    assert_eq!(
        t.placement.resources["rsc"].nodes,
        vec!["node2".to_string()]
    );

    // Without quorum the lost node cannot be fenced (it is not in our
    // membership): rsc must not start anywhere, and stays listed where it was.
    let xml = two_nodes_rsc_on_node1(
        lost,
        r#"<nvpair id="q" name="no-quorum-policy" value="stop"/>"#,
        "",
    )
    .replace(r#"have-quorum="1""#, r#"have-quorum="0""#);
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert!(action_ids(&t, "fence", "node1").is_empty());
    assert!(
        action_ids(&t, "start", "node2").is_empty(),
        "{:?}",
        t.actions
    );
    assert_eq!(
        t.placement.resources["rsc"].nodes,
        vec!["node1".to_string()]
    );
}

#[test]
fn live_migration_and_monitors() {
    let up = r#"in_ccm="true" crmd="online" join="member" expected="member""#;
    let meta = r#"<meta_attributes id="m"><nvpair id="m1" name="allow-migrate" value="true"/></meta_attributes>"#;
    let xml = two_nodes_rsc_on_node1(up, "", meta).replace(
        "<constraints/>",
        r#"<constraints><rsc_location id="away" rsc="rsc" node="node1" score="-INFINITY"/></constraints>"#,
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let mt = action_ids(&t, "migrate_to", "node1");
    let mf = action_ids(&t, "migrate_from", "node2");
    let stop = action_ids(&t, "stop", "node1");
    let mon = action_ids(&t, "monitor_10000", "node2");
    assert_eq!(
        (mt.len(), mf.len(), stop.len(), mon.len()),
        (1, 1, 1, 1),
        "{:?}",
        t.actions
    );
    assert!(action_ids(&t, "start", "node2")
        .iter()
        .all(|&i| t.actions[i].rsc.as_deref() != Some("rsc")));
    for edge in [(mt[0], mf[0]), (mf[0], stop[0]), (mf[0], mon[0])] {
        assert!(t.edges.contains(&edge), "missing {edge:?} in {:?}", t.edges);
    }
    // Without allow-migrate: stop, then start, then the monitor.
    let xml = xml.replace(
        r#"value="true"/></meta_attributes>"#,
        r#"value="false"/></meta_attributes>"#,
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let stop = action_ids(&t, "stop", "node1");
    let start: Vec<usize> = action_ids(&t, "start", "node2")
        .into_iter()
        .filter(|&i| t.actions[i].rsc.as_deref() == Some("rsc"))
        .collect();
    assert!(action_ids(&t, "migrate_to", "node1").is_empty());
    assert!(t.edges.contains(&(stop[0], start[0])));
}

/// Probes come first (once per node without a record), the start waits for
/// every probe of its resource, and a recurring monitor is scheduled after
/// the start — or alone, where the resource runs but its history shows no
/// monitor running since its last state change.
#[test]
fn probes_gate_starts_and_missing_monitors_are_scheduled() {
    let node = |name: &str, ops: &str| {
        format!(
            r#"<node_state id="{name}" uname="{name}" in_ccm="true" crmd="online" join="member" expected="member">
            <lrm id="{name}"><lrm_resources><lrm_resource id="rsc" class="ocf" provider="heartbeat" type="Dummy">{ops}
            </lrm_resource></lrm_resources></lrm></node_state>"#
        )
    };
    let cib = |n1: &str, n2: &str| {
        format!(
            r#"<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="p">
            <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
            <nodes><node id="node1" uname="node1"/><node id="node2" uname="node2"/></nodes>
            <resources><primitive id="rsc" class="ocf" provider="heartbeat" type="Dummy">
              <operations><op id="rsc-mon" name="monitor" interval="10s"/></operations></primitive>
            </resources><constraints><rsc_location id="pref" rsc="rsc" node="node1" score="100"/></constraints></configuration>
            <status>{}{}</status></cib>"#,
            node("node1", n1),
            node("node2", n2)
        )
    };
    let probe7 = |n: &str| {
        format!(
            r#"<lrm_rsc_op id="rsc_last_0" operation="monitor" call-id="1" rc-code="7" op-status="0" interval="0" on_node="{n}"/>"#
        )
    };
    let kinds = |t: &ha_scheduler::Transition| -> Vec<String> {
        let mut v: Vec<String> = t
            .actions
            .iter()
            .map(|a| format!("{}@{}", a.kind.name(), a.node))
            .collect();
        v.sort();
        v
    };

    // Nothing known: probe both nodes; the start waits for both probes.
    let c = read_cib(&cib("", "")).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(
        kinds(&t),
        [
            "monitor_0@node1",
            "monitor_0@node2",
            "monitor_10000@node1",
            "start@node1"
        ]
    );
    let start = action_ids(&t, "start", "node1")[0];
    for n in ["node1", "node2"] {
        let p = action_ids(&t, "monitor_0", n)[0];
        assert!(
            t.edges.contains(&(p, start)),
            "start must wait for the probe on {n}"
        );
    }

    // Probed on node1 only: node2 is still probed first.
    let c = read_cib(&cib(&probe7("node1"), "")).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(
        kinds(&t),
        ["monitor_0@node2", "monitor_10000@node1", "start@node1"]
    );

    // Both probed: start and its monitor.
    let c = read_cib(&cib(&probe7("node1"), &probe7("node2"))).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(kinds(&t), ["monitor_10000@node1", "start@node1"]);
    let mon = action_ids(&t, "monitor_10000", "node1")[0];
    let start = action_ids(&t, "start", "node1")[0];
    assert!(t.edges.contains(&(start, mon)));

    // Started, no monitor since: the monitor alone.
    let started = format!(
        r#"{}<lrm_rsc_op id="rsc_last_0" operation="start" call-id="2" rc-code="0" op-status="0" interval="0"/>"#,
        probe7("node1").replace("rsc_last_0", "rsc_last_failure_0")
    );
    let c = read_cib(&cib(&started, &probe7("node2"))).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(kinds(&t), ["monitor_10000@node1"]);
    assert_eq!(
        ha_scheduler::current_placement(&c.config, &c.status, 0).resources["rsc"].nodes,
        vec!["node1".to_string()]
    );

    // Monitor recorded after the start: nothing to do.
    let monitored = format!(
        r#"{started}<lrm_rsc_op id="rsc_monitor_10000" operation="monitor" call-id="3" rc-code="0" op-status="0" interval="10000"/>"#
    );
    let c = read_cib(&cib(&monitored, &probe7("node2"))).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert!(t.actions.is_empty(), "{:?}", t.actions);
    // A monitor older than the last state change does not count.
    let stale = monitored.replace(r#"call-id="3""#, r#"call-id="0""#);
    let c = read_cib(&cib(&stale, &probe7("node2"))).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(kinds(&t), ["monitor_10000@node1"]);
}

/// A promotable clone promotes only after all of this transition's starts
/// of its instances: the scores the starting instances set count first.
#[test]
fn promotion_waits_for_every_start_of_the_clone() {
    let probed = |n: &str| {
        format!(
            r#"<node_state id="{n}" uname="{n}" in_ccm="true" crmd="online" join="member" expected="member">
            <transient_attributes id="{n}"><instance_attributes id="ta-{n}">{}</instance_attributes></transient_attributes>
            <lrm id="{n}"><lrm_resources><lrm_resource id="st" class="ocf" provider="pacemaker" type="Stateful">
            <lrm_rsc_op id="st_last_0" operation="monitor" call-id="1" rc-code="7" op-status="0" interval="0"/>
            </lrm_resource></lrm_resources></lrm></node_state>"#,
            if n == "node1" {
                r#"<nvpair id="m1" name="master-st" value="5"/>"#
            } else {
                ""
            }
        )
    };
    let xml = format!(
        r#"<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="p">
        <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
        <nodes><node id="node1" uname="node1"/><node id="node2" uname="node2"/></nodes>
        <resources><clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-p" name="promotable" value="true"/></meta_attributes>
          <primitive id="st" class="ocf" provider="pacemaker" type="Stateful"/></clone></resources>
        <constraints/></configuration><status>{}{}</status></cib>"#,
        probed("node1"),
        probed("node2")
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let promote = action_ids(&t, "promote", "node1");
    assert_eq!(promote.len(), 1, "{:?}", t.actions);
    for n in ["node1", "node2"] {
        let start = action_ids(&t, "start", n);
        assert_eq!(start.len(), 1, "{:?}", t.actions);
        assert!(
            t.edges.contains(&(start[0], promote[0])),
            "promote must wait for the start on {n}: {:?}",
            t.edges
        );
    }
}

// ---------------------------------------------------------------------------
// Orphans and pending operations

const UP: &str = r#"in_ccm="true" crmd="online" join="member" expected="member""#;
const LOST: &str = r#"in_ccm="false" crmd="offline" join="down" expected="member""#;

/// A two-node CIB: `props` (cluster options), `resources`, and per node its
/// `node_state` attributes and `lrm_resource` entries.
fn two_nodes(props: &str, resources: &str, node1: (&str, &str), node2: (&str, &str)) -> String {
    let state = |n: &str, (attrs, lrm): (&str, &str)| {
        format!(
            r#"<node_state id="{n}" uname="{n}" {attrs}><lrm id="{n}"><lrm_resources>{lrm}</lrm_resources></lrm></node_state>"#
        )
    };
    format!(
        r#"<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="p">{props}</cluster_property_set></crm_config>
        <nodes><node id="node1" uname="node1"/><node id="node2" uname="node2"/></nodes>
        <resources>{resources}</resources><constraints/></configuration>
        <status>{}{}</status></cib>"#,
        state("node1", node1),
        state("node2", node2)
    )
}

/// An `lrm_resource` (ocf:heartbeat:Dummy) with one `_last_0` operation.
fn history(rsc: &str, task: &str, call_id: i64, rc: i32, op_status: i32) -> String {
    format!(
        r#"<lrm_resource id="{rsc}" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="{rsc}_last_0" operation="{task}" call-id="{call_id}" rc-code="{rc}" op-status="{op_status}" interval="0"/>
        </lrm_resource>"#
    )
}

fn dummy(id: &str) -> String {
    format!(r#"<primitive id="{id}" class="ocf" provider="heartbeat" type="Dummy"/>"#)
}

const NO_STONITH: &str = r#"<nvpair id="s" name="stonith-enabled" value="false"/>"#;

/// The actions of `t` on `rsc` as `task@node (reason)`, sorted; probes left out.
fn rsc_actions(t: &ha_scheduler::Transition, rsc: &str) -> Vec<String> {
    let mut v: Vec<String> = t
        .actions
        .iter()
        .filter(|a| a.rsc.as_deref() == Some(rsc) && a.kind.name() != "monitor_0")
        .map(|a| format!("{}@{} ({})", a.kind.name(), a.node, a.reason))
        .collect();
    v.sort();
    v
}

/// Hole 3 of issue 12: a resource removed from the configuration (or
/// renamed) while it runs is an orphan: Pacemaker's default
/// `stop-orphan-resources=true` stops it; `false` leaves it running,
/// unmanaged, and listed as orphaned.
#[test]
fn orphans_are_stopped_unless_stop_orphan_resources_is_false() {
    // "a" was renamed "b": a's history says it runs on node1.
    let a_on_node1 = history("a", "start", 2, 0, 0);
    let xml = two_nodes(
        NO_STONITH,
        &dummy("b"),
        (UP, &a_on_node1),
        (UP, &history("b", "monitor", 1, 7, 0)),
    );
    let c = read_cib(&xml).unwrap();
    let now = ha_scheduler::current_placement(&c.config, &c.status, 0);
    let a = &now.resources["a"];
    assert_eq!(
        (a.role, a.nodes.clone(), a.orphaned),
        (Role::Started, vec!["node1".to_string()], true)
    );
    assert_eq!(now.to_json()["resources"]["a"]["orphaned"], true);
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(rsc_actions(&t, "a"), ["stop@node1 (orphan)"]);
    assert!(
        !t.placement.resources.contains_key("a"),
        "{:?}",
        t.placement
    );
    assert_eq!(
        t.placement.resources["b"].nodes.len(),
        1,
        "renamed: runs once"
    );
    assert!(
        t.notes
            .iter()
            .any(|n| n.contains("orphan a") && n.contains("stopped on node1")),
        "{:?}",
        t.notes
    );

    // stop-orphan-resources=false: left running, unmanaged, listed.
    let keep =
        format!(r#"{NO_STONITH}<nvpair id="o" name="stop-orphan-resources" value="false"/>"#);
    let xml = two_nodes(&keep, &dummy("b"), (UP, &a_on_node1), (UP, ""));
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert!(rsc_actions(&t, "a").is_empty(), "{:?}", t.actions);
    let a = &t.placement.resources["a"];
    assert_eq!(
        (a.role, a.nodes.clone(), a.orphaned),
        (Role::Started, vec!["node1".to_string()], true)
    );
    assert!(
        t.notes
            .iter()
            .any(|n| n.contains("stop-orphan-resources=false")),
        "{:?}",
        t.notes
    );

    // Once its stop is recorded it is gone: nothing planned, nothing listed.
    let xml = two_nodes(
        NO_STONITH,
        &dummy("b"),
        (UP, &history("a", "stop", 3, 0, 0)),
        (UP, ""),
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert!(rsc_actions(&t, "a").is_empty(), "{:?}", t.actions);
    assert!(!t.placement.resources.contains_key("a"));
    assert!(!ha_scheduler::current_placement(&c.config, &c.status, 0)
        .resources
        .contains_key("a"));

    // Active on both nodes: stopped on both, each copy an orphan of its own
    // (`a:1` the second, recorded under `a`), so each has its own role.
    let xml = two_nodes(NO_STONITH, "", (UP, &a_on_node1), (UP, &a_on_node1));
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(rsc_actions(&t, "a"), ["stop@node1 (orphan)"]);
    assert_eq!(rsc_actions(&t, "a:1"), ["stop@node2 (orphan)"]);
}

/// An orphan active on a lost node makes that node unclean (it may still
/// run it): the node is fenced, as for a configured resource.
#[test]
fn orphan_on_a_lost_node_is_fenced() {
    let xml = two_nodes(
        "",
        r#"<primitive id="fence" class="stonith" type="fence_ipmilan"/>"#,
        (LOST, &history("a", "start", 2, 0, 0)),
        (UP, ""),
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(action_ids(&t, "fence", "node1").len(), 1, "{:?}", t.actions);
    assert!(
        rsc_actions(&t, "a").is_empty(),
        "the fence stops it: {:?}",
        t.actions
    );
    assert!(!t.placement.resources.contains_key("a"));
}

/// Instances of an anonymous clone active on more nodes than clone-max
/// allows: the extra one is an orphan instance and is stopped.
#[test]
fn orphan_clone_instances_are_stopped() {
    let clone = r#"<clone id="cl"><meta_attributes id="cl-m"><nvpair id="cl-max" name="clone-max" value="1"/></meta_attributes>
        <primitive id="d" class="ocf" provider="heartbeat" type="Dummy"/></clone>"#;
    let d = history("d", "start", 2, 0, 0);
    let xml = two_nodes(NO_STONITH, clone, (UP, &d), (UP, &d));
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let stops: Vec<&ha_scheduler::transition::Action> = t
        .actions
        .iter()
        .filter(|a| a.kind.name() == "stop")
        .collect();
    assert_eq!(stops.len(), 1, "{:?}", t.actions);
    assert_eq!(
        (stops[0].rsc.as_deref(), stops[0].reason.as_str()),
        (Some("d:1"), "orphan")
    );
    let running: Vec<&String> = t
        .placement
        .resources
        .keys()
        .filter(|k| k.starts_with("d@"))
        .collect();
    assert_eq!(running.len(), 1, "{:?}", t.placement);
}

/// A pending operation (op-status -1, rc 193: begun, result not recorded)
/// counts as possibly active, as Pacemaker treats PCMK_EXEC_PENDING: a
/// pending start is not started elsewhere; moving it stops it first; a
/// pending start on a lost node gets that node fenced before it starts
/// elsewhere; a pending promote is promoted; a pending stop still active.
#[test]
fn pending_operations_count_as_active() {
    let pending = |task: &str| history("rsc", task, -1, 193, -1);
    let probed = history("rsc", "monitor", 1, 7, 0);
    let xml = two_nodes(
        NO_STONITH,
        &dummy("rsc"),
        (UP, &pending("start")),
        (UP, &probed),
    );
    let c = read_cib(&xml).unwrap();
    let now = ha_scheduler::current_placement(&c.config, &c.status, 0);
    assert_eq!(now.resources["rsc"].nodes, vec!["node1".to_string()]);
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert!(rsc_actions(&t, "rsc").is_empty(), "{:?}", t.actions);
    assert_eq!(
        t.placement.resources["rsc"].nodes,
        vec!["node1".to_string()]
    );

    // Banned from node1: stopped there before it starts on node2.
    let ban = r#"<constraints><rsc_location id="away" rsc="rsc" node="node1" score="-INFINITY"/></constraints>"#;
    let c = read_cib(&xml.replace("<constraints/>", ban)).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    assert_eq!(
        rsc_actions(&t, "rsc"),
        ["start@node2 (place)", "stop@node1 (move)"]
    );
    let (stop, start) = (
        action_ids(&t, "stop", "node1")[0],
        action_ids(&t, "start", "node2")[0],
    );
    assert!(t.edges.contains(&(stop, start)), "{:?}", t.edges);

    // The node of a pending start is lost: fenced before the start elsewhere.
    let xml = two_nodes(
        "",
        &format!(
            r#"<primitive id="fence" class="stonith" type="fence_ipmilan"/>{}"#,
            dummy("rsc")
        ),
        (LOST, &pending("start")),
        (UP, &probed),
    );
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let fence = action_ids(&t, "fence", "node1");
    let start = action_ids(&t, "start", "node2")
        .into_iter()
        .filter(|&i| t.actions[i].rsc.as_deref() == Some("rsc"))
        .collect::<Vec<_>>();
    assert_eq!((fence.len(), start.len()), (1, 1), "{:?}", t.actions);
    assert!(t.edges.contains(&(fence[0], start[0])), "{:?}", t.edges);

    // A pending stop: still active where it was.
    let xml = two_nodes(
        NO_STONITH,
        &dummy("rsc"),
        (UP, &pending("stop")),
        (UP, &probed),
    );
    let c = read_cib(&xml).unwrap();
    assert_eq!(
        ha_scheduler::current_placement(&c.config, &c.status, 0).resources["rsc"].nodes,
        vec!["node1".to_string()]
    );

    // Promotable: a pending start is Unpromoted, a pending promote Promoted.
    let ms = r#"<clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-p" name="promotable" value="true"/></meta_attributes>
        <primitive id="rsc" class="ocf" provider="pacemaker" type="Stateful"/></clone>"#;
    for (task, role) in [("start", Role::Unpromoted), ("promote", Role::Promoted)] {
        let xml = two_nodes(NO_STONITH, ms, (UP, &pending(task)), (UP, &probed));
        let c = read_cib(&xml).unwrap();
        let now = ha_scheduler::current_placement(&c.config, &c.status, 0);
        assert_eq!(
            now.resources["rsc@node1"].role, role,
            "pending {task}: {now:?}"
        );
    }
}

/// `order ms-store_drbd:promote store_serv:start` (our users' NFS/Samba on
/// DRBD): the group's starts wait for the promote (found by the VM lab:
/// the filesystem was mounted on a Secondary).
#[test]
fn a_group_ordered_after_a_promote_starts_after_it() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/lab/scenarios/nfs/repro/promote-order-both-started.cib.xml"
    );
    let xml = std::fs::read_to_string(path).unwrap();
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let find = |kind: ActionKind, rsc: &str| {
        t.actions
            .iter()
            .find(|a| a.kind == kind && a.rsc.as_deref().is_some_and(|r| r.starts_with(rsc)))
            .map(|a| a.id)
            .unwrap_or_else(|| panic!("no {kind:?} of {rsc}: {:?}", t.actions))
    };
    let promote = find(ActionKind::Promote, "store_drbd");
    for member in ["store_fs", "nfs_fs", "store_ip", "nfsd", "samba"] {
        let start = find(ActionKind::Start, member);
        assert!(
            t.edges.contains(&(promote, start)),
            "no edge promote -> start {member}: {:?}",
            t.edges
        );
    }
}

/// The NFS-on-DRBD setup after a failover: node2 is Primary and runs the
/// group, node1 came back Secondary and UpToDate (both `master-store_drbd`
/// 10000). The group's `cli-prefer` (+INF on node1) reaches the promotion
/// through the colocation with the promoted role, so, as in Pacemaker
/// (`crm_simulate -S` on the same file: promoted node1, group on node1),
/// DRBD is demoted on node2 and promoted on node1 and the group moves back.
#[test]
fn a_group_colocated_with_the_promoted_role_pulls_the_promotion_back() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/drbd-group-failback.xml");
    let xml = std::fs::read_to_string(path).unwrap();
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let promoted: Vec<(&String, &Vec<String>)> = t
        .placement
        .resources
        .iter()
        .filter(|(k, r)| k.starts_with("store_drbd") && r.role == Role::Promoted)
        .map(|(k, r)| (k, &r.nodes))
        .collect();
    assert_eq!(promoted.len(), 1, "{:?}", t.placement.resources);
    assert_eq!(promoted[0].1, &["node1".to_string()]);
    for m in ["store_fs", "nfs_fs", "store_ip", "nfsd", "samba"] {
        assert_eq!(t.placement.resources[m].nodes, ["node1"], "{m}");
        assert_eq!(
            rsc_actions(&t, m),
            ["start@node1 (place)", "stop@node2 (move)"],
            "{m}"
        );
    }
    let drbd: Vec<String> = t
        .actions
        .iter()
        .filter(|a| {
            a.rsc
                .as_deref()
                .is_some_and(|r| r.starts_with("store_drbd"))
        })
        .filter(|a| matches!(a.kind.name().as_str(), "promote" | "demote"))
        .map(|a| format!("{}@{}", a.kind.name(), a.node))
        .collect();
    assert_eq!(drbd.len(), 2, "{drbd:?}");
    assert!(drbd.contains(&"promote@node1".to_string()), "{drbd:?}");
    assert!(drbd.contains(&"demote@node2".to_string()), "{drbd:?}");
    // The group stops in reverse on node2, all before the demote (seen in
    // the VM lab: the XFS unmount raced the NFS server still exporting it
    // and timed out).
    let id = |kind: &str, rsc_prefix: &str| {
        t.actions
            .iter()
            .find(|a| {
                a.kind.name() == kind
                    && a.node == "node2"
                    && a.rsc.as_deref().is_some_and(|r| r.starts_with(rsc_prefix))
            })
            .map(|a| a.id)
            .unwrap_or_else(|| panic!("no {kind} of {rsc_prefix} on node2"))
    };
    let chain = [
        id("stop", "samba"),
        id("stop", "nfsd"),
        id("stop", "store_ip"),
        id("stop", "nfs_fs"),
        id("stop", "store_fs"),
        id("demote", "store_drbd"),
    ];
    for w in chain.windows(2) {
        assert!(
            t.edges.contains(&(w[0], w[1])),
            "edge {:?} missing: {:?}",
            w,
            t.edges
        );
    }
}

/// The same failback, but nfsd's stop failed on node2 (the DC; seen in the
/// VM lab: `umount /var/lib/nfs: target is busy`): node2 is fenced, and
/// node1's copy of DRBD is promoted only after that fence (the fence stops
/// node2's promoted copy). `crm_simulate -S` on the same file: "Fence
/// (reboot) node2 'nfsd failed there'", then store_drbd promote on node1
/// after the fencing. We promoted node1 at once, beside node2's Primary;
/// DRBD refused and the promote timed out.
#[test]
fn a_promotable_clone_promotes_only_after_the_fence_of_the_node_holding_its_promoted_copy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/drbd-group-failback-dc-stop-failed.xml");
    let xml = std::fs::read_to_string(path).unwrap();
    let c = read_cib(&xml).unwrap();
    let t = ha_scheduler::schedule(&c.config, &c.status, 0);
    let fence = t
        .actions
        .iter()
        .find(|a| a.kind.name() == "fence" && a.node == "node2")
        .unwrap_or_else(|| panic!("no fence of node2: {:?}", t.actions));
    let promote = t
        .actions
        .iter()
        .find(|a| {
            a.kind.name() == "promote"
                && a.node == "node1"
                && a.rsc
                    .as_deref()
                    .is_some_and(|r| r.starts_with("store_drbd"))
        })
        .unwrap_or_else(|| panic!("no promote on node1: {:?}", t.actions));
    // Reachable through the edges (directly or through other actions).
    let mut seen = std::collections::BTreeSet::from([fence.id]);
    let mut todo = vec![fence.id];
    while let Some(x) = todo.pop() {
        for &(a, b) in &t.edges {
            if a == x && seen.insert(b) {
                todo.push(b);
            }
        }
    }
    assert!(
        seen.contains(&promote.id),
        "promote@node1 ({}) not after fence node2 ({}): {:?}",
        promote.id,
        fence.id,
        t.edges
    );
    // Nothing of the group starts on node1 before the fence either.
    for a in t
        .actions
        .iter()
        .filter(|a| a.kind.name() == "start" && a.node == "node1")
    {
        if a.rsc
            .as_deref()
            .is_some_and(|r| ["store_fs", "nfs_fs", "store_ip", "nfsd", "samba"].contains(&r))
        {
            assert!(seen.contains(&a.id), "{:?} not after the fence", a);
        }
    }
}
