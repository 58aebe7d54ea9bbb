//! The library's error type: every variant names the device and, where there is one, the target.
//!
//! Texts that come from outside (agent stderr) are redacted before they are
//! put into an error, so `Display` never shows a secret.

use std::time::Duration;

use crate::config::FenceAction;

#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("device {device}: unknown fence agent {agent:?} (not ssh, external/ipmi, external/ssh, nor a fence_* program in {search_path})")]
    UnknownAgent {
        device: String,
        agent: String,
        search_path: String,
    },

    #[error("device {device}: missing parameter {param}")]
    MissingParam { device: String, param: String },

    #[error("device {device}: bad parameter {param}={value:?}: {reason}")]
    BadParam {
        device: String,
        param: String,
        /// Never the value of a secret parameter.
        value: String,
        reason: String,
    },

    #[error("device {device}: cannot run {program}: {source}")]
    Spawn {
        device: String,
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("device {device}: {action} of {target} timed out after {:.1} s (process group killed)", after.as_secs_f64())]
    Timeout {
        device: String,
        target: String,
        action: FenceAction,
        after: Duration,
    },

    #[error("device {device}: {action} of {target}: authentication failed (wrong user name or password?): {detail}")]
    Auth {
        device: String,
        target: String,
        action: FenceAction,
        detail: String,
    },

    #[error("device {device}: {action} of {target}: device unreachable: {detail}")]
    Unreachable {
        device: String,
        target: String,
        action: FenceAction,
        detail: String,
    },

    #[error("device {device}: {action} of {target} failed{}: {detail}", exit_text(*code))]
    Failed {
        device: String,
        target: String,
        action: FenceAction,
        code: Option<i32>,
        detail: String,
    },

    #[error("device {device}: {action} of {target} not confirmed: {detail}")]
    NotConfirmed {
        device: String,
        target: String,
        action: FenceAction,
        detail: String,
    },

    #[error("device {device}: action {action} is not supported by {agent}")]
    Unsupported {
        device: String,
        agent: String,
        action: FenceAction,
    },

    #[error("device {device}: cannot fence {target}: {reason}")]
    CannotFence {
        device: String,
        target: String,
        reason: String,
    },

    #[error("device {device}: bad metadata from {agent}: {detail}")]
    Metadata {
        device: String,
        agent: String,
        detail: String,
    },

    #[error("device {device}: I/O error: {source}")]
    Io {
        device: String,
        #[source]
        source: std::io::Error,
    },
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!(" (exit code {c})"),
        None => " (killed by a signal)".to_string(),
    }
}

impl FenceError {
    /// The device this error is about.
    pub fn device(&self) -> &str {
        match self {
            FenceError::UnknownAgent { device, .. }
            | FenceError::MissingParam { device, .. }
            | FenceError::BadParam { device, .. }
            | FenceError::Spawn { device, .. }
            | FenceError::Timeout { device, .. }
            | FenceError::Auth { device, .. }
            | FenceError::Unreachable { device, .. }
            | FenceError::Failed { device, .. }
            | FenceError::NotConfirmed { device, .. }
            | FenceError::Unsupported { device, .. }
            | FenceError::CannotFence { device, .. }
            | FenceError::Metadata { device, .. }
            | FenceError::Io { device, .. } => device,
        }
    }

    /// Is this a timeout (the child's process group was killed)?
    pub fn is_timeout(&self) -> bool {
        matches!(self, FenceError::Timeout { .. })
    }
}
