//! Adapter for `argo/replica_counts.json`: every kind of the README's table, mapped onto
//! [`rollout_core::replicas`].
//!
//! The canary kinds share one input shape (`rollout`, `status`, `stable_rs`, `canary_rs`,
//! `other_rss`, `current_traffic_weights`), read strictly: an unknown field is a failure,
//! because it may carry meaning the adapter would silently drop. The scalar kinds read
//! the README's field names (with the obvious aliases, e.g. `replicas` for
//! `spec_replicas`) and fail when a required field is missing.

use rollout_core::IntOrPercent;
use rollout_core::phase::StrategyKind;
use rollout_core::replicas::{
    self, AtDesiredCheck, BlueGreenReplicaInput, CanaryReplicaInput, CanaryScale, CanarySize,
    ProgressThreshold, ReplicaSetCounts, StepView,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::json::{Res, actual, compare, get, has, opt_bool, opt_i32, opt_str, parse, req_i32};
use crate::{Case, CaseResult};

/// Runs one case of `argo/replica_counts.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let input = case.input;
    let result = match case.kind {
        "basic_canary" => canary_counts(input, false),
        "traffic_routed_canary" => canary_counts(input, true),
        "approximate_weighted_counts" => approximate(input),
        "traffic_weight_to_replicas" => weight_to_replicas(input),
        "desired_canary_weight" => desired_canary_weight(input),
        "current_set_weight" => current_set_weight(input),
        "canary_replicas_or_weight" => canary_replicas_or_weight(input),
        "at_desired_replica_counts" => at_desired(input),
        "replica_progress_threshold" => progress_threshold(input),
        "all_desired_available" => all_desired_available(input),
        "replicas_for_scale_down" => replicas_for_scale_down(input),
        "resolve_fenceposts" => fenceposts(input),
        "max_surge" => budget(input, Budget::Surge),
        "max_unavailable" => budget(input, Budget::Unavailable),
        "bluegreen_new_rs_replicas" => bluegreen(input),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(got) => compare(case.expected, &got),
        Err(e) => CaseResult::Fail(e),
    }
}

