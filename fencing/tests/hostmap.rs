//! Host maps and dynamic lists with a fake fence_ agent that records its stdin.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ha_fencing::{fence, Device, DeviceConfig, FenceAction, FenceOptions};

/// A fake agent: records stdin to DIR/stdin.N, supports metadata (with
/// `list` iff `with_list`), list (n1, n2), status (2 = off), off, on.
fn fake_agent(dir: &Path, name: &str, with_list: bool) {
    let list_action = if with_list {
        r#"<action name="list"/>"#
    } else {
        ""
    };
    let d = dir.display();
    script(
        &dir.join(name),
        &format!(
            r#"#!/bin/sh
n=$(ls '{d}' | grep -c '^stdin\.')
cat > '{d}/stdin.'$n
action=$(sed -n 's/^action=//p' '{d}/stdin.'$n)
case "$action" in
metadata) cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="{name}" shortdesc="fake">
<parameters><parameter name="ip" required="1"><content type="string"/><shortdesc lang="en">address</shortdesc></parameter></parameters>
<actions><action name="off"/><action name="status"/>{list_action}<action name="metadata"/></actions>
</resource-agent>
XML
;;
list) echo "n1,alias-one"; echo "n2";;
status) exit 2;;
off|on|reboot|monitor) exit 0;;
*) exit 1;;
esac
"#
        ),
    );
}

fn recorded(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("stdin."))
        .collect();
    files.sort_by_key(|e| {
        e.file_name().to_string_lossy()[6..]
            .parse::<u32>()
            .unwrap_or(0)
    });
    files
        .iter()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

fn opts(dir: &Path) -> FenceOptions {
    FenceOptions {
        timeout: Duration::from_secs(10),
        search_path: vec![dir.to_path_buf()],
        delay_override: Some(Duration::ZERO),
        ..FenceOptions::default()
    }
}

#[tokio::test]
async fn host_map_gives_the_plug() {
    let dir = tempdir();
    fake_agent(dir.path(), "fence_fake", false);
    let devices = vec![DeviceConfig::new("pdu", "fence_fake")
        .with("pcmk_host_map", "node1:3;node2:4 node3:5")
        .with("pcmk_off_timeout", "7s")
        .with("ip", "10.0.0.1")
        .with("passwd", "pw")];
    let report = fence("node2", FenceAction::Off, &devices, &[], &opts(dir.path())).await;
    assert!(report.succeeded, "{}", report.summary());
    let runs = recorded(dir.path());
    let off = runs
        .iter()
        .find(|s| s.starts_with("action=off"))
        .expect("off run");
    let lines: Vec<&str> = off.lines().collect();
    assert_eq!(
        lines[..3],
        ["action=off", "nodename=node2", "plug=4"],
        "{off}"
    );
    assert!(
        off.contains("ip=10.0.0.1\n") && off.contains("passwd=pw\n"),
        "{off}"
    );
    assert!(
        !off.contains("pcmk_"),
        "pcmk_* params are not passed: {off}"
    );
    // Off was confirmed by a status read (the fake says 2 = off).
    assert!(runs.iter().any(|s| s.starts_with("action=status")));
    assert!(report.attempts[0].confirmed);

    // Not in the map (static-list by default): cannot fence, nothing run.
    let before = recorded(dir.path()).len();
    let report = fence("node9", FenceAction::Off, &devices, &[], &opts(dir.path())).await;
    assert!(!report.succeeded);
    assert!(
        report.summary().contains("no device can fence node9"),
        "{}",
        report.summary()
    );
    assert_eq!(recorded(dir.path()).len(), before);

    // pcmk_host_argument renames the plug parameter.
    let devices = vec![DeviceConfig::new("pdu", "fence_fake")
        .with("pcmk_host_map", "node1:3")
        .with("pcmk_host_argument", "port")];
    let report = fence("node1", FenceAction::Off, &devices, &[], &opts(dir.path())).await;
    assert!(report.succeeded);
    let runs = recorded(dir.path());
    assert!(runs.iter().any(|s| s.contains("\nport=3\n")), "{runs:?}");
}

#[tokio::test]
async fn dynamic_list_asks_the_agent() {
    let dir = tempdir();
    fake_agent(dir.path(), "fence_lister", true);
    let cfg = DeviceConfig::new("lister", "fence_lister");
    let dev = Device::from_config(&cfg, &[dir.path().to_path_buf()]).unwrap();
    // Statically unknown: allowed; dynamically: asked.
    assert!(dev.can_fence("zzz"));
    assert!(dev.can_fence_dynamic("n1", T).await.is_ok());
    assert!(dev.can_fence_dynamic("alias-one", T).await.is_ok());
    let why = dev.can_fence_dynamic("zzz", T).await.unwrap_err();
    assert!(why.contains("zzz") && why.contains("n1"), "{why}");

    let report = fence(
        "zzz",
        FenceAction::Off,
        std::slice::from_ref(&cfg),
        &[],
        &opts(dir.path()),
    )
    .await;
    assert!(!report.succeeded);
    assert!(report.summary().contains("no device can fence zzz"));
    let report = fence("n2", FenceAction::Off, &[cfg], &[], &opts(dir.path())).await;
    assert!(report.succeeded, "{}", report.summary());

    // Without list support and without a host list: can fence anything.
    let dir2 = tempdir();
    fake_agent(dir2.path(), "fence_nolist", false);
    let cfg = DeviceConfig::new("nolist", "fence_nolist");
    let report = fence(
        "anything",
        FenceAction::Off,
        &[cfg],
        &[],
        &opts(dir2.path()),
    )
    .await;
    assert!(report.succeeded, "{}", report.summary());
}

/// A failing off is tried again (pcmk_off_retries, default 2) within the timeout;
/// with pcmk_off_retries=0 it is not.
#[tokio::test]
async fn failed_off_is_retried() {
    let dir = tempdir();
    let d = dir.path().display();
    // Fails the first off, succeeds after; status says off.
    script(
        &dir.path().join("fence_flaky"),
        &format!(
            "#!/bin/sh\nin=$(cat)\ncase \"$in\" in action=status*) exit 2;; esac\n\
             n=$(cat '{d}/count' 2>/dev/null || echo 0); echo $((n+1)) > '{d}/count'\n\
             [ \"$n\" -ge 1 ] && exit 0\necho 'ERROR: Failed: transient' >&2\nexit 1\n"
        ),
    );
    let cfg = DeviceConfig::new("flaky", "fence_flaky").with("pcmk_host_list", "n1");
    let report = fence(
        "n1",
        FenceAction::Off,
        std::slice::from_ref(&cfg),
        &[],
        &opts(dir.path()),
    )
    .await;
    assert!(report.succeeded, "{}", report.summary());
    assert_eq!(report.attempts.len(), 2, "{:?}", report.attempts);
    assert!(report.attempts[0]
        .result
        .as_ref()
        .is_err_and(|e| e.contains("transient")));

    std::fs::remove_file(dir.path().join("count")).unwrap();
    let cfg = cfg.with("pcmk_off_retries", "0");
    let report = fence("n1", FenceAction::Off, &[cfg], &[], &opts(dir.path())).await;
    assert!(!report.succeeded);
    assert_eq!(report.attempts.len(), 1);
}
