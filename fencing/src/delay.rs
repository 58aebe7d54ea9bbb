//! Fencing delays: Pacemaker duration syntax, `pcmk_delay_base`/`pcmk_delay_max`, `priority-fencing-delay`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::config::DeviceConfig;

/// Parse a Pacemaker duration: a number with an optional unit, seconds by
/// default. Units: `ms`/`msec`, `us`/`usec`, `s`/`sec`, `m`/`min`,
/// `h`/`hr`. Fractions ("1.5s") are accepted. `None` if not a duration.
///
/// ```
/// use std::time::Duration;
/// use ha_fencing::parse_duration;
/// assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
/// assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "msec" | "msecs" => 0.001,
        "us" | "usec" | "usecs" => 0.000_001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        _ => return None,
    };
    let secs = n * scale;
    if !secs.is_finite() || !(0.0..=1.0e9).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// `pcmk_delay_base` for `target`: either one duration, or a per-node map
/// "node1:0s;node2:5s" (nodes not in the map get 0).
pub fn delay_base(cfg: &DeviceConfig, target: &str) -> Duration {
    let Some(v) = cfg.param(&["pcmk_delay_base"]) else {
        return Duration::ZERO;
    };
    if let Some(d) = parse_duration(v) {
        return d;
    }
    for entry in v.split(|c: char| c == ';' || c == ',' || c.is_whitespace()) {
        if let Some((node, d)) = entry.split_once([':', '=']) {
            if node == target {
                return parse_duration(d).unwrap_or(Duration::ZERO);
            }
        }
    }
    Duration::ZERO
}

/// The delay before the first fencing attempt of this device against
/// `target`, as Pacemaker computes it:
///
/// - `pcmk_delay_max` unset or 0: the delay is `pcmk_delay_base`;
/// - else a random value in `[base, max]` (`base` + random in `[0, max - base]`),
///   so the total never exceeds `pcmk_delay_max`; a max below the base is
///   raised to the base.
///
/// Unparsable values count as 0. The random part comes from std's randomly
/// keyed `RandomState` hasher fed with the time, the device, the target and a
/// counter: jitter, not cryptography, so no `rand` dependency is needed.
pub fn fence_delay(cfg: &DeviceConfig, target: &str) -> Duration {
    let base = delay_base(cfg, target);
    let max = cfg
        .param(&["pcmk_delay_max"])
        .and_then(parse_duration)
        .unwrap_or(Duration::ZERO);
    if max <= base {
        return base;
    }
    let span_ms = (max - base).as_millis() as u64;
    base + Duration::from_millis(random_u64(&cfg.id, target) % (span_ms + 1))
}

fn random_u64(a: &str, b: &str) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    a.hash(&mut h);
    b.hash(&mut h);
    COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        t.as_nanos().hash(&mut h);
    }
    std::process::id().hash(&mut h);
    h.finish()
}

/// A node as seen by the partition that wants to fence, for
/// [`priority_fencing_delay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePriority {
    pub name: String,
    /// Sum of the priorities of the resources active on the node (see
    /// [`resource_priority`] for promoted instances).
    pub priority: i64,
    /// Member of our partition (true) or lost (false).
    pub online: bool,
}

/// Priority of one active resource instance for the node sums: a promoted
/// instance counts `base + 1` when `base` is not 0 (Pacemaker's rule).
pub fn resource_priority(base: i64, promoted: bool) -> i64 {
    if promoted && base != 0 {
        base + 1
    } else {
        base
    }
}

/// Pacemaker's `priority-fencing-delay` (cluster property) for fencing `target`.
///
/// Returns `property` when all of these hold, else 0:
/// 1. `property` is not 0;
/// 2. `target` is a lost node (listed with `online == false`);
/// 3. our partition does not have the majority of the nodes
///    (`2 × online ≤ total`, e.g. one of two in a two-node split);
/// 4. not all nodes have the same priority;
/// 5. `target` has the highest total resource priority.
///
/// So the node running the more important resources is fenced later and
/// wins a fencing race. The per-device `pcmk_delay_base/max` delay is added
/// on top of it by [`crate::fence`] (`FenceOptions::priority_delay`).
pub fn priority_fencing_delay(
    property: Duration,
    target: &str,
    nodes: &[NodePriority],
) -> Duration {
    if property.is_zero() {
        return Duration::ZERO;
    }
    let Some(t) = nodes.iter().find(|n| n.name == target) else {
        return Duration::ZERO;
    };
    if t.online {
        return Duration::ZERO;
    }
    let online = nodes.iter().filter(|n| n.online).count();
    if online * 2 > nodes.len() {
        return Duration::ZERO;
    }
    let top = nodes.iter().map(|n| n.priority).max().unwrap_or(0);
    let low = nodes.iter().map(|n| n.priority).min().unwrap_or(0);
    if top == low || t.priority < top {
        return Duration::ZERO;
    }
    property
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration(" 2min "), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn promoted_bonus() {
        assert_eq!(resource_priority(10, true), 11);
        assert_eq!(resource_priority(0, true), 0);
        assert_eq!(resource_priority(10, false), 10);
    }
}
