//! Plans: the patch to send and the object after it, derived from the live object and the
//! object the router wants.
//!
//! A planner edits a copy of the live object ([`serde_json::Value`], key order kept), so
//! every field it does not touch stays as it was; this module turns the pair into the
//! patch to send:
//!
//! - [`Plan::json`]: a JSON patch (RFC 6902). Every change inside an array element is
//!   preceded by a `test` of that element's old value, and an array whose length changes
//!   is tested whole before it is replaced: a concurrent edit of the same route makes
//!   the API server reject the patch instead of silently losing either edit.
//! - [`Plan::merge`]: a JSON merge patch (RFC 7386), for objects the router owns or maps
//!   of scalars (annotations); arrays are replaced whole.
//! - [`Plan::create`]: the object does not exist yet.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ObjectRef;

/// One JSON patch operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
#[non_exhaustive]
pub enum PatchOp {
    /// The value at `path` must equal `value`, or the whole patch is rejected.
    Test {
        /// JSON pointer.
        path: String,
        /// Expected value.
        value: Value,
    },
    /// Add a member (or insert into an array).
    Add {
        /// JSON pointer.
        path: String,
        /// New value.
        value: Value,
    },
    /// Remove a member.
    Remove {
        /// JSON pointer.
        path: String,
    },
    /// Replace the value at `path`.
    Replace {
        /// JSON pointer.
        path: String,
        /// New value.
        value: Value,
    },
}

/// The request that carries a plan out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Patch {
    /// Nothing to send: the live object already is what the router wants.
    None,
    /// A JSON patch (`application/json-patch+json`).
    Json(Vec<PatchOp>),
    /// A JSON merge patch (`application/merge-patch+json`).
    Merge(Value),
    /// Create this object (`POST`).
    Create(Value),
}

impl Patch {
    /// Whether there is nothing to send.
    pub fn is_none(&self) -> bool {
        matches!(self, Patch::None)
    }

    /// The body as JSON (`null` for [`Patch::None`]).
    pub fn body(&self) -> Value {
        match self {
            Patch::None => Value::Null,
            Patch::Json(ops) => serde_json::to_value(ops).unwrap_or(Value::Null),
            Patch::Merge(v) | Patch::Create(v) => v.clone(),
        }
    }
}

/// What a router plans for one object.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Plan {
    /// The object.
    pub object: ObjectRef,
    /// What to send.
    pub patch: Patch,
    /// The object once the patch is applied.
    pub after: Value,
}

impl Plan {
    /// A JSON patch from `live` to `after` (no patch when they are equal).
    pub fn json(object: ObjectRef, live: &Value, after: Value) -> Plan {
        let mut ops = Vec::new();
        json_diff(&mut String::new(), live, &after, false, &mut ops);
        let patch = if ops.is_empty() {
            Patch::None
        } else {
            Patch::Json(ops)
        };
        Plan {
            object,
            patch,
            after,
        }
    }

    /// A merge patch from `live` to `after` (no patch when they are equal).
    pub fn merge(object: ObjectRef, live: &Value, after: Value) -> Plan {
        let patch = match merge_diff(live, &after) {
            Some(p) => Patch::Merge(p),
            None => Patch::None,
        };
        Plan {
            object,
            patch,
            after,
        }
    }

    /// Create `after`.
    pub fn create(object: ObjectRef, after: Value) -> Plan {
        Plan {
            object,
            patch: Patch::Create(after.clone()),
            after,
        }
    }

    /// Whether the live object already is what the router wants.
    pub fn is_noop(&self) -> bool {
        self.patch.is_none()
    }
}

/// Escapes one JSON pointer token (`~` and `/`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn push_token(path: &mut String, token: &str) -> usize {
    let len = path.len();
    path.push('/');
    path.push_str(&escape_token(token));
    len
}

fn json_diff(path: &mut String, a: &Value, b: &Value, tested: bool, ops: &mut Vec<PatchOp>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = push_token(path, k);
                match b.get(k) {
                    None => ops.push(PatchOp::Remove { path: path.clone() }),
                    Some(vb) => json_diff(path, va, vb, tested, ops),
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    let len = push_token(path, k);
                    ops.push(PatchOp::Add {
                        path: path.clone(),
                        value: vb.clone(),
                    });
                    path.truncate(len);
                }
            }
        }
        (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => {
            for (i, (va, vb)) in xa.iter().zip(xb).enumerate() {
                if va == vb {
                    continue;
                }
                let len = push_token(path, &i.to_string());
                if !tested {
                    ops.push(PatchOp::Test {
                        path: path.clone(),
                        value: va.clone(),
                    });
                }
                json_diff(path, va, vb, true, ops);
                path.truncate(len);
            }
        }
        _ => {
            if !tested && a.is_array() {
                ops.push(PatchOp::Test {
                    path: path.clone(),
                    value: a.clone(),
                });
            }
            ops.push(PatchOp::Replace {
                path: path.clone(),
                value: b.clone(),
            });
        }
    }
}

