//! Typed errors of the planners.

use std::fmt;

use serde_json::Value;

/// The Kubernetes object a plan or an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectRef {
    /// Kind (`VirtualService`, `Ingress`, `TrafficSplit`, `HTTPRoute`, ...).
    pub kind: String,
    /// Namespace (empty when unknown).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// An object reference.
    pub fn new(kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The reference of a live object (`metadata.namespace` / `metadata.name`), with
    /// `kind` given (objects read through dynamic APIs may lack theirs).
    pub fn of(kind: &str, object: &Value) -> ObjectRef {
        let meta = |k: &str| {
            object
                .pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        ObjectRef {
            kind: kind.to_string(),
            namespace: meta("namespace"),
            name: meta("name"),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `VirtualService default/vs` (or `VirtualService vs` without a namespace).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Why a router cannot plan the change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// A field the router reads has the wrong shape (`path` is a JSON pointer).
    #[error("{object}: {path} must be {expected}")]
    Shape {
        /// The object.
        object: ObjectRef,
        /// JSON pointer of the field.
        path: String,
        /// What it must be (`an array`, `a string`, ...).
        expected: &'static str,
    },
    /// A route named in the configuration is not in the object.
    #[error("{kind} route {route:?} not found in {object}")]
    RouteNotFound {
        /// The object.
        object: ObjectRef,
        /// `http`, `tls` or `tcp`.
        kind: &'static str,
        /// The route name (or its match, for TLS/TCP routes).
        route: String,
    },
    /// The configuration names no route and the object does not have exactly one.
    #[error("{object} has {count} {kind} routes; name the routes to manage")]
    AmbiguousRoutes {
        /// The object.
        object: ObjectRef,
        /// `http` or `rules`.
        kind: &'static str,
        /// How many there are.
        count: usize,
    },
    /// A subset named in the configuration is not in the DestinationRule.
    #[error("subset {subset:?} not found in {object}")]
    SubsetNotFound {
        /// The DestinationRule.
        object: ObjectRef,
        /// The subset name.
        subset: String,
    },
    /// No rule of the object sends traffic to the service the router must split.
    #[error("no rule of {object} references service {service:?}")]
    ServiceNotReferenced {
        /// The object.
        object: ObjectRef,
        /// The service.
        service: String,
    },
    /// The object exists but belongs to someone else.
    #[error("{object} is not owned by {owner}")]
    NotOwned {
        /// The object.
        object: ObjectRef,
        /// Who should own it (`Rollout default/web`).
        owner: String,
    },
    /// The configuration or the request cannot be expressed on this object.
    #[error("{object}: {message}")]
    Invalid {
        /// The object.
        object: ObjectRef,
        /// What is wrong.
        message: String,
    },
    /// A routing object the router reads is not in the cluster.
    #[error("{object} not found")]
    NotFound {
        /// The object.
        object: ObjectRef,
    },
}
