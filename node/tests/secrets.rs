//! Secrets stay private (issue 13, point 2): a configuration holding
//! secrets under many parameter names, on stonith devices and ordinary
//! primitives (one named only by its agent's metadata, `private="1"`, one
//! agent echoing them in its failure), and every output grepped for their
//! values: status (human and JSON), `config show` (crm, JSON), the
//! fence device list and a failing fence test, the fencing history, the
//! nodes' logs, `--show-secrets` as an operator (refused). An admin's
//! `--show-secrets` shows them; `config show > f; config load f` and
//! `config edit` keep them. `config edit`'s temp file is 0600 and gone after
//! a failed apply.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use ha_node::config::ClientConfig;
use ha_node::setup;
use ha_node::tls::Role;

/// (parameter, value) pairs: every value must stay hidden.
const SECRETS: &[(&str, &str)] = &[
    ("passwd", "Pw-of-the-bmc-91x"),
    ("secret_key", "SecretKey-7781-aws"),
    ("apikey", "ApiKey-3313-ibm"),
    ("access_key", "AccessKey-5150-aws"),
    ("token", "Token-6642-cloud"),
    ("community", "Community-2207-snmp"),
    ("credential", "Credential-4419-x"),
    // named only by the agent's metadata (private="1")
    ("blob", "Blob-private-8080"),
];

fn value(name: &str) -> &'static str {
    SECRETS.iter().find(|(n, _)| *n == name).unwrap().1
}

/// An OCF tree: Debian's heartbeat agents, plus `ocf:test:Leaky`, whose
/// start fails with an exit reason (and stderr) echoing its secrets and
/// whose metadata marks `blob` private.
fn ocf_root(dir: &Path) -> PathBuf {
    let root = dir.join("ocf");
    std::fs::create_dir_all(root.join("resource.d/test")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", root.join("lib")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/ocf/resource.d/heartbeat",
        root.join("resource.d/heartbeat"),
    )
    .unwrap();
    let agent = root.join("resource.d/test/Leaky");
    std::fs::write(
        &agent,
        r#"#!/bin/sh
case "$1" in
meta-data) cat <<EOF
<?xml version="1.0"?>
<resource-agent name="Leaky" version="1.0">
<version>1.1</version>
<shortdesc lang="en">fails, echoing its secrets</shortdesc>
<parameters>
<parameter name="passwd"><content type="string"/></parameter>
<parameter name="blob" private="1"><content type="string"/></parameter>
</parameters>
<actions>
<action name="start" timeout="10s"/><action name="stop" timeout="10s"/>
<action name="monitor" timeout="10s" interval="10s"/><action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
EOF
exit 0;;
start) echo "login with $OCF_RESKEY_passwd / $OCF_RESKEY_blob refused"
echo "ocf-exit-reason:login with $OCF_RESKEY_passwd and $OCF_RESKEY_blob refused" >&2; exit 1;;
stop) exit 0;;
monitor) exit 7;;
*) exit 3;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// A TCP port on loopback where nothing listens (the fence device's BMC).
fn closed_port() -> u16 {
    let l = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn crm() -> String {
    format!(
        "node node1\nnode node2\nnode node3\n\
         primitive fence-ipmi stonith:external/ipmi params hostname=node3 ipaddr=127.0.0.1 \
         ipport={port} userid=admin passwd={pw} interface=lanplus pcmk_host_list=node3\n\
         primitive fence-cloud stonith:fence_aws params access_key={ak} secret_key={sk} \
         region=eu-west-1 pcmk_host_list=node2\n\
         primitive app ocf:heartbeat:Dummy params apikey={api} token={tok} community={com} \
         credential={cred} op monitor interval=10s timeout=20s\n\
         primitive leaky ocf:test:Leaky params passwd={pw} blob={blob} \
         meta migration-threshold=1\n\
         property stonith-enabled=false\n",
        port = closed_port(),
        pw = value("passwd"),
        ak = value("access_key"),
        sk = value("secret_key"),
        api = value("apikey"),
        tok = value("token"),
        com = value("community"),
        cred = value("credential"),
        blob = value("blob"),
    )
}

/// The secret values found in `text`.
fn leaks(text: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| text.contains(v))
        .collect()
}

