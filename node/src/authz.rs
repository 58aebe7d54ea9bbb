//! What a node certificate may write through `Admin.Propose` (the channel
//! the executor's forwarded results and `crm_attribute` use): a node records
//! only its own operations and attributes, and its own rejoin. Membership,
//! fencing and the DC's commands are written by the DC on the leader itself
//! (never through this RPC); configuration and cleanup go through the admin
//! RPCs, which check the client's role.

use ha_raft_store::{Command, NodeState};
use thiserror::Error;

/// Why a node's proposal is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposeDenied {
    #[error(
        "{cert_node} may record only its own operation results; this one is for {node} \
         (resource {resource})"
    )]
    OthersOperation {
        cert_node: String,
        node: String,
        resource: String,
    },
    #[error("{cert_node} may set only its own node attributes, not those of {node}")]
    OthersAttributes { cert_node: String, node: String },
    #[error(
        "{cert_node} may record only its own rejoin; membership ({node}: {state:?}) is \
         recorded by the DC"
    )]
    Membership {
        cert_node: String,
        node: String,
        state: NodeState,
    },
    #[error(
        "fencing results are recorded by the DC alone, not proposed by {cert_node} \
         (fencing of {target})"
    )]
    Fencing { cert_node: String, target: String },
    #[error(
        "{cert_node} may keep a DRBD resource's promotion only on itself, not on {node} \
         (its fence-peer handler fences its peer)"
    )]
    OthersPromotionFence { cert_node: String, node: String },
    #[error("DC commands are written by the DC on the leader, not proposed by {cert_node}")]
    DcCommand { cert_node: String },
    #[error(
        "{what} is an administrator's command: use the admin RPCs with an admin or operator \
         certificate, not a node's proposal from {cert_node}"
    )]
    Admin {
        cert_node: String,
        what: &'static str,
    },
}

