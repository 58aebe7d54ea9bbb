//! Topology levels and device selection, against a real simulated BMC.

mod common;

use std::time::Duration;

use common::*;
use ha_fencing::lab::Bmc;
use ha_fencing::{fence, DeviceConfig, FenceAction, FenceOptions, Level};

fn ipmi(bmc: &Bmc, id: &str, password: &str) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(id, "external/ipmi");
    cfg.params = bmc.params();
    // The BMC is node1's (tests below override the list).
    cfg.with("password", password)
        .with("pcmk_host_list", "node1")
}

fn opts() -> FenceOptions {
    FenceOptions {
        timeout: Duration::from_secs(10),
        delay_override: Some(Duration::ZERO),
        ..FenceOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn level_1_fails_level_2_fences() {
    let dir = tempdir();
    let mut node = spawn_node();
    let bmc = Bmc::start(dir.path(), Some(node.id())).expect("bmc");
    let devices = vec![
        ipmi(&bmc, "ipmi-broken", "BadSecret99"),
        ipmi(&bmc, "ipmi-good", "secret"),
    ];
    let levels = vec![
        // Out of order on purpose: levels are tried by index.
        Level {
            index: 2,
            target: "node1".into(),
            devices: vec!["ipmi-good".into()],
        },
        Level {
            index: 1,
            target: "node1".into(),
            devices: vec!["ipmi-broken".into()],
        },
        Level {
            index: 1,
            target: "node2".into(),
            devices: vec!["ipmi-good".into()],
        },
    ];
    let report = fence("node1", FenceAction::Off, &devices, &levels, &opts()).await;
    let summary = report.summary();
    eprintln!("{summary}");
    assert!(report.succeeded, "{summary}");
    assert_eq!(report.level, Some(2));
    assert_eq!(report.device.as_deref(), Some("ipmi-good"));
    assert_eq!(report.attempts.len(), 2);
    assert_eq!(report.attempts[0].level, Some(1));
    assert_eq!(report.attempts[0].device, "ipmi-broken");
    let e = report.attempts[0]
        .result
        .as_ref()
        .expect_err("level 1 failed");
    assert!(e.contains("authentication"), "{e}");
    assert!(report.attempts[1].result.is_ok() && report.attempts[1].confirmed);
    assert!(
        summary.contains("level 2") && summary.contains("level 1: ipmi-broken"),
        "{summary}"
    );
    assert!(!summary.contains("BadSecret99") && !format!("{report:?}").contains("BadSecret99"));
    assert!(wait_dead(&mut node, Duration::from_secs(2)));
    assert!(!bmc.power_is_on());

    // A level with two devices must have both succeed: broken + good fails the level.
    bmc.set_power(true).unwrap();
    let levels = vec![Level {
        index: 1,
        target: "node1".into(),
        devices: vec!["ipmi-good".into(), "ipmi-broken".into()],
    }];
    let report = fence("node1", FenceAction::Off, &devices, &levels, &opts()).await;
    assert!(!report.succeeded, "{}", report.summary());
    assert_eq!(report.attempts.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_levels_devices_are_tried_in_order_and_host_lists_apply() {
    let dir = tempdir();
    let mut node = spawn_node();
    let bmc = Bmc::start(dir.path(), Some(node.id())).expect("bmc");

    // Only node2 in the host list: nothing can fence node1.
    let only_node2 = vec![ipmi(&bmc, "ipmi-node2", "secret").with("pcmk_host_list", "node2")];
    let report = fence("node1", FenceAction::Off, &only_node2, &[], &opts()).await;
    let summary = report.summary();
    eprintln!("{summary}");
    assert!(!report.succeeded);
    assert!(report.attempts.is_empty(), "nothing may be run");
    assert!(summary.contains("no device can fence node1"), "{summary}");
    assert!(summary.contains("ipmi-node2"), "{summary}");
    assert!(bmc.power_is_on());

    // First capable device fails, second works.
    let devices = vec![
        ipmi(&bmc, "ipmi-node2", "secret").with("pcmk_host_list", "node2"),
        ipmi(&bmc, "ipmi-wrong", "nope-nope").with("pcmk_host_map", "node1:1"),
        ipmi(&bmc, "ipmi-right", "secret").with("pcmk_host_list", "node1, node3"),
    ];
    let report = fence("node1", FenceAction::Off, &devices, &[], &opts()).await;
    eprintln!("{}", report.summary());
    assert!(report.succeeded);
    assert_eq!(report.device.as_deref(), Some("ipmi-right"));
    let tried: Vec<&str> = report.attempts.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(tried, vec!["ipmi-wrong", "ipmi-right"]);
    assert_eq!(report.skipped.len(), 1);
    assert!(wait_dead(&mut node, Duration::from_secs(2)));
}