fn all(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn operator(c: &Cluster) -> PathBuf {
    let dir = c.dir.join("client-operator");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = setup::CaFiles::in_dir(&c.dir).load().unwrap();
    let endpoints = ClientConfig::load(&c.client_config).unwrap().endpoints;
    let (_, path) = setup::write_client(
        &ca,
        &dir,
        "operator",
        Role::Operator,
        endpoints,
        "hactl.toml",
    )
    .unwrap();
    path
}

#[test]
fn secrets_appear_in_no_output_unless_an_admin_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = ocf_root(tmp.path());
    let c = Cluster::start_with(3, |cfg| cfg.ocf_root = root.clone());
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let file = c.dir.join("secrets.crm");
    std::fs::write(&file, crm()).unwrap();
    let out = c.hactl(&["config", "load", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", all(&out));
    assert!(leaks(&all(&out)).is_empty(), "{}", all(&out));

    // Wait until leaky failed (its start echoed the secrets) and app runs.
    let start = Instant::now();
    loop {
        let v = rt.block_on(client.status()).unwrap();
        let failed = v["failed_actions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|a| a["resource"] == "leaky"));
        if failed && !on(&v, "app").is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut outputs: Vec<(String, String)> = Vec::new();
    for args in [
        vec!["status"],
        vec!["status", "--output", "json"],
        vec!["config", "show"],
        vec!["config", "show", "--output", "json"],
        vec!["stonith", "list"],
        vec!["stonith", "list", "--output", "json"],
        vec!["stonith", "test", "fence-ipmi"],
        vec!["fence", "history"],
        vec!["fence", "history", "--output", "json"],
    ] {
        let out = c.hactl(&args);
        outputs.push((args.join(" "), all(&out)));
    }
    // The failure text is there, only without the secrets.
    let status = &outputs[0].1;
    assert!(status.contains("leaky_start_0"), "{status}");
    assert!(status.contains("refused"), "{status}");
    let shown = &outputs[2].1;
    assert!(
        shown.contains("passwd=") && shown.contains("********"),
        "{shown}"
    );

    // An operator asking for the secrets: refused, naming the role.
    let op = operator(&c);
    let out = std::process::Command::new(HACTL)
        .arg("--config")
        .arg(&op)
        .args(["config", "show", "--show-secrets"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", all(&out));
    assert!(
        stderr(&out).contains("with its secrets (--show-secrets) needs the role admin"),
        "{}",
        all(&out)
    );
    outputs.push(("operator: config show --show-secrets".into(), all(&out)));
    // Round trip without the secrets: show > f; load f keeps them.
    let shown_file = c.dir.join("shown.crm");
    let text = stdout(&c.hactl(&["config", "show"]));
    std::fs::write(
        &shown_file,
        text.replace("property ", "property no-quorum-policy=stop "),
    )
    .unwrap();
    let out = c.hactl(&["config", "load", shown_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", all(&out));
    outputs.push(("config load of a shown file".into(), all(&out)));
    // config edit: a change elsewhere keeps the secrets.
    let out = c.configure_edit(
        "edit-keeps",
        "echo 'primitive extra ocf:heartbeat:Dummy' >> \"$1\"",
    );
    assert!(out.status.success(), "{}", all(&out));
    outputs.push(("config edit".into(), all(&out)));
    // A placeholder for a parameter that has no stored value: an error naming it.
    let bad = c.dir.join("bad.crm");
    std::fs::write(
        &bad,
        format!(
            "{}primitive newdev ocf:heartbeat:Dummy params passwd=\"********\"\n",
            stdout(&c.hactl(&["config", "show"]))
        ),
    )
    .unwrap();
    let out = c.hactl(&["config", "load", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", all(&out));
    assert!(
        stderr(&out).contains("newdev") && stderr(&out).contains("passwd"),
        "{}",
        all(&out)
    );

    // The admin asking: every value, unchanged by the round trips.
    let out = c.hactl(&["config", "show", "--show-secrets"]);
    assert!(out.status.success(), "{}", all(&out));
    let full = stdout(&out);
    for (n, v) in SECRETS {
        assert!(
            full.contains(v),
            "{n}={v} missing after the round trips: {full}"
        );
    }
    assert!(full.contains("no-quorum-policy=stop"), "{full}");
    assert!(full.contains("primitive extra"), "{full}");
    let out = c.hactl(&["config", "show", "--show-secrets", "--output", "json"]);
    assert!(leaks(&stdout(&out)).len() == SECRETS.len(), "{}", all(&out));

    // Logs last: everything above ran through the nodes.
    std::thread::sleep(Duration::from_millis(500));
    for n in &c.names {
        let log = std::fs::read_to_string(c.dir.join(n).join("ha-node.log")).unwrap();
        outputs.push((format!("{n}'s log"), log));
    }
    let mut bad = Vec::new();
    for (what, text) in &outputs {
        let l = leaks(text);
        if !l.is_empty() {
            bad.push(format!("{what}: {l:?}"));
        }
    }
    assert!(bad.is_empty(), "secrets leaked:\n{}", bad.join("\n"));
}

#[test]
fn the_editor_file_is_private_and_removed_when_the_apply_fails() {
    let c = Cluster::start(1);
    let rt = rt();
    let client = c.client();
    rt.block_on(wait_dc(&client, None, Duration::from_secs(30)));
    let file = c.dir.join("base.crm");
    std::fs::write(
        &file,
        format!(
            "primitive dev ocf:heartbeat:Dummy params passwd={}\nproperty stonith-enabled=false\n",
            value("passwd")
        ),
    )
    .unwrap();
    let out = c.hactl(&["config", "load", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", all(&out));

    // The editor records the file's path and mode, then writes a
    // configuration that loads but is refused by the cluster (a
    // placeholder for a new resource's secret).
    let seen = c.dir.join("seen");
    let out = c.configure_edit(
        "failing-editor",
        &format!(
            "stat -c '%a %n' \"$1\" > {seen}; \
             echo 'primitive other ocf:heartbeat:Dummy params passwd=\"********\"' >> \"$1\"",
            seen = seen.display()
        ),
    );
    assert!(!out.status.success(), "{}", all(&out));
    assert!(leaks(&all(&out)).is_empty(), "{}", all(&out));
    let seen = std::fs::read_to_string(&seen).unwrap();
    let (mode, path) = seen.trim().split_once(' ').unwrap();
    assert_eq!(mode, "600", "the editor's file: {seen}");
    assert!(
        !Path::new(path).exists(),
        "{path} left behind after a failed apply"
    );
    // Its directory is private too, and gone.
    let parent = Path::new(path).parent().unwrap();
    assert!(
        !parent.exists() || parent == Path::new("/tmp"),
        "{}",
        parent.display()
    );

    // An editor that fails: the file is gone too.
    let seen2 = c.dir.join("seen2");
    let out = c.configure_edit(
        "crashing-editor",
        &format!("echo \"$1\" > {}; exit 3", seen2.display()),
    );
    assert!(!out.status.success(), "{}", all(&out));
    let path = std::fs::read_to_string(&seen2).unwrap();
    assert!(!Path::new(path.trim()).exists(), "{path} left behind");
}
