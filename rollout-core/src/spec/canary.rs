//! `spec.strategy.canary` and its steps.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::analysis::{BackgroundAnalysis, ExperimentStep, PodMetadata, RolloutAnalysis};
use super::serde_util::{is_false, null_default};
use super::traffic::TrafficRouting;
use crate::duration::{Duration, DurationError};
use crate::intstr::IntOrPercent;

/// The canary strategy: steps, surge limits, services, traffic routing and analysis.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStrategy {
    /// Service selecting only canary pods (the controller adds the pod hash to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Service selecting only stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// The steps, executed in order. None = a rolling update.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<CanaryStep>,
    /// Traffic routers; without them weights are approximated by replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    /// Pods above the desired count during an update (default 25 %, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrPercent>,
    /// Pods that may be unavailable during an update (default 25 %, rounded down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
    /// Background analysis for the whole update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
    /// Delay before the old stable ReplicaSet is scaled down (traffic routing only;
    /// default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// Maximum number of old ReplicaSets kept up while their delay runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Delay before the canary is scaled down after an abort (traffic routing only;
    /// default 30; 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Shrink the stable ReplicaSet as canary traffic grows (traffic routing only).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub dynamic_stable_scale: bool,
    /// Lower bound for any non-zero canary or stable count (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    /// When the canary counts as scaled (default 100 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
    /// Alternate between two services instead of moving selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPong>,
    /// Anti-affinity against the previous ReplicaSet's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Labels and annotations for pods while they are the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodMetadata>,
    /// Labels and annotations for pods while they are the stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodMetadata>,
}

impl CanaryStrategy {
    /// The weight meaning "all traffic": `trafficRouting.maxTrafficWeight`, or 100.
    pub fn max_traffic_weight(&self) -> i32 {
        self.traffic_routing
            .as_ref()
            .and_then(|t| t.max_traffic_weight)
            .unwrap_or(100)
    }

    /// `maxSurge`, defaulting to 25 %.
    pub fn max_surge(&self) -> IntOrPercent {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrPercent::percent(25))
    }

    /// `maxUnavailable`, defaulting to 25 %.
    pub fn max_unavailable(&self) -> IntOrPercent {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrPercent::percent(25))
    }
}

/// One canary step. On the wire a mapping such as `{"setWeight": 10}` or
/// `{"pause": {"duration": "1m"}}`.
///
/// Argo's step is a struct of optional fields, so one step may carry several kinds at
/// once (`setCanaryScale` together with `setHeaderRoute`, for example); it forbids only
/// combining two of `setWeight`, `pause`, `experiment` and `analysis`. A one-kind step
/// is its own variant; a step with several kinds is [`CanaryStep::Combined`], whose
/// parts keep the order they were written in. [`CanaryStep::parts`] and
/// [`CanaryStep::primary`] give the uniform view the machines use.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CanaryStep {
    /// Send this share of traffic (or of replicas, without traffic routing) to the canary.
    SetWeight(i32),
    /// Pause, for a duration or until promoted.
    Pause(PauseStep),
    /// Scale the canary independently of its traffic weight.
    SetCanaryScale(SetCanaryScale),
    /// Route requests matching headers to the canary.
    SetHeaderRoute(SetHeaderRoute),
    /// Mirror matching requests to the canary.
    SetMirrorRoute(SetMirrorRoute),
    /// Run an AnalysisRun and wait for it.
    Analysis(RolloutAnalysis),
    /// Run an Experiment and wait for it.
    Experiment(ExperimentStep),
    /// Run a step plugin.
    Plugin(PluginStep),
    /// Several kinds in one step (two or more parts, none of them `Combined`).
    Combined(Vec<CanaryStep>),
}

/// The wire names of the step kinds, in declaration order.
pub(crate) const STEP_KINDS: &[&str] = &[
    "setWeight",
    "pause",
    "setCanaryScale",
    "setHeaderRoute",
    "setMirrorRoute",
    "analysis",
    "experiment",
    "plugin",
];

impl CanaryStep {
    /// The one-kind parts of this step: the step itself, or the parts of a combined one.
    pub fn parts(&self) -> &[CanaryStep] {
        match self {
            CanaryStep::Combined(parts) => parts,
            single => std::slice::from_ref(single),
        }
    }

    /// The part that decides when the step is complete, in Argo's order of checks:
    /// pause, setWeight, experiment, analysis, plugin, setCanaryScale, then the routes.
    pub fn primary(&self) -> &CanaryStep {
        fn rank(s: &CanaryStep) -> u8 {
            match s {
                CanaryStep::Pause(_) => 0,
                CanaryStep::SetWeight(_) => 1,
                CanaryStep::Experiment(_) => 2,
                CanaryStep::Analysis(_) => 3,
                CanaryStep::Plugin(_) => 4,
                CanaryStep::SetCanaryScale(_) => 5,
                CanaryStep::SetHeaderRoute(_) => 6,
                CanaryStep::SetMirrorRoute(_) => 7,
                CanaryStep::Combined(_) => 8,
            }
        }
        self.parts().iter().min_by_key(|p| rank(p)).unwrap_or(self)
    }

