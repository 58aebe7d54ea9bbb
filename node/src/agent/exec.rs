//! One agent process: spawned with a clean environment in its own process group, stdout/stderr captured line by line
//! (tail, exit reason, optionally the whole stdout), killed as a group on timeout or when the caller gives up.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::EXIT_REASON_PREFIX;

/// How many lines [`ExecOutcome::tail`] keeps.
pub(crate) const TAIL_LINES: usize = 20;
/// Longest line kept in the tail / exit reason (longer ones are cut).
const MAX_LINE: usize = 1024;
/// Most stdout kept when the whole of it is wanted (meta-data).
const MAX_STDOUT: usize = 4 << 20;
/// After the agent has exited, how long we keep reading output that a leftover child (a daemon that did not close
/// its inherited stdout/stderr) may hold open.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

pub(crate) struct ExecSpec<'a> {
    pub program: &'a Path,
    pub arg: &'a str,
    pub env: Vec<(String, String)>,
    pub cwd: &'a Path,
    pub timeout: Duration,
    pub keep_stdout: bool,
}

#[derive(Debug)]
pub(crate) enum ExecEnd {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    SpawnFailed(io::Error),
    WaitFailed(io::Error),
}

#[derive(Debug)]
pub(crate) struct ExecOutcome {
    pub end: ExecEnd,
    /// The whole stdout (only with `keep_stdout`, cut at 4 MiB).
    pub stdout: String,
    /// Text after the last `ocf-exit-reason:` prefix on stderr, trimmed; `None` if absent or empty.
    pub exit_reason: Option<String>,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, in arrival order, joined with `\n`.
    pub tail: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// What has been read so far from both pipes.
struct Capture {
    keep_stdout: bool,
    stdout: Vec<u8>,
    pending: [Vec<u8>; 2],
    tail: VecDeque<String>,
    exit_reason: Option<String>,
}

impl Capture {
    fn new(keep_stdout: bool) -> Self {
        Capture {
            keep_stdout,
            stdout: Vec::new(),
            pending: [Vec::new(), Vec::new()],
            tail: VecDeque::new(),
            exit_reason: None,
        }
    }

    fn feed(&mut self, stream: Stream, data: &[u8]) {
        if stream == Stream::Stdout && self.keep_stdout {
            let room = MAX_STDOUT.saturating_sub(self.stdout.len());
            self.stdout.extend_from_slice(&data[..data.len().min(room)]);
        }
        let idx = stream as usize;
        self.pending[idx].extend_from_slice(data);
        while let Some(pos) = self.pending[idx].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[idx].drain(..=pos).collect();
            self.line(stream, &line);
        }
        // A huge line without a newline: take it as a line rather than growing without bound.
        if self.pending[idx].len() > 64 * 1024 {
            let line = std::mem::take(&mut self.pending[idx]);
            self.line(stream, &line);
        }
    }

    /// Flushes a last line without a trailing newline.
    fn finish(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.pending[stream as usize]);
        if !line.is_empty() {
            self.line(stream, &line);
        }
    }

    fn line(&mut self, stream: Stream, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches(['\n', '\r']);
        let text = cut(text, MAX_LINE);
        if stream == Stream::Stderr {
            if let Some(reason) = text.strip_prefix(EXIT_REASON_PREFIX) {
                let reason = reason.trim();
                self.exit_reason = (!reason.is_empty()).then(|| reason.to_string());
            }
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text.to_string());
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn lock(c: &Mutex<Capture>) -> std::sync::MutexGuard<'_, Capture> {
    c.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn pump<R: AsyncRead + Unpin>(mut reader: R, stream: Stream, capture: Arc<Mutex<Capture>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lock(&capture).feed(stream, &buf[..n]),
        }
    }
    lock(&capture).finish(stream);
}

/// Kills the agent's whole process group when dropped while armed (timeout, or the caller's future dropped).
struct GroupKiller {
    pgid: Option<libc::pid_t>,
}

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take().filter(|&p| p > 1) {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the process group, which
            // is the agent's own (process_group(0)) and still exists because the agent has not been reaped yet.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

fn end_of(status: ExitStatus) -> ExecEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExecEnd::Exited(code),
        (None, Some(sig)) => ExecEnd::Signaled(sig),
        (None, None) => ExecEnd::Exited(-1),
    }
}

pub(crate) async fn execute(spec: ExecSpec<'_>) -> ExecOutcome {
    let mut cmd = Command::new(spec.program);
    cmd.arg(spec.arg)
        .env_clear()
        .envs(spec.env)
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ExecOutcome {
                end: ExecEnd::SpawnFailed(e),
                stdout: String::new(),
                exit_reason: None,
                tail: String::new(),
            };
        }
    };
    let mut killer = GroupKiller {
        pgid: child.id().and_then(|id| libc::pid_t::try_from(id).ok()),
    };

    let capture = Arc::new(Mutex::new(Capture::new(spec.keep_stdout)));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(pump(out, Stream::Stdout, capture.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(pump(err, Stream::Stderr, capture.clone())));
    }

    let end = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // Whatever the agent left running in its group (an LSB daemon) is the service: leave it alone.
            killer.disarm();
            end_of(status)
        }
        Ok(Err(e)) => {
            killer.kill();
            let _ = child.wait().await;
            ExecEnd::WaitFailed(e)
        }
        Err(_) => {
            killer.kill();
            let _ = child.wait().await;
            ExecEnd::TimedOut
        }
    };

    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    for mut reader in readers {
        if tokio::time::timeout_at(deadline, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }

    let mut c = lock(&capture);
    c.finish(Stream::Stdout);
    c.finish(Stream::Stderr);
    ExecOutcome {
        end,
        stdout: String::from_utf8_lossy(&c.stdout).into_owned(),
        exit_reason: c.exit_reason.take(),
        tail: c
            .tail
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_last_reason_and_tail() {
        let mut c = Capture::new(true);
        c.feed(Stream::Stderr, b"ocf-exit-reason:first\nnoise\n");
        c.feed(Stream::Stdout, b"out1\nout");
        c.feed(Stream::Stderr, b"ocf-exit-reason:  disk on fire \r\n");
        c.feed(Stream::Stdout, b"2");
        c.finish(Stream::Stdout);
        c.finish(Stream::Stderr);
        assert_eq!(c.exit_reason.as_deref(), Some("disk on fire"));
        assert_eq!(c.stdout, b"out1\nout2");
        let tail: Vec<_> = c.tail.iter().cloned().collect();
        assert_eq!(
            tail,
            vec![
                "ocf-exit-reason:first",
                "noise",
                "out1",
                "ocf-exit-reason:  disk on fire ",
                "out2"
            ]
        );
        for i in 0..50 {
            c.feed(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert_eq!(c.tail.len(), TAIL_LINES);
        assert_eq!(c.tail.back().map(String::as_str), Some("line 49"));
    }

    #[test]
    fn prefix_on_stdout_is_not_a_reason() {
        let mut c = Capture::new(false);
        c.feed(Stream::Stdout, b"ocf-exit-reason:nope\n");
        assert_eq!(c.exit_reason, None);
        assert!(c.stdout.is_empty());
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
