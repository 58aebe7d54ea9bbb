//! Fencing a node: topology levels (or every capable device), delays, and the report of what was tried.
//!
//! Rules (as Pacemaker's fencer):
//! - if levels exist for the target, they are tried in ascending index; a
//!   level succeeds only if all its devices succeed, in order; the first
//!   level that succeeds ends the fencing. A `reboot` on a level with more
//!   than one device is done as `off` on every device, then `on` on every
//!   device (so no device powers the node back on while another still has
//!   it off); a failing `on` does not undo the fence.
//! - without levels, every device that can fence the target (host check) is
//!   tried in configuration order until one succeeds.
//! - either way, a power device that does not say which node it fences
//!   (no host list or map, no dynamic list) is never used: see
//!   [`crate::validate_devices`], which refuses such a configuration.
//! - a device's `off`/`reboot` that fails (not on authentication, bad
//!   configuration or timeout) is tried again up to `pcmk_<action>_retries`
//!   times (default 2), 0.5 s apart, all within the one action timeout; each
//!   try is an [`Attempt`].
//! - before the first attempt of a device in this call, its
//!   `pcmk_delay_base`/`pcmk_delay_max` delay is slept (off/reboot only);
//!   `FenceOptions::priority_delay` is slept once before the very first attempt.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{DeviceConfig, FenceAction};
use crate::delay::fence_delay;
use crate::device::{default_search_path, Device};
use crate::error::FenceError;

/// Pacemaker's default `stonith-timeout`.
pub const DEFAULT_STONITH_TIMEOUT: Duration = Duration::from_secs(60);

/// One fencing topology level (`fencing-level` of the CIB), target matched by node name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub index: u32,
    pub target: String,
    pub devices: Vec<String>,
}

/// All levels, sorted by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    levels: Vec<Level>,
}

impl Topology {
    pub fn new(mut levels: Vec<Level>) -> Topology {
        levels.sort_by(|a, b| a.target.cmp(&b.target).then(a.index.cmp(&b.index)));
        Topology { levels }
    }

    /// The levels for `target`, ascending index.
    pub fn levels_for(&self, target: &str) -> Vec<&Level> {
        let mut v: Vec<&Level> = self.levels.iter().filter(|l| l.target == target).collect();
        v.sort_by_key(|l| l.index);
        v
    }

    /// Device ids used by levels but not configured (for config validation).
    pub fn unknown_devices(&self, devices: &[DeviceConfig]) -> Vec<String> {
        let known: HashSet<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        let mut v: Vec<String> = Vec::new();
        for l in &self.levels {
            for d in &l.devices {
                if !known.contains(d.as_str()) && !v.contains(d) {
                    v.push(d.clone());
                }
            }
        }
        v
    }
}

/// How to fence.
#[derive(Debug, Clone)]
pub struct FenceOptions {
    /// Default per-action timeout (`stonith-timeout`); a device's
    /// `pcmk_<action>_timeout` overrides it for that device.
    pub timeout: Duration,
    /// Where `fence_*` agents are looked up.
    pub search_path: Vec<PathBuf>,
    /// `Some(d)`: sleep `d` before each device's first attempt instead of
    /// its `pcmk_delay_base/max` (`Some(ZERO)` = no device delay, e.g. a
    /// manual `hactl stonith fence`).
    pub delay_override: Option<Duration>,
    /// Slept once before the first attempt (see [`crate::priority_fencing_delay`]).
    pub priority_delay: Duration,
}

impl Default for FenceOptions {
    fn default() -> Self {
        FenceOptions {
            timeout: DEFAULT_STONITH_TIMEOUT,
            search_path: default_search_path(),
            delay_override: None,
            priority_delay: Duration::ZERO,
        }
    }
}

/// One device action tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The topology level, `None` without topology.
    pub level: Option<u32>,
    pub device: String,
    pub action: FenceAction,
    /// `Err` carries the (redacted) error text.
    pub result: Result<(), String>,
    /// The device's confirmation held (see [`crate::Outcome::confirmed`]).
    pub confirmed: bool,
    /// Outcome detail on success.
    pub detail: String,
    /// Delay slept before this attempt.
    pub delay: Duration,
    pub started: SystemTime,
    pub duration: Duration,
}

/// What [`fence`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceReport {
    pub target: String,
    pub action: FenceAction,
    pub succeeded: bool,
    /// The device (or `+`-joined devices of the level) that did it.
    pub device: Option<String>,
    /// The level that did it, with topology.
    pub level: Option<u32>,
    pub attempts: Vec<Attempt>,
    /// Devices not tried and why (host checks, bad configuration).
    pub skipped: Vec<(String, String)>,
    /// Total delay slept.
    pub delay: Duration,
    /// Why nothing could be tried ("no device can fence NODE"), if so.
    pub error: Option<String>,
}

