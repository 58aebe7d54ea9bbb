//! Power devices that do not say which node they fence are never used
//! (issue 13, point 4): two real simulated BMCs configured without
//! `pcmk_host_list`/`pcmk_host_map`; fencing node2 must not power off
//! node1 through node1's BMC, and must not report node2 fenced.

mod common;

use std::time::Duration;

use common::*;
use ha_fencing::lab::Bmc;
use ha_fencing::{fence, Device, DeviceConfig, FenceAction, FenceOptions, Level};

/// A `fence_ipmilan`-style device for `bmc` (the real agent when it is
/// installed, else the native kind): no host list, no host map.
fn unmapped(bmc: &Bmc, id: &str, agent: &str) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(id, agent);
    cfg.params = bmc.params();
    cfg.with("power_wait", "0")
}

fn opts() -> FenceOptions {
    FenceOptions {
        timeout: Duration::from_secs(10),
        delay_override: Some(Duration::ZERO),
        ..FenceOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_node2_never_uses_node1s_unmapped_bmc() {
    let dir = tempdir();
    let (d1, d2) = (dir.path().join("bmc1"), dir.path().join("bmc2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let mut node1 = spawn_node();
    let mut node2 = spawn_node();
    let bmc1 = Bmc::start(&d1, Some(node1.id())).expect("bmc1");
    let bmc2 = Bmc::start(&d2, Some(node2.id())).expect("bmc2");

    for agent in ["fence_ipmilan", "external/ipmi", "ipmi"] {
        let devices = vec![
            unmapped(&bmc1, "fence-node1", agent),
            unmapped(&bmc2, "fence-node2", agent),
        ];
        for target in ["node2", "node1"] {
            let report = fence(target, FenceAction::Off, &devices, &[], &opts()).await;
            let summary = report.summary();
            eprintln!("{agent}: {summary}");
            assert!(
                !report.succeeded,
                "{agent}: {target} recorded fenced: {summary}"
            );
            assert!(
                report.attempts.is_empty(),
                "{agent}: a device was run: {summary}"
            );
            assert!(
                summary.contains(&format!("no device can fence {target}"))
                    && summary.contains("fence-node1")
                    && summary.contains("fence-node2")
                    && summary.contains("pcmk_host_list"),
                "{agent}: {summary}"
            );
        }
        // A level naming the device is no host mapping either.
        let levels = vec![Level {
            index: 1,
            target: "node2".into(),
            devices: vec!["fence-node1".into()],
        }];
        let report = fence("node2", FenceAction::Off, &devices, &levels, &opts()).await;
        assert!(!report.succeeded, "{agent}: {}", report.summary());
        let refused = report.attempts[0].result.as_ref().unwrap_err();
        assert!(refused.contains("pcmk_host_list"), "{agent}: {refused}");
        assert!(bmc1.power_is_on() && bmc2.power_is_on(), "{agent}");
        assert!(bmc1.killed().is_empty() && bmc2.killed().is_empty());
    }
    // The static answer agrees: an unmapped BMC fences nobody.
    let dev = Device::from_config(&unmapped(&bmc1, "fence-node1", "external/ipmi"), &[]).unwrap();
    assert!(!dev.can_fence("node1") && !dev.can_fence("node2"));

    // Mapped, the same BMCs fence exactly their own node.
    let devices = vec![
        unmapped(&bmc1, "fence-node1", "fence_ipmilan").with("pcmk_host_list", "node1"),
        unmapped(&bmc2, "fence-node2", "fence_ipmilan").with("pcmk_host_map", "node2:2"),
    ];
    let report = fence("node2", FenceAction::Off, &devices, &[], &opts()).await;
    assert!(report.succeeded, "{}", report.summary());
    assert_eq!(report.device.as_deref(), Some("fence-node2"));
    assert!(wait_dead(&mut node2, Duration::from_secs(5)));
    assert!(!bmc2.power_is_on());
    assert!(bmc1.power_is_on(), "node1's BMC was used to fence node2");
    assert!(bmc1.killed().is_empty());
    let _ = node1.kill();
    let _ = node1.wait();
}