    /// The wire name of this step's kind (`setWeight`, `pause`, ...); for a combined
    /// step, the kind of its [`primary`](CanaryStep::primary) part.
    pub fn kind(&self) -> &'static str {
        match self {
            CanaryStep::Combined(_) => match self.primary() {
                CanaryStep::Combined(_) => "combined",
                p => p.kind(),
            },
            CanaryStep::SetWeight(_) => "setWeight",
            CanaryStep::Pause(_) => "pause",
            CanaryStep::SetCanaryScale(_) => "setCanaryScale",
            CanaryStep::SetHeaderRoute(_) => "setHeaderRoute",
            CanaryStep::SetMirrorRoute(_) => "setMirrorRoute",
            CanaryStep::Analysis(_) => "analysis",
            CanaryStep::Experiment(_) => "experiment",
            CanaryStep::Plugin(_) => "plugin",
        }
    }
}

impl<'de> Deserialize<'de> for CanaryStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = CanaryStep;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a canary step: a mapping with exactly one of setWeight, pause, setCanaryScale, setHeaderRoute, setMirrorRoute, analysis, experiment, plugin")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CanaryStep, A::Error> {
        let mut parts: Vec<CanaryStep> = Vec::with_capacity(1);
        while let Some(key) = map.next_key::<String>()? {
            let step = match key.as_str() {
                "setWeight" => CanaryStep::SetWeight(map.next_value()?),
                "pause" => CanaryStep::Pause(map.next_value()?),
                "setCanaryScale" => CanaryStep::SetCanaryScale(map.next_value()?),
                "setHeaderRoute" => CanaryStep::SetHeaderRoute(map.next_value()?),
                "setMirrorRoute" => CanaryStep::SetMirrorRoute(map.next_value()?),
                "analysis" => CanaryStep::Analysis(map.next_value()?),
                "experiment" => CanaryStep::Experiment(map.next_value()?),
                "plugin" => CanaryStep::Plugin(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, STEP_KINDS)),
            };
            if parts.iter().any(|p| p.kind() == step.kind()) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            parts.push(step);
        }
        let exclusive: Vec<&str> = parts
            .iter()
            .map(CanaryStep::kind)
            .filter(|k| matches!(*k, "setWeight" | "pause" | "experiment" | "analysis"))
            .collect();
        if exclusive.len() > 1 {
            return Err(de::Error::custom(format!(
                "a step may hold only one of setWeight, pause, experiment, analysis; found `{}` and `{}`",
                exclusive[0], exclusive[1]
            )));
        }
        match parts.len() {
            0 => Err(de::Error::custom(format!(
                "empty step: expected one of {}",
                STEP_KINDS.join(", ")
            ))),
            1 => Ok(parts.pop().unwrap_or(CanaryStep::Combined(Vec::new()))),
            _ => Ok(CanaryStep::Combined(parts)),
        }
    }
}

impl Serialize for CanaryStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let parts = self.parts();
        let mut map = s.serialize_map(Some(parts.len()))?;
        for part in parts {
            match part {
                CanaryStep::SetWeight(v) => map.serialize_entry("setWeight", v)?,
                CanaryStep::Pause(v) => map.serialize_entry("pause", v)?,
                CanaryStep::SetCanaryScale(v) => map.serialize_entry("setCanaryScale", v)?,
                CanaryStep::SetHeaderRoute(v) => map.serialize_entry("setHeaderRoute", v)?,
                CanaryStep::SetMirrorRoute(v) => map.serialize_entry("setMirrorRoute", v)?,
                CanaryStep::Analysis(v) => map.serialize_entry("analysis", v)?,
                CanaryStep::Experiment(v) => map.serialize_entry("experiment", v)?,
                CanaryStep::Plugin(v) => map.serialize_entry("plugin", v)?,
                CanaryStep::Combined(_) => {
                    return Err(serde::ser::Error::custom("a combined step cannot nest"));
                }
            }
        }
        map.end()
    }
}

/// A `pause` step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseStep {
    /// How long to pause; unset = until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<PauseDuration>,
}

impl PauseStep {
    /// The pause length in seconds; `None` = an indefinite pause (until promoted).
    ///
    /// A duration that does not parse (which [`super::Rollout::validate`] rejects) gives
    /// `Some(-1)`, Argo's marker for an invalid duration, so such a pause ends at once as
    /// it does in Argo. Use [`PauseStep::try_duration_seconds`] to see the error.
    pub fn duration_seconds(&self) -> Option<i64> {
        self.duration.as_ref().map(|d| d.seconds().unwrap_or(-1))
    }

    /// Like [`PauseStep::duration_seconds`], with parse errors reported.
    pub fn try_duration_seconds(&self) -> Result<Option<i64>, DurationError> {
        self.duration
            .as_ref()
            .map(PauseDuration::seconds)
            .transpose()
    }
}

