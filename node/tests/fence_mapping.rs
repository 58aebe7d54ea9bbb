//! Issue 13, point 4: a power device that does not say which node it fences
//! is refused when the configuration is loaded. Two real simulated BMCs
//! (ipmi_sim) behind `fence_ipmilan` devices without `pcmk_host_list` /
//! `pcmk_host_map`: `hactl config load` fails naming the first device and
//! what to add, the configuration epoch does not move, no BMC is touched;
//! with the host lists added the same configuration loads.

mod common;

use std::time::Duration;

use common::*;
use ha_fencing::lab::Bmc;

fn config(bmcs: &[Bmc], mapped: bool) -> String {
    let mut s = String::from("node node1\nnode node2\nnode node3\n");
    for (i, b) in bmcs.iter().enumerate() {
        let n = format!("node{}", i + 1);
        let map = if mapped {
            format!(" pcmk_host_list={n}")
        } else {
            String::new()
        };
        s += &format!(
            "primitive fence-{n} stonith:fence_ipmilan params ip=127.0.0.1 ipport={} \
             username=admin password=secret lanplus=1 cipher=3 power_wait=0{map}\n\
             location fence-{n}-elsewhere fence-{n} -inf: {n}\n",
            b.port()
        );
    }
    s + "primitive d1 ocf:heartbeat:Dummy op monitor interval=2s timeout=20s\n\
         property stonith-enabled=true stonith-action=off stonith-timeout=20s\n"
}

#[test]
fn loading_unmapped_ipmi_devices_fails_naming_the_device_and_changes_nothing() {
    let c = Cluster::start(3);
    let bmcs: Vec<Bmc> = c.bmcs(2);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let (before, _) = rt.block_on(client.get_config()).unwrap();

    let crm = c.dir.join("unmapped.crm");
    std::fs::write(&crm, config(&bmcs, false)).unwrap();
    for dry in [false, true] {
        let mut args = vec!["config", "load", crm.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        let out = c.hactl(&args);
        let err = stderr(&out);
        // The dry run is refused like the load (hactl checks first).
        assert!(
            !out.status.success(),
            "an unmapped device was accepted (dry run: {dry})"
        );
        assert!(
            err.contains("fence device fence-node1")
                && err.contains("does not say which node it fences")
                && err.contains("pcmk_host_list=NODE"),
            "{err}"
        );
        assert!(!err.contains("secret"), "the password leaks: {err}");
        let (after, config) = rt.block_on(client.get_config()).unwrap();
        assert_eq!(
            after, before,
            "the configuration epoch moved (dry run: {dry})"
        );
        assert!(config.resources.is_empty(), "{config:?}");
    }
    // The node refuses it too (a client that skips hactl's check).
    let unmapped = ha_scheduler::crm::read_crm(&config(&bmcs, false)).unwrap();
    let err = rt
        .block_on(client.apply_config(before, &unmapped))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fence device fence-node1") && err.contains("pcmk_host_list=NODE"),
        "{err}"
    );
    assert!(!err.contains("secret"), "the password leaks: {err}");
    assert_eq!(rt.block_on(client.get_config()).unwrap().0, before);
    for b in &bmcs {
        assert!(b.power_is_on() && b.killed().is_empty());
    }

    // With the host lists it loads.
    let crm = c.dir.join("mapped.crm");
    std::fs::write(&crm, config(&bmcs, true)).unwrap();
    let out = c.hactl(&["config", "load", crm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (after, _) = rt.block_on(client.get_config()).unwrap();
    assert_eq!(after, before + 1);
}
