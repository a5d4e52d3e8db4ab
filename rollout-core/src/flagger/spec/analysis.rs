//! `spec.analysis`: the schedule, the weights, the checks (metrics and webhooks), alerts
//! and session affinity.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::CrossNamespaceObjectReference;
use super::serde_util::{is_false, null_default};
use super::service::HttpMatchRequest;
use crate::duration::Duration;

/// Analysis interval when `interval` is absent or not a Go duration.
const DEFAULT_INTERVAL_SECS: i64 = 60;
/// Flagger never ticks faster than this.
const MIN_INTERVAL_SECS: i64 = 10;

/// `spec.analysis` of a `Canary`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryAnalysis {
    /// Tick period, a Go duration (default 60 s; see [`interval_seconds`](Self::interval_seconds)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Number of checks for A/B testing and blue/green (0: weighted canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// Mirror traffic to the canary before shifting it (canary) or during the iterations
    /// (blue/green).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub mirror: bool,
    /// Percentage of the traffic mirrored (unset: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_weight: Option<i32>,
    /// Promotion starts once the canary weight reaches this (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<i32>,
    /// Linear weight increment per passing tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<i32>,
    /// Explicit weight ladder (used when `stepWeight` is not positive).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub step_weights: Vec<i32>,
    /// Primary weight increment per tick while promoting (0 or unset: all at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<i32>,
    /// Failed checks that trigger a rollback (see [`threshold`](Self::threshold)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// Percentage of primary pods that must be available (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ready_threshold: Option<i32>,
    /// Percentage of canary pods that must be available (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_ready_threshold: Option<i32>,
    /// Alert providers to notify.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub alerts: Vec<CanaryAlert>,
    /// Metric checks, run in order on every analysis tick.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metrics: Vec<CanaryMetric>,
    /// Webhooks (gates, hooks, load tests).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub webhooks: Vec<CanaryWebhook>,
    /// A/B testing conditions: requests that match go to the canary.
    #[serde(
        rename = "match",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_: Vec<HttpMatchRequest>,
    /// Sticky sessions for canary users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinity>,
}

impl CanaryAnalysis {
    /// The tick period as Flagger computes it: `interval` read as a Go duration, 60 s when
    /// absent or unreadable, and never below 10 s.
    pub fn interval(&self) -> Duration {
        let parsed = self
            .interval
            .as_deref()
            .and_then(|s| Duration::parse(s).ok())
            .unwrap_or(Duration::from_secs(DEFAULT_INTERVAL_SECS));
        parsed.max(Duration::from_secs(MIN_INTERVAL_SECS))
    }

    /// [`interval`](Self::interval) in whole seconds (60 by default, at least 10).
    pub fn interval_seconds(&self) -> i64 {
        self.interval().as_secs()
    }

    /// Failed checks that trigger a rollback: `threshold`, or 1 when it is absent or not
    /// positive (Flagger reads `threshold <= 0` as 1).
    pub fn threshold(&self) -> i32 {
        match self.threshold {
            Some(t) if t > 0 => t,
            _ => 1,
        }
    }

    /// `iterations`, defaulting to 0.
    pub fn iterations(&self) -> i32 {
        self.iterations.unwrap_or(0)
    }

    /// `stepWeight`, defaulting to 0.
    pub fn step_weight(&self) -> i32 {
        self.step_weight.unwrap_or(0)
    }

    /// `stepWeightPromotion`, defaulting to 0 (promote in one step).
    pub fn step_weight_promotion(&self) -> i32 {
        self.step_weight_promotion.unwrap_or(0)
    }

    /// The weight at which promotion starts (reference B.3): `min(100, last stepWeights
    /// entry)` when `stepWeights` is set; else `maxWeight` when positive; else 100.
    ///
    /// Flagger does not clamp the canary weight to this: a step may overshoot it.
    pub fn max_weight(&self) -> i32 {
        if let Some(&last) = self.step_weights.last() {
            last.min(100)
        } else {
            match self.max_weight {
                Some(w) if w > 0 => w,
                _ => 100,
            }
        }
    }

    /// `primaryReadyThreshold`, defaulting to 100 (percent).
    pub fn primary_ready_threshold(&self) -> i32 {
        self.primary_ready_threshold.unwrap_or(100)
    }

    /// `canaryReadyThreshold`, defaulting to 100 (percent).
    pub fn canary_ready_threshold(&self) -> i32 {
        self.canary_ready_threshold.unwrap_or(100)
    }

    /// The deployment strategy these fields select (Flagger derives it, it is never
    /// declared): `iterations > 0` with `match` is A/B testing, `iterations > 0` without
    /// is blue/green, anything else is a weighted canary.
    ///
    /// The provider can override this: see [`CanarySpec::strategy`](super::CanarySpec::strategy).
    pub fn strategy(&self) -> Strategy {
        if self.iterations() > 0 {
            if self.match_.is_empty() {
                Strategy::BlueGreen
            } else {
                Strategy::ABTesting
            }
        } else {
            Strategy::Canary
        }
    }
}

/// Flagger's deployment strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Weighted traffic shifting (`stepWeight` / `stepWeights`).
    Canary,
    /// Requests matching `analysis.match` go to the canary for `iterations` checks.
    ABTesting,
    /// The canary is tested for `iterations` checks, then gets all traffic before promotion.
    BlueGreen,
}

