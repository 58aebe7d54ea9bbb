//! Typed DRBD state (roles, disk/connection/replication states) and the
//! [`State`] that `events2` lines are applied to, giving `(old, new)` changes,
//! recorded helper runs and split-brain detection.
//!
//! Dialects: DRBD 9 names are canonical. The 8.4 names `WFConnection` and
//! `WFReportParams` (connection) map to `Connecting`, the 8.4 replication name
//! `Connected` maps to `Established`, and an 8.4 `connection:` value that is a
//! replication state (e.g. `SyncSource`) means the connection is `Connected`
//! and is kept as the connection's replication hint.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::events2::{Event, Line, Object, Timestamp, Verb};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident => $s:literal $(| $alias:literal)*),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($var,)*
            /// A name this crate does not know, kept verbatim.
            Other(String),
        }
        impl $name {
            /// Never fails: unknown names become `Other`.
            pub fn parse(s: &str) -> $name {
                match s {
                    $($s $(| $alias)* => $name::$var,)*
                    other => $name::Other(other.to_string()),
                }
            }
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$var => $s,)*
                    $name::Other(s) => s,
                }
            }
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

string_enum!(
    /// Local or peer role.
    Role {
        Primary => "Primary",
        Secondary => "Secondary",
        Unknown => "Unknown",
    }
);

string_enum!(
    /// Disk state of a device (local `disk:` or `peer-disk:`).
    DiskState {
        Diskless => "Diskless",
        Attaching => "Attaching",
        Detaching => "Detaching",
        Failed => "Failed",
        Negotiating => "Negotiating",
        Inconsistent => "Inconsistent",
        Outdated => "Outdated",
        DUnknown => "DUnknown",
        Consistent => "Consistent",
        UpToDate => "UpToDate",
    }
);

string_enum!(
    /// Connection state (`connection:`); 8.4's `WFConnection` and
    /// `WFReportParams` read as `Connecting`.
    ConnectionState {
        StandAlone => "StandAlone",
        Disconnecting => "Disconnecting",
        Unconnected => "Unconnected",
        Timeout => "Timeout",
        BrokenPipe => "BrokenPipe",
        NetworkFailure => "NetworkFailure",
        ProtocolError => "ProtocolError",
        TearDown => "TearDown",
        Connecting => "Connecting" | "WFConnection" | "WFReportParams",
        Connected => "Connected",
    }
);

string_enum!(
    /// Replication state of a peer device (`replication:`); 8.4's
    /// `Connected` reads as `Established`.
    ReplicationState {
        Off => "Off",
        Established => "Established" | "Connected",
        StartingSyncS => "StartingSyncS",
        StartingSyncT => "StartingSyncT",
        WFBitMapS => "WFBitMapS",
        WFBitMapT => "WFBitMapT",
        WFSyncUUID => "WFSyncUUID",
        SyncSource => "SyncSource",
        SyncTarget => "SyncTarget",
        PausedSyncS => "PausedSyncS",
        PausedSyncT => "PausedSyncT",
        VerifyS => "VerifyS",
        VerifyT => "VerifyT",
        Ahead => "Ahead",
        Behind => "Behind",
    }
);

impl ReplicationState {
    /// A resync (or its pause) is in progress.
    pub fn is_syncing(&self) -> bool {
        matches!(
            self,
            ReplicationState::SyncSource
                | ReplicationState::SyncTarget
                | ReplicationState::PausedSyncS
                | ReplicationState::PausedSyncT
        )
    }
    /// The replication handshake completed (anything but `Off`/unknown).
    pub fn is_up(&self) -> bool {
        self.is_known() && *self != ReplicationState::Off
    }
}

/// How the value of an events2 `connection:` key reads in either dialect.
pub fn parse_connection_value(s: &str) -> (ConnectionState, Option<ReplicationState>) {
    let c = ConnectionState::parse(s);
    if c.is_known() {
        return (c, None);
    }
    let r = ReplicationState::parse(s);
    if r.is_known() {
        (ConnectionState::Connected, Some(r))
    } else {
        (c, None)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Identifies a connection within a resource: by `peer-node-id` when the
/// line carries it (DRBD 9, and 8.4 where it is always 0), else `conn-name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PeerId {
    NodeId(u32),
    Name(String),
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerId::NodeId(n) => write!(f, "node-id:{n}"),
            PeerId::Name(s) => write!(f, "conn-name:{s}"),
        }
    }
}

