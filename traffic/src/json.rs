//! Small helpers to read and edit routing objects held as JSON.

use serde_json::{Map, Value};

use crate::error::{ObjectRef, RouterError};

/// The array at `pointer`, or an empty one when absent; a shape error otherwise.
pub(crate) fn array<'a>(
    obj: &'a Value,
    pointer: &str,
    object: &ObjectRef,
) -> Result<&'a [Value], RouterError> {
    match obj.pointer(pointer) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(shape(object, pointer, "an array")),
    }
}

/// The array at `pointer` for editing, created when absent.
pub(crate) fn array_mut<'a>(
    obj: &'a mut Value,
    pointer: &str,
    object: &ObjectRef,
) -> Result<&'a mut Vec<Value>, RouterError> {
    let slot = ensure(obj, pointer, object, || Value::Array(Vec::new()))?;
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => Ok(a),
        _ => Err(shape(object, pointer, "an array")),
    }
}

/// The object at `pointer` for editing, created when absent.
pub(crate) fn object_mut<'a>(
    obj: &'a mut Value,
    pointer: &str,
    object: &ObjectRef,
) -> Result<&'a mut Map<String, Value>, RouterError> {
    let slot = ensure(obj, pointer, object, || Value::Object(Map::new()))?;
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => Ok(m),
        _ => Err(shape(object, pointer, "an object")),
    }
}

fn ensure<'a>(
    obj: &'a mut Value,
    pointer: &str,
    object: &ObjectRef,
    leaf: impl Fn() -> Value,
) -> Result<&'a mut Value, RouterError> {
    let mut cur = obj;
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, tok) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(m) => m
                .entry(tok.replace("~1", "/").replace("~0", "~"))
                .or_insert_with(|| {
                    if last {
                        leaf()
                    } else {
                        Value::Object(Map::new())
                    }
                }),
            Value::Array(a) => match tok.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return Err(shape(object, pointer, "an existing array element")),
            },
            _ => return Err(shape(object, pointer, "an object")),
        };
    }
    Ok(cur)
}

/// A string at `key` of `v`, or `""`.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An integer at `key` of `v` (a number or a decimal string, as SMI v1alpha1 quantities).
pub(crate) fn int_of(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn shape(object: &ObjectRef, path: &str, expected: &'static str) -> RouterError {
    RouterError::Shape {
        object: object.clone(),
        path: path.to_string(),
        expected,
    }
}

/// Sets `metadata.annotations[key] = value` (creating the map).
pub(crate) fn set_annotation(
    obj: &mut Value,
    key: &str,
    value: &str,
    object: &ObjectRef,
) -> Result<(), RouterError> {
    let ann = object_mut(obj, "/metadata/annotations", object)?;
    ann.insert(key.to_string(), Value::String(value.into()));
    Ok(())
}
