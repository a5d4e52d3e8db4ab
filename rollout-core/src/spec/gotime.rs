//! Go `time.ParseDuration` semantics, for pause and experiment durations.
//!
//! Argo stores these durations as text and reads them with Go's parser, so the accepted
//! language is Go's: an optional sign, then one or more `<number><unit>` pairs where the
//! number may have a fraction (`1.5h`) and the unit is one of `ns`, `us` (`µs`, `μs`), `ms`,
//! `s`, `m`, `h`. A lone `0` is accepted without a unit.

/// Nanoseconds per unit, longest suffixes first so `ms` wins over `m`.
const UNITS: [(&str, u128); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("", 0),
];

/// Parses a Go duration into nanoseconds; the error is a short reason.
pub(crate) fn parse_go_duration_nanos(text: &str) -> Result<i64, &'static str> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty duration");
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        // Optional fraction.
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err("expected a number");
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = after_num
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_num.len(), |(i, _)| i);
        let (unit, after_unit) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err("missing unit (use ns, us, ms, s, m or h)");
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err("unknown unit (use ns, us, ms, s, m or h)");
        };
        let mut int_value: u128 = 0;
        for d in int_digits.bytes() {
            int_value = int_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(d - b'0')))
                .filter(|v| *v <= u128::from(u64::MAX))
                .ok_or("duration out of range")?;
        }
        let mut part = int_value.checked_mul(scale).ok_or("duration out of range")?;
        // Fraction digits beyond 18 cannot change the result by a whole nanosecond.
        let mut frac_value: u128 = 0;
        let mut frac_scale: u128 = 1;
        for d in frac_digits.bytes().take(18) {
            frac_value = frac_value * 10 + u128::from(d - b'0');
            frac_scale *= 10;
        }
        part += frac_value * scale / frac_scale;
        total = total.checked_add(part).ok_or("duration out of range")?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err("duration out of range");
        }
        rest = after_unit;
    }
    let total = i128::try_from(total).map_err(|_| "duration out of range")?;
    let signed = if negative { -total } else { total };
    i64::try_from(signed).map_err(|_| "duration out of range")
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration_nanos as p;

    const S: i64 = 1_000_000_000;

    #[test]
    fn accepts_go_forms() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("30s"), Ok(30 * S));
        assert_eq!(p("1h30m"), Ok(5400 * S));
        assert_eq!(p("1.5h"), Ok(5400 * S));
        assert_eq!(p("-1m"), Ok(-60 * S));
        assert_eq!(p("+2m3s"), Ok(123 * S));
        assert_eq!(p("300ms"), Ok(300_000_000));
        assert_eq!(p("1\u{b5}s"), Ok(1_000));
        assert_eq!(p(".5s"), Ok(S / 2));
        assert_eq!(p("1.s"), Ok(S));
    }

    #[test]
    fn rejects_non_go_forms() {
        for bad in ["", "-", "30", "1d", "1h 30m", "s", ".s", "abc", "1.2.3s", "99999999999h"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
