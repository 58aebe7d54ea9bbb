//! A two-node cluster with a witness (`ha-node --witness`: a voter that
//! runs no resources) keeps plain majority quorum when either data node is
//! killed: no membership rewrite, the survivor recovers the resources, the
//! witness never runs any.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn status(c: &Cluster) -> serde_json::Value {
    let out = c.hactl(&["status", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_for(
    c: &Cluster,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let v = status(c);
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killing_either_data_node_keeps_quorum_with_a_witness() {
    for victim in ["node1", "node2"] {
        // node3 is the witness; the configuration names the data nodes only.
        let mut c = Cluster::start_with(3, |cfg| cfg.witness = cfg.name == "node3");
        let rt = rt();
        rt.block_on(wait_dc(&c.client(), None, Duration::from_secs(30)));
        let crm = c.dir.join("two.crm");
        std::fs::write(
            &crm,
            format!(
                "node node1\nnode node2\nproperty stonith-enabled=false\n\
                 primitive d1 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
                 primitive d2 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
                 location d1-pref d1 100: {victim}\nlocation d2-pref d2 50: {victim}\n"
            ),
        )
        .unwrap();
        let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v = wait_for(&c, "placed on the victim", |v| {
            v["pending_count"] == 0 && on(v, "d1") == [victim] && on(v, "d2") == [victim]
        });
        assert_eq!(voters(&v), ["node1", "node2", "node3"]);
        assert!(
            v["quorum_mode"].as_str().unwrap().contains("1 witness"),
            "{v:#}"
        );
        let text = stdout(&c.hactl(&["status"]));
        assert!(text.contains("witness: [ node3 ]"), "{text}");

        c.kill9(victim);
        let survivor = if victim == "node1" { "node2" } else { "node1" };
        let v = wait_for(&c, "recovered on the survivor", |v| {
            v["quorum"] == true
                && v["pending_count"] == 0
                && on(v, "d1") == [survivor]
                && on(v, "d2") == [survivor]
        });
        // Plain majority: 2 of 3 voters, the same three voters as before.
        assert_eq!(
            voters(&v),
            ["node1", "node2", "node3"],
            "no membership rewrite"
        );
        // The witness never ran anything.
        let agents = c
            .dir
            .join("node3")
            .join("data")
            .join("agents")
            .join("rsctmp");
        let ran: Vec<_> = std::fs::read_dir(&agents)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(ran.is_empty(), "the witness ran {ran:?}");
        eprintln!(
            "{victim} killed: quorum kept, DC {}, resources on {survivor}",
            v["dc"]
        );
    }
}
