//! The quorum lease of one node. A follower holds quorum while a leader's
//! appends reach it; a leader while a majority of voters answers it. A node
//! without quorum for a lease (node-timeout) applies `no-quorum-policy` to
//! itself: by default it stops everything its executor runs, at once and in
//! parallel, without waiting on records (nothing can be committed), so that
//! when the majority declares it lost (after node-timeout plus the largest
//! stop timeout, or after fencing it) nothing runs twice.

use crate::Millis;

/// What the lease reads of the node at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseView {
    /// `Some(majority answered within node-timeout)` on the leader, `None` on a follower.
    pub leader_has_majority: Option<bool>,
    /// `no-quorum-policy` asks to stop (`stop`, the default, or `suicide`).
    pub stops_without_quorum: bool,
    /// Two-node mode: the takeover decides who stops, not the lease.
    pub two_node: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseInput {
    Tick,
    /// A leader's append (or heartbeat) reached this node.
    LeaderContact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEffect {
    /// Stop everything this node's executor runs (in flight too), unrecorded.
    StopAll,
    /// Back in the majority after a stop: ask to rejoin (history forgotten).
    Rejoin,
}

#[derive(Debug, Clone)]
pub struct Lease {
    timeout: Millis,
    started: Millis,
    last_contact: Option<Millis>,
    stopped: bool,
}

impl Lease {
    pub fn new(now: Millis, timeout: Millis) -> Lease {
        Lease {
            timeout,
            started: now,
            last_contact: None,
            stopped: false,
        }
    }

    /// Whether the lease stopped this node's resources and it has not rejoined.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    pub fn has_quorum(&self, now: Millis, view: &LeaseView) -> bool {
        match view.leader_has_majority {
            Some(m) => m,
            None => self.last_contact.is_some_and(|t| now <= t + self.timeout),
        }
    }

    pub fn step(&mut self, now: Millis, input: LeaseInput, view: &LeaseView) -> Vec<LeaseEffect> {
        // A leader followed by a majority holds the lease as much as a
        // follower that hears it: stepping down starts the lease, not ends it.
        if input == LeaseInput::LeaderContact || view.leader_has_majority == Some(true) {
            self.last_contact = Some(now);
        }
        if self.has_quorum(now, view) {
            if self.stopped {
                self.stopped = false;
                return vec![LeaseEffect::Rejoin];
            }
            return Vec::new();
        }
        // Before the first contact there is nothing to lose.
        if now < self.started + 2 * self.timeout || self.stopped {
            return Vec::new();
        }
        if view.two_node || !view.stops_without_quorum {
            return Vec::new();
        }
        self.stopped = true;
        vec![LeaseEffect::StopAll]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLLOWER: LeaseView = LeaseView {
        leader_has_majority: None,
        stops_without_quorum: true,
        two_node: false,
    };

    #[test]
    fn a_follower_stops_once_a_lease_after_the_last_contact_and_rejoins_when_back() {
        let mut l = Lease::new(0, 1000);
        assert_eq!(l.step(100, LeaseInput::LeaderContact, &FOLLOWER), vec![]);
        assert_eq!(l.step(1100, LeaseInput::Tick, &FOLLOWER), vec![]);
        // Lease over at 1100, but the start-up grace runs to 2000.
        assert_eq!(l.step(1999, LeaseInput::Tick, &FOLLOWER), vec![]);
        assert_eq!(
            l.step(2000, LeaseInput::Tick, &FOLLOWER),
            vec![LeaseEffect::StopAll]
        );
        assert_eq!(l.step(2200, LeaseInput::Tick, &FOLLOWER), vec![]);
        assert_eq!(
            l.step(3000, LeaseInput::LeaderContact, &FOLLOWER),
            vec![LeaseEffect::Rejoin]
        );
    }

    #[test]
    fn a_leader_that_steps_down_keeps_the_lease_it_held() {
        let leader = LeaseView {
            leader_has_majority: Some(true),
            ..FOLLOWER
        };
        let mut l = Lease::new(0, 1000);
        assert_eq!(l.step(5000, LeaseInput::Tick, &leader), vec![]);
        assert_eq!(l.step(5100, LeaseInput::Tick, &FOLLOWER), vec![]);
        assert_eq!(
            l.step(6100, LeaseInput::Tick, &FOLLOWER),
            vec![LeaseEffect::StopAll]
        );
    }

    #[test]
    fn freeze_ignore_and_two_node_do_not_stop() {
        for v in [
            LeaseView {
                stops_without_quorum: false,
                ..FOLLOWER
            },
            LeaseView {
                two_node: true,
                ..FOLLOWER
            },
        ] {
            let mut l = Lease::new(0, 1000);
            assert_eq!(l.step(5000, LeaseInput::Tick, &v), vec![]);
        }
    }

    #[test]
    fn a_leader_without_a_majority_stops() {
        let v = LeaseView {
            leader_has_majority: Some(false),
            ..FOLLOWER
        };
        let mut l = Lease::new(0, 1000);
        assert_eq!(l.step(1999, LeaseInput::Tick, &v), vec![]);
        assert_eq!(
            l.step(2000, LeaseInput::Tick, &v),
            vec![LeaseEffect::StopAll]
        );
    }
}
