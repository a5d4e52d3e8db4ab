//! Sync status, health and the sync plan, as pure functions over Kubernetes objects in
//! JSON form (what a cluster cache or `kubectl get -o json` returns).
//!
//! - [`compare`]: desired vs live per resource, after normalisation (server-managed
//!   metadata, `status`, ignored JSON pointers), with Argo CD's rule that fields present
//!   only in the live object (defaults filled in by the API server) do not count.
//! - [`health`]: the built-in checks for Deployment, StatefulSet, Service, Ingress,
//!   PersistentVolumeClaim and Argo Rollout; [`app_health`] is the worst of them.
//! - [`plan_sync`]: hooks and sync waves as an ordered sequence of steps (PreSync, Sync,
//!   PostSync; SyncFail hooks separately), each step one (phase, wave).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Group, kind, namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ResourceKey {
    /// The key of an object (`None` without kind or name).
    pub fn of(obj: &Value) -> Option<ResourceKey> {
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        let kind = obj.get("kind")?.as_str()?.to_string();
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(ResourceKey {
            group,
            kind,
            namespace,
            name,
        })
    }
}

/// Sync status of a resource or an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SyncStatus {
    /// Live equals desired after normalisation.
    Synced,
    /// They differ, or one side is missing.
    OutOfSync,
}

/// What to ignore when comparing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// JSON pointers (RFC 6901) to drop from both sides, per kind (`"*"`: every kind).
    pub ignore: BTreeMap<String, Vec<String>>,
}

/// The comparison of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDiff {
    /// The resource.
    pub key: ResourceKey,
    /// Its status.
    pub status: SyncStatus,
    /// Why it is out of sync (`missing`, `extraneous`, or the first differing path).
    pub reason: Option<String>,
}

/// The comparison of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Synced unless a resource is out of sync.
    pub status: SyncStatus,
    /// Per resource, sorted by key.
    pub resources: Vec<ResourceDiff>,
}

const MANAGED_METADATA: [&str; 7] = [
    "creationTimestamp",
    "resourceVersion",
    "uid",
    "generation",
    "managedFields",
    "selfLink",
    "ownerReferences",
];

const MANAGED_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// Drops server-managed metadata, `status` and the ignored pointers.
pub fn normalize(obj: &Value, opts: &CompareOptions) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in MANAGED_METADATA {
                meta.remove(k);
            }
            if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                for k in MANAGED_ANNOTATIONS {
                    ann.remove(k);
                }
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    for key in ["*", kind] {
        for ptr in opts.ignore.get(key).into_iter().flatten() {
            remove_pointer(&mut v, ptr);
        }
    }
    v
}

fn remove_pointer(v: &mut Value, ptr: &str) {
    let Some((parent, last)) = ptr.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// The first path where `desired` is not contained in `live` (fields only in `live` are
/// defaults and do not count; arrays must match element by element).
pub fn first_difference(desired: &Value, live: &Value) -> Option<String> {
    fn walk(d: &Value, l: &Value, path: &mut String) -> bool {
        match (d, l) {
            (Value::Object(dm), Value::Object(lm)) => {
                for (k, dv) in dm {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    let ok = match lm.get(k) {
                        Some(lv) => walk(dv, lv, path),
                        None => dv.is_null(),
                    };
                    if !ok {
                        return false;
                    }
                    path.truncate(len);
                }
                true
            }
            (Value::Array(da), Value::Array(la)) => {
                if da.len() != la.len() {
                    return false;
                }
                for (i, (dv, lv)) in da.iter().zip(la).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    if !walk(dv, lv, path) {
                        return false;
                    }
                    path.truncate(len);
                }
                true
            }
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            _ => d == l,
        }
    }
    let mut path = String::new();
    if walk(desired, live, &mut path) {
        None
    } else {
        Some(if path.is_empty() { "/".into() } else { path })
    }
}

