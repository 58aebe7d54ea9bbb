//! Cluster options of ours (not Pacemaker's) that the configuration
//! carries as properties, with their bounds: one value for the whole
//! cluster, checked when a configuration is validated.

use std::time::Duration;

use crate::error::ConfigError;
use crate::model::Config;

/// The shortest `node-timeout` accepted (below the election timeout a
/// healthy cluster would look lost).
pub const NODE_TIMEOUT_MIN: Duration = Duration::from_millis(500);
/// The longest `node-timeout` accepted.
pub const NODE_TIMEOUT_MAX: Duration = Duration::from_secs(120);

/// The `node-timeout` property (how long a node may be silent before it is
/// lost, and the quorum lease): an interval (`1600ms`, `2s`) within
/// [`NODE_TIMEOUT_MIN`]..=[`NODE_TIMEOUT_MAX`]; `None` when not set.
pub fn node_timeout(config: &Config) -> Result<Option<Duration>, ConfigError> {
    let Some(v) = config.properties.get("node-timeout") else {
        return Ok(None);
    };
    let invalid = |message: String| ConfigError::Invalid {
        element: "property".into(),
        id: "node-timeout".into(),
        message,
    };
    let ms = crate::cib::parse_interval_ms(v)
        .ok_or_else(|| invalid(format!("'{v}' is not an interval (e.g. 1600ms, 2s)")))?;
    let d = Duration::from_millis(ms);
    if !(NODE_TIMEOUT_MIN..=NODE_TIMEOUT_MAX).contains(&d) {
        return Err(invalid(format!(
            "'{v}' is outside {NODE_TIMEOUT_MIN:?}..={NODE_TIMEOUT_MAX:?}"
        )));
    }
    Ok(Some(d))
}

/// Checks every option of ours the configuration sets.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    node_timeout(config).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> Config {
        let mut c = Config::default();
        c.properties.insert("node-timeout".into(), v.into());
        c
    }

    #[test]
    fn node_timeout_is_bounded_and_the_error_names_it() {
        assert_eq!(node_timeout(&Config::default()).unwrap(), None);
        assert_eq!(
            node_timeout(&with("1600ms")).unwrap(),
            Some(Duration::from_millis(1600))
        );
        assert_eq!(
            node_timeout(&with("2s")).unwrap(),
            Some(Duration::from_secs(2))
        );
        for (v, err) in [
            (
                "100ms",
                "property 'node-timeout': '100ms' is outside 500ms..=120s",
            ),
            (
                "10min",
                "property 'node-timeout': '10min' is outside 500ms..=120s",
            ),
            (
                "soon",
                "property 'node-timeout': 'soon' is not an interval (e.g. 1600ms, 2s)",
            ),
        ] {
            assert_eq!(node_timeout(&with(v)).unwrap_err().to_string(), err);
            assert!(crate::validate::validate(&with(v)).is_err(), "{v}");
        }
    }
}
