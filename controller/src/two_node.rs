//! Two-node mode's decisions: the fence race's delays, and what a node that
//! booted may do. A Raft majority of two is two, so when the peer is lost
//! both race to fence it; only the node whose fencing is confirmed takes
//! over (single voter). These functions are pure; the runtime keeps the
//! durable survivor record they read.

use crate::{Design, Millis};

/// One side of the race as one node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    /// The Raft node id (both sides know both ids: they never change).
    pub id: u64,
    /// The sum of the priorities of what this side runs, by the viewer's
    /// (possibly lagging) replicated state.
    pub priority: i64,
}

/// Delay settings: `two-node-fence-delay` and `priority-fencing-delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaceDelays {
    pub base_ms: Millis,
    pub priority_ms: Millis,
}

/// How long `me` waits before fencing `peer`.
///
/// The design (`agreed_tie_break`): the lower id is preferred and never
/// waits more than `priority_ms`; the higher id always waits
/// `base_ms + priority_ms`. Priority only delays the preferred side (when by
/// its own view the peer runs more). So whatever either side has applied, at
/// most one side fences at once, and the two delays differ by at least
/// `base_ms`. The old rule let each side's view of priorities choose who goes
/// first: two lagging views could both choose themselves.
pub fn fence_delay(design: Design, me: Side, peer: Side, d: RaceDelays) -> Millis {
    if design.agreed_tie_break {
        if me.id < peer.id {
            if peer.priority > me.priority {
                d.priority_ms
            } else {
                0
            }
        } else {
            d.base_ms + d.priority_ms
        }
    } else if me.priority > peer.priority || (me.priority == peer.priority && me.id < peer.id) {
        0
    } else {
        d.base_ms
    }
}

/// What a node knows about itself when it boots in two-node mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    /// Its Raft membership has one voter (itself): it took over earlier.
    pub single_voter: bool,
    /// Its durable record says it took over as the survivor.
    pub was_survivor: bool,
    /// Its last applied state said the peer was down or fenced (so the
    /// peer cannot have taken over after that).
    pub peer_known_down: bool,
    /// The peer answered since boot and says this node is no longer a member.
    pub peer_confirms_not_member: bool,
}

/// Why a booted node may not lead or unblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Whether a node that booted as the single voter may lead alone. Under the
/// design a former survivor waits until the peer confirms it has left
/// (the peer may have been unblocked and taken over while it was off), or
/// until the operator overrides, naming the risk.
pub fn may_lead_alone(design: Design, s: BootState, override_risk: bool) -> Result<(), Refused> {
    if !s.single_voter {
        return Err(Refused("two voters: it needs its peer".into()));
    }
    if !design.survivor_record || override_risk || s.peer_confirms_not_member || s.peer_known_down {
        return Ok(());
    }
    Err(Refused(
        "this node took over as the survivor before it went down; its peer may have taken over \
         since: waiting until the peer confirms this node is no longer a member (override: \
         `hactl quorum unblock --peer-is-off`, which risks two clusters running the same \
         resources if the peer is up)"
            .into(),
    ))
}

/// Whether `hactl quorum unblock` may let a node that booted into
/// wait_for_all fence its peer and take over. Refused when the peer may
/// have taken over: unless this node's last state shows the peer down, the
/// peer may have fenced this node and be running everything.
pub fn may_unblock(design: Design, s: BootState, override_risk: bool) -> Result<(), Refused> {
    if !design.survivor_record || override_risk || s.peer_known_down || s.was_survivor {
        return Ok(());
    }
    Err(Refused(
        "refused: the peer may have fenced this node and taken over (this node's last state \
         shows the peer up); check that the peer is powered off, then run `hactl quorum \
         unblock --peer-is-off`, which risks two clusters running the same resources if the \
         peer is up"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: RaceDelays = RaceDelays {
        base_ms: 5000,
        priority_ms: 2000,
    };

    #[test]
    fn with_any_two_views_at_most_one_side_fences_at_once() {
        for (pa_a, pb_a, pa_b, pb_b) in [(0, 0, 0, 0), (10, 0, 0, 10), (0, 10, 10, 0), (5, 5, 0, 9)]
        {
            let a = fence_delay(
                Design::default(),
                Side {
                    id: 1,
                    priority: pa_a,
                },
                Side {
                    id: 2,
                    priority: pb_a,
                },
                D,
            );
            let b = fence_delay(
                Design::default(),
                Side {
                    id: 2,
                    priority: pb_b,
                },
                Side {
                    id: 1,
                    priority: pa_b,
                },
                D,
            );
            assert!(a.abs_diff(b) >= D.base_ms, "{a} vs {b}");
        }
    }

    #[test]
    fn the_old_rule_lets_two_lagging_views_both_go_first() {
        // Node 1 sees itself running the resources (switchover applied),
        // node 2 has not applied it and sees itself running them.
        let l = Design::legacy();
        let a = fence_delay(
            l,
            Side {
                id: 1,
                priority: 10,
            },
            Side { id: 2, priority: 0 },
            D,
        );
        let b = fence_delay(
            l,
            Side {
                id: 2,
                priority: 10,
            },
            Side { id: 1, priority: 0 },
            D,
        );
        assert_eq!((a, b), (0, 0));
    }

    const BOOT: BootState = BootState {
        single_voter: false,
        was_survivor: false,
        peer_known_down: false,
        peer_confirms_not_member: false,
    };

    #[test]
    fn a_fenced_node_cannot_unblock_without_naming_the_risk() {
        assert!(may_unblock(Design::default(), BOOT, false).is_err());
        assert!(may_unblock(Design::default(), BOOT, true).is_ok());
        let down = BootState {
            peer_known_down: true,
            ..BOOT
        };
        assert!(may_unblock(Design::default(), down, false).is_ok());
        assert!(may_unblock(Design::legacy(), BOOT, false).is_ok());
    }

    #[test]
    fn a_former_survivor_leads_alone_only_once_the_peer_confirms() {
        let s = BootState {
            single_voter: true,
            was_survivor: true,
            ..BOOT
        };
        assert!(may_lead_alone(Design::default(), s, false).is_err());
        let ok = BootState {
            peer_confirms_not_member: true,
            ..s
        };
        assert!(may_lead_alone(Design::default(), ok, false).is_ok());
        assert!(may_lead_alone(Design::default(), s, true).is_ok());
        assert!(may_lead_alone(Design::legacy(), s, false).is_ok());
    }
}