/// Most unknown keys kept per object.
pub const MAX_EXTRA_KEYS: usize = 128;
/// Most helper runs kept per resource (oldest dropped first).
pub const MAX_HELPER_RUNS: usize = 32;
/// Most resources / volumes / connections tracked.
pub const MAX_OBJECTS: usize = 4096;
/// Longest resource, connection or helper name accepted from a line.
pub const MAX_NAME_LEN: usize = 128;

fn keep_extra(extra: &mut BTreeMap<String, String>, ev: &Event, known: &[&str]) {
    for (k, v) in &ev.fields {
        if known.contains(&k.as_str()) {
            continue;
        }
        if extra.len() < MAX_EXTRA_KEYS || extra.contains_key(k) {
            extra.insert(k.clone(), v.new.clone());
        }
    }
}

/// A local volume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Device {
    pub volume: u32,
    pub minor: Option<u32>,
    pub disk: Option<DiskState>,
    pub client: Option<bool>,
    pub open: Option<bool>,
    pub quorum: Option<bool>,
    /// `size:` (KiB) when statistics are on.
    pub size: Option<u64>,
    pub extra: BTreeMap<String, String>,
}

/// A volume as seen over one connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerDevice {
    pub volume: u32,
    pub replication: Option<ReplicationState>,
    pub peer_disk: Option<DiskState>,
    pub peer_client: Option<bool>,
    /// `done:` resync percent.
    pub done: Option<f64>,
    /// `out-of-sync:` (KiB).
    pub out_of_sync: Option<u64>,
    pub extra: BTreeMap<String, String>,
}

/// A connection to one peer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Connection {
    pub node_id: Option<u32>,
    pub conn_name: Option<String>,
    pub connection: Option<ConnectionState>,
    pub role: Option<Role>,
    /// 8.4 dialect: a replication state carried by `connection:`.
    pub replication_hint: Option<ReplicationState>,
    pub peer_devices: BTreeMap<u32, PeerDevice>,
    pub extra: BTreeMap<String, String>,
}

/// A `call helper` and, once seen, its `response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperRun {
    pub helper: String,
    pub peer: Option<PeerId>,
    pub volume: Option<u32>,
    pub minor: Option<u32>,
    pub called_at: Option<Timestamp>,
    pub status: Option<i32>,
    pub answered_at: Option<Timestamp>,
}

/// A DRBD resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    pub name: String,
    pub role: Option<Role>,
    pub suspended: Option<bool>,
    pub devices: BTreeMap<u32, Device>,
    pub connections: BTreeMap<PeerId, Connection>,
    /// The `split-brain` helper was called and no connection has completed a
    /// handshake since.
    pub split_brain: bool,
    /// Recent helper runs, oldest first (at most [`MAX_HELPER_RUNS`]).
    pub helpers: Vec<HelperRun>,
    pub extra: BTreeMap<String, String>,
}

/// What an applied line changed. `old` is `None` when the value was not known
/// before (new object or key first seen).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    InitialDumpDone,
    ResourceCreated {
        resource: String,
    },
    ResourceDestroyed {
        resource: String,
    },
    ResourceRenamed {
        old: String,
        new: String,
    },
    Role {
        resource: String,
        old: Option<Role>,
        new: Role,
    },
    DeviceCreated {
        resource: String,
        volume: u32,
    },
    DeviceDestroyed {
        resource: String,
        volume: u32,
    },
    Disk {
        resource: String,
        volume: u32,
        old: Option<DiskState>,
        new: DiskState,
    },
    ConnectionCreated {
        resource: String,
        peer: PeerId,
    },
    ConnectionDestroyed {
        resource: String,
        peer: PeerId,
    },
    Connection {
        resource: String,
        peer: PeerId,
        old: Option<ConnectionState>,
        new: ConnectionState,
    },
    PeerRole {
        resource: String,
        peer: PeerId,
        old: Option<Role>,
        new: Role,
    },
    PeerDeviceCreated {
        resource: String,
        peer: PeerId,
        volume: u32,
    },
    PeerDeviceDestroyed {
        resource: String,
        peer: PeerId,
        volume: u32,
    },
    /// `volume` is `None` for the 8.4 hint carried by `connection:`.
    Replication {
        resource: String,
        peer: PeerId,
        volume: Option<u32>,
        old: Option<ReplicationState>,
        new: ReplicationState,
    },
    PeerDisk {
        resource: String,
        peer: PeerId,
        volume: u32,
        old: Option<DiskState>,
        new: DiskState,
    },
    HelperCalled {
        resource: String,
        run: HelperRun,
    },
    HelperResponse {
        resource: String,
        run: HelperRun,
    },
    SplitBrain {
        resource: String,
        old: bool,
        new: bool,
    },
}

