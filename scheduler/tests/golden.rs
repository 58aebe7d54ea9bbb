//! Golden files: our users' configurations (deploy/examples) must place
//! exactly as Pacemaker 2.1.5 does, and every placement must hold the
//! invariants of the architecture page (one node per primitive, at most
//! promoted-max promoted instances).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ha_scheduler::cib::read_cib;
use ha_scheduler::model::{Membership, Resource, Role};
use ha_scheduler::transition::Placement;

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
