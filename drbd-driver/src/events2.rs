//! Tolerant parser of `drbdsetup events2` output lines (DRBD 8.4 via
//! `drbdsetup-84`, and DRBD 9), plus a bounded line splitter for a byte
//! stream read from the child process.
//!
//! A line is `[TIMESTAMP] VERB OBJECT key:value ...`, or `[TIMESTAMP] exists -`
//! at the end of the initial dump. `--diff` writes `key:old->new`. Unknown keys
//! are kept. A line that cannot be understood gives a [`ParseError`] naming the
//! offending item; the caller goes on with the next line.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// Longest line accepted (bytes, without the newline).
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// Most `key:value` items accepted on one line.
pub const MAX_KEYS: usize = 256;
/// Error messages quote at most this many bytes of an offending item.
const QUOTE_MAX: usize = 64;

/// Why a line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("line too long: {len} bytes (max {max})")]
    LineTooLong { len: usize, max: usize },
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("empty line")]
    Empty,
    #[error("bad timestamp {0:?}")]
    BadTimestamp(String),
    #[error("unknown verb {0:?}")]
    UnknownVerb(String),
    #[error("verb {0:?} without an object")]
    MissingObject(String),
    #[error("unknown object {0:?}")]
    UnknownObject(String),
    #[error("item {0:?} is not key:value")]
    BadItem(String),
    #[error("too many key:value items ({count}, max {max})")]
    TooManyKeys { count: usize, max: usize },
    #[error("unexpected item {0:?} after 'exists -'")]
    TrailingAfterEnd(String),
}

/// A parse error with the 1-based number of the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("events2 line {line}: {error}")]
pub struct LineError {
    pub line: u64,
    pub error: ParseError,
}

fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return s.to_string();
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `--timestamps` prefix: `YYYY-MM-DDTHH:MM:SS.uuuuuu+HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
    /// UTC offset in minutes (east positive).
    pub offset_minutes: i16,
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}](+|-)HH:MM` (or `Z`).
    pub fn parse(s: &str) -> Result<Timestamp, ParseError> {
        let bad = || ParseError::BadTimestamp(quote(s));
        if !s.is_ascii() || s.len() < 20 {
            return Err(bad());
        }
        let (date, rest) = s.split_once('T').ok_or_else(bad)?;
        let mut dp = date.split('-');
        let (y, mo, d) = match (dp.next(), dp.next(), dp.next(), dp.next()) {
            (Some(y), Some(m), Some(d), None) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
                (digits(y), digits(m), digits(d))
            }
            _ => return Err(bad()),
        };
        let (y, mo, d) = match (y, mo, d) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => return Err(bad()),
        };
        if rest.len() < 8 {
            return Err(bad());
        }
        let (time, zone) = rest.split_at(8);
        let mut tp = time.split(':');
        let (h, mi, se) = match (tp.next(), tp.next(), tp.next(), tp.next()) {
            (Some(h), Some(m), Some(s), None) if h.len() == 2 && m.len() == 2 && s.len() == 2 => {
                (digits(h), digits(m), digits(s))
            }
            _ => return Err(bad()),
        };
        let (h, mi, se) = match (h, mi, se) {
            (Some(h), Some(m), Some(s)) => (h, m, s),
            _ => return Err(bad()),
        };
        let mut zone = zone;
        let mut micros = 0u32;
        if let Some(frac_and_zone) = zone.strip_prefix('.') {
            let n = frac_and_zone.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return Err(bad());
            }
            let frac = &frac_and_zone[..n];
            let mut padded = String::from(frac);
            while padded.len() < 6 {
                padded.push('0');
            }
            micros = digits(&padded[..6]).ok_or_else(bad)?;
            zone = &frac_and_zone[n..];
        }
        let offset_minutes: i16 = if zone == "Z" {
            0
        } else {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1i16,
                Some(b'-') => -1i16,
                _ => return Err(bad()),
            };
            let z = &zone[1..];
            let (zh, zm) = z.split_once(':').ok_or_else(bad)?;
            if zh.len() != 2 || zm.len() != 2 {
                return Err(bad());
            }
            let (zh, zm) = match (digits(zh), digits(zm)) {
                (Some(a), Some(b)) if a <= 23 && b <= 59 => (a as i16, b as i16),
                _ => return Err(bad()),
            };
            sign * (zh * 60 + zm)
        };
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mdays = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&mo) || d == 0 || d > mdays[(mo - 1) as usize] {
            return Err(bad());
        }
        if h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        Ok(Timestamp {
            year: y as u16,
            month: mo as u8,
            day: d as u8,
            hour: h as u8,
            minute: mi as u8,
            second: se as u8,
            micros,
            offset_minutes,
        })
    }

    /// Microseconds since the Unix epoch (UTC).
    pub fn unix_micros(&self) -> i64 {
        let secs = ha_scheduler::rules::epoch_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60;
        secs * 1_000_000 + i64::from(self.micros)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros,
            sign,
            off / 60,
            off % 60
        )
    }
}