/// Why an event could not be applied (the state is left unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("{object} line without name:")]
    MissingName { object: &'static str },
    #[error("{object} line: missing or bad {key}:")]
    BadKey {
        object: &'static str,
        key: &'static str,
    },
    #[error("{object} line without peer-node-id: or conn-name:")]
    MissingPeer { object: &'static str },
    #[error("too many {0} (max {MAX_OBJECTS})")]
    TooMany(&'static str),
    #[error("rename without new_name:")]
    MissingNewName,
    #[error("{key}: longer than {MAX_NAME_LEN} bytes")]
    NameTooLong { key: &'static str },
}

/// Everything learnt from one `events2` stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub resources: BTreeMap<String, Resource>,
    /// `exists -` was seen.
    pub initial_dump_done: bool,
}

fn set<T: Clone + PartialEq>(slot: &mut Option<T>, new: T) -> Option<Option<T>> {
    if slot.as_ref() == Some(&new) {
        return None;
    }
    Some(slot.replace(new))
}

fn u32_key(ev: &Event, key: &'static str) -> Result<Option<u32>, ApplyError> {
    match ev.get(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApplyError::BadKey {
            object: ev.object.as_str(),
            key,
        }),
    }
}

fn volume_of(ev: &Event) -> Result<u32, ApplyError> {
    u32_key(ev, "volume")?.ok_or(ApplyError::BadKey {
        object: ev.object.as_str(),
        key: "volume",
    })
}

fn peer_of(ev: &Event) -> Result<(PeerId, Option<u32>, Option<String>), ApplyError> {
    let node_id = u32_key(ev, "peer-node-id")?;
    let name = ev.get("conn-name").map(str::to_string);
    let id = match (node_id, &name) {
        (Some(n), _) => PeerId::NodeId(n),
        (None, Some(s)) => PeerId::Name(s.clone()),
        (None, None) => {
            return Err(ApplyError::MissingPeer {
                object: ev.object.as_str(),
            })
        }
    };
    Ok((id, node_id, name))
}

impl Resource {
    /// Finds the key of an existing connection matching the line's peer
    /// (by id, or by conn-name when the line has only one of them).
    fn find_peer(&self, id: &PeerId, name: Option<&str>) -> Option<PeerId> {
        if self.connections.contains_key(id) {
            return Some(id.clone());
        }
        let name = name?;
        self.connections
            .iter()
            .find(|(_, c)| c.conn_name.as_deref() == Some(name))
            .map(|(k, _)| k.clone())
    }
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Applies a parsed line (see [`State::apply`]).
    pub fn apply_line(&mut self, line: &Line) -> Vec<Change> {
        match line {
            Line::EndOfInitialDump { .. } => {
                self.initial_dump_done = true;
                vec![Change::InitialDumpDone]
            }
            Line::Event(ev) => self.apply(ev),
        }
    }

    /// Applies an event; an event that cannot be applied changes nothing.
    pub fn apply(&mut self, ev: &Event) -> Vec<Change> {
        self.try_apply(ev).unwrap_or_default()
    }

    /// Applies an event, or says why it cannot be (state unchanged then).
    pub fn try_apply(&mut self, ev: &Event) -> Result<Vec<Change>, ApplyError> {
        let object = ev.object.as_str();
        let name = ev
            .get("name")
            .ok_or(ApplyError::MissingName { object })?
            .to_string();
        for key in ["name", "new_name", "conn-name", "helper"] {
            if ev.get(key).is_some_and(|v| v.len() > MAX_NAME_LEN) {
                return Err(ApplyError::NameTooLong { key });
            }
        }
        let mut out = Vec::new();
        let gone = ev.verb == Verb::Destroy;
        if ev.verb == Verb::Rename {
            let new = ev.get("new_name").ok_or(ApplyError::MissingNewName)?;
            if let Some(mut r) = self.resources.remove(&name) {
                r.name = new.to_string();
                self.resources.insert(new.to_string(), r);
                out.push(Change::ResourceRenamed {
                    old: name,
                    new: new.to_string(),
                });
            }
            return Ok(out);
        }
        if gone && ev.object == Object::Resource {
            if self.resources.remove(&name).is_some() {
                out.push(Change::ResourceDestroyed { resource: name });
            }
            return Ok(out);
        }
        // Validate everything that can fail before touching the state.
        let volume = match ev.object {
            Object::Device | Object::PeerDevice => Some(volume_of(ev)?),
            _ => u32_key(ev, "volume")?,
        };
        let peer = match ev.object {
            Object::Connection | Object::PeerDevice | Object::Path => Some(peer_of(ev)?),
            Object::Helper => peer_of(ev).ok(),
            Object::Resource | Object::Device => None,
        };
        let minor = u32_key(ev, "minor")?;
        if gone && !self.resources.contains_key(&name) {
            return Ok(out);
        }
        if !self.resources.contains_key(&name) && self.resources.len() >= MAX_OBJECTS {
            return Err(ApplyError::TooMany("resources"));
        }
        let res = self.resources.entry(name.clone()).or_insert_with(|| {
            out.push(Change::ResourceCreated {
                resource: name.clone(),
            });
            Resource {
                name: name.clone(),
                ..Resource::default()
            }
        });
        match ev.object {
            Object::Resource => {
                if let Some(r) = ev.get("role") {
                    let r = Role::parse(r);
                    if let Some(old) = set(&mut res.role, r.clone()) {
                        out.push(Change::Role {
                            resource: name.clone(),
                            old,
                            new: r,
                        });
                    }
                }
                if let Some(s) = ev.get("suspended") {
                    res.suspended = parse_bool(s);
                }
                keep_extra(&mut res.extra, ev, &["name", "role", "suspended"]);
            }
            Object::Device => {
                let volume = volume.unwrap_or_default();
                if gone {
                    if res.devices.remove(&volume).is_some() {
                        out.push(Change::DeviceDestroyed {
                            resource: name,
                            volume,
                        });
                    }
                    return Ok(out);
                }
                if !res.devices.contains_key(&volume) && res.devices.len() >= MAX_OBJECTS {
                    return Err(ApplyError::TooMany("devices"));
                }
                let dev = res.devices.entry(volume).or_insert_with(|| {
                    out.push(Change::DeviceCreated {
                        resource: name.clone(),
                        volume,
                    });
                    Device {
                        volume,
                        ..Device::default()
                    }
                });
                if minor.is_some() {
                    dev.minor = minor;
                }
                if let Some(d) = ev.get("disk") {
                    let d = DiskState::parse(d);
                    if let Some(old) = set(&mut dev.disk, d.clone()) {
                        out.push(Change::Disk {
                            resource: name.clone(),
                            volume,
                            old,
                            new: d,
                        });
                    }
                }
                if let Some(v) = ev.get("client") {
                    dev.client = parse_bool(v);
                }
                if let Some(v) = ev.get("open") {
                    dev.open = parse_bool(v);
                }
                if let Some(v) = ev.get("quorum") {
                    dev.quorum = parse_bool(v);
                }
                if let Some(v) = ev.get("size") {
                    dev.size = v.parse().ok();
                }
                keep_extra(
                    &mut dev.extra,
                    ev,
                    &[
                        "name", "volume", "minor", "disk", "client", "open", "quorum", "size",
                    ],
                );
            }
            Object::Connection | Object::PeerDevice | Object::Path => {
                let Some((id, node_id, cname)) = peer else {
                    return Ok(out);
                };
                let key = res.find_peer(&id, cname.as_deref()).unwrap_or(id);
                if gone && ev.object == Object::Connection {
                    if res.connections.remove(&key).is_some() {
                        out.push(Change::ConnectionDestroyed {
                            resource: name,
                            peer: key,
                        });
                    }
                    return Ok(out);
                }
                if gone && !res.connections.contains_key(&key) {
                    return Ok(out);
                }
                if !res.connections.contains_key(&key) && res.connections.len() >= MAX_OBJECTS {
                    return Err(ApplyError::TooMany("connections"));
                }
                let conn = res.connections.entry(key.clone()).or_insert_with(|| {
                    out.push(Change::ConnectionCreated {
                        resource: name.clone(),
                        peer: key.clone(),
                    });
                    Connection::default()
                });
                if node_id.is_some() {
                    conn.node_id = node_id;
                }
                if cname.is_some() {
                    conn.conn_name = cname;
                }
                let mut handshake_done = false;
                match ev.object {
                    Object::Connection => {
                        if let Some(v) = ev.get("connection") {
                            let (c, hint) = parse_connection_value(v);
                            if let Some(old) = set(&mut conn.connection, c.clone()) {
                                out.push(Change::Connection {
                                    resource: name.clone(),
                                    peer: key.clone(),
                                    old,
                                    new: c.clone(),
                                });
                            }
                            match hint {
                                Some(h) => {
                                    handshake_done |= h.is_up();
                                    if let Some(old) = set(&mut conn.replication_hint, h.clone()) {
                                        out.push(Change::Replication {
                                            resource: name.clone(),
                                            peer: key.clone(),
                                            volume: None,
                                            old,
                                            new: h,
                                        });
                                    }
                                }
                                None => conn.replication_hint = None,
                            }
                        }
                        if let Some(v) = ev.get("role") {
                            let r = Role::parse(v);
                            if let Some(old) = set(&mut conn.role, r.clone()) {
                                out.push(Change::PeerRole {
                                    resource: name.clone(),
                                    peer: key.clone(),
                                    old,
                                    new: r,
                                });
                            }
                        }
                        keep_extra(
                            &mut conn.extra,
                            ev,
                            &["name", "peer-node-id", "conn-name", "connection", "role"],
                        );
                    }
                    Object::PeerDevice => {
                        let volume = volume.unwrap_or_default();
                        if gone {
                            if conn.peer_devices.remove(&volume).is_some() {
                                out.push(Change::PeerDeviceDestroyed {
                                    resource: name,
                                    peer: key,
                                    volume,
                                });
                            }
                            return Ok(out);
                        }
                        if !conn.peer_devices.contains_key(&volume)
                            && conn.peer_devices.len() >= MAX_OBJECTS
                        {
                            return Err(ApplyError::TooMany("peer devices"));
                        }
                        let pd = conn.peer_devices.entry(volume).or_insert_with(|| {
                            out.push(Change::PeerDeviceCreated {
                                resource: name.clone(),
                                peer: key.clone(),
                                volume,
                            });
                            PeerDevice {
                                volume,
                                ..PeerDevice::default()
                            }
                        });
                        if let Some(v) = ev.get("replication") {
                            let r = ReplicationState::parse(v);
                            handshake_done |= r.is_up();
                            if !r.is_syncing() {
                                pd.done = None;
                            }
                            if let Some(old) = set(&mut pd.replication, r.clone()) {
                                out.push(Change::Replication {
                                    resource: name.clone(),
                                    peer: key.clone(),
                                    volume: Some(volume),
                                    old,
                                    new: r,
                                });
                            }
                        }
                        if let Some(v) = ev.get("peer-disk") {
                            let d = DiskState::parse(v);
                            if let Some(old) = set(&mut pd.peer_disk, d.clone()) {
                                out.push(Change::PeerDisk {
                                    resource: name.clone(),
                                    peer: key.clone(),
                                    volume,
                                    old,
                                    new: d,
                                });
                            }
                        }
                        if let Some(v) = ev.get("peer-client") {
                            pd.peer_client = parse_bool(v);
                        }
                        if let Some(v) = ev.get("done") {
                            pd.done = v
                                .parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite())
                                .map(|f| f.clamp(0.0, 100.0));
                        }
                        if let Some(v) = ev.get("out-of-sync") {
                            pd.out_of_sync = v.parse().ok();
                        }
                        keep_extra(
                            &mut pd.extra,
                            ev,
                            &[
                                "name",
                                "peer-node-id",
                                "conn-name",
                                "volume",
                                "replication",
                                "peer-disk",
                                "peer-client",
                                "done",
                                "out-of-sync",
                            ],
                        );
                    }
                    _ => {
                        // path: kept as unknown keys of the connection, prefixed.
                        for (k, v) in &ev.fields {
                            if ["name", "peer-node-id", "conn-name"].contains(&k.as_str()) {
                                continue;
                            }
                            let k = format!("path.{k}");
                            if conn.extra.len() < MAX_EXTRA_KEYS || conn.extra.contains_key(&k) {
                                conn.extra.insert(k, v.new.clone());
                            }
                        }
                    }
                }
                if handshake_done && res.split_brain {
                    res.split_brain = false;
                    out.push(Change::SplitBrain {
                        resource: name,
                        old: true,
                        new: false,
                    });
                }
            }
            Object::Helper => {
                let helper = ev.get("helper").unwrap_or("").to_string();
                let peer =
                    peer.map(|(id, _, cname)| res.find_peer(&id, cname.as_deref()).unwrap_or(id));
                match ev.verb {
                    Verb::Call => {
                        let run = HelperRun {
                            helper: helper.clone(),
                            peer,
                            volume,
                            minor,
                            called_at: ev.timestamp,
                            status: None,
                            answered_at: None,
                        };
                        if res.helpers.len() >= MAX_HELPER_RUNS {
                            res.helpers.remove(0);
                        }
                        res.helpers.push(run.clone());
                        out.push(Change::HelperCalled {
                            resource: name.clone(),
                            run,
                        });
                        if helper == "split-brain" && !res.split_brain {
                            res.split_brain = true;
                            out.push(Change::SplitBrain {
                                resource: name,
                                old: false,
                                new: true,
                            });
                        }
                    }
                    Verb::Response => {
                        let status = ev.get("status").and_then(|s| s.parse::<i32>().ok());
                        let pending = res.helpers.iter_mut().rev().find(|r| {
                            r.status.is_none()
                                && r.helper == helper
                                && r.peer == peer
                                && r.volume == volume
                        });
                        let run = match pending {
                            Some(r) => {
                                r.status = status;
                                r.answered_at = ev.timestamp;
                                r.clone()
                            }
                            None => HelperRun {
                                helper,
                                peer,
                                volume,
                                minor,
                                called_at: None,
                                status,
                                answered_at: ev.timestamp,
                            },
                        };
                        out.push(Change::HelperResponse {
                            resource: name,
                            run,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::parse_line;

    fn ev(s: &str) -> Event {
        match parse_line(s) {
            Ok(Line::Event(e)) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn role_names() {
        for (s, r) in [
            ("Primary", Role::Primary),
            ("Secondary", Role::Secondary),
            ("Unknown", Role::Unknown),
        ] {
            assert_eq!(Role::parse(s), r);
            assert_eq!(r.as_str(), s);
        }
        assert_eq!(Role::parse("primary"), Role::Other("primary".into()));
        assert!(!Role::parse("x").is_known());
    }

    #[test]
    fn disk_state_names() {
        let all = [
            "Diskless",
            "Attaching",
            "Detaching",
            "Failed",
            "Negotiating",
            "Inconsistent",
            "Outdated",
            "DUnknown",
            "Consistent",
            "UpToDate",
        ];
        for s in all {
            let d = DiskState::parse(s);
            assert!(d.is_known(), "{s}");
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(
            DiskState::parse("Unknown"),
            DiskState::Other("Unknown".into())
        );
    }

    #[test]
    fn connection_state_names_and_84_aliases() {
        for s in [
            "StandAlone",
            "Disconnecting",
            "Unconnected",
            "Timeout",
            "BrokenPipe",
            "NetworkFailure",
            "ProtocolError",
            "TearDown",
            "Connecting",
            "Connected",
        ] {
            assert_eq!(ConnectionState::parse(s).as_str(), s);
        }
        assert_eq!(
            ConnectionState::parse("WFConnection"),
            ConnectionState::Connecting
        );
        assert_eq!(
            ConnectionState::parse("WFReportParams"),
            ConnectionState::Connecting
        );
        assert_eq!(
            parse_connection_value("SyncSource"),
            (
                ConnectionState::Connected,
                Some(ReplicationState::SyncSource)
            )
        );
        assert_eq!(
            parse_connection_value("StandAlone"),
            (ConnectionState::StandAlone, None)
        );
        assert_eq!(
            parse_connection_value("Weird"),
            (ConnectionState::Other("Weird".into()), None)
        );
    }

    #[test]
    fn replication_state_names() {
        let all = [
            "Off",
            "Established",
            "StartingSyncS",
            "StartingSyncT",
            "WFBitMapS",
            "WFBitMapT",
            "WFSyncUUID",
            "SyncSource",
            "SyncTarget",
            "PausedSyncS",
            "PausedSyncT",
            "VerifyS",
            "VerifyT",
            "Ahead",
            "Behind",
        ];
        for s in all {
            assert_eq!(ReplicationState::parse(s).as_str(), s);
        }
        assert_eq!(
            ReplicationState::parse("Connected"),
            ReplicationState::Established
        );
        assert!(ReplicationState::SyncTarget.is_syncing());
        assert!(!ReplicationState::Established.is_syncing());
        assert!(!ReplicationState::Off.is_up());
        assert!(!ReplicationState::Other("x".into()).is_up());
    }

    #[test]
    fn serde_is_the_drbd_name() {
        assert_eq!(
            serde_json::to_string(&DiskState::UpToDate).unwrap(),
            "\"UpToDate\""
        );
        let r: ReplicationState = serde_json::from_str("\"Connected\"").unwrap();
        assert_eq!(r, ReplicationState::Established);
        let o: Role = serde_json::from_str("\"Boss\"").unwrap();
        assert_eq!(o, Role::Other("Boss".into()));
    }

    #[test]
    fn changes_carry_old_and_new() {
        let mut s = State::new();
        let c = s.apply(&ev("exists resource name:r0 role:Secondary"));
        assert_eq!(
            c,
            vec![
                Change::ResourceCreated {
                    resource: "r0".into()
                },
                Change::Role {
                    resource: "r0".into(),
                    old: None,
                    new: Role::Secondary
                },
            ]
        );
        let c = s.apply(&ev("change resource name:r0 role:Primary"));
        assert_eq!(
            c,
            vec![Change::Role {
                resource: "r0".into(),
                old: Some(Role::Secondary),
                new: Role::Primary
            }]
        );
        assert!(s
            .apply(&ev("change resource name:r0 role:Primary"))
            .is_empty());
    }

    #[test]
    fn bad_events_change_nothing() {
        let mut s = State::new();
        s.apply(&ev("exists resource name:r0 role:Secondary"));
        let before = s.clone();
        for bad in [
            "change device volume:0 disk:UpToDate",
            "change device name:r0 disk:UpToDate",
            "change device name:r0 volume:x disk:UpToDate",
            "change connection name:r0 connection:Connected",
            "change peer-device name:r0 conn-name:p volume:-1",
            "rename resource name:r0",
            &format!(
                "change connection name:r0 conn-name:{}",
                "p".repeat(MAX_NAME_LEN + 1)
            ),
            &format!("exists resource name:{}", "n".repeat(MAX_NAME_LEN + 1)),
        ] {
            assert!(s.try_apply(&ev(bad)).is_err(), "{bad}");
            assert_eq!(s, before, "{bad}");
        }
    }

    #[test]
    fn connection_84_replication_dialect() {
        let mut s = State::new();
        s.apply(&ev("exists connection name:r0 peer-node-id:0 conn-name:peer connection:SyncSource role:Secondary"));
        let c = &s.resources["r0"].connections[&PeerId::NodeId(0)];
        assert_eq!(c.connection, Some(ConnectionState::Connected));
        assert_eq!(c.replication_hint, Some(ReplicationState::SyncSource));
        s.apply(&ev(
            "change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected",
        ));
        let c = &s.resources["r0"].connections[&PeerId::NodeId(0)];
        assert_eq!(c.replication_hint, None);
    }

    #[test]
    fn rename_and_destroy() {
        let mut s = State::new();
        s.apply(&ev("create resource name:a role:Secondary"));
        s.apply(&ev("rename resource name:a new_name:b"));
        assert!(s.resources.contains_key("b") && !s.resources.contains_key("a"));
        assert_eq!(s.resources["b"].name, "b");
        let c = s.apply(&ev("destroy resource name:b"));
        assert_eq!(
            c,
            vec![Change::ResourceDestroyed {
                resource: "b".into()
            }]
        );
        assert!(s.apply(&ev("destroy resource name:b")).is_empty());
        assert!(s.apply(&ev("destroy device name:zz volume:0")).is_empty());
        assert!(s.resources.is_empty());
    }
}
