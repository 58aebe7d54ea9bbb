//! Running a helper program (agent, ipmitool, ssh) in its own process group, bounded by a timeout.
//!
//! The child is started with `process_group(0)`; on timeout, on cancellation
//! (the future is dropped) and after it exits, the whole group gets SIGKILL,
//! so no grandchild (ipmitool under fence_ipmilan, a `sleep` in a script)
//! outlives the call.

use std::io;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bytes kept from each of stdout/stderr.
const MAX_OUTPUT: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code, `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    #[allow(dead_code)]
    pub elapsed: Duration,
}

#[derive(Debug)]
pub(crate) enum RunError {
    Spawn(io::Error),
    Timeout,
    Io(io::Error),
}

/// Sends SIGKILL to a process group when dropped (unless disarmed).
struct GroupKiller(Option<i32>);

impl GroupKiller {
    fn kill_now(&mut self) {
        if let Some(pgid) = self.0.take() {
            kill_group(pgid);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// SIGKILL to every process of group `pgid` (errors ignored: the group may be gone).
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
        // addresses the process group. pgid > 1 excludes "every process" (-1).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Run `cmd` with `stdin` written to it, wait at most `timeout`.
pub(crate) async fn run(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, RunError> {
    let started = Instant::now();
    cmd.process_group(0)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // "Text file busy": a program written a moment ago can still be open
    // for writing in a child another thread forked before it execs (seen
    // with freshly written test scripts); it passes within milliseconds.
    let mut attempts = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r => break r.map_err(RunError::Spawn)?,
        }
    };
    let mut killer = GroupKiller(child.id().and_then(|p| i32::try_from(p).ok()));

    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        tokio::spawn(async move {
            // A child that does not read its stdin is not an error.
            let _ = pipe.write_all(&data).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out_task = child.stdout.take().map(|p| tokio::spawn(read_capped(p)));
    let err_task = child.stderr.take().map(|p| tokio::spawn(read_capped(p)));

    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(RunError::Io(e)),
        Err(_) => {
            killer.kill_now();
            let _ = child.wait().await;
            return Err(RunError::Timeout);
        }
    };
    // Leftovers of the group (background children) go too, so the pipes close.
    killer.kill_now();
    let stdout = collect(out_task).await;
    let stderr = collect(err_task).await;
    Ok(Output {
        code: status.code(),
        stdout,
        stderr,
        elapsed: started.elapsed(),
    })
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < MAX_OUTPUT {
                    let take = n.min(MAX_OUTPUT - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    buf
}

async fn collect(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    let Some(task) = task else {
        return String::new();
    };
    // A process that left the group (setsid) could keep the pipe open: bounded.
    match tokio::time::timeout(Duration::from_secs(2), task).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

/// The last `n` non-empty lines of `text`, joined with " | ".
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" | ")
}
