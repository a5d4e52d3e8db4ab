//! `maxSurge` / `maxUnavailable` style values: an absolute count or a percentage.
//!
//! Argo reads every string as a percentage (`"25%"` and `"25"` both mean 25 %), while a
//! YAML integer is an absolute pod count. The original text is kept so a manifest
//! serializes back exactly as it was written.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An integer or a percentage string, as Kubernetes' `IntOrString` is used by Argo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum IntOrPercent {
    /// An absolute number of pods.
    Int(i32),
    /// A percentage of the desired replicas, written `"25%"` (or `"25"`).
    Str(String),
}

/// A string `IntOrPercent` that is not a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?}: must be an integer or a percentage such as \"25%\"")]
pub struct IntOrPercentError {
    /// The rejected text.
    pub value: String,
}

impl IntOrPercent {
    /// A percentage value, written `"<p>%"`.
    pub fn percent(p: i32) -> Self {
        IntOrPercent::Str(format!("{p}%"))
    }

    /// The percentage, if this is a string value (with or without `%`).
    pub fn as_percent(&self) -> Result<Option<i32>, IntOrPercentError> {
        match self {
            IntOrPercent::Int(_) => Ok(None),
            IntOrPercent::Str(s) => {
                let digits = s.strip_suffix('%').unwrap_or(s);
                digits
                    .parse::<i32>()
                    .map(Some)
                    .map_err(|_| IntOrPercentError { value: s.clone() })
            }
        }
    }

    /// Resolves against `total` pods. Percentages round up when `round_up`, else down.
    pub fn resolve(&self, total: i32, round_up: bool) -> Result<i32, IntOrPercentError> {
        match self {
            IntOrPercent::Int(n) => Ok(*n),
            IntOrPercent::Str(_) => {
                let p = i64::from(self.as_percent()?.unwrap_or(0));
                let num = p * i64::from(total);
                let v = if round_up {
                    (num + 99).div_euclid(100)
                } else {
                    num.div_euclid(100)
                };
                Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
            }
        }
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Str(s) => f.write_str(s),
        }
    }
}

impl From<i32> for IntOrPercent {
    fn from(n: i32) -> Self {
        IntOrPercent::Int(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_argo() {
        assert_eq!(IntOrPercent::percent(39).resolve(10, true).unwrap(), 4);
        assert_eq!(IntOrPercent::percent(39).resolve(10, false).unwrap(), 3);
        assert_eq!(IntOrPercent::Str("25".into()).resolve(10, true).unwrap(), 3);
        assert_eq!(IntOrPercent::Int(2).resolve(10, true).unwrap(), 2);
        assert!(IntOrPercent::Str("oops".into()).resolve(10, true).is_err());
    }
}
