//! Small serde helpers for the `Canary` types.
//!
//! These duplicate two private helpers of [`crate::spec`] (its `serde_util` module is not
//! visible from here).

use serde::{Deserialize, Deserializer};

/// `skip_serializing_if` for `false` booleans.
pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads an explicit `null` as the default value, like the Kubernetes API server, which
/// drops `null` from fields that are not nullable before it stores an object.
pub(super) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
