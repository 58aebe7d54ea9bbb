//! DRBD commands an administrator runs on one node through `Admin.Drbd`
//! (`hactl drbd resolve`): the documented manual split-brain recovery, its
//! argv built by `ha-drbd` from a validated resource name (never a caller's
//! argv). On the node whose changes are discarded: `secondary`,
//! `disconnect` (fine when already StandAlone), `connect
//! --discard-my-data` in the dialect `drbdadm --version` names; on the
//! others: `connect`. Each step runs under a time limit; the first failure
//! stops the sequence and is reported with the command and its output.

use std::path::Path;
use std::time::Duration;

use ha_drbd::commands::{split_brain_survivor, split_brain_victim, Step};
use ha_drbd::ResourceName;
use serde::{Deserialize, Serialize};

/// A DRBD command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DrbdOp {
    /// This node's changes since the split are discarded; it resyncs from
    /// its peer.
    Discard { resource: ResourceName },
    /// This node keeps its data; it reconnects to the discarding peer.
    Connect { resource: ResourceName },
}

/// What `Admin.Drbd` carries: `op` for the node named `node` (a node
/// refuses a call meant for another: the client looks for the right one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdCall {
    pub node: String,
    pub op: DrbdOp,
}

/// One command run and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub command: String,
    pub exit_code: Option<i32>,
    pub output: String,
    /// Failed, and that is fine (`disconnect` of a StandAlone resource).
    pub tolerated: bool,
}

/// What a node did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdReport {
    pub node: String,
    pub steps: Vec<StepReport>,
    /// The step that failed and stopped the sequence.
    pub error: Option<String>,
}

/// Each step may take this long (drbdadm talks to the kernel only).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Output kept per step.
const OUTPUT_MAX: usize = 4096;

async fn run_step(drbdadm: &Path, step: &Step) -> StepReport {
    let command = step.argv.join(" ");
    let mut cmd = tokio::process::Command::new(drbdadm);
    cmd.args(step.argv.iter().skip(1))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let (exit_code, mut output) = match tokio::time::timeout(STEP_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.code(), text)
        }
        Ok(Err(e)) => (None, format!("cannot run {}: {e}", drbdadm.display())),
        Err(_) => (None, format!("timed out after {STEP_TIMEOUT:?}")),
    };
    if output.len() > OUTPUT_MAX {
        let mut cut = OUTPUT_MAX;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
    }
    let failed = exit_code != Some(0);
    StepReport {
        command,
        exit_code,
        output: output.trim().to_string(),
        tolerated: failed && step.ok_if_standalone,
    }
}

/// The dialect of this node's DRBD (`drbdadm --version`).
async fn dialect(drbdadm: &Path) -> Result<ha_drbd::Dialect, String> {
    let out = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio::process::Command::new(drbdadm)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "drbdadm --version timed out".to_string())?
    .map_err(|e| format!("cannot run {} --version: {e}", drbdadm.display()))?;
    ha_drbd::dialect::detect(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("drbdadm --version: {e}"))
}

/// Runs `op` on this node (`node` names it in the report).
pub async fn run(node: &str, drbdadm: &Path, op: &DrbdOp) -> DrbdReport {
    let mut report = DrbdReport {
        node: node.to_string(),
        steps: Vec::new(),
        error: None,
    };
    let steps = match op {
        DrbdOp::Discard { resource } => match dialect(drbdadm).await {
            Ok(d) => split_brain_victim(d, resource),
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        },
        DrbdOp::Connect { resource } => split_brain_survivor(resource),
    };
    for step in &steps {
        let r = run_step(drbdadm, step).await;
        let failed = r.exit_code != Some(0) && !r.tolerated;
        if failed {
            report.error = Some(format!(
                "`{}` failed ({}): {}",
                r.command,
                r.exit_code
                    .map_or_else(|| "no exit code".to_string(), |c| format!("exit {c}")),
                r.output
            ));
        }
        report.steps.push(r);
        if failed {
            break;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_names_a_valid_resource_or_does_not_decode() {
        let op: DrbdOp = serde_json::from_str(r#"{"op":"discard","resource":"r0"}"#).unwrap();
        assert_eq!(
            op,
            DrbdOp::Discard {
                resource: ResourceName::new("r0").unwrap()
            }
        );
        for bad in [
            r#"{"op":"discard","resource":"-rf"}"#,
            r#"{"op":"connect","resource":"a b"}"#,
            r#"{"op":"connect","resource":""}"#,
            r#"{"op":"shell","resource":"r0"}"#,
        ] {
            assert!(serde_json::from_str::<DrbdOp>(bad).is_err(), "{bad}");
        }
    }
}
