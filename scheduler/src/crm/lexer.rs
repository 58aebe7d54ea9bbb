//! Lexer: crm shell's line handling and quoting, with positions.
//!
//! crmsh first joins continued lines (each physical line is stripped; one
//! ending in `\` is joined to the next without a separator), drops empty
//! logical lines and those starting with `#` (comments), then splits each
//! logical line as Python's `shlex.split` does (POSIX mode, no comments):
//! whitespace separates tokens, `'...'` is literal, `"..."` keeps its text
//! with `\"` and `\\` as the only escapes, and outside quotes `\x` is `x`.
//! Quoted parts join the word they touch (`ip="10.0.0.1"` is one token).

use super::ast::Pos;
use super::CrmError;

/// One token of a logical line, unquoted, with the position of its first
/// character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub pos: Pos,
}

/// One logical line: a statement's tokens, and the position just after its
/// last character (for "unexpected end of line").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub tokens: Vec<Token>,
    pub end: Pos,
}

/// Python's `str.isspace`, which `str.strip` uses.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// shlex's whitespace.
fn sh_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim(chars: &[(char, Pos)]) -> &[(char, Pos)] {
    let start = chars
        .iter()
        .position(|(c, _)| !py_space(*c))
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|(c, _)| !py_space(*c))
        .map_or(start, |i| i + 1);
    &chars[start..end.max(start)]
}

/// Logical lines with every character's position (crmsh's `lines2cli`).
fn logical_lines(input: &str) -> Vec<Vec<(char, Pos)>> {
    let mut out = Vec::new();
    let mut cum: Vec<(char, Pos)> = Vec::new();
    for (n, raw) in input.split('\n').enumerate() {
        let line = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let chars: Vec<(char, Pos)> = raw
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let column = u32::try_from(i + 1).unwrap_or(u32::MAX);
                (c, Pos { line, column })
            })
            .collect();
        let t = trim(&chars);
        if t.last().is_some_and(|(c, _)| *c == '\\') {
            let keep = t.iter().rposition(|(c, _)| *c != '\\').map_or(0, |i| i + 1);
            cum.extend_from_slice(&t[..keep]);
        } else {
            cum.extend_from_slice(t);
            let l = trim(&cum).to_vec();
            if !l.is_empty() {
                out.push(l);
            }
            cum.clear();
        }
    }
    let l = trim(&cum).to_vec();
    if !l.is_empty() {
        out.push(l);
    }
    out
}

/// Splits the input into statements (comments and empty lines dropped).
pub fn lines(input: &str) -> Result<Vec<Line>, CrmError> {
    let mut out = Vec::new();
    for l in logical_lines(input) {
        if l.first().is_some_and(|(c, _)| *c == '#') {
            continue;
        }
        let end = l.last().map_or(Pos::default(), |(_, p)| Pos {
            line: p.line,
            column: p.column.saturating_add(1),
        });
        let tokens = split(&l)?;
        if !tokens.is_empty() {
            out.push(Line { tokens, end });
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Space,
    Word,
    Quote(char),
    /// After a backslash; the state to return to.
    Escape(EscapeFrom),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EscapeFrom {
    Word,
    DoubleQuote,
}

/// `shlex.split` (POSIX, whitespace_split) over one logical line.
fn split(chars: &[(char, Pos)]) -> Result<Vec<Token>, CrmError> {
    let mut out = Vec::new();
    let mut state = State::Space;
    let mut token = String::new();
    let mut start = Pos::default();
    // where the open quote or pending backslash is, for errors
    let mut mark = Pos::default();
    let mut mark_i = 0;
    for (i, &(c, pos)) in chars.iter().enumerate() {
        match state {
            State::Space => {
                if sh_space(c) {
                    continue;
                }
                start = pos;
                match c {
                    '\\' => {
                        (mark, mark_i) = (pos, i);
                        state = State::Escape(EscapeFrom::Word);
                    }
                    '\'' | '"' => {
                        (mark, mark_i) = (pos, i);
                        state = State::Quote(c);
                    }
                    _ => {
                        token.push(c);
                        state = State::Word;
                    }
                }
            }
            State::Word => {
                if sh_space(c) {
                    out.push(Token {
                        text: std::mem::take(&mut token),
                        pos: start,
                    });
                    state = State::Space;
                } else if c == '\'' || c == '"' {
                    (mark, mark_i) = (pos, i);
                    state = State::Quote(c);
                } else if c == '\\' {
                    (mark, mark_i) = (pos, i);
                    state = State::Escape(EscapeFrom::Word);
                } else {
                    token.push(c);
                }
            }
            State::Quote(q) => {
                if c == q {
                    state = State::Word;
                } else if q == '"' && c == '\\' {
                    state = State::Escape(EscapeFrom::DoubleQuote);
                } else {
                    token.push(c);
                }
            }
            State::Escape(from) => {
                if from == EscapeFrom::DoubleQuote && c != '"' && c != '\\' {
                    token.push('\\');
                }
                token.push(c);
                state = match from {
                    EscapeFrom::Word => State::Word,
                    EscapeFrom::DoubleQuote => State::Quote('"'),
                };
            }
        }
    }
    match state {
        State::Quote(q) => {
            let raw: String = chars[mark_i.min(chars.len())..]
                .iter()
                .map(|(c, _)| c)
                .collect();
            Err(CrmError::at(mark, &raw, &format!("a closing {q}")))
        }
        State::Escape(_) => Err(CrmError::at(mark, "\\", "a character after '\\'")),
        State::Word => {
            out.push(Token {
                text: token,
                pos: start,
            });
            Ok(out)
        }
        State::Space => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<Vec<String>> {
        lines(s)
            .unwrap()
            .into_iter()
            .map(|l| l.tokens.into_iter().map(|t| t.text).collect())
            .collect()
    }

    #[test]
    fn quoting_as_shlex() {
        assert_eq!(
            texts(r#"a b="c d" 'e f' g\ h "x\"y\z" "" 'a\b'"#),
            vec![vec!["a", "b=c d", "e f", "g h", "x\"y\\z", "", "a\\b"]]
        );
    }

    #[test]
    fn continuation_and_comments() {
        let t = "# comment\nprimitive p \\\n   Dummy \\  \n  params a=1\n#x\n";
        assert_eq!(
            texts(t),
            vec![vec!["primitive", "p", "Dummy", "params", "a=1"]]
        );
        let l = lines(t).unwrap();
        assert_eq!(l[0].tokens[2].pos, Pos { line: 3, column: 4 });
        assert_eq!(
            l[0].tokens[4].pos,
            Pos {
                line: 4,
                column: 10
            }
        );
        // as in crmsh, an empty line ends a continued statement
        assert_eq!(
            texts("primitive p \\\n\nDummy"),
            vec![vec!["primitive", "p"], vec!["Dummy"]]
        );
    }

    #[test]
    fn unclosed_quote_is_located() {
        let e = lines("node a\nnode b attributes x=\"open").unwrap_err();
        assert_eq!((e.line, e.column), (2, 21));
    }
}
