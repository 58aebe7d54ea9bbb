//! `ha-node`: the cluster daemon (one per node).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ha_node::config::NodeConfig;

#[derive(Parser)]
#[command(name = "ha-node", version, about = "The ha-node cluster daemon")]
struct Cli {
    /// The node's configuration (TOML).
    #[arg(long, required_unless_present = "print_default_config")]
    config: Option<PathBuf>,
    /// Print an example configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// The node's name (informational: shown in `ps`; must match the config).
    #[arg(long)]
    name: Option<String>,
    /// Run as a witness: a voter that runs no resources (a third vote for
    /// a two-node cluster).
    #[arg(long)]
    witness: bool,
}

fn main() -> std::process::ExitCode {
    // Everything the daemon creates (sled's files included) is private to
    // its user; the agents it runs inherit this umask.
    // SAFETY: umask(2) only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // Resource agents call us as `crm_attribute` (a link in HA_SBIN_DIR).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if called_as == "crm_attribute" {
        return ha_node::crm_attribute::main(args);
    }
    if let Some(code) = ha_node::crm_tools::main(called_as, args.clone()) {
        return code;
    }
    // DRBD's fence-peer / unfence handlers (symlinks named in handlers {}).
    if let Some(code) = ha_node::drbd_handler::main(called_as, args.clone()) {
        return code;
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-node: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ha-node: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.print_default_config {
        print!("{}", NodeConfig::example().to_toml());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let path = cli.config.context("--config FILE is required")?;
    let mut cfg = NodeConfig::load(&path)?;
    cfg.witness |= cli.witness;
    if let Some(name) = &cli.name {
        anyhow::ensure!(
            name == &cfg.name,
            "--name {name} but {} names the node {}",
            path.display(),
            cfg.name
        );
    }
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
    };
    ha_node::server::run(cfg, shutdown)
        .await
        .with_context(|| format!("ha-node ({})", path.display()))
}