/// A pause duration as written: an integer (seconds) or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum PauseDuration {
    /// `duration: 30`: seconds.
    Seconds(i64),
    /// `duration: "1h30m"` (Go duration) or `duration: "45"` (seconds).
    Text(String),
}

impl PauseDuration {
    /// The duration in whole seconds (fractions truncated, as Argo does).
    ///
    /// A string is first read as a plain integer (seconds), then as a Go duration
    /// (`1h30m`, `30s`, `1.5m`, `500ms`).
    pub fn seconds(&self) -> Result<i64, DurationError> {
        match self {
            PauseDuration::Seconds(n) => Ok(*n),
            PauseDuration::Text(s) => duration_text_seconds(s),
        }
    }
}

/// Reads an Argo duration string: a bare integer is seconds, anything else is a Go
/// duration, truncated to whole seconds.
pub(crate) fn duration_text_seconds(s: &str) -> Result<i64, DurationError> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(i64::from(n));
    }
    Duration::parse(s).map(|d| d.as_millis() / 1000)
}

impl From<i64> for PauseDuration {
    fn from(n: i64) -> Self {
        PauseDuration::Seconds(n)
    }
}

impl From<&str> for PauseDuration {
    fn from(s: &str) -> Self {
        PauseDuration::Text(s.to_string())
    }
}

impl fmt::Display for PauseDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseDuration::Seconds(n) => write!(f, "{n}"),
            PauseDuration::Text(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for PauseDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PauseDurationVisitor)
    }
}

struct PauseDurationVisitor;

impl Visitor<'_> for PauseDurationVisitor {
    type Value = PauseDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer number of seconds or a duration string such as \"30s\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PauseDuration, E> {
        Ok(PauseDuration::Seconds(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PauseDuration, E> {
        i64::try_from(v)
            .map(PauseDuration::Seconds)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PauseDuration, E> {
        Ok(PauseDuration::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PauseDuration, E> {
        Ok(PauseDuration::Text(v))
    }
}

/// A `setCanaryScale` step: exactly one of `weight`, `replicas`, `matchTrafficWeight`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCanaryScale {
    /// Canary pods as a share of `spec.replicas` (over `maxTrafficWeight`), rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Canary pods as an absolute count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Go back to scaling the canary with its traffic weight.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub match_traffic_weight: bool,
}

/// A `setHeaderRoute` step: requests matching all header matches go to the canary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetHeaderRoute {
    /// The managed route to set (must be listed in `trafficRouting.managedRoutes`).
    #[serde(default)]
    pub name: String,
    /// Header matches; empty = remove the route.
    #[serde(
        rename = "match",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#match: Vec<HeaderRoutingMatch>,
}

/// One header match of a header route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderRoutingMatch {
    /// Request header name.
    pub header_name: String,
    /// How the header value must match.
    pub header_value: StringMatch,
}

/// A string match: exactly one of `exact`, `prefix`, `regex`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    /// The value must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The value must start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The value must match this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl StringMatch {
    /// How many of `exact`, `prefix`, `regex` are set to a non-empty value.
    pub fn kinds_set(&self) -> usize {
        [&self.exact, &self.prefix, &self.regex]
            .into_iter()
            .filter(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
            .count()
    }
}

/// A `setMirrorRoute` step: mirror matching requests to the canary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetMirrorRoute {
    /// The managed route to set (must be listed in `trafficRouting.managedRoutes`).
    pub name: String,
    /// Match blocks (OR'ed; fields within a block are AND'ed); empty = remove the route.
    #[serde(
        rename = "match",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#match: Vec<RouteMatch>,
    /// Share of matching requests to mirror (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

/// One match block of a mirror route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    /// HTTP method match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// URL path match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Header matches, by header name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, StringMatch>,
}

/// A `plugin` step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginStep {
    /// Plugin name (`<org>/<name>`).
    pub name: String,
    /// Free-form plugin configuration, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// When the canary counts as fully scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaProgressThreshold {
    /// Whether `value` is a percentage or a pod count.
    pub r#type: ProgressThresholdType,
    /// The threshold.
    pub value: i32,
}

/// The unit of a [`ReplicaProgressThreshold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProgressThresholdType {
    /// A percentage of the desired canary pods.
    Percent,
    /// An absolute number of pods.
    Pods,
}

/// The two services a ping-pong canary alternates between.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PingPong {
    /// The "ping" service.
    pub ping_service: String,
    /// The "pong" service.
    pub pong_service: String,
}

/// Anti-affinity against the previous ReplicaSet's pods: exactly one of the two kinds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AntiAffinity {
    /// A preferred (weighted) rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution: Option<PreferredAntiAffinity>,
    /// A required rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution: Option<RequiredAntiAffinity>,
}

/// A preferred anti-affinity rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferredAntiAffinity {
    /// Weight of the term, 1..=100.
    pub weight: i32,
}

/// A required anti-affinity rule (no settings).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAntiAffinity {}