impl Strategy {
    /// The name Flagger uses in its metrics (`deployment_strategy` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "canary",
            Strategy::ABTesting => "ab-testing",
            Strategy::BlueGreen => "blue-green",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The builtin metric names: they run the provider's own query whatever else is set.
pub const BUILTIN_METRICS: [&str; 2] = ["request-success-rate", "request-duration"];

/// One entry of `analysis.metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryMetric {
    /// Name; `request-success-rate` and `request-duration` are builtin.
    pub name: String,
    /// Query window, a Go duration (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Deprecated single bound (see Flagger's rules per metric kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Accepted range, both bounds inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Deprecated inline PromQL query against `metricsServer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A `MetricTemplate` (namespace defaults to the canary's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<CrossNamespaceObjectReference>,
    /// Values for `{{ variables.<key> }}` in the template.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub template_variables: BTreeMap<String, String>,
}

impl CanaryMetric {
    /// `interval`, defaulting to `1m`.
    pub fn interval(&self) -> &str {
        self.interval
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("1m")
    }

    /// The name is one of [`BUILTIN_METRICS`].
    pub fn is_builtin(&self) -> bool {
        BUILTIN_METRICS.contains(&self.name.as_str())
    }
}

/// `thresholdRange` of a metric: the value passes when `min <= v <= max` (an absent
/// bound is not checked).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdRange {
    /// Lowest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One entry of `analysis.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryWebhook {
    /// Name (sent in the payload).
    pub name: String,
    /// When it is called (absent or `""`: `rollout`).
    #[serde(default, deserialize_with = "null_default")]
    pub r#type: HookType,
    /// Where to POST.
    pub url: String,
    /// Do not alert when this hook fails.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub mute_alert: bool,
    /// Request timeout, a Go duration (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retries of a failed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Skip TLS verification.
    #[serde(
        rename = "disableTLS",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disable_tls: bool,
    /// Sent in the payload (the load tester reads `type`, `cmd`, `logCmdOutput`, ...).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
}

impl CanaryWebhook {
    /// The request timeout as Flagger computes it: 10 s when `timeout` is absent or
    /// shorter than two characters, else the Go duration (10 s if it does not parse).
    pub fn timeout(&self) -> Duration {
        const DEFAULT: Duration = Duration::from_secs(10);
        match self.timeout.as_deref() {
            Some(t) if t.len() >= 2 => Duration::parse(t).unwrap_or(DEFAULT),
            _ => DEFAULT,
        }
    }
}

/// When a webhook is called (`analysis.webhooks[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HookType {
    /// `pre-rollout`: first analysis tick of a run; failure counts as a failed check.
    PreRollout,
    /// `rollout` (or empty): every later analysis tick, before the metrics.
    #[default]
    #[serde(alias = "")]
    Rollout,
    /// `confirm-rollout`: gate before a new revision is scaled up.
    ConfirmRollout,
    /// `post-rollout`: after Succeeded or Failed.
    PostRollout,
    /// `confirm-promotion`: gate before promotion.
    ConfirmPromotion,
    /// `rollback`: a successful call triggers a rollback.
    Rollback,
    /// `confirm-traffic-increase`: gate before each weight increase.
    ConfirmTrafficIncrease,
    /// `event`: receives every event Flagger records for the canary.
    Event,
}

impl HookType {
    /// The name Flagger uses.
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::PreRollout => "pre-rollout",
            HookType::Rollout => "rollout",
            HookType::ConfirmRollout => "confirm-rollout",
            HookType::PostRollout => "post-rollout",
            HookType::ConfirmPromotion => "confirm-promotion",
            HookType::Rollback => "rollback",
            HookType::ConfirmTrafficIncrease => "confirm-traffic-increase",
            HookType::Event => "event",
        }
    }
}

impl fmt::Display for HookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `analysis.alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryAlert {
    /// Name of the alert.
    pub name: String,
    /// Lowest severity sent to this provider (absent or `""`: `info`).
    #[serde(default, deserialize_with = "null_default")]
    pub severity: AlertSeverity,
    /// The `AlertProvider` (namespace defaults to the canary's).
    pub provider_ref: CrossNamespaceObjectReference,
}

/// Severity filter of an alert: a provider receives messages of this severity and above.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AlertSeverity {
    /// Everything.
    #[default]
    #[serde(alias = "")]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl AlertSeverity {
    /// The name Flagger uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warn => "warn",
            AlertSeverity::Error => "error",
        }
    }
}

/// `analysis.sessionAffinity`: users who reached the canary keep reaching it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionAffinity {
    /// Cookie that pins a session to the canary.
    pub cookie_name: String,
    /// Cookie that pins a session to the primary (must differ from `cookieName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_cookie_name: Option<String>,
    /// Cookie lifetime in seconds (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Cookie `Domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Cookie `HttpOnly`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub http_only: bool,
    /// Cookie `Partitioned`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub partitioned: bool,
    /// Cookie `Path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Cookie `SameSite`: `Strict`, `Lax` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    /// Cookie `Secure`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub secure: bool,
}

impl SessionAffinity {
    /// `maxAge`, defaulting to 86400 seconds (one day).
    pub fn max_age(&self) -> i64 {
        self.max_age.unwrap_or(86_400)
    }
}
