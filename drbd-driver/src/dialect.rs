//! Which DRBD dialect the node speaks, from `drbdadm --version` output
//! (`DRBD_KERNEL_VERSION_CODE=0x08040b` etc.; works without the module, which
//! then shows as `0x000000`).

use thiserror::Error;

/// The kernel module's major version family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dialect {
    V84,
    V9,
}

/// Versions found in `drbdadm --version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// `DRBD_KERNEL_VERSION_CODE` as (major, minor, patch).
    pub kernel: (u8, u8, u8),
    /// `DRBD_KERNEL_VERSION`, if printed.
    pub kernel_text: Option<String>,
    /// `DRBDADM_VERSION_CODE` as (major, minor, patch), if printed.
    pub utils: Option<(u8, u8, u8)>,
    pub dialect: Dialect,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialectError {
    #[error("no DRBD_KERNEL_VERSION_CODE line in drbdadm --version output")]
    NoKernelVersion,
    #[error("bad version code {0:?}")]
    BadCode(String),
    #[error("no DRBD kernel module loaded (DRBD_KERNEL_VERSION_CODE=0x000000)")]
    NoModule,
    #[error("unsupported DRBD kernel version {0}.{1}.{2}")]
    Unsupported(u8, u8, u8),
}

fn code(v: &str) -> Result<(u8, u8, u8), DialectError> {
    let bad = || DialectError::BadCode(v.chars().take(32).collect());
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .ok_or_else(bad)?;
    if hex.is_empty() || hex.len() > 6 {
        return Err(bad());
    }
    let n = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
    Ok(((n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// Parses `drbdadm --version` output.
pub fn parse_version(output: &str) -> Result<Versions, DialectError> {
    let mut kernel = None;
    let mut kernel_text = None;
    let mut utils = None;
    for line in output.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "DRBD_KERNEL_VERSION_CODE" => kernel = Some(code(v)?),
            "DRBD_KERNEL_VERSION" => kernel_text = Some(v.chars().take(64).collect()),
            "DRBDADM_VERSION_CODE" => utils = Some(code(v)?),
            _ => {}
        }
    }
    let kernel = kernel.ok_or(DialectError::NoKernelVersion)?;
    let dialect = match kernel {
        (0, 0, 0) => return Err(DialectError::NoModule),
        (8, 4, _) => Dialect::V84,
        (9, _, _) => Dialect::V9,
        (a, b, c) => return Err(DialectError::Unsupported(a, b, c)),
    };
    Ok(Versions {
        kernel,
        kernel_text,
        utils,
        dialect,
    })
}

/// The dialect alone.
pub fn detect(output: &str) -> Result<Dialect, DialectError> {
    parse_version(output).map(|v| v.dialect)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB_84: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ 1b8f6f8\\ build\\ by\\ debian\nDRBDADM_API_VERSION=2\nDRBD_KERNEL_VERSION_CODE=0x08040b\nDRBD_KERNEL_VERSION=8.4.11\nDRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0\n";

    #[test]
    fn lab_84() {
        let v = parse_version(LAB_84).unwrap();
        assert_eq!(v.dialect, Dialect::V84);
        assert_eq!(v.kernel, (8, 4, 11));
        assert_eq!(v.kernel_text.as_deref(), Some("8.4.11"));
        assert_eq!(v.utils, Some((9, 22, 0)));
    }

    #[test]
    fn v9_and_errors() {
        assert_eq!(
            detect("DRBD_KERNEL_VERSION_CODE=0x090204\n"),
            Ok(Dialect::V9)
        );
        assert_eq!(
            detect("DRBDADM_VERSION_CODE=0x091600\nDRBD_KERNEL_VERSION_CODE=0x000000\n"),
            Err(DialectError::NoModule)
        );
        assert_eq!(
            detect("DRBDADM_VERSION_CODE=0x091600\n"),
            Err(DialectError::NoKernelVersion)
        );
        assert_eq!(
            detect("DRBD_KERNEL_VERSION_CODE=0x080300\n"),
            Err(DialectError::Unsupported(8, 3, 0))
        );
        assert!(matches!(
            detect("DRBD_KERNEL_VERSION_CODE=08040b\n"),
            Err(DialectError::BadCode(_))
        ));
        assert!(matches!(
            detect("DRBD_KERNEL_VERSION_CODE=0x1234567\n"),
            Err(DialectError::BadCode(_))
        ));
    }
}
