//! ha-drbd: everything the node daemon needs to know about DRBD 8.4 and 9
//! without running anything: the `drbdsetup events2` parser ([`events2`]),
//! the typed state it feeds ([`model`]), a serializable status summary
//! ([`summary`]), dialect detection from `drbdadm --version` ([`dialect`]) and
//! `drbdadm` argv builders ([`commands`]).

pub mod commands;
pub mod dialect;
pub mod events2;
pub mod model;
pub mod summary;

pub use commands::{NameError, ResourceName, Step};
pub use dialect::{Dialect, DialectError, Versions};
pub use events2::{parse_line, Event, Line, LineError, LineSplitter, ParseError, Timestamp};
pub use model::{
    ApplyError, Change, ConnectionState, DiskState, PeerId, ReplicationState, Role, State,
};
pub use summary::{DeviceSummary, PeerSummary, ResourceSummary};