/// The first word of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Exists,
    Create,
    Change,
    Destroy,
    Call,
    Response,
    Rename,
}

impl Verb {
    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "exists" => Verb::Exists,
            "create" => Verb::Create,
            "change" => Verb::Change,
            "destroy" => Verb::Destroy,
            "call" => Verb::Call,
            "response" => Verb::Response,
            "rename" => Verb::Rename,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Verb::Exists => "exists",
            Verb::Create => "create",
            Verb::Change => "change",
            Verb::Destroy => "destroy",
            Verb::Call => "call",
            Verb::Response => "response",
            Verb::Rename => "rename",
        }
    }
}

/// What a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Resource,
    Device,
    Connection,
    PeerDevice,
    Path,
    Helper,
}

impl Object {
    pub fn parse(s: &str) -> Option<Object> {
        Some(match s {
            "resource" => Object::Resource,
            "device" => Object::Device,
            "connection" => Object::Connection,
            "peer-device" => Object::PeerDevice,
            "path" => Object::Path,
            "helper" => Object::Helper,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Object::Resource => "resource",
            Object::Device => "device",
            Object::Connection => "connection",
            Object::PeerDevice => "peer-device",
            Object::Path => "path",
            Object::Helper => "helper",
        }
    }
}

/// One `key:value` item's value; `old` is set for the `--diff` form
/// `key:old->new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub old: Option<String>,
    pub new: String,
}

/// A parsed `VERB OBJECT key:value ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub timestamp: Option<Timestamp>,
    pub verb: Verb,
    pub object: Object,
    /// Every item of the line, known or not (a repeated key keeps the last).
    pub fields: BTreeMap<String, Value>,
}

impl Event {
    /// The (new) value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(|v| v.new.as_str())
    }
    /// The old value of `key` in the `--diff` form.
    pub fn old(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(|v| v.old.as_deref())
    }
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Event(Event),
    /// `exists -`: the initial state dump is complete.
    EndOfInitialDump {
        timestamp: Option<Timestamp>,
    },
}

/// Parses one line (trailing `\r`/`\n` allowed).
pub fn parse_line(line: &str) -> Result<Line, ParseError> {
    if line.len() > MAX_LINE_LEN {
        return Err(ParseError::LineTooLong {
            len: line.len(),
            max: MAX_LINE_LEN,
        });
    }
    let mut words = line.split_ascii_whitespace().peekable();
    let first = words.next().ok_or(ParseError::Empty)?;
    let (timestamp, verb_word) = if first.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let ts = Timestamp::parse(first)?;
        let v = words.next().ok_or(ParseError::Empty)?;
        (Some(ts), v)
    } else {
        (None, first)
    };
    let verb = Verb::parse(verb_word).ok_or_else(|| ParseError::UnknownVerb(quote(verb_word)))?;
    let obj_word = words
        .next()
        .ok_or_else(|| ParseError::MissingObject(verb.as_str().to_string()))?;
    if verb == Verb::Exists && obj_word == "-" {
        if let Some(extra) = words.next() {
            return Err(ParseError::TrailingAfterEnd(quote(extra)));
        }
        return Ok(Line::EndOfInitialDump { timestamp });
    }
    let object =
        Object::parse(obj_word).ok_or_else(|| ParseError::UnknownObject(quote(obj_word)))?;
    let mut fields = BTreeMap::new();
    let mut count = 0usize;
    for item in words {
        count += 1;
        if count > MAX_KEYS {
            return Err(ParseError::TooManyKeys {
                count,
                max: MAX_KEYS,
            });
        }
        let (key, value) = item
            .split_once(':')
            .ok_or_else(|| ParseError::BadItem(quote(item)))?;
        if key.is_empty() {
            return Err(ParseError::BadItem(quote(item)));
        }
        let value = match value.split_once("->") {
            Some((old, new)) => Value {
                old: Some(old.to_string()),
                new: new.to_string(),
            },
            None => Value {
                old: None,
                new: value.to_string(),
            },
        };
        fields.insert(key.to_string(), value);
    }
    Ok(Line::Event(Event {
        timestamp,
        verb,
        object,
        fields,
    }))
}