/// Compares desired objects with live ones (paired by [`ResourceKey`]). Objects without a
/// key are skipped; live objects without a desired counterpart are extraneous.
pub fn compare(desired: &[Value], live: &[Value], opts: &CompareOptions) -> Comparison {
    let mut d: BTreeMap<ResourceKey, &Value> = BTreeMap::new();
    for o in desired {
        if let Some(k) = ResourceKey::of(o) {
            d.insert(k, o);
        }
    }
    let mut l: BTreeMap<ResourceKey, &Value> = BTreeMap::new();
    for o in live {
        if let Some(k) = ResourceKey::of(o) {
            l.insert(k, o);
        }
    }
    let mut resources = Vec::new();
    for (key, dv) in &d {
        let (status, reason) = match l.get(key) {
            None => (SyncStatus::OutOfSync, Some("missing".to_string())),
            Some(lv) => match first_difference(&normalize(dv, opts), &normalize(lv, opts)) {
                None => (SyncStatus::Synced, None),
                Some(p) => (SyncStatus::OutOfSync, Some(p)),
            },
        };
        resources.push(ResourceDiff {
            key: key.clone(),
            status,
            reason,
        });
    }
    for key in l.keys().filter(|k| !d.contains_key(*k)) {
        resources.push(ResourceDiff {
            key: key.clone(),
            status: SyncStatus::OutOfSync,
            reason: Some("extraneous".into()),
        });
    }
    resources.sort_by(|a, b| a.key.cmp(&b.key));
    let status = if resources.iter().any(|r| r.status == SyncStatus::OutOfSync) {
        SyncStatus::OutOfSync
    } else {
        SyncStatus::Synced
    };
    Comparison { status, resources }
}

/// Health codes, best first (the order is Argo CD's: worse compares greater).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HealthStatus {
    /// All good.
    Healthy,
    /// Paused on purpose.
    Suspended,
    /// Getting there.
    Progressing,
    /// Not in the cluster.
    Missing,
    /// Failed.
    Degraded,
    /// Cannot tell.
    Unknown,
}

/// A health verdict with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The code.
    pub status: HealthStatus,
    /// Why.
    pub message: String,
}

fn h(status: HealthStatus, message: impl Into<String>) -> Option<Health> {
    Some(Health {
        status,
        message: message.into(),
    })
}

