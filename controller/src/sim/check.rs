//! The invariants the simulator checks (ARCHITECTURE.md's numbering), and
//! what a violation says.

use std::fmt;

use crate::Millis;

/// ARCHITECTURE.md's invariants, as checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1. A primitive is never active on two nodes at once.
    SingleActive = 1,
    /// 2. No more than promoted-max instances are promoted.
    PromotedMax = 2,
    /// 3. Nothing held by a lost node starts elsewhere before it is fenced.
    FencedBeforeRecovery = 3,
    /// 4. A committed entry survives (the committed prefix never changes).
    CommittedSurvives = 4,
    /// 5. A two-node split ends with exactly one node running resources.
    OneSurvivor = 5,
    /// 6. A rejected config changes nothing.
    RejectedChangesNothing = 6,
    /// 7. Only the current DC changes membership or records fencing.
    OnlyCurrentDc = 7,
    /// 9. A resource not in the configuration is not left running.
    OrphansStop = 9,
    /// 10. A resource ordered after another (group, order constraint)
    ///     begins its start only once that one's start has finished.
    OrderedStart = 10,
    /// The simulator's own (not in ARCHITECTURE.md): once quiet, every
    /// configured primitive runs (on one node).
    StatusAgrees = 11,
}

/// One broken invariant, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: Millis,
    pub invariant: Invariant,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={}ms invariant {} ({:?}): {}",
            self.at, self.invariant as u8, self.invariant, self.what
        )
    }
}
