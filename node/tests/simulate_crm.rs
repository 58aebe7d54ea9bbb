//! `hactl simulate --crm`: our users' crm configurations place as Pacemaker
//! placed their CIBs (every node online, quorum, nothing running), checked
//! with the conformance comparator; bad crm input exits 2 with one
//! `line:column` line on stderr and nothing on stdout.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hactl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hactl"))
}

#[test]
fn crm_examples_place_as_expected() {
    let dir = std::env::temp_dir().join(format!("hactl-crm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "firewall-pair",
        "mysql-vip",
        "nfs-samba-drbd",
        "ocfs2-dual-primary",
    ] {
        let crm = root().join(format!("deploy/examples/{name}.crm"));
        let out = hactl()
            .args([
                "simulate",
                "--crm",
                crm.to_str().unwrap(),
                "--output",
                "json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let actual = dir.join(format!("{name}.json"));
        std::fs::write(&actual, &out.stdout).unwrap();
        let cmp = Command::new("python3")
            .arg(root().join("scheduler/conformance/compare.py"))
            .arg(root().join(format!("deploy/examples/{name}.expected.json")))
            .arg(&actual)
            .output()
            .expect("python3 runs compare.py");
        assert!(
            cmp.status.success(),
            "{name} differs from Pacemaker:\n{}",
            String::from_utf8_lossy(&cmp.stdout)
        );
    }
}

#[test]
fn crm_and_cib_are_exclusive_and_one_is_needed() {
    let none = hactl().args(["simulate"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    let both = hactl()
        .args(["simulate", "--crm", "a.crm", "--cib", "b.xml"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn bad_crm_exits_2_with_one_located_line() {
    let dir = std::env::temp_dir().join(format!("hactl-badcrm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.crm");
    std::fs::write(
        &bad,
        "node n1\nprimitive p ocf:heartbeat:Dummy \\\n    op monitor interval=ten\n",
    )
    .unwrap();
    let out = hactl()
        .args([
            "simulate",
            "--crm",
            bad.to_str().unwrap(),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.crm: 3:16: unexpected 'interval=ten'"),
        "{err}"
    );
}
