//! Pure argv builders for `drbdadm` (nothing is run here), including the
//! documented manual split-brain recovery, and the validated [`ResourceName`]
//! every builder takes.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dialect::Dialect;

/// Longest resource name accepted.
pub const MAX_RESOURCE_NAME_LEN: usize = 63;

/// A DRBD resource name safe to pass as one argv item: 1..=63 bytes of
/// `[A-Za-z0-9_.+-]`, not starting with `-` (no option injection), not `.`
/// or `..`, no `/` or whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ResourceName(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("empty resource name")]
    Empty,
    #[error("resource name longer than {MAX_RESOURCE_NAME_LEN} bytes")]
    TooLong,
    #[error("resource name starts with '-'")]
    LeadingDash,
    #[error("resource name {0:?} is reserved")]
    Reserved(String),
    #[error("resource name has a forbidden character {0:?}")]
    BadChar(char),
}

impl ResourceName {
    pub fn new(s: &str) -> Result<ResourceName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_RESOURCE_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if s.starts_with('-') {
            return Err(NameError::LeadingDash);
        }
        if s == "." || s == ".." {
            return Err(NameError::Reserved(s.to_string()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')))
        {
            return Err(NameError::BadChar(c));
        }
        Ok(ResourceName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ResourceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<ResourceName, NameError> {
        ResourceName::new(s)
    }
}

impl<'de> Deserialize<'de> for ResourceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ResourceName, D::Error> {
        let s = String::deserialize(d)?;
        ResourceName::new(&s).map_err(serde::de::Error::custom)
    }
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `drbdadm primary RES`
pub fn primary(res: &ResourceName) -> Vec<String> {
    argv(&["drbdadm", "primary", res.as_str()])
}

/// `drbdadm secondary RES`
pub fn secondary(res: &ResourceName) -> Vec<String> {
    argv(&["drbdadm", "secondary", res.as_str()])
}

/// `drbdadm disconnect RES`
pub fn disconnect(res: &ResourceName) -> Vec<String> {
    argv(&["drbdadm", "disconnect", res.as_str()])
}

/// `drbdadm connect RES`
pub fn connect(res: &ResourceName) -> Vec<String> {
    argv(&["drbdadm", "connect", res.as_str()])
}

/// Connect, discarding local data: 8.4 `drbdadm -- --discard-my-data connect
/// RES`, 9 `drbdadm connect --discard-my-data RES`.
pub fn connect_discard_my_data(dialect: Dialect, res: &ResourceName) -> Vec<String> {
    match dialect {
        Dialect::V84 => argv(&[
            "drbdadm",
            "--",
            "--discard-my-data",
            "connect",
            res.as_str(),
        ]),
        Dialect::V9 => argv(&["drbdadm", "connect", "--discard-my-data", res.as_str()]),
    }
}

/// One step of a procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub argv: Vec<String>,
    /// A failure is fine when the resource is already StandAlone
    /// (`disconnect` of a connection that is gone).
    pub ok_if_standalone: bool,
}

fn step(argv: Vec<String>) -> Step {
    Step {
        argv,
        ok_if_standalone: false,
    }
}

/// Manual split-brain recovery on the victim (its changes are discarded):
/// secondary, disconnect (fine if already StandAlone), connect with
/// discard-my-data. Run these before [`split_brain_survivor`].
pub fn split_brain_victim(dialect: Dialect, res: &ResourceName) -> Vec<Step> {
    vec![
        step(secondary(res)),
        Step {
            argv: disconnect(res),
            ok_if_standalone: true,
        },
        step(connect_discard_my_data(dialect, res)),
    ]
}

/// Manual split-brain recovery on the survivor (its data wins): connect
/// (needed when it is StandAlone too).
pub fn split_brain_survivor(res: &ResourceName) -> Vec<Step> {
    vec![step(connect(res))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(ResourceName::new("r0").is_ok());
        assert!(ResourceName::new("vm-disk_1.a+b").is_ok());
        assert!(ResourceName::new(&"a".repeat(63)).is_ok());
        assert_eq!(ResourceName::new(""), Err(NameError::Empty));
        assert_eq!(ResourceName::new(&"a".repeat(64)), Err(NameError::TooLong));
        assert_eq!(ResourceName::new("-r0"), Err(NameError::LeadingDash));
        assert_eq!(
            ResourceName::new("--discard-my-data"),
            Err(NameError::LeadingDash)
        );
        assert_eq!(ResourceName::new("a/b"), Err(NameError::BadChar('/')));
        assert_eq!(ResourceName::new("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(ResourceName::new("a\tb"), Err(NameError::BadChar('\t')));
        assert_eq!(ResourceName::new("a;b"), Err(NameError::BadChar(';')));
        assert_eq!(ResourceName::new("é"), Err(NameError::BadChar('é')));
        assert_eq!(
            ResourceName::new(".."),
            Err(NameError::Reserved("..".into()))
        );
        let ok: ResourceName = serde_json::from_str("\"r0\"").unwrap();
        assert_eq!(ok.as_str(), "r0");
        assert!(serde_json::from_str::<ResourceName>("\"-x\"").is_err());
    }

    #[test]
    fn split_brain_recovery() {
        let r = ResourceName::new("r0").unwrap();
        let v84 = split_brain_victim(Dialect::V84, &r);
        let argvs: Vec<String> = v84.iter().map(|s| s.argv.join(" ")).collect();
        assert_eq!(
            argvs,
            [
                "drbdadm secondary r0",
                "drbdadm disconnect r0",
                "drbdadm -- --discard-my-data connect r0"
            ]
        );
        assert_eq!(
            v84.iter().map(|s| s.ok_if_standalone).collect::<Vec<_>>(),
            [false, true, false]
        );
        let v9 = split_brain_victim(Dialect::V9, &r);
        assert_eq!(
            v9[2].argv,
            ["drbdadm", "connect", "--discard-my-data", "r0"]
        );
        assert_eq!(
            split_brain_survivor(&r)[0].argv,
            ["drbdadm", "connect", "r0"]
        );
        assert_eq!(primary(&r), ["drbdadm", "primary", "r0"]);
    }
}
