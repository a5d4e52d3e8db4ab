//! Durations written the way Go writes them: `"1h30m"`, `"300ms"`, `"-1.5µs"`.
//!
//! Argo Rollouts is a Go program, and every duration in its CRDs (analysis intervals,
//! `initialDelay`, experiment durations, the `--resync` style flags) is a string that Go's
//! `time.ParseDuration` reads and `Duration.String` writes. To read manifests written for
//! Argo and to write status that Argo tools can read back, this crate uses the same grammar
//! and the same canonical form:
//!
//! * a duration is a signed count of nanoseconds held in an `i64`, like Go's
//!   `time.Duration`, so the range is about ±292 years;
//! * the text form is an optional sign followed by one or more `<number><unit>` pairs,
//!   where the number may have a fraction (`"1.5h"`) and the unit is one of `ns`, `us`,
//!   `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`. A lone `"0"` needs no unit; any
//!   other number without a unit (`"5"`) is an error, as is the empty string and any value
//!   that does not fit in an `i64` of nanoseconds;
//! * the canonical form ([`Display`](std::fmt::Display)) is Go's `Duration.String()`:
//!   `"1h30m0s"`, `"10s"`, `"300ms"`, `"1.5µs"`, `"-5s"`, and `"0s"` for zero.
//!
//! [`Duration`] serializes as that canonical string and deserializes with
//! [`Duration::parse`], so `serde` round trips are exact.
//!
//! ```
//! use rollout_core::duration::Duration;
//!
//! let d = Duration::parse("1.5h").unwrap();
//! assert_eq!(d.to_string(), "1h30m0s");
//! assert_eq!(d.as_millis(), 5_400_000);
//! assert!(Duration::parse("5").is_err()); // a unit is required
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed span of time in nanoseconds, with Go's `time.Duration` text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(i64);

