//! ssh device against a loopback sshd with a forced-command key.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_fencing::lab::Sshd;
use ha_fencing::{Device, DeviceConfig, FenceAction, FenceError, PowerState};

fn ssh_device(sshd: &Sshd) -> DeviceConfig {
    let mut cfg = DeviceConfig::new("ssh-node1", "ssh");
    cfg.params = sshd.params();
    cfg.with("hostlist", "node1")
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_off_kills_the_node_and_is_confirmed() {
    let dir = tempdir();
    let mut node = spawn_node();
    let sshd = Sshd::start(dir.path()).expect("sshd");
    sshd.set_pid(Some(node.id())).unwrap();
    let dev = Device::from_config(&ssh_device(&sshd), &[]).unwrap();
    assert!(dev.can_fence("node1") && !dev.can_fence("node2"));

    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status");
    assert_eq!(st.power, Some(PowerState::On));

    let t0 = Instant::now();
    let off = dev.run(FenceAction::Off, "node1", T).await.expect("off");
    eprintln!(
        "ssh off+confirm: {:.3} s ({})",
        t0.elapsed().as_secs_f64(),
        off.detail
    );
    assert!(off.confirmed);
    assert!(wait_dead(&mut node, Duration::from_secs(2)));
    assert_eq!(sshd.killed(), vec![node.id()]);
    let cmds = sshd.commands();
    assert_eq!(cmds.first().map(String::as_str), Some("true"), "{cmds:?}");
    let at = cmds
        .iter()
        .position(|c| c == "poweroff -f")
        .expect("fence command sent");
    assert!(
        cmds[at + 1..].iter().filter(|c| *c == "true").count() >= 2,
        "two failed probes: {cmds:?}"
    );

    let st = dev
        .run(FenceAction::Status, "node1", T)
        .await
        .expect("status");
    assert_eq!(st.power, Some(PowerState::Off));

    // A node that does not answer before the command cannot be fenced over ssh.
    let e = dev
        .run(FenceAction::Reboot, "node1", T)
        .await
        .expect_err("down node");
    assert!(matches!(e, FenceError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("ssh-node1"));

    // A node that ignores the command: not confirmed, within the timeout.
    let dir2 = tempdir();
    let deaf = Sshd::start_with_command(dir2.path(), Some("/bin/true")).expect("sshd");
    let mut cfg = DeviceConfig::new("ssh-deaf", "ssh");
    cfg.params = deaf.params();
    let dev = Device::from_config(&cfg, &[]).unwrap();
    let t0 = Instant::now();
    let e = dev
        .run(FenceAction::Off, "node9", Duration::from_secs(3))
        .await
        .expect_err("still answering");
    assert!(matches!(e, FenceError::NotConfirmed { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
