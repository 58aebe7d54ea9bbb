//! Timeouts kill the helper's whole process group.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::process_is_gone;
use ha_fencing::{fence, Device, DeviceConfig, FenceAction, FenceError, FenceOptions};

fn read_pid(path: &std::path::Path) -> u32 {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "no pid in {path:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_gone(pid: u32) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if process_is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_agent_and_grandchild() {
    let dir = tempdir();
    let d = dir.path().display();
    script(
        &dir.path().join("fence_hang"),
        &format!(
            "#!/bin/sh\ncat >/dev/null\nsleep 1000 &\necho $! > '{d}/grandchild.pid'\necho $$ > '{d}/agent.pid'\nsleep 1000\n"
        ),
    );
    let cfg = DeviceConfig::new("hanger", "fence_hang").with("pcmk_off_timeout", "1s");
    let dev = Device::from_config(&cfg, &[dir.path().to_path_buf()]).unwrap();
    assert_eq!(
        dev.action_timeout(FenceAction::Off, Duration::from_secs(60)),
        Duration::from_secs(1)
    );

    let t0 = Instant::now();
    let e = dev
        .run(
            FenceAction::Off,
            "node1",
            dev.action_timeout(FenceAction::Off, Duration::from_secs(60)),
        )
        .await
        .expect_err("must time out");
    let took = t0.elapsed();
    assert!(matches!(e, FenceError::Timeout { .. }), "{e:?}");
    assert!(
        e.to_string().contains("hanger") && e.to_string().contains("node1"),
        "{e}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    let agent = read_pid(&dir.path().join("agent.pid"));
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(wait_gone(agent), "agent {agent} still running");
    assert!(
        wait_gone(grandchild),
        "grandchild {grandchild} still running"
    );

    // Through fence(): the report says timeout; pcmk_off_timeout beats stonith-timeout.
    let _ = std::fs::remove_file(dir.path().join("grandchild.pid"));
    let opts = FenceOptions {
        timeout: Duration::from_secs(60),
        search_path: vec![dir.path().to_path_buf()],
        delay_override: Some(Duration::ZERO),
        ..FenceOptions::default()
    };
    let t0 = Instant::now();
    // A host list, so no metadata call is needed to decide (this agent hangs on everything).
    let cfg = cfg.with("pcmk_host_list", "node1");
    let report = fence("node1", FenceAction::Off, &[cfg], &[], &opts).await;
    assert!(!report.succeeded);
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(
        report.summary().contains("timed out"),
        "{}",
        report.summary()
    );
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(wait_gone(grandchild));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_future_kills_the_group() {
    let dir = tempdir();
    let d = dir.path().display();
    script(
        &dir.path().join("fence_hang"),
        &format!("#!/bin/sh\nsleep 1000 &\necho $! > '{d}/grandchild.pid'\nsleep 1000\n"),
    );
    let cfg = DeviceConfig::new("hanger", "fence_hang");
    let dev = Device::from_config(&cfg, &[dir.path().to_path_buf()]).unwrap();
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        dev.run(FenceAction::Off, "node1", Duration::from_secs(60)),
    )
    .await;
    assert!(r.is_err(), "outer timeout fired");
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(
        wait_gone(grandchild),
        "cancelled call left {grandchild} running"
    );
}
