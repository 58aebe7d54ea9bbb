//! Native ipmitool device against a real simulated BMC (ipmi_sim).

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Bmc;
use ha_fencing::{Device, DeviceConfig, FenceAction, FenceError, PowerState};

fn ipmi_device(bmc: &Bmc, id: &str, password: &str) -> DeviceConfig {
    // external/ipmi spellings.
    DeviceConfig::new(id, "external/ipmi")
        .with("hostname", "node1")
        .with("ipaddr", "127.0.0.1")
        .with("ipport", bmc.port().to_string())
        .with("userid", "admin")
        .with("passwd", password)
        .with("interface", "lanplus")
}

#[tokio::test(flavor = "multi_thread")]
async fn off_kills_the_node_and_is_verified_then_on_and_reboot() {
    let dir = tempdir();
    let mut node = spawn_node();
    let bmc = Bmc::start(dir.path(), Some(node.id())).expect("bmc");
    let dev = Device::from_config(&ipmi_device(&bmc, "ipmi-node1", "secret"), &[]).expect("device");
    assert_eq!(dev.kind(), "ipmi");
    assert!(dev.can_fence("node1"));
    assert!(
        !dev.can_fence("node2"),
        "hostname=node1 is a static host list"
    );

    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status");
    assert_eq!(st.power, Some(PowerState::On));

    let t0 = Instant::now();
    let off = dev.run(FenceAction::Off, "node1", T).await.expect("off");
    let took = t0.elapsed();
    eprintln!(
        "ipmitool off+verify: {:.3} s ({})",
        took.as_secs_f64(),
        off.detail
    );
    assert!(off.confirmed, "off must be verified: {off:?}");
    assert_eq!(off.power, Some(PowerState::Off));
    assert!(!bmc.power_is_on());
    assert!(
        wait_dead(&mut node, Duration::from_secs(2)),
        "registered node process must be killed"
    );
    assert_eq!(bmc.killed(), vec![node.id()]);
    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status");
    assert_eq!(st.power, Some(PowerState::Off));

    let on = dev.run(FenceAction::On, "node1", T).await.expect("on");
    assert!(on.confirmed);
    assert!(bmc.power_is_on());

    // reboot, default method onoff: off verified, then on.
    let mut node2 = spawn_node();
    bmc.set_pid(Some(node2.id())).unwrap();
    let r = dev
        .run(FenceAction::Reboot, "node1", T)
        .await
        .expect("reboot");
    assert!(r.confirmed, "{r:?}");
    assert!(wait_dead(&mut node2, Duration::from_secs(2)));
    assert!(bmc.power_is_on(), "reboot ends powered on");
    let calls = bmc.calls();
    let last_off = calls
        .iter()
        .rposition(|c| c.ends_with("set power 0"))
        .expect("off call");
    assert!(
        calls[last_off..].iter().any(|c| c.ends_with("set power 1")),
        "{calls:?}"
    );

    // reboot with method=cycle: the BMC's cycle.
    let cycle = Device::from_config(
        &ipmi_device(&bmc, "ipmi-cycle", "secret").with("method", "cycle"),
        &[],
    )
    .unwrap();
    let mut node3 = spawn_node();
    bmc.set_pid(Some(node3.id())).unwrap();
    let r = cycle
        .run(FenceAction::Reboot, "node1", T)
        .await
        .expect("cycle");
    assert!(r.detail.contains("cycle"), "{r:?}");
    assert!(
        wait_dead(&mut node3, Duration::from_secs(2)),
        "cycle cuts power"
    );
    let t0 = Instant::now();
    while !bmc.power_is_on() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(bmc.power_is_on(), "cycle powers back on");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_an_authentication_error_without_the_password() {
    let dir = tempdir();
    let mut node = spawn_node();
    let bmc = Bmc::start(dir.path(), Some(node.id())).expect("bmc");
    let dev = Device::from_config(&ipmi_device(&bmc, "ipmi-node1", "Wr0ngPassw0rd"), &[]).unwrap();
    let err = dev
        .run(FenceAction::Off, "node1", T)
        .await
        .expect_err("must fail");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(matches!(err, FenceError::Auth { .. }), "{err:?}");
    assert!(text.contains("ipmi-node1"), "{text}");
    assert!(text.contains("authentication"), "{text}");
    assert!(!text.contains("Wr0ngPassw0rd"), "{text}");
    assert!(!format!("{err:?}").contains("Wr0ngPassw0rd"));
    assert!(bmc.power_is_on(), "nothing happened");
    assert!(node.try_wait().unwrap().is_none(), "node still alive");
    let _ = node.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_bmc_fails_within_bounds() {
    // A port where nothing listens.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = DeviceConfig::new("ipmi-gone", "fence_ipmilan")
        .with("ip", "127.0.0.1")
        .with("ipport", port.to_string())
        .with("username", "admin")
        .with("password", "secret")
        .with("lanplus", "1")
        .with("ipmitool_retries", "1");
    // Native fallback only if fence_ipmilan is absent: use the native kind explicitly.
    let cfg = DeviceConfig {
        agent: "ipmi".into(),
        ..cfg
    };
    let dev = Device::from_config(&cfg, &[]).unwrap();

    let t0 = Instant::now();
    let err = dev
        .run(FenceAction::Off, "node1", T)
        .await
        .expect_err("unreachable");
    let took = t0.elapsed();
    eprintln!("unreachable: {:.2} s: {err}", took.as_secs_f64());
    assert!(matches!(err, FenceError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("ipmi-gone"));
    assert!(took < Duration::from_secs(8), "{took:?}");

    // With a short action timeout: a timeout error, on time.
    let t0 = Instant::now();
    let err = dev
        .run(FenceAction::Off, "node1", Duration::from_millis(800))
        .await
        .expect_err("timeout");
    let took = t0.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(took < Duration::from_millis(1800), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_user_is_an_authentication_error() {
    let dir = tempdir();
    let bmc = Bmc::start(dir.path(), None).expect("bmc");
    let cfg = ipmi_device(&bmc, "ipmi-user", "secret").with("userid", "nobody");
    let dev = Device::from_config(&cfg, &[]).unwrap();
    let err = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect_err("wrong user");
    assert!(matches!(err, FenceError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("unauthorized name"), "{err}");
}

/// The password reaches ipmitool through IPMI_PASSWORD (-E), never argv.
#[tokio::test(flavor = "multi_thread")]
async fn password_is_not_on_the_command_line() {
    let dir = tempdir();
    let d = dir.path().display();
    let fake = dir.path().join("ipmitool");
    script(
        &fake,
        &format!(
            "#!/bin/sh\necho \"$@\" > '{d}/argv'\necho \"$IPMI_PASSWORD\" > '{d}/env'\necho 'Chassis Power is on'\n"
        ),
    );
    let cfg = DeviceConfig::new("ipmi-argv", "external/ipmi")
        .with("ipaddr", "192.0.2.1")
        .with("passwd", "TopSecret7")
        .with("ipmitool_path", fake.display().to_string());
    let dev = Device::from_config(&cfg, &[]).unwrap();
    let st = dev.run(FenceAction::Status, "n", T).await.expect("status");
    assert_eq!(st.power, Some(PowerState::On));
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert!(!argv.contains("TopSecret7"), "{argv}");
    assert!(
        argv.contains("-E") && argv.contains("chassis power status"),
        "{argv}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .trim(),
        "TopSecret7"
    );
}
