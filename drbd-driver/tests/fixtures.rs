//! The recorded DRBD 8.4 and 9 `events2` outputs (tests/fixtures/) parsed and
//! applied: facts from them, the 8.4 split brain, diff-form lines, unknown
//! keys, garbage lines.

use std::path::PathBuf;

use ha_drbd::events2::{parse_line, Line, LineSplitter, ParseError};
use ha_drbd::model::{Change, ConnectionState, DiskState, PeerId, ReplicationState, Role, State};
use ha_drbd::summary::ResourceSummary;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const ALL: &[&str] = &[
    "events2-now-statistics.drbd9.3node.txt",
    "events2-timestamps.drbd9.drbdtop.txt",
    "lab-84/node1.events2_now.txt",
    "lab-84/node1.events2_now_statistics.txt",
    "lab-84/node1.events2_timestamps_statistics_stream.txt",
    "lab-84/node2.events2_now.txt",
    "lab-84/node2.events2_now_statistics.txt",
    "lab-84/node2.events2_timestamps_statistics_stream.txt",
];

/// Applies a whole file; every line must parse and apply.
fn run(name: &str) -> (State, Vec<(usize, String, Vec<Change>)>) {
    let text = fixture(name);
    let mut state = State::new();
    let mut log = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = parse_line(l).unwrap_or_else(|e| panic!("{name}:{}: {e}: {l}", i + 1));
        let changes = match &line {
            Line::Event(ev) => state
                .try_apply(ev)
                .unwrap_or_else(|e| panic!("{name}:{}: {e}: {l}", i + 1)),
            Line::EndOfInitialDump { .. } => state.apply_line(&line),
        };
        log.push((i + 1, l.to_string(), changes));
    }
    (state, log)
}

#[test]
fn every_fixture_parses_and_applies() {
    for name in ALL {
        let (state, log) = run(name);
        assert!(!state.resources.is_empty(), "{name}");
        assert!(!log.is_empty(), "{name}");
    }
}