/// Whether the node named `cert_node` (its certificate's CN) may propose
/// `cmd` through `Admin.Propose`.
pub fn node_may_propose(cert_node: &str, cmd: &Command) -> Result<(), ProposeDenied> {
    let cert = || cert_node.to_string();
    match cmd {
        Command::RecordOps { ops } => match ops.iter().find(|u| u.node != cert_node) {
            Some(u) => Err(ProposeDenied::OthersOperation {
                cert_node: cert(),
                node: u.node.clone(),
                resource: u.resource.clone(),
            }),
            None => Ok(()),
        },
        Command::SetNodeAttributes { node, .. } if node == cert_node => Ok(()),
        Command::SetNodeAttributes { node, .. } => Err(ProposeDenied::OthersAttributes {
            cert_node: cert(),
            node: node.clone(),
        }),
        // A node's executor starts empty: it records its own (re)join
        // (refused by apply while it is unclean: then it is fenced first).
        Command::SetNodeState {
            node,
            state: NodeState::Joined,
        } if node == cert_node => Ok(()),
        Command::SetNodeState { node, state } => Err(ProposeDenied::Membership {
            cert_node: cert(),
            node: node.clone(),
            state: *state,
        }),
        Command::RecordFencing { event } => Err(ProposeDenied::Fencing {
            cert_node: cert(),
            target: event.target.clone(),
        }),
        Command::Dc { .. } => Err(ProposeDenied::DcCommand { cert_node: cert() }),
        Command::ApplyConfig { .. } => Err(ProposeDenied::Admin {
            cert_node: cert(),
            what: "loading a configuration",
        }),
        Command::ClearFailures { .. } | Command::Cleanup { .. } => Err(ProposeDenied::Admin {
            cert_node: cert(),
            what: "resource cleanup",
        }),
        // DRBD's fence-peer handler on a node keeps promotion on that node
        // only; the unfence after a resync runs on the other node (the
        // resync target), so any node may lift one.
        Command::PromotionFence {
            keep_on: Some(node),
            ..
        } if node != cert_node => Err(ProposeDenied::OthersPromotionFence {
            cert_node: cert(),
            node: node.clone(),
        }),
        Command::PromotionFence { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_raft_store::OpUpdate;
    use ha_scheduler::model::{FencingEvent, OpRecord};

    fn ops(nodes: &[&str]) -> Command {
        Command::RecordOps {
            ops: nodes
                .iter()
                .map(|n| OpUpdate {
                    node: n.to_string(),
                    resource: "r1".into(),
                    class: "ocf".into(),
                    provider: Some("heartbeat".into()),
                    agent: "Dummy".into(),
                    op: OpRecord::default(),
                })
                .collect(),
        }
    }

    fn attrs(node: &str) -> Command {
        Command::SetNodeAttributes {
            node: node.into(),
            transient: [("master-db".to_string(), Some("10".to_string()))].into(),
            permanent: Default::default(),
        }
    }

    #[test]
    fn a_node_fences_promotion_only_onto_itself_and_any_node_lifts_it() {
        let fence = |keep: Option<&str>| Command::PromotionFence {
            id: "drbd-fence-by-handler-r0-ms".into(),
            rsc: "ms".into(),
            keep_on: keep.map(str::to_string),
        };
        assert_eq!(node_may_propose("node1", &fence(Some("node1"))), Ok(()));
        assert!(matches!(
            node_may_propose("node1", &fence(Some("node2"))),
            Err(ProposeDenied::OthersPromotionFence { .. })
        ));
        assert_eq!(node_may_propose("node2", &fence(None)), Ok(()));
    }

    fn state(node: &str, state: NodeState) -> Command {
        Command::SetNodeState {
            node: node.into(),
            state,
        }
    }

    #[test]
    fn a_node_records_its_own_operations_attributes_and_rejoin() {
        assert_eq!(node_may_propose("node1", &ops(&["node1", "node1"])), Ok(()));
        assert_eq!(node_may_propose("node1", &attrs("node1")), Ok(()));
        assert_eq!(
            node_may_propose("node1", &state("node1", NodeState::Joined)),
            Ok(())
        );
    }

    #[test]
    fn a_node_may_not_record_for_another_node() {
        assert_eq!(
            node_may_propose("node1", &ops(&["node1", "node2"])),
            Err(ProposeDenied::OthersOperation {
                cert_node: "node1".into(),
                node: "node2".into(),
                resource: "r1".into()
            })
        );
        assert!(matches!(
            node_may_propose("node1", &attrs("node2")),
            Err(ProposeDenied::OthersAttributes { .. })
        ));
        for s in [
            NodeState::Joined,
            NodeState::Down,
            NodeState::Fenced,
            NodeState::Unclean,
            NodeState::Online,
        ] {
            assert!(matches!(
                node_may_propose("node1", &state("node2", s)),
                Err(ProposeDenied::Membership { .. })
            ));
        }
        // Not even its own membership beyond its rejoin.
        assert!(matches!(
            node_may_propose("node1", &state("node1", NodeState::Down)),
            Err(ProposeDenied::Membership { .. })
        ));
    }

    #[test]
    fn fencing_dc_and_admin_commands_are_never_a_nodes_proposal() {
        let fenced = Command::RecordFencing {
            event: FencingEvent {
                target: "node2".into(),
                action: "reboot".into(),
                succeeded: true,
                ..Default::default()
            },
        };
        let e = node_may_propose("node1", &fenced).unwrap_err();
        assert_eq!(
            e.to_string(),
            "fencing results are recorded by the DC alone, not proposed by node1 (fencing of node2)"
        );
        // Also about itself, and also wrapped as a DC command.
        let own = Command::RecordFencing {
            event: FencingEvent {
                target: "node1".into(),
                ..Default::default()
            },
        };
        assert!(node_may_propose("node1", &own).is_err());
        let wrapped = Command::Dc {
            term: 7,
            command: Box::new(ops(&["node1"])),
        };
        assert_eq!(
            node_may_propose("node1", &wrapped),
            Err(ProposeDenied::DcCommand {
                cert_node: "node1".into()
            })
        );
        let cleanup = Command::Cleanup {
            resource: "r1".into(),
            node: None,
        };
        assert!(matches!(
            node_may_propose("node1", &cleanup),
            Err(ProposeDenied::Admin { .. })
        ));
        let config = Command::ApplyConfig {
            base_epoch: 1,
            config: Default::default(),
        };
        assert!(matches!(
            node_may_propose("node1", &config),
            Err(ProposeDenied::Admin { .. })
        ));
    }
}
