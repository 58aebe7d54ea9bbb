//! crm shell `configure` syntax: [`read_crm`] turns a configuration as
//! operators write it for `crm configure load` into the model, and
//! [`write_crm`] prints a model back in that syntax (what `crm configure
//! show` prints).
//!
//! The reader follows crmsh 4.4 so that `NAME.crm` gives the same model as
//! the CIB crmsh writes for it:
//! - quoting and line continuation as crmsh (`shlex`, `\` at line end),
//!   comments are lines starting with `#`;
//! - ids crmsh generates are generated the same way: op ids
//!   `<rsc>-<op>-<interval as written>` (prefix `operations $id=` when
//!   given), rule ids `<location>-rule`, expression ids `<rule>-expression`,
//!   resource set ids `<constraint>-0`, fencing level ids `fencing`, each
//!   made unique with `-0`, `-1`... against the ids already in use;
//! - top-level resources are ordered as crmsh orders them in the CIB:
//!   primitives, groups, `ms`, then clones, each in the order written;
//! - several `property` (`rsc_defaults`, `op_defaults`) lines merge into
//!   one set, a later value replacing an earlier one;
//! - `order ... 0:` is Optional, any other score Mandatory; role names old
//!   and new (`Master`/`Slave`, `Promoted`/`Unpromoted`) are accepted.
//!
//! Where the CIB reader leaves something out of the model, so does this
//! reader: attribute sets conditioned by rules, group and clone instance
//! attributes (implicit `clone c r a=b` pairs are instance attributes, as in
//! crmsh: use `meta`), descriptions, alerts, remote nodes. The stack-managed
//! properties `cluster-infrastructure` and `expected-quorum-votes` (crmsh
//! refuses them) are left out too. Tags, tickets, ACLs, templates and
//! bundles are rejected as not supported, like the CIB reader does. Unlike
//! crmsh's CIB, op attributes that are not op fields (`OCF_CHECK_LEVEL=10`)
//! are kept in [`crate::model::OpConfig::attrs`].
//!
//! The whole configuration is validated ([`crate::validate::validate`]);
//! on any error nothing is returned but the error, which names the line,
//! column and token and what was expected there.
//!
//! The writer prints what the syntax can express; [`read_crm`] of its output
//! gives the same model for every configuration [`read_crm`] produces. What
//! crm syntax cannot say is normalised (see [`writer`]): e.g. ids of rule
//! expressions and resource sets other than crmsh's, nested rules, `value`
//! on unary expressions.

mod ast;
mod lexer;
mod lower;
mod parser;
pub mod writer;

use thiserror::Error;

use crate::model::Config;
use ast::Pos;

/// A syntax or configuration error at a place in the crm text. Displays as
/// one line: `LINE:COLUMN: unexpected 'TOKEN', expected WHAT` (`unexpected
/// end of line` when the statement ended too early).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: unexpected {}, expected {expected}", show_token(.token))]
pub struct CrmError {
    /// 1-based line of the offending token.
    pub line: u32,
    /// 1-based column (in characters) of the offending token.
    pub column: u32,
    /// The offending token as read (unquoted); empty at the end of a line.
    pub token: String,
    /// What would have been accepted there.
    pub expected: String,
}

impl CrmError {
    pub(crate) fn at(pos: Pos, token: &str, expected: &str) -> CrmError {
        CrmError {
            line: pos.line,
            column: pos.column,
            token: token.to_string(),
            expected: expected.to_string(),
        }
    }
}

/// The token for a one-line message: control characters escaped, long
/// tokens cut.
fn show_token(t: &str) -> String {
    if t.is_empty() {
        return "end of line".into();
    }
    let mut s = String::new();
    for (i, c) in t.chars().enumerate() {
        if i == 60 {
            s.push_str("...");
            break;
        }
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    format!("'{s}'")
}

/// Reads a crm `configure` text (as for `crm configure load replace`) into
/// a validated configuration.
pub fn read_crm(text: &str) -> Result<Config, CrmError> {
    let stmts = parser::parse(text)?;
    let config = lower::lower(&stmts)?;
    crate::validate::validate(&config).map_err(|e| lower::locate(&e, &stmts))?;
    Ok(config)
}

/// Prints a configuration in crm `configure` syntax.
pub fn write_crm(config: &Config) -> String {
    writer::write(config)
}