// ---------------------------------------------------------------------------------------
// The canary input shape
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryCase {
    #[serde(default)]
    rollout: VRollout,
    #[serde(default)]
    status: VStatus,
    #[serde(default)]
    stable_rs: Option<VRs>,
    #[serde(default)]
    canary_rs: Option<VRs>,
    #[serde(default)]
    other_rss: Option<Vec<VRs>>,
    #[serde(default)]
    current_traffic_weights: Option<VWeights>,
    /// Values the Go test built but did not pass to the function under test.
    #[serde(default, rename = "unused_row_values")]
    _unused_row_values: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VRollout {
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    spec_replicas: Option<i32>,
    #[serde(default)]
    max_surge: Option<IntOrPercent>,
    #[serde(default)]
    max_unavailable: Option<IntOrPercent>,
    #[serde(default)]
    steps: Option<Vec<VStep>>,
    #[serde(default)]
    traffic_routing: Option<bool>,
    #[serde(default)]
    max_traffic_weight: Option<i32>,
    #[serde(default)]
    dynamic_stable_scale: Option<bool>,
    #[serde(default)]
    min_pods_per_replica_set: Option<i32>,
    #[serde(default)]
    abort_scale_down_delay_seconds: Option<i32>,
    #[serde(default)]
    replica_progress_threshold: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VStatus {
    #[serde(default)]
    current_step_index: Option<i32>,
    #[serde(default)]
    stable_hash: Option<String>,
    #[serde(default)]
    current_pod_hash: Option<String>,
    #[serde(default)]
    abort: Option<bool>,
    #[serde(default)]
    promote_full: Option<bool>,
}

/// A canary step. Step types that do not affect replica arithmetic (pause, analysis, ...)
/// are accepted and ignored.
#[derive(Debug, Deserialize)]
struct VStep {
    #[serde(default)]
    set_weight: Option<i32>,
    #[serde(default)]
    set_canary_scale: Option<VCanaryScale>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VCanaryScale {
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default)]
    weight: Option<i32>,
    #[serde(default)]
    match_traffic_weight: Option<bool>,
}

impl StepView for VStep {
    fn set_weight(&self) -> Option<i32> {
        self.set_weight
    }
    fn set_canary_scale(&self) -> Option<CanaryScale> {
        self.set_canary_scale.as_ref().map(|s| CanaryScale {
            replicas: s.replicas,
            weight: s.weight,
            match_traffic_weight: s.match_traffic_weight.unwrap_or(false),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VRs {
    #[serde(default)]
    name: String,
    spec_replicas: i32,
    #[serde(default)]
    available_replicas: i32,
    #[serde(default)]
    status_replicas: Option<i32>,
}

impl VRs {
    fn counts(&self) -> ReplicaSetCounts {
        ReplicaSetCounts {
            spec_replicas: self.spec_replicas,
            available_replicas: self.available_replicas,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VWeights {
    canary: i32,
    stable: i32,
}

/// Argo's rollout-level default for maxSurge and maxUnavailable.
fn default_25() -> IntOrPercent {
    IntOrPercent::percent(25)
}

/// A parsed canary case with owned values that a [`CanaryReplicaInput`] can borrow.
struct Canary {
    case: CanaryCase,
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    steps: Vec<VStep>,
    others: Vec<ReplicaSetCounts>,
    stable_hash: String,
    current_pod_hash: String,
}

impl Canary {
    fn parse(input: &Value) -> Res<Canary> {
        let mut case: CanaryCase = parse(input, "canary input")?;
        if let Some(s) = case.rollout.strategy.as_deref() {
            strategy_of(s)?;
        }
        let steps = case.rollout.steps.take().unwrap_or_default();
        let others = case
            .other_rss
            .take()
            .unwrap_or_default()
            .iter()
            .map(VRs::counts)
            .collect();
        Ok(Canary {
            max_surge: case.rollout.max_surge.clone().unwrap_or_else(default_25),
            max_unavailable: case
                .rollout
                .max_unavailable
                .clone()
                .unwrap_or_else(default_25),
            stable_hash: case.status.stable_hash.clone().unwrap_or_default(),
            current_pod_hash: case.status.current_pod_hash.clone().unwrap_or_default(),
            steps,
            others,
            case,
        })
    }

    fn spec_replicas(&self) -> i32 {
        self.case.rollout.spec_replicas.unwrap_or(1)
    }

    fn input(&self, traffic_routing: bool) -> CanaryReplicaInput<'_, VStep> {
        let r = &self.case.rollout;
        let st = &self.case.status;
        // The stable RS passed as the very same object as the canary RS means "no
        // separate stable" (Argo compares the objects by name).
        let same_rs = match (&self.case.stable_rs, &self.case.canary_rs) {
            (Some(s), Some(c)) => !s.name.is_empty() && s.name == c.name,
            _ => false,
        };
        CanaryReplicaInput {
            spec_replicas: self.spec_replicas(),
            max_surge: &self.max_surge,
            max_unavailable: &self.max_unavailable,
            steps: &self.steps,
            traffic_routing,
            max_traffic_weight: r
                .max_traffic_weight
                .unwrap_or(replicas::DEFAULT_MAX_TRAFFIC_WEIGHT),
            dynamic_stable_scale: r.dynamic_stable_scale.unwrap_or(false),
            min_pods_per_replica_set: r.min_pods_per_replica_set,
            abort_scale_down_delay_seconds: r.abort_scale_down_delay_seconds,
            current_step_index: st.current_step_index,
            stable_hash: &self.stable_hash,
            current_pod_hash: &self.current_pod_hash,
            abort: st.abort.unwrap_or(false),
            promote_full: st.promote_full.unwrap_or(false),
            stable_rs: if same_rs {
                None
            } else {
                self.case.stable_rs.as_ref().map(VRs::counts)
            },
            canary_rs: self.case.canary_rs.as_ref().map(VRs::counts),
            other_rss: &self.others,
            current_traffic_weights: self
                .case
                .current_traffic_weights
                .as_ref()
                .map(|w| (w.canary, w.stable)),
        }
    }

    fn traffic_routing(&self) -> bool {
        self.case.rollout.traffic_routing.unwrap_or(false)
    }
}

fn strategy_of(s: &str) -> Res<StrategyKind> {
    match s {
        "canary" | "Canary" => Ok(StrategyKind::Canary),
        "blueGreen" | "bluegreen" | "blue_green" | "BlueGreen" => Ok(StrategyKind::BlueGreen),
        other => Err(format!("cannot express strategy {other:?}")),
    }
}

fn canary_counts(input: &Value, traffic_routed: bool) -> Res<Map<String, Value>> {
    let c = Canary::parse(input)?;
    if c.traffic_routing() != traffic_routed {
        return Err(format!(
            "cannot express case: kind says traffic_routing={traffic_routed} but the rollout says {}",
            c.traffic_routing()
        ));
    }
    let input = c.input(traffic_routed);
    let counts = if traffic_routed {
        replicas::traffic_routed_canary_counts(&input)
    } else {
        replicas::basic_canary_counts(&input)
    };
    match counts {
        Ok(counts) => Ok(actual([
            ("canary", json!(counts.canary)),
            ("stable", json!(counts.stable)),
        ])),
        Err(e) => Ok(actual([("error", json!(e.to_string()))])),
    }
}

fn desired_canary_weight(input: &Value) -> Res<Map<String, Value>> {
    let c = Canary::parse(input)?;
    let i = c.input(c.traffic_routing());
    let weight = replicas::desired_weight_on_abort(
        i.steps,
        i.spec_replicas,
        i.max_traffic_weight,
        i.stable_rs.map_or(0, |rs| rs.available_replicas),
        i.canary_rs.map_or(0, |rs| rs.available_replicas),
        i.abort_scale_down_delay_seconds,
    );
    Ok(actual([("desired_weight", json!(weight))]))
}

fn current_set_weight(input: &Value) -> Res<Map<String, Value>> {
    let c = Canary::parse(input)?;
    let i = c.input(c.traffic_routing());
    let weight =
        replicas::current_set_weight(i.steps, i.current_step_index, i.abort, i.max_traffic_weight);
    Ok(actual([("set_weight", json!(weight))]))
}

fn canary_replicas_or_weight(input: &Value) -> Res<Map<String, Value>> {
    let c = Canary::parse(input)?;
    let i = c.input(c.traffic_routing());
    Ok(match replicas::canary_replicas_or_weight(&i) {
        CanarySize::Replicas(n) => actual([("replicas", json!(n)), ("weight", json!(0))]),
        CanarySize::Weight(w) => actual([("replicas", Value::Null), ("weight", json!(w))]),
        other => return Err(format!("cannot express canary size {other:?}")),
    })
}

fn threshold_of(v: &Value) -> Res<Option<ProgressThreshold>> {
    if v.is_null() {
        return Ok(None);
    }
    let kind = opt_str(v, &["type"])?.ok_or("cannot express threshold without \"type\"")?;
    let value = req_i32(v, &["value"])?;
    match kind {
        "Percent" | "Percentage" => Ok(Some(ProgressThreshold::Percent(value))),
        "Pods" | "Pod" => Ok(Some(ProgressThreshold::Pods(value))),
        other => Err(format!("cannot express threshold type {other:?}")),
    }
}

fn at_desired(input: &Value) -> Res<Map<String, Value>> {
    let c = Canary::parse(input)?;
    let i = c.input(c.traffic_routing());
    let threshold = match &c.case.rollout.replica_progress_threshold {
        Some(t) => threshold_of(t)?,
        None => None,
    };
    let check = AtDesiredCheck {
        stable_status_replicas: c.case.stable_rs.as_ref().and_then(|rs| rs.status_replicas),
        replica_progress_threshold: threshold,
    };
    Ok(match replicas::at_desired_replica_counts(&i, &check) {
        Ok(at) => actual([("at_desired", json!(at))]),
        Err(e) => actual([("error", json!(e.to_string()))]),
    })
}

// ---------------------------------------------------------------------------------------
// Scalar kinds
// ---------------------------------------------------------------------------------------

const REPLICAS: &[&str] = &["spec_replicas", "replicas", "desired", "rollout_replicas"];
const MAX_WEIGHT: &[&str] = &["max_weight", "max_traffic_weight"];

fn approximate(input: &Value) -> Res<Map<String, Value>> {
    let counts = replicas::approximate_weighted_counts(
        req_i32(input, REPLICAS)?,
        req_i32(input, &["desired_weight", "weight"])?,
        opt_i32(input, MAX_WEIGHT)?.unwrap_or(replicas::DEFAULT_MAX_TRAFFIC_WEIGHT),
        req_i32(input, &["max_surge", "surge"])?,
    );
    Ok(actual([
        ("canary", json!(counts.canary)),
        ("stable", json!(counts.stable)),
    ]))
}

fn weight_to_replicas(input: &Value) -> Res<Map<String, Value>> {
    let n = replicas::traffic_weight_to_replicas(
        req_i32(input, REPLICAS)?,
        req_i32(input, &["weight", "desired_weight"])?,
        opt_i32(input, MAX_WEIGHT)?.unwrap_or(replicas::DEFAULT_MAX_TRAFFIC_WEIGHT),
    );
    Ok(actual([("replicas", json!(n))]))
}

/// A ReplicaSet given as `{spec_replicas, available_replicas}` under one of `keys`.
fn rs_of(input: &Value, keys: &[&str]) -> Res<Option<ReplicaSetCounts>> {
    get(input, keys)
        .map(|v| parse::<VRs>(v, "replica set").map(|rs| rs.counts()))
        .transpose()
}

const RS: &[&str] = &["rs", "replica_set", "canary_rs", "new_rs"];
const THRESHOLD: &[&str] = &["threshold", "replica_progress_threshold"];

fn threshold_in(input: &Value) -> Res<Option<ProgressThreshold>> {
    if let Some(t) = get(input, THRESHOLD) {
        return threshold_of(t);
    }
    if has(input, &["type"]) {
        return threshold_of(input);
    }
    Ok(None)
}

fn progress_threshold(input: &Value) -> Res<Map<String, Value>> {
    let rs = rs_of(input, RS)?;
    let available = match opt_i32(input, &["available_replicas", "available"])? {
        Some(n) => n,
        None => rs
            .map(|rs| rs.available_replicas)
            .ok_or("cannot express case: no available replica count")?,
    };
    let desired = match opt_i32(input, &["desired", "desired_replicas"])? {
        Some(n) => n,
        None => match opt_i32(input, &["weight", "desired_weight"])? {
            Some(w) => replicas::traffic_weight_to_replicas(
                req_i32(input, &["spec_replicas", "replicas"])?,
                w,
                opt_i32(input, MAX_WEIGHT)?.unwrap_or(replicas::DEFAULT_MAX_TRAFFIC_WEIGHT),
            ),
            None => rs
                .map(|rs| rs.spec_replicas)
                .ok_or("cannot express case: no desired replica count")?,
        },
    };
    let met = replicas::replica_progress_threshold_met(threshold_in(input)?, available, desired);
    Ok(actual([("met", json!(met)), ("result", json!(met))]))
}

fn all_desired_available(input: &Value) -> Res<Map<String, Value>> {
    if !has(input, RS) {
        return Err("cannot express case: no replica set (null for none)".into());
    }
    let result = replicas::all_desired_available(
        rs_of(input, RS)?,
        req_i32(input, &["desired", "desired_replicas"])?,
        threshold_in(input)?,
    );
    Ok(actual([("result", json!(result)), ("met", json!(result))]))
}

fn replicas_for_scale_down(input: &Value) -> Res<Map<String, Value>> {
    if !has(input, RS) {
        return Err("cannot express case: no replica set (null for none)".into());
    }
    let n = replicas::replicas_for_scale_down(
        rs_of(input, RS)?,
        opt_bool(input, &["ignore_availability"])?.unwrap_or(false),
    );
    Ok(actual([("replicas", json!(n))]))
}

fn int_or_percent(input: &Value, key: &str) -> Res<Option<IntOrPercent>> {
    get(input, &[key])
        .map(|v| parse::<IntOrPercent>(v, key))
        .transpose()
}

fn fenceposts(input: &Value) -> Res<Map<String, Value>> {
    // An unset value resolves as 0 at this level.
    let surge = int_or_percent(input, "max_surge")?.unwrap_or(IntOrPercent::Int(0));
    let unavailable = int_or_percent(input, "max_unavailable")?.unwrap_or(IntOrPercent::Int(0));
    let replicas = req_i32(input, REPLICAS)?;
    Ok(
        match replicas::resolve_fenceposts(&surge, &unavailable, replicas) {
            Ok((s, u)) => actual([
                ("surge", json!(s)),
                ("unavailable", json!(u)),
                ("max_surge", json!(s)),
                ("max_unavailable", json!(u)),
                ("error", Value::Null),
            ]),
            // Argo returns zeros along with the error.
            Err(e) => actual([
                ("surge", json!(0)),
                ("unavailable", json!(0)),
                ("max_surge", json!(0)),
                ("max_unavailable", json!(0)),
                ("error", json!(e.to_string())),
            ]),
        },
    )
}

#[derive(Clone, Copy)]
enum Budget {
    Surge,
    Unavailable,
}

fn budget(input: &Value, which: Budget) -> Res<Map<String, Value>> {
    let source = get(input, &["rollout"]).unwrap_or(input);
    let strategy = strategy_of(opt_str(source, &["strategy"])?.unwrap_or("canary"))?;
    let surge = int_or_percent(source, "max_surge")?.unwrap_or_else(default_25);
    let unavailable = int_or_percent(source, "max_unavailable")?.unwrap_or_else(default_25);
    let replicas = opt_i32(source, &["spec_replicas", "replicas"])?.unwrap_or(1);
    let result = match which {
        Budget::Surge => replicas::max_surge(strategy, &surge, &unavailable, replicas),
        Budget::Unavailable => replicas::max_unavailable(strategy, &surge, &unavailable, replicas),
    };
    let key = match which {
        Budget::Surge => "max_surge",
        Budget::Unavailable => "max_unavailable",
    };
    // Argo's MaxSurge/MaxUnavailable return 0 when the values do not resolve.
    let (value, error) = match result {
        Ok(n) => (n, Value::Null),
        Err(e) => (0, json!(e.to_string())),
    };
    Ok(actual([
        (key, json!(value)),
        ("value", json!(value)),
        ("result", json!(value)),
        ("error", error),
    ]))
}

fn bluegreen(input: &Value) -> Res<Map<String, Value>> {
    let status = get(input, &["status"]).unwrap_or(input);
    let spec = get(input, &["rollout", "spec"]).unwrap_or(input);
    let look = |keys: &[&str]| {
        get(status, keys)
            .or_else(|| get(spec, keys))
            .or_else(|| get(input, keys))
    };
    let str_at = |keys: &[&str]| -> Res<&str> {
        look(keys)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| format!("{} must be a string", keys[0]))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let int_at = |keys: &[&str]| -> Res<Option<i32>> {
        look(keys)
            .map(|v| {
                v.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| format!("{} must be an integer", keys[0]))
            })
            .transpose()
    };
    let bool_at = |keys: &[&str]| -> Res<bool> {
        look(keys)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| format!("{} must be a boolean", keys[0]))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let new_rs_hash = match look(&["new_rs_hash", "new_rs_name", "new_rs"]) {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o
            .get("hash")
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .ok_or("cannot express new_rs without a name or hash")?,
        Some(other) => return Err(format!("cannot express new_rs {other}")),
        None => return Err("cannot express case: no new_rs_hash".into()),
    };
    let active_selector = str_at(&["active_selector"])?;
    let known: Option<Vec<&str>> = look(&["rs_hashes", "all_rs_hashes", "replica_sets", "all_rss"])
        .map(|v| {
            v.as_array()
                .ok_or("the replica set list must be a list")?
                .iter()
                .map(|x| {
                    x.as_str()
                        .or_else(|| x.get("hash").and_then(Value::as_str))
                        .or_else(|| x.get("name").and_then(Value::as_str))
                        .ok_or_else(|| format!("cannot express replica set {x}"))
                })
                .collect::<Res<Vec<&str>>>()
        })
        .transpose()?;
    let active_rs_exists = match &known {
        Some(list) => list.contains(&active_selector),
        None => !active_selector.is_empty(),
    };
    let pause_conditions = look(&["pause_conditions"])
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    let bg = BlueGreenReplicaInput {
        spec_replicas: int_at(&["spec_replicas", "replicas"])?.unwrap_or(1),
        preview_replica_count: int_at(&["preview_replica_count"])?,
        promote_full: bool_at(&["promote_full"])?,
        new_rs_hash,
        current_pod_hash: str_at(&["current_pod_hash"])?,
        active_selector,
        active_rs_exists,
        paused: bool_at(&["paused"])? || pause_conditions,
        scale_up_preview_check_point: bool_at(&[
            "scale_up_preview_check_point",
            "scale_up_preview_checkpoint",
        ])?,
    };
    Ok(actual([(
        "new_rs_replicas",
        json!(replicas::bluegreen_new_rs_replicas(&bg)),
    )]))
}