fn int(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

fn text<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn lb_ingress_empty(obj: &Value) -> bool {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
}

/// The health of an object, or `None` for kinds without a health check.
pub fn health(obj: &Value) -> Option<Health> {
    use HealthStatus::*;
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return h(Progressing, "Pending deletion");
    }
    let kind = obj.get("kind").and_then(Value::as_str)?;
    let generation = int(obj, "/metadata/generation").unwrap_or(0);
    let observed = int(obj, "/status/observedGeneration");
    match kind {
        "Deployment" => {
            if obj.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
                return h(Suspended, "Deployment is paused");
            }
            if observed.unwrap_or(0) < generation {
                return h(
                    Progressing,
                    "Waiting for rollout to finish: observed deployment generation less than desired generation",
                );
            }
            let deadline = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Progressing")
                        && c.get("reason").and_then(Value::as_str)
                            == Some("ProgressDeadlineExceeded")
                });
            if deadline {
                return h(Degraded, "Deployment exceeded its progress deadline");
            }
            let want = int(obj, "/spec/replicas").unwrap_or(1);
            let updated = int(obj, "/status/updatedReplicas").unwrap_or(0);
            let replicas = int(obj, "/status/replicas").unwrap_or(0);
            let available = int(obj, "/status/availableReplicas").unwrap_or(0);
            if updated < want {
                return h(
                    Progressing,
                    format!(
                        "Waiting for rollout to finish: {updated} out of {want} new replicas have been updated..."
                    ),
                );
            }
            if replicas > updated {
                return h(
                    Progressing,
                    format!(
                        "Waiting for rollout to finish: {} old replicas are pending termination...",
                        replicas - updated
                    ),
                );
            }
            if available < updated {
                return h(
                    Progressing,
                    format!(
                        "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
                    ),
                );
            }
            h(Healthy, "")
        }
        "StatefulSet" => {
            if observed.unwrap_or(0) == 0 || observed.unwrap_or(0) < generation {
                return h(
                    Progressing,
                    "Waiting for statefulset spec update to be observed...",
                );
            }
            let want = int(obj, "/spec/replicas").unwrap_or(1);
            let ready = int(obj, "/status/readyReplicas").unwrap_or(0);
            if ready < want {
                return h(
                    Progressing,
                    format!("Waiting for {} pods to be ready...", want - ready),
                );
            }
            match text(obj, "/spec/updateStrategy/type") {
                Some("OnDelete") => return h(Healthy, "partitioned roll out complete"),
                Some("RollingUpdate") | None => {
                    if let Some(partition) =
                        int(obj, "/spec/updateStrategy/rollingUpdate/partition")
                    {
                        let updated = int(obj, "/status/updatedReplicas").unwrap_or(0);
                        if updated < want - partition {
                            return h(Progressing, "Waiting for partitioned roll out to finish");
                        }
                        return h(Healthy, "partitioned roll out complete");
                    }
                }
                Some(_) => {}
            }
            if text(obj, "/status/updateRevision") != text(obj, "/status/currentRevision") {
                return h(
                    Progressing,
                    "waiting for statefulset rolling update to complete",
                );
            }
            h(Healthy, "")
        }
        "Service" => {
            if text(obj, "/spec/type") == Some("LoadBalancer") && lb_ingress_empty(obj) {
                return h(Progressing, "Waiting for the load balancer");
            }
            h(Healthy, "")
        }
        "Ingress" => {
            if lb_ingress_empty(obj) {
                h(Progressing, "Waiting for the load balancer")
            } else {
                h(Healthy, "")
            }
        }
        "PersistentVolumeClaim" => match text(obj, "/status/phase") {
            Some("Bound") => h(Healthy, ""),
            Some("Pending") => h(Progressing, ""),
            Some("Lost") => h(Degraded, ""),
            _ => h(Unknown, ""),
        },
        "Rollout" => {
            let status = obj.get("status");
            let observed_numeric = obj.pointer("/status/observedGeneration").map(|g| {
                g.as_i64()
                    .or_else(|| g.as_str().and_then(|s| s.parse().ok()))
            });
            let unobserved = match (status, observed_numeric) {
                (None, _) => true,
                (_, Some(Some(o))) => o != generation,
                _ => false,
            };
            if unobserved {
                return h(
                    Progressing,
                    "Waiting for rollout spec update to be observed",
                );
            }
            let message = text(obj, "/status/message").unwrap_or("").to_string();
            match text(obj, "/status/phase") {
                Some("Healthy") => h(Healthy, message),
                Some("Paused") => h(Suspended, message),
                Some("Progressing") => h(Progressing, message),
                Some("Degraded") => h(Degraded, message),
                Some(_) => h(Unknown, message),
                None => h(Progressing, "Waiting for the rollout to report a phase"),
            }
        }
        _ => None,
    }
}

/// The application's health: the worst of its resources' (resources annotated
/// `argocd.argoproj.io/ignore-healthcheck: "true"` and kinds without a check skipped);
/// `Missing` when there are desired resources and no live ones at all.
pub fn app_health(desired_count: usize, live: &[Value]) -> HealthStatus {
    if desired_count > 0 && live.is_empty() {
        return HealthStatus::Missing;
    }
    live.iter()
        .filter(|o| {
            o.pointer("/metadata/annotations/argocd.argoproj.io~1ignore-healthcheck")
                .and_then(Value::as_str)
                != Some("true")
        })
        .filter_map(health)
        .map(|h| h.status)
        .max()
        .unwrap_or(HealthStatus::Healthy)
}

/// A sync phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Hooks before anything is applied.
    PreSync,
    /// The resources (and Sync hooks).
    Sync,
    /// Hooks after a successful sync.
    PostSync,
    /// Hooks run when the sync failed.
    SyncFail,
}

/// One step of a sync: everything of one (phase, wave), applied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStep {
    /// The phase.
    pub phase: Phase,
    /// The wave.
    pub wave: i64,
    /// The resources, in apply order; `true` marks hooks.
    pub resources: Vec<(ResourceKey, bool)>,
}

/// The plan of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncPlan {
    /// Steps to run in order; stop at the first failure.
    pub steps: Vec<SyncStep>,
    /// What to run when a step failed.
    pub on_failure: Vec<SyncStep>,
    /// Objects with a hook annotation naming no known phase (never applied).
    pub ignored: Vec<ResourceKey>,
}

const KIND_ORDER: [&str; 30] = [
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
];

