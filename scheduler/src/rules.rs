//! Evaluation of rules (location rules and their expressions) against a
//! node's attributes, a resource's params/meta, and a given "now".

use std::cmp::Ordering;

use crate::model::{
    AttrExpression, Attrs, BoolOp, CmpOp, DateExpression, Expression, Rule, RuleScore, ValueType,
};
use crate::score::{self, Score, INFINITY};

/// What a rule is evaluated against.
pub struct RuleContext<'a> {
    /// Node attributes, with the built-ins (`#uname`...) already merged in.
    pub node_attrs: &'a Attrs,
    pub rsc_params: Option<&'a Attrs>,
    pub rsc_meta: Option<&'a Attrs>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Whether a rule holds.
pub fn rule_matches(rule: &Rule, ctx: &RuleContext) -> bool {
    let mut results = rule.expressions.iter().map(|e| expr_matches(e, ctx));
    match rule.boolean_op {
        // An empty "and" is true; an empty "or" is false.
        BoolOp::And => results.all(|r| r),
        BoolOp::Or => results.any(|r| r),
    }
}

/// The score a matching rule contributes on a node. `score-attribute`
/// without the attribute on that node counts as -INFINITY.
pub fn rule_score(rule: &Rule, ctx: &RuleContext) -> Score {
    match &rule.score {
        RuleScore::Value(s) => *s,
        RuleScore::Attribute(a) => match ctx.node_attrs.get(a) {
            Some(v) => score::parse(v).unwrap_or(0),
            None => -INFINITY,
        },
    }
}

fn expr_matches(e: &Expression, ctx: &RuleContext) -> bool {
    match e {
        Expression::Attr(a) => attr_matches(a, ctx),
        Expression::Date(d) => date_matches(d, ctx.now),
        Expression::Rule(r) => rule_matches(r, ctx),
    }
}

fn attr_matches(e: &AttrExpression, ctx: &RuleContext) -> bool {
    let actual = ctx.node_attrs.get(&e.attribute).map(String::as_str);
    match e.op {
        CmpOp::Defined => return actual.is_some(),
        CmpOp::NotDefined => return actual.is_none(),
        _ => {}
    }
    let expected: Option<&str> = match e.value_source.as_deref() {
        Some("param") => e
            .value
            .as_ref()
            .and_then(|k| ctx.rsc_params.and_then(|p| p.get(k)))
            .map(String::as_str),
        Some("meta") => e
            .value
            .as_ref()
            .and_then(|k| ctx.rsc_meta.and_then(|p| p.get(k)))
            .map(String::as_str),
        _ => e.value.as_deref(),
    };
    let (Some(l), Some(r)) = (actual, expected) else {
        return e.op == CmpOp::Ne;
    };
    let ty = e.value_type.unwrap_or(match e.op {
        CmpOp::Eq | CmpOp::Ne => ValueType::String,
        _ => {
            if r.contains('.') || l.contains('.') {
                ValueType::Number
            } else {
                ValueType::Integer
            }
        }
    });
    let ord = compare_values(l, r, ty);
    match e.op {
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Lte => ord != Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Defined | CmpOp::NotDefined => false,
    }
}

/// Compares two values as the given type; unparsable numbers compare as
/// strings, and strings compare case-insensitively.
pub fn compare_values(l: &str, r: &str, ty: ValueType) -> Ordering {
    let strings = || l.to_ascii_lowercase().cmp(&r.to_ascii_lowercase());
    match ty {
        ValueType::String => strings(),
        ValueType::Integer => match (parse_int(l), parse_int(r)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => strings(),
        },
        ValueType::Number => match (l.trim().parse::<f64>(), r.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => strings(),
        },
        ValueType::Version => compare_versions(l, r),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    // Pacemaker's integer parsing accepts a leading number ("10.5" -> 10).
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    t[..end].parse().ok()
}

fn compare_versions(l: &str, r: &str) -> Ordering {
    let parts = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| p.trim().parse::<u64>().unwrap_or(0))
            .collect()
    };
    let (a, b) = (parts(l), parts(r));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    Ordering::Equal
}

fn date_matches(d: &DateExpression, now: i64) -> bool {
    let start = d.start.as_deref().and_then(parse_iso8601);
    let mut end = d.end.as_deref().and_then(parse_iso8601);
    match d.operation.as_str() {
        "gt" => start.is_some_and(|s| now > s),
        "lt" => end.is_some_and(|e| now < e),
        "in_range" | "in-range" => {
            if end.is_none() && !d.duration.is_empty() {
                end = start.map(|s| add_duration(s, &d.duration));
            }
            if start.is_none() && end.is_none() {
                return false;
            }
            start.is_none_or(|s| now >= s) && end.is_none_or(|e| now <= e)
        }
        "date_spec" | "date-spec" => date_spec_matches(&d.date_spec, now),
        _ => false,
    }
}

