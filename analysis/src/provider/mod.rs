//! Metric-provider result parsing, pure and IO-free.
//!
//! * [`prometheus`]: the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) JSON
//!   response, and the value Argo's Prometheus provider hands to the conditions.
//! * [`exposition`]: a strict parser and renderer for the Prometheus text exposition format
//!   (what `/metrics` returns).

pub mod exposition;
pub mod prometheus;

/// Parses a sample value the way Go's `strconv.ParseFloat(s, 64)` does for the spellings
/// Prometheus emits: decimal and exponent numbers, `NaN`, `+Inf`, `-Inf` (and Go's other
/// case-insensitive `inf` / `infinity` spellings). Returns `None` for anything else.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.eq_ignore_ascii_case("nan") {
        // Go accepts no sign on NaN.
        return (rest.len() == s.len()).then_some(f64::NAN);
    }
    let digits_ok = !rest.is_empty()
        && rest
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !digits_ok {
        return None;
    }
    s.parse::<f64>().ok()
}