const KIND_ORDER_TAIL: [&str; 5] = ["Job", "CronJob", "IngressClass", "Ingress", "APIService"];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .chain(KIND_ORDER_TAIL.iter())
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len() + KIND_ORDER_TAIL.len())
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// Plans a sync of `resources`: hooks from `argocd.argoproj.io/hook` (CSV; Helm's
/// `helm.sh/hook` pre-/post-install/upgrade mapped), waves from
/// `argocd.argoproj.io/sync-wave` (Helm's `helm.sh/hook-weight` for hooks), then kind
/// order and name within a wave.
pub fn plan_sync(resources: &[Value]) -> SyncPlan {
    let mut tasks: Vec<(Phase, i64, usize, ResourceKey, bool)> = Vec::new();
    let mut plan = SyncPlan::default();
    for obj in resources {
        let Some(key) = ResourceKey::of(obj) else {
            continue;
        };
        let wave = annotation(obj, "argocd.argoproj.io/sync-wave")
            .or_else(|| annotation(obj, "helm.sh/hook-weight"))
            .and_then(|w| w.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let rank = kind_rank(&key.kind);
        let phases: Vec<Phase> = if let Some(hooks) = annotation(obj, "argocd.argoproj.io/hook") {
            let p: Vec<Phase> = hooks
                .split(',')
                .filter_map(|h| match h.trim() {
                    "PreSync" => Some(Phase::PreSync),
                    "Sync" => Some(Phase::Sync),
                    "PostSync" => Some(Phase::PostSync),
                    "SyncFail" => Some(Phase::SyncFail),
                    _ => None,
                })
                .collect();
            if p.is_empty() {
                plan.ignored.push(key);
                continue;
            }
            p
        } else if let Some(hooks) = annotation(obj, "helm.sh/hook") {
            let mut p: Vec<Phase> = hooks
                .split(',')
                .filter_map(|h| match h.trim() {
                    "pre-install" | "pre-upgrade" => Some(Phase::PreSync),
                    "post-install" | "post-upgrade" => Some(Phase::PostSync),
                    _ => None,
                })
                .collect();
            p.dedup();
            if p.is_empty() {
                plan.ignored.push(key);
                continue;
            }
            p
        } else {
            tasks.push((Phase::Sync, wave, rank, key, false));
            continue;
        };
        for phase in phases {
            tasks.push((phase, wave, rank, key.clone(), true));
        }
    }
    tasks.sort_by(|a, b| {
        (a.0, a.1, a.2)
            .cmp(&(b.0, b.1, b.2))
            .then_with(|| a.3.name.cmp(&b.3.name))
            .then(Ordering::Equal)
    });
    for (phase, wave, _, key, hook) in tasks {
        let steps = if phase == Phase::SyncFail {
            &mut plan.on_failure
        } else {
            &mut plan.steps
        };
        match steps.last_mut() {
            Some(s) if s.phase == phase && s.wave == wave => s.resources.push((key, hook)),
            _ => steps.push(SyncStep {
                phase,
                wave,
                resources: vec![(key, hook)],
            }),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(replicas: i64, updated: i64, available: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": updated, "availableReplicas": available}
        })
    }

    #[test]
    fn compare_ignores_defaults_and_managed_fields() {
        let desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}
        });
        let mut live = desired.clone();
        live["metadata"]["uid"] = json!("123");
        live["metadata"]["resourceVersion"] = json!("9");
        live["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "4"});
        live["spec"]["progressDeadlineSeconds"] = json!(600);
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            json!("IfNotPresent");
        live["status"] = json!({"replicas": 3});
        let opts = CompareOptions::default();
        let c = compare(
            std::slice::from_ref(&desired),
            std::slice::from_ref(&live),
            &opts,
        );
        assert_eq!(c.status, SyncStatus::Synced);
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
        let c = compare(
            std::slice::from_ref(&desired),
            std::slice::from_ref(&live),
            &opts,
        );
        assert_eq!(c.status, SyncStatus::OutOfSync);
        assert_eq!(
            c.resources[0].reason.as_deref(),
            Some("/spec/template/spec/containers/0/image")
        );
        // Ignored by pointer.
        let mut opts = CompareOptions::default();
        opts.ignore.insert(
            "Deployment".into(),
            vec!["/spec/template/spec/containers/0/image".into()],
        );
        // Removing the pointer from both sides leaves them equal.
        assert_eq!(
            compare(
                std::slice::from_ref(&desired),
                std::slice::from_ref(&live),
                &opts
            )
            .status,
            SyncStatus::Synced
        );
        let extra = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}});
        let c = compare(&[], &[extra], &opts);
        assert_eq!(c.resources[0].reason.as_deref(), Some("extraneous"));
        let c = compare(&[desired], &[], &opts);
        assert_eq!(c.resources[0].reason.as_deref(), Some("missing"));
    }

    #[test]
    fn health_rules() {
        assert_eq!(
            health(&deploy(3, 3, 3)).unwrap().status,
            HealthStatus::Healthy
        );
        assert_eq!(
            health(&deploy(3, 2, 2)).unwrap().status,
            HealthStatus::Progressing
        );
        assert_eq!(
            health(&deploy(3, 3, 1)).unwrap().status,
            HealthStatus::Progressing
        );
        let mut d = deploy(3, 3, 3);
        d["status"]["conditions"] =
            json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(health(&d).unwrap().status, HealthStatus::Degraded);
        d["spec"]["paused"] = json!(true);
        assert_eq!(health(&d).unwrap().status, HealthStatus::Suspended);
        let sts = json!({"kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "readyReplicas": 2, "updateRevision": "a", "currentRevision": "a"}});
        assert_eq!(health(&sts).unwrap().status, HealthStatus::Healthy);
        let svc = json!({"kind": "Service", "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(health(&svc).unwrap().status, HealthStatus::Progressing);
        let ing = json!({"kind": "Ingress", "metadata": {"name": "i"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}});
        assert_eq!(health(&ing).unwrap().status, HealthStatus::Healthy);
        let pvc = json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "status": {"phase": "Lost"}});
        assert_eq!(health(&pvc).unwrap().status, HealthStatus::Degraded);
        let ro = json!({"kind": "Rollout", "metadata": {"name": "r", "generation": 3},
            "status": {"observedGeneration": "3", "phase": "Paused", "message": "CanaryPauseStep"}});
        assert_eq!(
            health(&ro),
            Some(Health {
                status: HealthStatus::Suspended,
                message: "CanaryPauseStep".into()
            })
        );
        let stale = json!({"kind": "Rollout", "metadata": {"name": "r", "generation": 4}, "status": {"observedGeneration": "3", "phase": "Healthy"}});
        assert_eq!(health(&stale).unwrap().status, HealthStatus::Progressing);
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(health(&cm), None);
        assert_eq!(
            app_health(2, &[deploy(3, 3, 3), pvc.clone()]),
            HealthStatus::Degraded
        );
        assert_eq!(app_health(2, &[]), HealthStatus::Missing);
    }

    #[test]
    fn sync_plan_orders_phases_waves_and_kinds() {
        let obj = |kind: &str, name: &str, ann: Value| json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "annotations": ann}});
        let plan = plan_sync(&[
            obj("Deployment", "web", json!({})),
            obj("Service", "web", json!({})),
            obj(
                "Job",
                "migrate",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            ),
            obj(
                "Job",
                "approve",
                json!({"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "-1"}),
            ),
            obj(
                "Job",
                "smoke",
                json!({"helm.sh/hook": "post-install,post-upgrade"}),
            ),
            obj(
                "Job",
                "notify",
                json!({"argocd.argoproj.io/hook": "SyncFail"}),
            ),
            obj(
                "ConfigMap",
                "late",
                json!({"argocd.argoproj.io/sync-wave": "5"}),
            ),
            obj("Pod", "t", json!({"argocd.argoproj.io/hook": "test"})),
        ]);
        let names: Vec<(Phase, i64, Vec<&str>)> = plan
            .steps
            .iter()
            .map(|s| {
                (
                    s.phase,
                    s.wave,
                    s.resources.iter().map(|(k, _)| k.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (Phase::PreSync, -1, vec!["approve"]),
                (Phase::PreSync, 0, vec!["migrate"]),
                (Phase::Sync, 0, vec!["web", "web"]),
                (Phase::Sync, 5, vec!["late"]),
                (Phase::PostSync, 0, vec!["smoke"]),
            ]
        );
        assert_eq!(plan.steps[2].resources[0].0.kind, "Service");
        assert_eq!(plan.on_failure[0].resources[0].0.name, "notify");
        assert_eq!(plan.ignored[0].name, "t");
    }
}
