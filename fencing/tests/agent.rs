//! Generic fence_* agent path with the real /usr/sbin/fence_ipmilan against ipmi_sim.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Bmc;
use ha_fencing::{
    agent_metadata, default_search_path, Device, DeviceConfig, FenceAction, PowerState,
};

fn fence_ipmilan(bmc: &Bmc, id: &str) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(id, "fence_ipmilan");
    cfg.params = bmc.params();
    cfg.with("power_wait", "0")
}

#[tokio::test(flavor = "multi_thread")]
async fn real_fence_ipmilan_off_status_on() {
    let dir = tempdir();
    let mut node = spawn_node();
    let bmc = Bmc::start(dir.path(), Some(node.id())).expect("bmc");
    let dev = Device::from_config(
        &fence_ipmilan(&bmc, "ipmilan-node1"),
        &default_search_path(),
    )
    .unwrap();
    assert_eq!(dev.kind(), "agent", "the installed fence_ipmilan is run");

    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status");
    assert_eq!(st.power, Some(PowerState::On));

    let t0 = Instant::now();
    let off = dev.run(FenceAction::Off, "node1", T).await.expect("off");
    eprintln!(
        "fence_ipmilan off+status: {:.3} s ({})",
        t0.elapsed().as_secs_f64(),
        off.detail
    );
    assert!(off.confirmed, "status read back off: {off:?}");
    assert!(wait_dead(&mut node, Duration::from_secs(2)));
    assert!(!bmc.power_is_on());

    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status rc 2");
    assert_eq!(st.power, Some(PowerState::Off));

    dev.run(FenceAction::On, "node1", T).await.expect("on");
    assert!(bmc.power_is_on());
    dev.run(FenceAction::Monitor, "node1", T)
        .await
        .expect("monitor");

    // Wrong password through the agent: an error naming the device, without the password.
    let bad = Device::from_config(
        &fence_ipmilan(&bmc, "ipmilan-bad").with("password", "NotTheRightOne"),
        &default_search_path(),
    )
    .unwrap();
    let e = bad
        .run(FenceAction::Off, "node1", T)
        .await
        .expect_err("wrong password");
    let text = e.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("ipmilan-bad") && !text.contains("NotTheRightOne"),
        "{text}"
    );
    assert!(bmc.power_is_on());
}

#[tokio::test(flavor = "multi_thread")]
async fn fence_ipmilan_metadata() {
    let m = agent_metadata("fence_ipmilan", &default_search_path(), T)
        .await
        .expect("metadata");
    assert_eq!(m.name, "fence_ipmilan");
    for p in ["ip", "password", "username", "lanplus", "cipher"] {
        assert!(m.param(p).is_some(), "parameter {p} missing");
    }
    assert!(m.param("action").is_some_and(|p| p.required));
    assert!(m.supports("off") && m.supports("status") && m.supports("monitor"));
    assert!(
        !m.supports("list"),
        "fence_ipmilan has no list: host check defaults to none"
    );
    assert!(!m.shortdesc.is_empty());

    // Unknown agent: a clear error naming the device and the path.
    let cfg = DeviceConfig::new("weird", "fence_does_not_exist");
    let e = Device::from_config(&cfg, &[PathBuf::from("/usr/sbin")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("weird") && e.contains("fence_does_not_exist") && e.contains("/usr/sbin"),
        "{e}"
    );
    assert!(ha_fencing::list_agents(&default_search_path()).contains(&"fence_ipmilan".to_string()));
}
