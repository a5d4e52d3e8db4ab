//! Small serde helpers shared by the spec types.

use serde::{Deserialize, Deserializer};

/// `skip_serializing_if` for `false` booleans.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads an explicit `null` as the default value, like the Kubernetes API server, which
/// drops `null` from fields that are not nullable before it stores an object.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