/// Parses one line given as bytes (must be UTF-8).
pub fn parse_line_bytes(line: &[u8]) -> Result<Line, ParseError> {
    if line.len() > MAX_LINE_LEN {
        return Err(ParseError::LineTooLong {
            len: line.len(),
            max: MAX_LINE_LEN,
        });
    }
    let s = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    parse_line(s)
}

/// Splits a byte stream (the child's stdout, in any chunks) into lines and
/// parses them. Memory is bounded: a line longer than [`MAX_LINE_LEN`] is
/// dropped up to its newline and reported once as [`ParseError::LineTooLong`].
/// Blank lines are skipped.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Bytes of the current over-long line seen so far (0 = not discarding).
    discarding: usize,
    line_no: u64,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Number of complete lines seen so far.
    pub fn lines_seen(&self) -> u64 {
        self.line_no
    }

    /// Feeds bytes; returns what the complete lines among them parse to.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Result<Line, LineError>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let (part, rest, complete) = match nl {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            data = rest;
            if self.discarding > 0 {
                self.discarding = self.discarding.saturating_add(part.len());
            } else if self.buf.len() + part.len() > MAX_LINE_LEN {
                self.discarding = self.buf.len() + part.len();
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(part);
            }
            if complete {
                self.finish_line(&mut out);
            }
        }
        out
    }

    /// Ends the stream: a last line without newline is parsed.
    pub fn finish(&mut self) -> Vec<Result<Line, LineError>> {
        let mut out = Vec::new();
        if !self.buf.is_empty() || self.discarding > 0 {
            self.finish_line(&mut out);
        }
        out
    }

    fn finish_line(&mut self, out: &mut Vec<Result<Line, LineError>>) {
        self.line_no += 1;
        let line = self.line_no;
        if self.discarding > 0 {
            out.push(Err(LineError {
                line,
                error: ParseError::LineTooLong {
                    len: self.discarding,
                    max: MAX_LINE_LEN,
                },
            }));
            self.discarding = 0;
            return;
        }
        let bytes = std::mem::take(&mut self.buf);
        let trimmed = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        out.push(parse_line_bytes(trimmed).map_err(|error| LineError { line, error }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parses_and_converts() {
        let t = Timestamp::parse("2026-11-22T07:30:58.518903+00:00").unwrap();
        assert_eq!((t.year, t.month, t.day), (2026, 11, 22));
        assert_eq!((t.hour, t.minute, t.second, t.micros), (7, 30, 58, 518_903));
        assert_eq!(t.to_string(), "2026-11-22T07:30:58.518903+00:00");
        let p = Timestamp::parse("2017-03-27T08:28:17.072611-07:00").unwrap();
        assert_eq!(p.offset_minutes, -420);
        let same_utc = Timestamp::parse("2017-03-27T15:28:17.072611+00:00").unwrap();
        assert_eq!(p.unix_micros(), same_utc.unix_micros());
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:01.000000Z")
                .unwrap()
                .unix_micros(),
            1_000_000
        );
        for bad in [
            "2026-13-22T07:30:58.5+00:00",
            "2026-02-30T07:30:58.5+00:00",
            "2026-11-22T25:30:58.5+00:00",
            "2026-11-22 07:30:58.5+00:00",
            "2026-11-22T07:30:58.+00:00",
            "2026-11-22T07:30:58.5+0000",
            "2026-11-22T07:30:58.5",
            "2026-11-22T07:30:58.5+00:00x",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verbs_and_objects_round_trip() {
        for v in [
            "exists", "create", "change", "destroy", "call", "response", "rename",
        ] {
            assert_eq!(Verb::parse(v).map(|v| v.as_str()), Some(v));
        }
        for o in [
            "resource",
            "device",
            "connection",
            "peer-device",
            "path",
            "helper",
        ] {
            assert_eq!(Object::parse(o).map(|o| o.as_str()), Some(o));
        }
        assert_eq!(Verb::parse("Exists"), None);
        assert_eq!(Object::parse("peer_device"), None);
    }

    #[test]
    fn diff_form_and_colons_in_values() {
        let Line::Event(e) = parse_line(
            "change path name:r0 peer-node-id:1 local:ipv4:10.0.0.1:7789 established:no->yes",
        )
        .unwrap() else {
            panic!("not an event");
        };
        assert_eq!(e.get("local"), Some("ipv4:10.0.0.1:7789"));
        assert_eq!(e.get("established"), Some("yes"));
        assert_eq!(e.old("established"), Some("no"));
        assert_eq!(e.old("local"), None);
    }

    #[test]
    fn errors_name_the_item() {
        assert_eq!(parse_line("   "), Err(ParseError::Empty));
        assert_eq!(
            parse_line("exist resource name:r0"),
            Err(ParseError::UnknownVerb("exist".into()))
        );
        assert_eq!(
            parse_line("exists volume name:r0"),
            Err(ParseError::UnknownObject("volume".into()))
        );
        assert_eq!(
            parse_line("change resource name:r0 garbage"),
            Err(ParseError::BadItem("garbage".into()))
        );
        assert_eq!(
            parse_line("change resource :x"),
            Err(ParseError::BadItem(":x".into()))
        );
        assert_eq!(
            parse_line("call"),
            Err(ParseError::MissingObject("call".into()))
        );
        assert_eq!(
            parse_line("exists - x"),
            Err(ParseError::TrailingAfterEnd("x".into()))
        );
        let many = format!("change resource{}", " k:v".repeat(MAX_KEYS + 1));
        assert!(matches!(
            parse_line(&many),
            Err(ParseError::TooManyKeys { .. })
        ));
        let long = "x".repeat(MAX_LINE_LEN + 1);
        assert!(matches!(
            parse_line(&long),
            Err(ParseError::LineTooLong { .. })
        ));
        let quoted = format!("{}", ParseError::BadItem(quote(&"y".repeat(1000))));
        assert!(quoted.len() < 100);
    }

    #[test]
    fn splitter_handles_chunks_long_lines_and_crlf() {
        let mut s = LineSplitter::new();
        let mut got = s.push(b"exists resource name:a role:Prim");
        assert!(got.is_empty());
        got.extend(s.push(b"ary\r\n\nexists -\n"));
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], Ok(Line::Event(_))));
        assert!(matches!(got[1], Ok(Line::EndOfInitialDump { .. })));
        let big = vec![b'a'; MAX_LINE_LEN + 10];
        assert!(s.push(&big).is_empty());
        let got = s.push(b"aaa\nexists -\n");
        assert_eq!(got.len(), 2);
        match &got[0] {
            Err(LineError {
                line: 4,
                error: ParseError::LineTooLong { len, .. },
            }) => assert_eq!(*len, MAX_LINE_LEN + 13),
            other => panic!("{other:?}"),
        }
        assert!(got[1].is_ok());
        assert_eq!(
            s.push(&[0xff, b'\n'])[0].as_ref().unwrap_err().error,
            ParseError::NotUtf8
        );
        assert!(s.push(b"exists -").is_empty());
        assert_eq!(s.finish().len(), 1);
    }
}