#[test]
fn every_fixture_through_the_splitter_in_odd_chunks() {
    for name in ALL {
        let text = fixture(name);
        let mut sp = LineSplitter::new();
        let mut n = 0;
        for chunk in text.as_bytes().chunks(7) {
            for r in sp.push(chunk) {
                r.unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
        for r in sp.finish() {
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert_eq!(
            n,
            text.lines().filter(|l| !l.trim().is_empty()).count(),
            "{name}"
        );
    }
}

#[test]
fn drbd9_three_nodes() {
    let (s, log) = run("events2-now-statistics.drbd9.3node.txt");
    assert!(s.initial_dump_done);
    assert!(matches!(
        log.last().map(|l| &l.2[..]),
        Some([Change::InitialDumpDone])
    ));
    let r = &s.resources["drbd1"];
    assert_eq!(r.role, Some(Role::Secondary));
    let d = &r.devices[&0];
    assert_eq!(
        (d.minor, d.disk.clone(), d.client, d.quorum),
        (Some(1), Some(DiskState::UpToDate), Some(false), Some(true))
    );
    assert_eq!(d.size, Some(765_868));
    let c0 = &r.connections[&PeerId::NodeId(0)];
    assert_eq!(c0.conn_name.as_deref(), Some("central-2004"));
    assert_eq!(c0.connection, Some(ConnectionState::Connected));
    assert_eq!(c0.role, Some(Role::Primary));
    let c1 = &r.connections[&PeerId::NodeId(1)];
    assert_eq!(c1.role, Some(Role::Secondary));
    for c in [c0, c1] {
        let pd = &c.peer_devices[&0];
        assert_eq!(pd.replication, Some(ReplicationState::Established));
        assert_eq!(pd.peer_disk, Some(DiskState::UpToDate));
        assert_eq!(pd.out_of_sync, Some(0));
    }
    // Unknown / statistics keys are kept.
    assert_eq!(
        r.extra.get("write-ordering").map(String::as_str),
        Some("flush")
    );
    assert_eq!(d.extra.get("written").map(String::as_str), Some("765868"));
    assert_eq!(c0.extra.get("ap-in-flight").map(String::as_str), Some("0"));
    assert_eq!(
        c0.peer_devices[&0]
            .extra
            .get("received")
            .map(String::as_str),
        Some("765868")
    );

    let sum = s.summary();
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].peers.len(), 2);
    assert!(!sum[0].split_brain);
    let line = sum[0].to_string();
    assert!(
        line.starts_with("drbd1 role:Secondary vol0:UpToDate"),
        "{line}"
    );
    assert!(
        line.contains("central-2004 Connected Primary Established"),
        "{line}"
    );
}

#[test]
fn drbdtop_timestamps_and_sync_source() {
    let (s, log) = run("events2-timestamps.drbd9.drbdtop.txt");
    let Ok(Line::Event(first)) = parse_line(&log[0].1) else {
        panic!("first line");
    };
    let ts = first.timestamp.expect("timestamp");
    assert_eq!(
        (
            ts.year,
            ts.month,
            ts.day,
            ts.hour,
            ts.micros,
            ts.offset_minutes
        ),
        (2017, 3, 27, 8, 72_611, -7 * 60)
    );
    let r = &s.resources["test0"];
    assert_eq!(r.role, Some(Role::Primary));
    // Only conn-name on these lines: keyed by name.
    let c = &r.connections[&PeerId::Name("peer".into())];
    assert_eq!(c.node_id, None);
    assert_eq!(
        c.peer_devices[&0].replication,
        Some(ReplicationState::SyncSource)
    );
    assert_eq!(c.peer_devices[&0].peer_disk, Some(DiskState::Inconsistent));
    // out-of-sync (205655500) exceeds the device size (4056) of this
    // synthetic sample: no percent can be computed, and none is invented.
    assert_eq!(s.summary()[0].peers[0].sync_percent, None);
}

#[test]
fn sync_percent_from_done_and_from_out_of_sync() {
    let mut s = State::new();
    for l in [
        "2026-11-22T08:00:00.000001+00:00 exists device name:r1 volume:0 minor:1 disk:UpToDate size:1000",
        "2026-11-22T08:00:00.000001+00:00 exists connection name:r1 peer-node-id:1 conn-name:b connection:Connected role:Secondary",
        "2026-11-22T08:00:00.000001+00:00 exists peer-device name:r1 peer-node-id:1 conn-name:b volume:0 replication:SyncSource peer-disk:Inconsistent out-of-sync:250",
    ] {
        let Ok(Line::Event(e)) = parse_line(l) else { panic!("{l}") };
        s.try_apply(&e).unwrap();
    }
    assert_eq!(s.summary()[0].peers[0].sync_percent, Some(75.0));
    let Ok(Line::Event(e)) = parse_line(
        "change peer-device name:r1 peer-node-id:1 conn-name:b volume:0 done:42.50 out-of-sync:100",
    ) else {
        panic!()
    };
    s.try_apply(&e).unwrap();
    let p = &s.summary()[0].peers[0];
    assert_eq!(p.sync_percent, Some(42.5));
    assert_eq!(p.replication, Some(ReplicationState::SyncSource));
    let Ok(Line::Event(e)) = parse_line(
        "change peer-device name:r1 peer-node-id:1 conn-name:b volume:0 replication:Established peer-disk:UpToDate out-of-sync:0",
    ) else {
        panic!()
    };
    let ch = s.try_apply(&e).unwrap();
    assert!(ch.contains(&Change::Replication {
        resource: "r1".into(),
        peer: PeerId::NodeId(1),
        volume: Some(0),
        old: Some(ReplicationState::SyncSource),
        new: ReplicationState::Established
    }));
    assert_eq!(s.summary()[0].peers[0].sync_percent, None);
}

#[test]
fn lab84_steady_state_dual_primary() {
    for node in ["node1", "node2"] {
        for kind in ["events2_now", "events2_now_statistics"] {
            let (s, _) = run(&format!("lab-84/{node}.{kind}.txt"));
            let r = &s.resources["r0"];
            assert_eq!(r.role, Some(Role::Primary));
            assert_eq!(r.devices[&0].disk, Some(DiskState::UpToDate));
            assert_eq!(r.devices[&0].minor, Some(0));
            // 8.4: peer-node-id is always 0, conn-name is "peer".
            let c = &r.connections[&PeerId::NodeId(0)];
            assert_eq!(c.conn_name.as_deref(), Some("peer"));
            assert_eq!(c.connection, Some(ConnectionState::Connected));
            assert_eq!(c.role, Some(Role::Primary));
            assert_eq!(
                c.peer_devices[&0].replication,
                Some(ReplicationState::Established)
            );
            assert_eq!(c.peer_devices[&0].peer_disk, Some(DiskState::UpToDate));
            assert!(!r.split_brain);
        }
    }
}

fn split_brain_changes(log: &[(usize, String, Vec<Change>)]) -> Vec<(usize, &str, bool)> {
    log.iter()
        .flat_map(|(n, l, ch)| {
            ch.iter().filter_map(move |c| match c {
                Change::SplitBrain { new, .. } => Some((*n, l.as_str(), *new)),
                _ => None,
            })
        })
        .collect()
}

#[test]
fn lab84_split_brain_detected_at_the_helper_call() {
    for node in ["node1", "node2"] {
        let name = format!("lab-84/{node}.events2_timestamps_statistics_stream.txt");
        let (s, log) = run(&name);
        let sb = split_brain_changes(&log);
        assert_eq!(sb.len(), 1, "{name}: {sb:?}");
        let (line_no, line, new) = sb[0];
        assert!(new);
        assert!(
            line.contains(" call helper ") && line.ends_with("helper:split-brain"),
            "{line}"
        );
        // The first line naming the split-brain helper is where it fires;
        // initial-split-brain alone does not set it.
        let first_call = log
            .iter()
            .find(|(_, l, _)| l.contains("call helper") && l.ends_with("helper:split-brain"))
            .map(|(n, _, _)| *n);
        assert_eq!(Some(line_no), first_call);
        let initial = log
            .iter()
            .find(|(_, l, _)| l.contains("helper:initial-split-brain"))
            .map(|(n, _, _)| *n)
            .unwrap();
        assert!(initial < line_no);

        let r = &s.resources["r0"];
        assert!(r.split_brain, "{name}");
        // Then StandAlone and the connection destroyed.
        let standalone_after = log.iter().any(|(n, _, ch)| {
            *n > line_no
                && ch.iter().any(|c| {
                    matches!(
                        c,
                        Change::Connection {
                            new: ConnectionState::StandAlone,
                            ..
                        }
                    )
                })
        });
        assert!(standalone_after, "{name}");
        assert!(r.connections.is_empty());
        // Helper runs recorded with their exit status.
        let sbr = r
            .helpers
            .iter()
            .find(|h| h.helper == "split-brain")
            .unwrap();
        assert_eq!(sbr.status, Some(0));
        assert_eq!(sbr.peer, Some(PeerId::NodeId(0)));
        assert_eq!(sbr.volume, Some(0));
        assert!(sbr.called_at.unwrap() <= sbr.answered_at.unwrap());
        let sum = ResourceSummary::from_resource(r);
        assert!(sum.split_brain);
        assert!(sum.to_string().ends_with("SPLIT-BRAIN"));
        // The role stayed Primary throughout the split.
        assert_eq!(r.role, Some(Role::Primary));
    }
}

#[test]
fn lab84_stream_transitions() {
    let (_, log) = run("lab-84/node1.events2_timestamps_statistics_stream.txt");
    let all: Vec<&Change> = log.iter().flat_map(|l| &l.2).collect();
    assert!(all.contains(&&Change::Disk {
        resource: "r0".into(),
        volume: 0,
        old: Some(DiskState::Inconsistent),
        new: DiskState::UpToDate
    }));
    assert!(all.contains(&&Change::Role {
        resource: "r0".into(),
        old: Some(Role::Secondary),
        new: Role::Primary
    }));
    let conn: Vec<ConnectionState> = all
        .iter()
        .filter_map(|c| match c {
            Change::Connection { new, .. } => Some(new.clone()),
            _ => None,
        })
        .collect();
    use ConnectionState::*;
    assert_eq!(
        conn,
        [
            Connected,
            TearDown,
            Unconnected,
            Connecting,
            Connected,
            Disconnecting,
            StandAlone
        ]
    );
    assert!(all.contains(&&Change::PeerDisk {
        resource: "r0".into(),
        peer: PeerId::NodeId(0),
        volume: 0,
        old: Some(DiskState::UpToDate),
        new: DiskState::DUnknown
    }));
}

#[test]
fn split_brain_clears_when_the_handshake_completes_again() {
    let (mut s, _) = run("lab-84/node2.events2_timestamps_statistics_stream.txt");
    assert!(s.resources["r0"].split_brain);
    let mut cleared_at = None;
    for (i, l) in [
        "create connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone role:Unknown",
        "create peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Off peer-disk:DUnknown",
        "change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting",
        "change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary",
        "change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:WFBitMapS peer-disk:Outdated",
    ]
    .iter()
    .enumerate()
    {
        let Ok(Line::Event(e)) = parse_line(l) else { panic!("{l}") };
        let ch = s.try_apply(&e).unwrap();
        assert_eq!(s.resources["r0"].split_brain, cleared_at.is_none() && i < 4, "{l}");
        if ch.iter().any(|c| matches!(c, Change::SplitBrain { new: false, .. })) {
            cleared_at = Some(i);
        }
    }
    assert_eq!(cleared_at, Some(4));
}

#[test]
fn diff_form_lines() {
    let mut s = State::new();
    let Ok(Line::Event(e)) = parse_line("exists resource name:r0 role:Secondary") else {
        panic!()
    };
    s.apply(&e);
    let Ok(Line::Event(e)) = parse_line(
        "2026-11-22T07:30:46.447321+00:00 change resource name:r0 role:Secondary->Primary may_promote:yes->no",
    ) else {
        panic!()
    };
    assert_eq!(e.old("role"), Some("Secondary"));
    let ch = s.apply(&e);
    assert_eq!(
        ch,
        [Change::Role {
            resource: "r0".into(),
            old: Some(Role::Secondary),
            new: Role::Primary
        }]
    );
    assert_eq!(
        s.resources["r0"]
            .extra
            .get("may_promote")
            .map(String::as_str),
        Some("no")
    );
}

#[test]
fn unknown_keys_and_objects_kept_or_reported() {
    let mut s = State::new();
    let Ok(Line::Event(e)) = parse_line(
        "exists device name:r0 volume:0 minor:0 disk:UpToDate future-key:42 backing_dev:/dev/vdb",
    ) else {
        panic!()
    };
    s.apply(&e);
    let d = &s.resources["r0"].devices[&0];
    assert_eq!(d.extra.get("future-key").map(String::as_str), Some("42"));
    assert_eq!(
        d.extra.get("backing_dev").map(String::as_str),
        Some("/dev/vdb")
    );
    let Ok(Line::Event(e)) = parse_line("exists device name:r0 volume:0 disk:Frobnicated") else {
        panic!()
    };
    s.apply(&e);
    assert_eq!(
        s.resources["r0"].devices[&0].disk,
        Some(DiskState::Other("Frobnicated".into()))
    );
    let Ok(Line::Event(e)) = parse_line("exists path name:r0 peer-node-id:1 conn-name:b local:ipv4:10.0.0.1:7789 peer:ipv4:10.0.0.2:7789 established:yes") else {
        panic!()
    };
    s.apply(&e);
    let c = &s.resources["r0"].connections[&PeerId::NodeId(1)];
    assert_eq!(
        c.extra.get("path.peer").map(String::as_str),
        Some("ipv4:10.0.0.2:7789")
    );
}

#[test]
fn garbage_lines_error_and_change_nothing() {
    let (mut s, _) = run("lab-84/node1.events2_now.txt");
    let before = s.clone();
    let mut sp = LineSplitter::new();
    let input = b"frobnicate resource name:r0\nexists widget name:r0\nchange resource name:r0 role\n\xff\xfe\n2026-99-22T07:30:45.4+00:00 change resource name:r0 role:Secondary\nchange\nchange resource role:Secondary\nexists -\n";
    let results = sp.push(input);
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 6);
    assert_eq!(
        errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        errors[0].error,
        ParseError::UnknownVerb("frobnicate".into())
    );
    assert_eq!(errors[2].error, ParseError::BadItem("role".into()));
    assert_eq!(errors[3].error, ParseError::NotUtf8);
    assert!(errors[0].to_string().contains("line 1"));
    // The stream went on: the remaining lines were parsed.
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 2);
    let Line::Event(no_name) = ok[0] else {
        panic!()
    };
    assert!(s.try_apply(no_name).is_err());
    assert_eq!(s, before);
}

#[test]
fn summary_json_round_trip() {
    let (s, _) = run("lab-84/node2.events2_now_statistics.txt");
    let sum = s.summary();
    let json = serde_json::to_string(&sum).unwrap();
    assert!(json.contains("\"role\":\"Primary\""), "{json}");
    assert!(json.contains("\"disk\":\"UpToDate\""), "{json}");
    assert!(json.contains("\"split_brain\":false"), "{json}");
    let back: Vec<ResourceSummary> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sum);
}