impl FenceReport {
    /// One line for operators: who did it, or why every way failed.
    pub fn summary(&self) -> String {
        let tried = |a: &Attempt| -> String {
            let lvl = a.level.map(|l| format!("level {l}: ")).unwrap_or_default();
            match &a.result {
                Ok(()) => format!("{lvl}{} {}: ok ({})", a.device, a.action, a.detail),
                Err(e) => {
                    let prefix = format!("device {}: ", a.device);
                    format!(
                        "{lvl}{}: {}",
                        a.device,
                        e.strip_prefix(&prefix).unwrap_or(e)
                    )
                }
            }
        };
        let failures: Vec<String> = self
            .attempts
            .iter()
            .filter(|a| a.result.is_err())
            .map(tried)
            .collect();
        let delay = if self.delay.is_zero() {
            String::new()
        } else {
            format!(
                " (after a fencing delay of {:.1} s)",
                self.delay.as_secs_f64()
            )
        };
        if self.succeeded {
            let by = match (self.level, &self.device) {
                (Some(l), Some(d)) => format!("level {l} ({d})"),
                (None, Some(d)) => d.clone(),
                _ => "?".into(),
            };
            let mut s = format!("{} {}: succeeded by {by}{delay}", self.target, self.action);
            if let Some(ok) = self.attempts.iter().rev().find(|a| a.result.is_ok()) {
                s.push_str(&format!(": {}", ok.detail));
            }
            if !failures.is_empty() {
                s.push_str(&format!("; earlier failures: {}", failures.join("; ")));
            }
            s
        } else {
            let mut s = format!("{} {}: FAILED{delay}: ", self.target, self.action);
            if let Some(e) = &self.error {
                s.push_str(e);
                if !failures.is_empty() {
                    s.push_str("; ");
                }
            }
            s.push_str(&failures.join("; "));
            if !self.skipped.is_empty() {
                let sk: Vec<String> = self
                    .skipped
                    .iter()
                    .map(|(d, r)| format!("{d}: {r}"))
                    .collect();
                s.push_str(&format!(" (not used: {})", sk.join("; ")));
            }
            s
        }
    }
}

struct Runner<'a> {
    target: &'a str,
    opts: &'a FenceOptions,
    devices: &'a [DeviceConfig],
    delayed: HashSet<String>,
    report: FenceReport,
}

impl<'a> Runner<'a> {
    async fn sleep_delay(&mut self, cfg: &DeviceConfig, action: FenceAction) -> Duration {
        let mut d = Duration::ZERO;
        if self.report.attempts.is_empty() && !self.opts.priority_delay.is_zero() {
            d += self.opts.priority_delay;
        }
        if action.is_fencing() && self.delayed.insert(cfg.id.clone()) {
            d += self
                .opts
                .delay_override
                .unwrap_or_else(|| fence_delay(cfg, self.target));
        }
        if !d.is_zero() {
            tracing::info!(device = %cfg.id, target = self.target, delay_ms = d.as_millis() as u64, "fencing delay");
            tokio::time::sleep(d).await;
            self.report.delay += d;
        }
        d
    }

    fn refuse(&mut self, level: Option<u32>, id: &str, action: FenceAction, why: String) {
        self.report.attempts.push(Attempt {
            level,
            device: id.to_string(),
            action,
            result: Err(why),
            confirmed: false,
            detail: String::new(),
            delay: Duration::ZERO,
            started: SystemTime::now(),
            duration: Duration::ZERO,
        });
    }

