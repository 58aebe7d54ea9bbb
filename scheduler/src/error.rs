//! Errors for bad configuration input; each names the offending element.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ConfigError {
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("not supported yet: {element} '{id}'")]
    Unsupported { element: String, id: String },
    #[error("{element} '{id}': {message}")]
    Invalid {
        element: String,
        id: String,
        message: String,
    },
    #[error("{element} '{id}' refers to unknown {kind} '{reference}'")]
    UnknownReference {
        element: String,
        id: String,
        kind: String,
        reference: String,
    },
    #[error("duplicate id '{id}' (on {element})")]
    DuplicateId { element: String, id: String },
    #[error("ordering cycle through constraints {}", ids.join(" -> "))]
    OrderCycle { ids: Vec<String> },
}

impl ConfigError {
    pub fn invalid(element: &str, id: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            element: element.into(),
            id: id.into(),
            message: message.into(),
        }
    }
}
