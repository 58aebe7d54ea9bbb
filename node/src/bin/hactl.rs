//! `hactl`: the cluster's command-line interface: the cluster commands
//! (`init`, `status`, `config`, `node`, `demo`) and the offline ones
//! (`simulate`, `completions`).

#[path = "../cli/cluster.rs"]
mod cluster;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use ha_scheduler::cib::read_cib;
use ha_scheduler::model::Membership;
use ha_scheduler::transition::Placement;

#[derive(Parser)]
#[command(name = "hactl", version, about = "Administer an ha-node cluster")]
struct Cli {
    /// Client config (default: $HACTL_CONFIG, then ~/.config/hactl/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Compute one transition offline and print the cluster after it, as
    /// `crm_simulate -S` does.
    Simulate {
        /// A Pacemaker CIB (XML) with configuration and status.
        #[arg(long, required_unless_present = "crm", conflicts_with = "crm")]
        cib: Option<PathBuf>,
        /// A configuration in crm shell syntax instead: every configured
        /// node online, quorum, nothing running (`crm_simulate -u NODE...
        /// -q true -S`).
        #[arg(long)]
        crm: Option<PathBuf>,
        /// Bring a node online first (like crm_simulate -u); repeatable.
        #[arg(long = "node-up", value_name = "NODE")]
        node_up: Vec<String>,
        /// Pretend the cluster has quorum (like crm_simulate -q true).
        #[arg(long)]
        quorum: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Print the allocation scores.
        #[arg(long)]
        show_scores: bool,
        /// Print the planned actions.
        #[arg(long)]
        show_actions: bool,
        /// Evaluate time-based rules at this time (seconds since the epoch);
        /// default: the CIB's execution-date, else now.
        #[arg(long)]
        now: Option<i64>,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Create a new cluster: its CA, the first node's certificate and
    /// config, an admin client certificate and `hactl.toml`, all in DATA_DIR.
    Init {
        /// The first node's name.
        #[arg(long)]
        name: String,
        /// Its gRPC address (host:port).
        #[arg(long)]
        addr: String,
        #[arg(long)]
        data_dir: PathBuf,
        /// Its Raft node id.
        #[arg(long, default_value_t = 1)]
        id: u64,
        /// Also start the node (in the background, log in DATA_DIR/ha-node.log).
        #[arg(long)]
        start: bool,
    },
    /// Show the cluster as crm_mon does: DC, quorum, nodes, resources.
    Status {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Redraw every 2 seconds until Ctrl-C (as crm_mon does).
        #[arg(long)]
        watch: bool,
    },
    /// Read or replace the cluster configuration (`configure` as in crm shell).
    #[command(subcommand, visible_alias = "configure")]
    Config(ConfigCommand),
    /// Put a node in standby or bring it back online.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Resource commands: cleanup, move, ban, clear, restart (operator).
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Fence NODE now through its fence devices (admin; run by the DC),
    /// or show the fencing history (`hactl fence history`).
    Fence(FenceArgs),
    /// Fence devices: list them, test one.
    #[command(subcommand)]
    Stonith(StonithCommand),
    /// Quorum overrides (admin).
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// DRBD: resolve a split brain (admin).
    #[command(subcommand)]
    Drbd(DrbdCommand),
    /// Join tokens (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Join an existing cluster with a token from `hactl token create`:
    /// writes this node's certificate and config in DATA_DIR; the cluster
    /// adds it as a learner, then a voter, once it runs.
    Join {
        /// The token: `@FILE` reads it from FILE, `-` from stdin (keep it
        /// out of argv, where every local user can read it); a literal
        /// token is accepted too.
        #[arg(long, value_name = "@FILE|-|TOKEN")]
        token: String,
        /// This node's name.
        #[arg(long)]
        name: String,
        /// Its gRPC address (host:port).
        #[arg(long)]
        addr: String,
        #[arg(long)]
        data_dir: PathBuf,
        /// The CA fingerprint `hactl init` printed (sha256:...): checked
        /// against the token's CA before anything is sent.
        #[arg(long)]
        ca_fingerprint: Option<String>,
        /// Also start the node (in the background, log in DATA_DIR/ha-node.log).
        #[arg(long)]
        start: bool,
    },
    /// Start a local demo cluster of ha-node processes on loopback, load a
    /// sample configuration, print status; Ctrl-C stops it.
    Demo {
        #[arg(long, default_value = "ha-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load a configuration: CIB XML, or crm shell syntax if FILE ends in .crm.
    Load {
        file: PathBuf,
        /// Print what would move, apply nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the configuration (crm shell syntax, or JSON); passwords and
    /// other secret parameters (by name, or marked private by the agent's
    /// metadata) show as ********, which `config load` and `config edit`
    /// turn back into the stored value.
    Show {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Show the secret values (admin certificates only).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Edit the configuration in crm shell syntax with $EDITOR; applied
    /// atomically, the editor reopens with the error when it does not load.
    /// The file is private (0600, in a 0700 directory) and removed on exit.
    Edit,
}

#[derive(Subcommand)]
enum ResourceCommand {
    /// Forget RSC's failures and operation history (on NODE, or every
    /// node): the cluster probes it again and may start it where it failed.
    Cleanup {
        rsc: String,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Move RSC to NODE (a `cli-prefer-RSC` constraint); without NODE, away
    /// from where it runs (a ban). `clear` lifts it.
    Move {
        rsc: String,
        node: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Keep RSC off NODE (default: where it runs) (`cli-ban-RSC-on-NODE`).
    Ban {
        rsc: String,
        node: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Remove the constraints `move` and `ban` made (only NODE's if given).
    Clear {
        rsc: String,
        node: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Stop RSC everywhere, then start it again; waits for both.
    Restart {
        rsc: String,
        /// How long to wait for the stop (and again for the start), seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct FenceArgs {
    #[command(subcommand)]
    command: Option<FenceCommand>,
    /// The node to fence.
    node: Option<String>,
    /// `off` or `reboot` (default: the `stonith-action` property).
    #[arg(long)]
    action: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Subcommand)]
enum FenceCommand {
    /// The fencing history, newest first.
    History {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
enum StonithCommand {
    /// The configured fence devices (secrets hidden) and topology levels.
    List {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Ask DEVICE whether it works (with --target: NODE's power status).
    Test {
        device: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
enum QuorumCommand {
    /// Let a node of a two-node cluster that has not seen its peer since it
    /// started go on alone (it fences the peer first): the first endpoint
    /// of the client config that answers. Refused unless
    /// --i-know-the-peer-is-off: the peer may have fenced this node and be
    /// running everything alone.
    Unblock {
        /// The peer is off and stays off: if it took over and comes back
        /// with its state, both nodes run the resources.
        #[arg(long = "i-know-the-peer-is-off")]
        peer_is_off: bool,
    },
}

#[derive(Subcommand)]
enum DrbdCommand {
    /// Resolve a split brain of RES by hand, as DRBD's guide documents:
    /// NODE's changes since the split are discarded (secondary, disconnect,
    /// connect --discard-my-data there; connect on the others) and it
    /// resyncs from its peer. Refused unless a node reports RES in split
    /// brain. Waits until RES is connected again.
    Resolve {
        /// The DRBD resource (as in `drbdadm`, e.g. r0).
        resource: String,
        /// The node whose changes since the split are thrown away.
        #[arg(long = "discard-on")]
        discard_on: String,
        /// How long to wait for the reconnection, seconds.
        #[arg(long, default_value_t = 120)]
        wait: u64,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a one-time join token (carries the CA and its fingerprint).
    Create {
        /// Validity in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Move everything off NODE (`crm node standby`).
    Standby { node: String },
    /// Make NODE eligible again (`crm node online`).
    Online { node: String },
    /// Remove NODE from the cluster membership (admin); stop it first.
    Remove { node: String },
}

/// A join token given as `@FILE` (read from FILE), `-` (stdin) or itself.
fn read_token(arg: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let raw = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), 64 * 1024),
            &mut s,
        )
        .context("reading the join token from stdin")?;
        s
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the join token from {path}"))?
    } else {
        arg.to_string()
    };
    let token = raw.trim().to_string();
    anyhow::ensure!(!token.is_empty(), "the join token is empty");
    Ok(token)
}

fn edge(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hactl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate {
            cib,
            crm,
            node_up,
            quorum,
            output,
            show_scores,
            show_actions,
            now,
        } => simulate(
            cib.as_ref().or(crm.as_ref()),
            crm.is_some(),
            &node_up,
            quorum,
            output,
            show_scores,
            show_actions,
            now,
        ),
        Command::Init {
            name,
            addr,
            data_dir,
            id,
            start,
        } => edge(cluster::init(&name, &addr, &data_dir, id, start)),
        Command::Status { output, watch } => edge(cluster::status(
            cli.config.as_deref(),
            output == Output::Json,
            watch,
        )),
        Command::Config(ConfigCommand::Load { file, dry_run }) => {
            edge(cluster::config_load(cli.config.as_deref(), &file, dry_run))
        }
        Command::Config(ConfigCommand::Edit) => edge(cluster::config_edit(cli.config.as_deref())),
        Command::Config(ConfigCommand::Show {
            output,
            show_secrets,
        }) => edge(cluster::config_show(
            cli.config.as_deref(),
            output == Output::Json,
            show_secrets,
        )),
        Command::Node(NodeCommand::Standby { node }) => {
            edge(cluster::node_state(cli.config.as_deref(), &node, "standby"))
        }
        Command::Node(NodeCommand::Online { node }) => {
            edge(cluster::node_state(cli.config.as_deref(), &node, "online"))
        }
        Command::Resource(rc) => {
            use ha_node::resource::ResourceOp;
            let (op, output) = match rc {
                ResourceCommand::Cleanup { rsc, node, output } => (
                    ResourceOp::Cleanup {
                        resource: rsc,
                        node,
                    },
                    output,
                ),
                ResourceCommand::Move { rsc, node, output } => (
                    ResourceOp::Move {
                        resource: rsc,
                        node,
                    },
                    output,
                ),
                ResourceCommand::Ban { rsc, node, output } => (
                    ResourceOp::Ban {
                        resource: rsc,
                        node,
                    },
                    output,
                ),
                ResourceCommand::Clear { rsc, node, output } => (
                    ResourceOp::Clear {
                        resource: rsc,
                        node,
                    },
                    output,
                ),
                ResourceCommand::Restart { rsc, timeout } => {
                    return edge(cluster::resource_restart(
                        cli.config.as_deref(),
                        &rsc,
                        std::time::Duration::from_secs(timeout),
                    ))
                }
            };
            edge(cluster::resource(
                cli.config.as_deref(),
                op,
                output == Output::Json,
            ))
        }
        Command::Fence(f) => match (f.command, f.node) {
            (Some(FenceCommand::History { output }), _) => edge(cluster::fence_history(
                cli.config.as_deref(),
                output == Output::Json,
            )),
            (None, Some(node)) => edge(cluster::fence(
                cli.config.as_deref(),
                &node,
                f.action,
                f.output == Output::Json,
            )),
            (None, None) => edge(Err(anyhow::anyhow!(
                "give the node to fence (hactl fence NODE) or `hactl fence history`"
            ))),
        },
        Command::Stonith(StonithCommand::List { output }) => edge(cluster::stonith_list(
            cli.config.as_deref(),
            output == Output::Json,
        )),
        Command::Stonith(StonithCommand::Test {
            device,
            target,
            output,
        }) => edge(cluster::stonith_test(
            cli.config.as_deref(),
            &device,
            target,
            output == Output::Json,
        )),
        Command::Quorum(QuorumCommand::Unblock { peer_is_off }) => {
            edge(cluster::quorum_unblock(cli.config.as_deref(), peer_is_off))
        }
        Command::Drbd(DrbdCommand::Resolve {
            resource,
            discard_on,
            wait,
            output,
        }) => edge(cluster::drbd_resolve(
            cli.config.as_deref(),
            &resource,
            &discard_on,
            std::time::Duration::from_secs(wait),
            output == Output::Json,
        )),
        Command::Token(TokenCommand::Create { ttl }) => {
            edge(cluster::token_create(cli.config.as_deref(), ttl))
        }
        Command::Join {
            token,
            name,
            addr,
            data_dir,
            ca_fingerprint,
            start,
        } => edge(read_token(&token).and_then(|token| {
            cluster::join(
                &token,
                &name,
                &addr,
                &data_dir,
                ca_fingerprint.as_deref(),
                start,
            )
        })),
        Command::Node(NodeCommand::Remove { node }) => {
            edge(cluster::node_remove(cli.config.as_deref(), &node))
        }
        Command::Demo { dir, nodes } => edge(cluster::demo(&dir, nodes)),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "hactl", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn simulate(
    path: Option<&PathBuf>,
    is_crm: bool,
    node_up: &[String],
    quorum: bool,
    output: Output,
    show_scores: bool,
    show_actions: bool,
    now: Option<i64>,
) -> ExitCode {
    let Some(path) = path else {
        eprintln!("hactl: give --cib FILE or --crm FILE");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hactl: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let read = if is_crm {
        ha_scheduler::crm::read_crm(&text)
            .map(|config| {
                let mut cib = ha_scheduler::cib::Cib {
                    config,
                    ..Default::default()
                };
                for n in &cib.config.nodes {
                    let st = cib.status.nodes.entry(n.name.clone()).or_default();
                    st.membership = Membership::Online;
                }
                cib.status.have_quorum = true;
                cib
            })
            .map_err(|e| e.to_string())
    } else {
        read_cib(&text).map_err(|e| e.to_string())
    };
    let mut cib = match read {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hactl: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    for n in node_up {
        if !cib.config.nodes.iter().any(|c| &c.name == n) {
            eprintln!("hactl: --node-up {n}: no such node in {}", path.display());
            return ExitCode::from(2);
        }
        let st = cib.status.nodes.entry(n.clone()).or_default();
        st.membership = Membership::Online;
        st.shutdown = false;
    }
    if quorum {
        cib.status.have_quorum = true;
    }
    let now = now.or(cib.execution_date).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    let t = if show_scores {
        ha_scheduler::schedule_with_scores(&cib.config, &cib.status, now)
    } else {
        ha_scheduler::schedule(&cib.config, &cib.status, now)
    };
    let mut out = String::new();
    match output {
        Output::Json => {
            let mut v = t.placement.to_json();
            if show_actions {
                v["actions"] = serde_json::to_value(&t.actions).unwrap_or_default();
                v["edges"] = serde_json::to_value(&t.edges).unwrap_or_default();
            }
            if show_scores {
                v["scores"] = serde_json::to_value(&t.scores).unwrap_or_default();
            }
            out.push_str(&serde_json::to_string_pretty(&v).unwrap_or_default());
            out.push('\n');
        }
        Output::Text => {
            if show_scores {
                out.push_str("Allocation scores:\n");
                for (rsc, scores) in &t.scores {
                    for (node, s) in scores {
                        out.push_str(&format!(
                            "  {rsc} allocation score on {node}: {}\n",
                            ha_scheduler::score::format(*s)
                        ));
                    }
                }
                out.push('\n');
            }
            if show_actions {
                out.push_str("Transition Summary:\n");
                for a in &t.actions {
                    let what = match &a.rsc {
                        Some(r) => format!("{} {r}", a.kind.name()),
                        None => format!("fence {}", a.node),
                    };
                    out.push_str(&format!("  * {what:<40} on {} ({})\n", a.node, a.reason));
                }
                out.push('\n');
            }
            out.push_str(&render_text(&t.placement));
            for n in &t.notes {
                out.push_str(&format!("\nNote: {n}\n"));
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush());
    // The process ends here: freeing a large model piece by piece is wasted work.
    std::mem::forget(cib);
    std::mem::forget(t);
    if written.is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// crm_mon-like text.
fn render_text(p: &Placement) -> String {
    let mut s = String::from("Revised Cluster Status:\n  * Node List:\n");
    let mut by_state: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (n, st) in &p.nodes {
        by_state.entry(st.as_str()).or_default().push(n);
    }
    for (st, ns) in by_state {
        let label = match st {
            "online" => "Online".to_string(),
            "offline" => "OFFLINE".to_string(),
            other => other.to_string(),
        };
        s.push_str(&format!("    * {label}: [ {} ]\n", ns.join(" ")));
    }
    s.push_str("\n  * Full List of Resources:\n");
    for (k, r) in &p.resources {
        let nodes = r.nodes.join(" ");
        let orphaned = if r.orphaned { " (ORPHANED)" } else { "" };
        s.push_str(&format!(
            "    * {k:<30} {:<11} {nodes}{orphaned}\n",
            r.role.as_str()
        ));
    }
    s
}