    /// Run one device action and record it; true on success.
    async fn attempt(&mut self, level: Option<u32>, id: &str, action: FenceAction) -> bool {
        let devices = self.devices;
        let Some(cfg) = devices.iter().find(|d| d.id == id) else {
            self.refuse(level, id, action, format!("device {id} is not configured"));
            return false;
        };
        let device = match Device::from_config(cfg, &self.opts.search_path) {
            Ok(d) => d,
            Err(e) => {
                self.refuse(level, id, action, cfg.redact(&e.to_string()));
                return false;
            }
        };
        // Without levels the caller has run the full host check already; a
        // device named by a level gets it here (a level is no host mapping:
        // an unmapped power device is refused for its target too).
        let check = if level.is_some() {
            let t = device.action_timeout(FenceAction::List, self.opts.timeout);
            device.can_fence_dynamic(self.target, t).await
        } else if device.can_fence(self.target) {
            Ok(())
        } else {
            let named = device.hosts().all_named().join(" ");
            Err(format!("not in its host list ({named})"))
        };
        if let Err(why) = check {
            let why = format!(
                "device {id}: cannot fence {}: {}",
                self.target,
                cfg.redact(&why)
            );
            self.refuse(level, id, action, why);
            return false;
        }
        let mut delay = self.sleep_delay(cfg, action).await;
        let timeout = device.action_timeout(action, self.opts.timeout);
        let retries = action_retries(cfg, action);
        let deadline = Instant::now() + timeout;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let t1 = Instant::now();
            let started = SystemTime::now();
            let budget = deadline.saturating_duration_since(t1);
            let r = device.run(action, self.target, budget).await;
            let ok = r.is_ok();
            let retry = match &r {
                Ok(_) => false,
                Err(e) => {
                    is_retryable(e) && tries <= retries && deadline > Instant::now() + RETRY_PAUSE
                }
            };
            let (result, confirmed, detail) = match r {
                Ok(o) => (Ok(()), o.confirmed, cfg.redact(&o.detail)),
                Err(e) => (Err(cfg.redact(&e.to_string())), false, String::new()),
            };
            self.report.attempts.push(Attempt {
                level,
                device: id.to_string(),
                action,
                result,
                confirmed,
                detail,
                delay,
                started,
                duration: t1.elapsed(),
            });
            if !retry {
                return ok;
            }
            delay = Duration::ZERO;
            tracing::info!(device = %cfg.id, target = self.target, %action, tries, "retrying fence action");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// Pause between two tries of the same device action.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// `pcmk_<action>_retries` (Pacemaker's default: 2 retries) for off/reboot;
/// other actions are not retried.
fn action_retries(cfg: &DeviceConfig, action: FenceAction) -> u32 {
    if !action.is_fencing() {
        return 0;
    }
    let key = format!("pcmk_{}_retries", action.as_str());
    cfg.param(&[key.as_str()])
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2)
}

/// Worth another try within the same timeout? Not an authentication failure
/// (a wrong password stays wrong, and retries can lock the BMC account), not
/// a configuration error, not a timeout (the budget is spent).
fn is_retryable(e: &FenceError) -> bool {
    matches!(
        e,
        FenceError::Failed { .. }
            | FenceError::Unreachable { .. }
            | FenceError::NotConfirmed { .. }
    )
}

/// Fence `target` with `action` using `devices` and topology `levels`.
///
/// Never panics and never returns an error: the [`FenceReport`] says whether
/// it succeeded, by which device or level, and every failure on the way.
pub async fn fence(
    target: &str,
    action: FenceAction,
    devices: &[DeviceConfig],
    levels: &[Level],
    opts: &FenceOptions,
) -> FenceReport {
    let mut r = Runner {
        target,
        opts,
        devices,
        delayed: HashSet::new(),
        report: FenceReport {
            target: target.to_string(),
            action,
            succeeded: false,
            device: None,
            level: None,
            attempts: Vec::new(),
            skipped: Vec::new(),
            delay: Duration::ZERO,
            error: None,
        },
    };
    let topology = Topology::new(levels.to_vec());
    let mine = topology.levels_for(target);
    if !mine.is_empty() {
        for level in mine {
            if level.devices.is_empty() {
                continue;
            }
            let mut ok = true;
            if action == FenceAction::Reboot && level.devices.len() > 1 {
                for d in &level.devices {
                    if !r.attempt(Some(level.index), d, FenceAction::Off).await {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    for d in &level.devices {
                        // The node is fenced once all are off; "on" failures are only recorded.
                        r.attempt(Some(level.index), d, FenceAction::On).await;
                    }
                }
            } else {
                for d in &level.devices {
                    if !r.attempt(Some(level.index), d, action).await {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                r.report.succeeded = true;
                r.report.level = Some(level.index);
                r.report.device = Some(level.devices.join("+"));
                break;
            }
        }
    } else {
        let mut tried_any = false;
        for cfg in devices {
            let device = match Device::from_config(cfg, &opts.search_path) {
                Ok(d) => d,
                Err(e) => {
                    r.report
                        .skipped
                        .push((cfg.id.clone(), cfg.redact(&e.to_string())));
                    continue;
                }
            };
            let check_timeout = device.action_timeout(FenceAction::List, opts.timeout);
            if let Err(why) = device.can_fence_dynamic(target, check_timeout).await {
                r.report.skipped.push((cfg.id.clone(), cfg.redact(&why)));
                continue;
            }
            tried_any = true;
            if r.attempt(None, &cfg.id, action).await {
                r.report.succeeded = true;
                r.report.device = Some(cfg.id.clone());
                break;
            }
        }
        if !tried_any {
            r.report.error = Some(format!("no device can fence {target}"));
        }
    }
    let report = r.report;
    if report.succeeded {
        tracing::info!(target, %action, summary = %report.summary(), "fencing succeeded");
    } else {
        tracing::error!(target, %action, summary = %report.summary(), "fencing failed");
    }
    report
}