/// Why a string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text does not follow the grammar (empty, stray characters, no digits).
    #[error("invalid duration {input:?}")]
    Invalid {
        /// The rejected text.
        input: String,
    },
    /// A number is not followed by a unit (`"5"`, `"1h30"`).
    #[error("missing unit in duration {input:?}")]
    MissingUnit {
        /// The rejected text.
        input: String,
    },
    /// A unit other than `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The rejected text.
        input: String,
        /// The unit that was not recognised.
        unit: String,
    },
    /// The value does not fit in a signed 64-bit count of nanoseconds.
    #[error("duration {input:?} is out of range")]
    Overflow {
        /// The rejected text.
        input: String,
    },
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// 2^63: the magnitude of `i64::MIN`, the largest magnitude a duration may have.
const LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NANOSECOND,
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration(0);
    /// The largest duration (about 292 years).
    pub const MAX: Duration = Duration(i64::MAX);
    /// The most negative duration.
    pub const MIN: Duration = Duration(i64::MIN);

    /// A duration of `n` nanoseconds.
    pub const fn from_nanos(n: i64) -> Self {
        Duration(n)
    }

    /// A duration of `ms` milliseconds (saturating at the `i64` range).
    pub const fn from_millis(ms: i64) -> Self {
        Duration(ms.saturating_mul(MILLISECOND as i64))
    }

    /// A duration of `s` seconds (saturating at the `i64` range).
    pub const fn from_secs(s: i64) -> Self {
        Duration(s.saturating_mul(SECOND as i64))
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole milliseconds, truncated toward zero (Go's `Duration.Milliseconds`).
    pub const fn as_millis(self) -> i64 {
        self.0 / MILLISECOND as i64
    }

    /// Whole seconds, truncated toward zero.
    pub const fn as_secs(self) -> i64 {
        self.0 / SECOND as i64
    }

    /// Seconds as a float (Go's `Duration.Seconds`).
    pub fn as_secs_f64(self) -> f64 {
        let whole = self.0 / SECOND as i64;
        let frac = self.0 % SECOND as i64;
        whole as f64 + frac as f64 / 1e9
    }

    /// Whether the duration is negative.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Parses a duration exactly as Go's `time.ParseDuration` does.
    pub fn parse(input: &str) -> Result<Duration, DurationError> {
        let invalid = || DurationError::Invalid {
            input: input.to_string(),
        };
        let overflow = || DurationError::Overflow {
            input: input.to_string(),
        };
        let mut s = input.as_bytes();
        let mut neg = false;
        if let Some(&c) = s.first()
            && (c == b'-' || c == b'+')
        {
            neg = c == b'-';
            s = &s[1..];
        }
        if s == b"0" {
            return Ok(Duration::ZERO);
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        while !s.is_empty() {
            // The next character must be [0-9.].
            if !(s[0] == b'.' || s[0].is_ascii_digit()) {
                return Err(invalid());
            }
            let before = s.len();
            let (mut v, rest) = leading_int(s).ok_or_else(overflow)?;
            s = rest;
            let pre = before != s.len();

            let mut frac: u64 = 0;
            let mut scale: f64 = 1.0;
            let mut post = false;
            if s.first() == Some(&b'.') {
                s = &s[1..];
                let before = s.len();
                let (f, sc, rest) = leading_fraction(s);
                frac = f;
                scale = sc;
                s = rest;
                post = before != s.len();
            }
            if !pre && !post {
                return Err(invalid());
            }

            let unit_len = s
                .iter()
                .position(|&c| c == b'.' || c.is_ascii_digit())
                .unwrap_or(s.len());
            if unit_len == 0 {
                return Err(DurationError::MissingUnit {
                    input: input.to_string(),
                });
            }
            let (unit_bytes, rest) = s.split_at(unit_len);
            s = rest;
            // The split happens before an ASCII byte (or at the end), so it is a char
            // boundary and the unit is valid UTF-8.
            let unit_str = std::str::from_utf8(unit_bytes).map_err(|_| invalid())?;
            let unit = unit_nanos(unit_str).ok_or_else(|| DurationError::UnknownUnit {
                input: input.to_string(),
                unit: unit_str.to_string(),
            })?;
            if v > LIMIT / unit {
                return Err(overflow());
            }
            v *= unit;
            if frac > 0 {
                // Go computes the fractional part in float64; doing the same keeps the
                // results bit-identical (e.g. "1.0000000001h").
                let extra = (frac as f64 * (unit as f64 / scale)) as u64;
                v = v.checked_add(extra).ok_or_else(overflow)?;
                if v > LIMIT {
                    return Err(overflow());
                }
            }
            total = total.checked_add(v).ok_or_else(overflow)?;
            if total > LIMIT {
                return Err(overflow());
            }
        }
        if neg {
            // total <= 2^63, so the negation fits (2^63 itself is i64::MIN).
            return Ok(Duration(0i64.wrapping_sub_unsigned(total)));
        }
        i64::try_from(total).map(Duration).map_err(|_| overflow())
    }
}

/// Consumes leading ASCII digits. `None` when the number does not fit below 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Consumes leading ASCII digits of a fraction; precision stops accumulating on overflow.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > (LIMIT - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > LIMIT {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

/// Splits `v` into `v / 10^prec` and the fraction digits (trailing zeros dropped; `None`
/// when the fraction is zero).
fn split_frac(v: u64, prec: u32) -> (u64, Option<String>) {
    let p = 10u64.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, None);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / p, Some(digits.trim_end_matches('0').to_string()))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let mut out = String::with_capacity(24);
        if neg {
            out.push('-');
        }
        if u == 0 {
            return f.write_str("0s");
        }
        if u < SECOND {
            let (prec, unit) = if u < MICROSECOND {
                (0, "ns")
            } else if u < MILLISECOND {
                (3, "\u{b5}s")
            } else {
                (6, "ms")
            };
            let (int, frac) = split_frac(u, prec);
            out.push_str(&int.to_string());
            if let Some(frac) = frac {
                out.push('.');
                out.push_str(&frac);
            }
            out.push_str(unit);
        } else {
            let (secs_total, frac) = split_frac(u, 9);
            let hours = secs_total / 3600;
            let minutes = (secs_total / 60) % 60;
            let secs = secs_total % 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if hours > 0 || minutes > 0 {
                out.push_str(&format!("{minutes}m"));
            }
            out.push_str(&secs.to_string());
            if let Some(frac) = frac {
                out.push('.');
                out.push_str(&frac);
            }
            out.push('s');
        }
        f.write_str(&out)
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ns(n: i64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn parses_go_documented_examples() {
        // The table of Go's time package tests (TestParseDuration), valid rows.
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND as i64),
            ("30s", 30 * SECOND as i64),
            ("1478s", 1478 * SECOND as i64),
            ("-5s", -5 * SECOND as i64),
            ("+5s", 5 * SECOND as i64),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND as i64),
            ("5.6s", 5 * SECOND as i64 + 600 * MILLISECOND as i64),
            ("5.s", 5 * SECOND as i64),
            (".5s", 500 * MILLISECOND as i64),
            ("1.0s", SECOND as i64),
            ("1.00s", SECOND as i64),
            ("1.004s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("1.0040s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("100.00100s", 100 * SECOND as i64 + MILLISECOND as i64),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND as i64),
            ("12µs", 12 * MICROSECOND as i64),
            ("12μs", 12 * MICROSECOND as i64),
            ("13ms", 13 * MILLISECOND as i64),
            ("14s", 14 * SECOND as i64),
            ("15m", 15 * MINUTE as i64),
            ("16h", 16 * HOUR as i64),
            ("3h30m", 3 * HOUR as i64 + 30 * MINUTE as i64),
            (
                "10.5s4m",
                4 * MINUTE as i64 + 10 * SECOND as i64 + 500 * MILLISECOND as i64,
            ),
            (
                "-2m3.4s",
                -(2 * MINUTE as i64 + 3 * SECOND as i64 + 400 * MILLISECOND as i64),
            ),
            (
                "1h2m3s4ms5us6ns",
                (HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6) as i64,
            ),
            (
                "39h9m14.425s",
                (39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND) as i64,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE as i64),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE as i64),
            (
                "0.830103483285477580700h",
                49 * MINUTE as i64 + 48 * SECOND as i64 + 372_539_827,
            ),
            ("1.5h", 90 * MINUTE as i64),
        ];
        for (input, want) in cases {
            assert_eq!(Duration::parse(input), Ok(ns(*want)), "parsing {input:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ffff}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "5",
            "1h30",
            "1.5",
            "3000000h",
        ] {
            assert!(
                Duration::parse(input).is_err(),
                "{input:?} must be rejected"
            );
        }
        assert_eq!(
            Duration::parse("5"),
            Err(DurationError::MissingUnit { input: "5".into() })
        );
        assert_eq!(
            Duration::parse("1d"),
            Err(DurationError::UnknownUnit {
                input: "1d".into(),
                unit: "d".into()
            })
        );
        assert_eq!(
            Duration::parse(""),
            Err(DurationError::Invalid { input: "".into() })
        );
        assert!(matches!(
            Duration::parse("9223372036854775808ns"),
            Err(DurationError::Overflow { .. })
        ));
        assert_eq!(
            Duration::parse("1d").unwrap_err().to_string(),
            "unknown unit \"d\" in duration \"1d\""
        );
    }

    #[test]
    fn formats_like_go() {
        // TestDurationString in Go's time package.
        let cases: &[(&str, i64)] = &[
            ("0s", 0),
            ("1ns", 1),
            ("1.1µs", 1100),
            ("2.2ms", 2_200_000),
            ("3.3s", 3_300_000_000),
            ("4m5s", 245_000_000_000),
            ("4m5.001s", 245_001_000_000),
            ("5h6m7.001s", 18_367_001_000_000),
            ("8m0.000000001s", 480_000_000_001),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("1h30m0s", 90 * MINUTE as i64),
            ("10s", 10 * SECOND as i64),
            ("300ms", 300 * MILLISECOND as i64),
            ("-5s", -5 * SECOND as i64),
            ("1.5µs", 1500),
            ("1h0m0s", HOUR as i64),
            ("-1ns", -1),
        ];
        for (want, n) in cases {
            assert_eq!(ns(*n).to_string(), *want, "formatting {n}");
        }
    }

    #[test]
    fn conversions() {
        let d = Duration::parse("1.5s").unwrap();
        assert_eq!(d.as_millis(), 1500);
        assert_eq!(d.as_secs(), 1);
        assert!((d.as_secs_f64() - 1.5).abs() < 1e-12);
        assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
        assert_eq!(Duration::from_millis(-250).to_string(), "-250ms");
        assert_eq!(Duration::from_secs(i64::MAX), Duration::MAX);
        assert_eq!(Duration::parse("-1.5ms").unwrap().as_millis(), -1);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = Duration::parse("90m").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m0s\"");
        let back: Duration = serde_json::from_str("\"1h30m0s\"").unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Duration>("\"5\"").is_err());
        assert!(serde_json::from_str::<Duration>("5").is_err());
    }

    fn unit_strategy() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["ns", "us", "µs", "μs", "ms", "s", "m", "h"])
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(n in any::<i64>()) {
            let d = Duration::from_nanos(n);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn parse_then_format_is_stable(
            neg in any::<bool>(),
            parts in prop::collection::vec((0u32..100_000, prop::option::of(0u32..1_000_000), unit_strategy()), 1..4),
        ) {
            let mut s = String::from(if neg { "-" } else { "" });
            for (int, frac, unit) in &parts {
                s.push_str(&int.to_string());
                if let Some(frac) = frac {
                    s.push('.');
                    s.push_str(&frac.to_string());
                }
                s.push_str(unit);
            }
            let d = Duration::parse(&s).expect("generated durations are in range");
            let canonical = d.to_string();
            let again = Duration::parse(&canonical).expect("canonical form parses");
            prop_assert_eq!(again, d);
            prop_assert_eq!(again.to_string(), canonical);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = Duration::parse(&s);
        }
    }
}