fn add_duration(start: i64, dur: &Attrs) -> i64 {
    let get = |k: &str| dur.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, day, hh, mm, ss) = civil_from_epoch(start);
    let months = y * 12 + (m - 1) + get("years") * 12 + get("months");
    let (ny, nm) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let base = epoch_from_civil(ny, nm, day) + hh * 3600 + mm * 60 + ss;
    base + get("weeks") * 7 * 86400
        + get("days") * 86400
        + get("hours") * 3600
        + get("minutes") * 60
        + get("seconds")
}

fn in_range_spec(spec: &str, v: i64) -> bool {
    spec.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
            (Ok(a), Ok(b)) => v >= a && v <= b,
            _ => false,
        },
        None => part.trim().parse::<i64>() == Ok(v),
    })
}

fn date_spec_matches(spec: &Attrs, now: i64) -> bool {
    let (y, m, d, hh, mm, ss) = civil_from_epoch(now);
    let days = now.div_euclid(86400);
    let weekday = (days + 3).rem_euclid(7) + 1; // 1 = Monday
    let yearday = days - epoch_from_civil(y, 1, 1).div_euclid(86400) + 1;
    spec.iter().all(|(k, v)| {
        let x = match k.as_str() {
            "years" => y,
            "months" => m,
            "monthdays" => d,
            "hours" => hh,
            "minutes" => mm,
            "seconds" => ss,
            "weekdays" => weekday,
            "yeardays" => yearday,
            "weeks" => (yearday - 1) / 7 + 1,
            _ => return true,
        };
        in_range_spec(v, x)
    })
}

/// Days-from-civil: seconds since the epoch of a UTC date (proleptic
/// Gregorian calendar). Also what `ha-drbd` dates `events2` timestamps by.
pub fn epoch_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86400
}

fn civil_from_epoch(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, secs / 3600, (secs / 60) % 60, secs % 60)
}

/// Parses the ISO 8601 forms Pacemaker accepts in CIBs:
/// `YYYY-MM-DD[( |T)HH:MM[:SS]][Z|±HH[:MM]]`. Returns seconds since the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next().unwrap_or("1").parse().ok()?;
    let d: i64 = dp.next().unwrap_or("1").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut t = epoch_from_civil(y, m, d);
    if rest.is_empty() {
        return Some(t);
    }
    // time, then an optional zone
    let zone_at = rest.find(['Z', 'z', '+', '-', ' ']);
    let (time, zone) = match zone_at {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let mut tp = time.split(':');
    let hh: i64 = tp.next()?.parse().ok()?;
    let mm: i64 = tp.next().unwrap_or("0").parse().ok()?;
    let ss: i64 = tp.next().unwrap_or("0").parse().ok()?;
    t += hh * 3600 + mm * 60 + ss;
    let zone = zone.trim();
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some(t);
    }
    let sign = match zone.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let z = zone[1..].replace(':', "");
    let (zh, zm) = match z.len() {
        2 => (z.parse::<i64>().ok()?, 0),
        4 => (z[..2].parse::<i64>().ok()?, z[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    Some(t - sign * (zh * 3600 + zm * 60))
}

/// Natural, case-insensitive compare of node names (digits compare as numbers).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("0")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("0")
                .trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then(na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = a[i].to_ascii_lowercase().cmp(&b[j].to_ascii_lowercase());
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_iso8601("1970-01-01 00:00:00 +00:00"), Some(0));
        assert_eq!(
            parse_iso8601("2019-09-23 18:00:00 -05:00"),
            Some(1_569_279_600)
        );
        assert_eq!(parse_iso8601("2019-09-23T23:00:00Z"), Some(1_569_279_600));
        assert_eq!(parse_iso8601("2019-13-01"), None);
        assert_eq!(civil_from_epoch(1_569_279_600), (2019, 9, 23, 23, 0, 0));
    }

    #[test]
    fn typed_compare() {
        assert_eq!(
            compare_values("10", "9", ValueType::Integer),
            Ordering::Greater
        );
        assert_eq!(compare_values("10", "9", ValueType::String), Ordering::Less);
        assert_eq!(
            compare_values("1.10", "1.9", ValueType::Version),
            Ordering::Greater
        );
        assert_eq!(
            compare_values("ABC", "abc", ValueType::String),
            Ordering::Equal
        );
        assert_eq!(
            compare_values("x", "5", ValueType::Integer),
            Ordering::Greater
        );
    }

    #[test]
    fn natural_sort() {
        assert_eq!(natural_cmp("node2", "node10"), Ordering::Less);
        assert_eq!(natural_cmp("Node1", "node1"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "b"), Ordering::Less);
    }
}
