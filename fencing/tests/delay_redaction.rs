//! Delays (parsing, bounds, application) and redaction of secrets in every text.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_fencing::{
    fence, fence_delay, parse_duration, priority_fencing_delay, Device, DeviceConfig, FenceAction,
    FenceOptions, NodePriority,
};

#[test]
fn duration_syntax() {
    assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
    assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("soon"), None);
}

#[test]
fn delay_bounds() {
    let base_only = DeviceConfig::new("d", "fence_x").with("pcmk_delay_base", "2s");
    assert_eq!(fence_delay(&base_only, "n1"), Duration::from_secs(2));

    let both = DeviceConfig::new("d", "fence_x")
        .with("pcmk_delay_base", "1s")
        .with("pcmk_delay_max", "3s");
    let samples: Vec<Duration> = (0..300).map(|_| fence_delay(&both, "n1")).collect();
    assert!(
        samples
            .iter()
            .all(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(3)),
        "{samples:?}"
    );
    let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
    assert!(
        distinct.len() > 50,
        "random part varies: {} distinct",
        distinct.len()
    );
    assert!(samples.iter().any(|d| *d < Duration::from_millis(1500)));
    assert!(samples.iter().any(|d| *d > Duration::from_millis(2500)));

    let max_only = DeviceConfig::new("d", "fence_x").with("pcmk_delay_max", "500ms");
    assert!((0..100).all(|_| fence_delay(&max_only, "n1") <= Duration::from_millis(500)));

    // Max below base: the base.
    let low_max = DeviceConfig::new("d", "fence_x")
        .with("pcmk_delay_base", "2s")
        .with("pcmk_delay_max", "1s");
    assert_eq!(fence_delay(&low_max, "n1"), Duration::from_secs(2));

    // Per-node base map.
    let map = DeviceConfig::new("d", "fence_x").with("pcmk_delay_base", "node1:0s;node2:5s");
    assert_eq!(fence_delay(&map, "node1"), Duration::ZERO);
    assert_eq!(fence_delay(&map, "node2"), Duration::from_secs(5));
    assert_eq!(fence_delay(&map, "node3"), Duration::ZERO);

    // Garbage: no delay.
    let junk = DeviceConfig::new("d", "fence_x").with("pcmk_delay_base", "lots");
    assert_eq!(fence_delay(&junk, "n1"), Duration::ZERO);
}

#[test]
fn priority_fencing_delay_rule() {
    let p = Duration::from_secs(15);
    let node = |name: &str, priority: i64, online: bool| NodePriority {
        name: name.into(),
        priority,
        online,
    };
    // Two-node split: we (a, online) fence b. b runs more important resources: delayed.
    let nodes = [node("a", 5, true), node("b", 10, false)];
    assert_eq!(priority_fencing_delay(p, "b", &nodes), p);
    // b runs less: no delay (b loses the race).
    let nodes = [node("a", 10, true), node("b", 5, false)];
    assert_eq!(priority_fencing_delay(p, "b", &nodes), Duration::ZERO);
    // Equal priorities: no priority delay.
    let nodes = [node("a", 5, true), node("b", 5, false)];
    assert_eq!(priority_fencing_delay(p, "b", &nodes), Duration::ZERO);
    // Our partition has the majority: no delay.
    let nodes = [node("a", 1, true), node("c", 1, true), node("b", 10, false)];
    assert_eq!(priority_fencing_delay(p, "b", &nodes), Duration::ZERO);
    // Target not lost: no delay. Property 0: no delay.
    let nodes = [node("a", 1, false), node("b", 10, true)];
    assert_eq!(priority_fencing_delay(p, "b", &nodes), Duration::ZERO);
    let nodes = [node("a", 1, true), node("b", 10, false)];
    assert_eq!(
        priority_fencing_delay(Duration::ZERO, "b", &nodes),
        Duration::ZERO
    );
    // A promoted instance (priority 10) counts 11.
    assert_eq!(ha_fencing::resource_priority(10, true), 11);
}

#[tokio::test]
async fn delay_is_applied_once_per_device_and_reported() {
    let dir = tempdir();
    // Off: 0; status: 2 (off), so the off is confirmed.
    script(
        &dir.path().join("fence_ok"),
        "#!/bin/sh\nin=$(cat)\ncase \"$in\" in action=status*) exit 2;; esac\nexit 0\n",
    );
    let cfg = DeviceConfig::new("ok", "fence_ok")
        .with("pcmk_delay_base", "300ms")
        .with("pcmk_host_list", "n1");
    let opts = FenceOptions {
        timeout: Duration::from_secs(5),
        search_path: vec![dir.path().to_path_buf()],
        priority_delay: Duration::from_millis(200),
        ..FenceOptions::default()
    };
    let t0 = Instant::now();
    let report = fence("n1", FenceAction::Off, &[cfg], &[], &opts).await;
    assert!(report.succeeded, "{}", report.summary());
    assert_eq!(report.delay, Duration::from_millis(500));
    assert_eq!(report.attempts[0].delay, Duration::from_millis(500));
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert!(
        report.summary().contains("fencing delay of 0.5 s"),
        "{}",
        report.summary()
    );
}

#[tokio::test]
async fn secrets_never_show() {
    let cfg = DeviceConfig::new("leaky", "fence_leak")
        .with("pcmk_host_list", "n1")
        .with("ip", "10.0.0.1")
        .with("password", "pw-Alpha-1")
        .with("passwd", "pw-Bravo-2")
        .with("pass", "pw-Charlie-3")
        .with("snmp_password", "pw-Delta-4")
        .with("ipmi_passwd", "pw-Echo-5")
        .with("secret", "pw-Foxtrot-6")
        .with("pcmk_some_password_thing", "pw-Golf-7");
    let secrets = [
        "pw-Alpha-1",
        "pw-Bravo-2",
        "pw-Charlie-3",
        "pw-Delta-4",
        "pw-Echo-5",
        "pw-Foxtrot-6",
        "pw-Golf-7",
    ];
    let debug = format!("{cfg:?}");
    let display = cfg.to_string();
    for s in secrets {
        assert!(!debug.contains(s), "Debug shows {s}: {debug}");
        assert!(!display.contains(s), "Display shows {s}: {display}");
    }
    assert!(
        debug.contains("10.0.0.1") && debug.contains("********"),
        "{debug}"
    );

    // An agent that prints every secret it got to stderr and fails.
    let dir = tempdir();
    script(
        &dir.path().join("fence_leak"),
        "#!/bin/sh\nwhile read l; do echo \"got $l\" >&2; done\necho \"ERROR: login failed with $(echo pw-Alpha-1)\" >&2\nexit 1\n",
    );
    let dev = Device::from_config(&cfg, &[dir.path().to_path_buf()]).unwrap();
    let err = dev.run(FenceAction::Off, "n1", T).await.expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("leaky"), "{text}");
    for s in secrets {
        assert!(!text.contains(s), "error shows {s}: {text}");
        assert!(!format!("{err:?}").contains(s));
    }
    let opts = FenceOptions {
        search_path: vec![dir.path().to_path_buf()],
        delay_override: Some(Duration::ZERO),
        ..FenceOptions::default()
    };
    let report = fence("n1", FenceAction::Off, &[cfg], &[], &opts).await;
    let all = format!("{} {:?}", report.summary(), report);
    for s in secrets {
        assert!(!all.contains(s), "report shows {s}: {all}");
    }
}