/// The merge patch that turns `a` into `b`, or `None` when they are equal.
pub fn merge_diff(a: &Value, b: &Value) -> Option<Value> {
    if a == b {
        return None;
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for k in a.keys() {
                if !b.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            for (k, vb) in b {
                match a.get(k) {
                    None => {
                        out.insert(k.clone(), vb.clone());
                    }
                    Some(va) => {
                        if let Some(d) = merge_diff(va, vb) {
                            out.insert(k.clone(), d);
                        }
                    }
                }
            }
            Some(Value::Object(out))
        }
        _ => Some(b.clone()),
    }
}

/// Applies a JSON patch to `doc` (all or nothing); `Err` names the failing operation.
pub fn apply_json(doc: &mut Value, ops: &[PatchOp]) -> Result<(), String> {
    let mut work = doc.clone();
    for op in ops {
        match op {
            PatchOp::Test { path, value } => {
                if work.pointer(path) != Some(value) {
                    return Err(format!("test failed at {path}"));
                }
            }
            PatchOp::Replace { path, value } => {
                let slot = work
                    .pointer_mut(path)
                    .ok_or_else(|| format!("replace: no value at {path}"))?;
                *slot = value.clone();
            }
            PatchOp::Add { path, value } => {
                let (parent, last) = split(path)?;
                match work.pointer_mut(&parent) {
                    Some(Value::Object(m)) => {
                        m.insert(last, value.clone());
                    }
                    Some(Value::Array(a)) => {
                        let i = if last == "-" {
                            a.len()
                        } else {
                            last.parse::<usize>()
                                .ok()
                                .filter(|i| *i <= a.len())
                                .ok_or_else(|| format!("add: bad index at {path}"))?
                        };
                        a.insert(i, value.clone());
                    }
                    _ => return Err(format!("add: no container at {path}")),
                }
            }
            PatchOp::Remove { path } => {
                let (parent, last) = split(path)?;
                let removed = match work.pointer_mut(&parent) {
                    Some(Value::Object(m)) => m.shift_remove(&last).is_some(),
                    Some(Value::Array(a)) => match last.parse::<usize>() {
                        Ok(i) if i < a.len() => {
                            a.remove(i);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !removed {
                    return Err(format!("remove: no value at {path}"));
                }
            }
        }
    }
    *doc = work;
    Ok(())
}

fn split(path: &str) -> Result<(String, String), String> {
    let i = path
        .rfind('/')
        .ok_or_else(|| format!("bad pointer {path}"))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_string(), last))
}

/// Applies a merge patch to `doc` (RFC 7386).
pub fn apply_merge(doc: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !doc.is_object() {
                *doc = Value::Object(Map::new());
            }
            if let Value::Object(d) = doc {
                for (k, v) in p {
                    if v.is_null() {
                        d.shift_remove(k);
                    } else {
                        apply_merge(d.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *doc = other.clone(),
    }
}

/// Applies a plan's patch to the live object (`None` for a create: the object is the
/// body). This is what the API server does, for tests and in-memory routers.
pub fn apply(live: Option<&Value>, patch: &Patch) -> Result<Value, String> {
    match (live, patch) {
        (_, Patch::Create(v)) => Ok(v.clone()),
        (Some(l), Patch::None) => Ok(l.clone()),
        (Some(l), Patch::Json(ops)) => {
            let mut doc = l.clone();
            apply_json(&mut doc, ops)?;
            Ok(doc)
        }
        (Some(l), Patch::Merge(m)) => {
            let mut doc = l.clone();
            apply_merge(&mut doc, m);
            Ok(doc)
        }
        (None, _) => Err("no live object to patch".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_plan_tests_the_route_it_changes() {
        let live =
            json!({"spec": {"http": [{"name": "a", "route": [{"weight": 100}]}, {"name": "b"}]}});
        let mut after = live.clone();
        after["spec"]["http"][0]["route"][0]["weight"] = json!(90);
        let plan = Plan::json(ObjectRef::default(), &live, after.clone());
        assert_eq!(
            plan.patch.body(),
            json!([
                {"op": "test", "path": "/spec/http/0", "value": {"name": "a", "route": [{"weight": 100}]}},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 90}
            ])
        );
        assert_eq!(apply(Some(&live), &plan.patch).unwrap(), after);
    }

    #[test]
    fn merge_plan_escapes_nothing_and_removes_with_null() {
        let live = json!({"metadata": {"annotations": {"a/b": "1", "c": "2"}}});
        let after = json!({"metadata": {"annotations": {"a/b": "3"}}});
        let plan = Plan::merge(ObjectRef::default(), &live, after.clone());
        assert_eq!(
            plan.patch.body(),
            json!({"metadata": {"annotations": {"a/b": "3", "c": null}}})
        );
        assert_eq!(apply(Some(&live), &plan.patch).unwrap(), after);
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
    }
}
