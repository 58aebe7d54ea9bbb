//! Scores with Pacemaker's ±INFINITY arithmetic.

/// A placement score; always within `-INFINITY..=INFINITY`.
pub type Score = i64;

/// Pacemaker's INFINITY.
pub const INFINITY: Score = 1_000_000;

/// Adds two scores: -INFINITY wins over everything, then +INFINITY, else the
/// clamped sum.
pub fn add(a: Score, b: Score) -> Score {
    if a <= -INFINITY || b <= -INFINITY {
        -INFINITY
    } else if a >= INFINITY || b >= INFINITY {
        INFINITY
    } else {
        (a + b).clamp(-INFINITY, INFINITY)
    }
}

/// Parses a score as Pacemaker does: `INFINITY`, `+INFINITY`, `-INFINITY`,
/// `red`/`yellow`/`green`, an integer (clamped). Anything else is an error.
pub fn parse(s: &str) -> Option<Score> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" | "inf" | "+inf" => return Some(INFINITY),
        "-infinity" | "-inf" => return Some(-INFINITY),
        "red" => return Some(-INFINITY),
        "yellow" | "green" => return Some(0),
        _ => {}
    }
    let digits = t.strip_prefix('+').unwrap_or(t);
    match digits.parse::<i128>() {
        Ok(v) => Some(v.clamp(-(INFINITY as i128), INFINITY as i128) as Score),
        Err(_) => None,
    }
}

/// Formats a score as Pacemaker prints it.
pub fn format(s: Score) -> String {
    if s >= INFINITY {
        "INFINITY".into()
    } else if s <= -INFINITY {
        "-INFINITY".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_infinity_wins() {
        assert_eq!(add(INFINITY, -INFINITY), -INFINITY);
        assert_eq!(add(-INFINITY, INFINITY), -INFINITY);
        assert_eq!(add(INFINITY, 5), INFINITY);
        assert_eq!(add(999_999, 5), INFINITY);
        assert_eq!(add(-999_999, -5), -INFINITY);
        assert_eq!(add(3, -5), -2);
    }

    #[test]
    fn parses() {
        assert_eq!(parse("INFINITY"), Some(INFINITY));
        assert_eq!(parse("+INFINITY"), Some(INFINITY));
        assert_eq!(parse("-INFINITY"), Some(-INFINITY));
        assert_eq!(parse("-inf"), Some(-INFINITY));
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse("99999999999"), Some(INFINITY));
        assert_eq!(parse("abc"), None);
        assert_eq!(format(INFINITY), "INFINITY");
    }
}
