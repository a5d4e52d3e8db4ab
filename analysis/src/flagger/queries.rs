//! Flagger's builtin metrics: the PromQL each observer runs for `request-success-rate`
//! and `request-duration`.
//!
//! # The model
//!
//! A canary metric named `request-success-rate` or `request-duration` runs a query that
//! Flagger builds in, chosen by the **metrics provider** of the canary:
//!
//! 1. [`metrics_provider`]: the controller's `-mesh-provider` flag (a flag containing
//!    `crossover` becomes `crossover`); a canary's own `spec.provider` replaces it, except
//!    that a flag containing `linkerd` forces `linkerd` whenever the canary sets a
//!    provider; a `targetRef` of kind `Service` appends `:service`.
//! 2. [`Observer::for_provider`]: the observer for that key. `appmesh*`, `gloo*` and
//!    `gatewayapi*` match by prefix (so they keep working with `:service`); `linkerd`,
//!    `istio`, `contour`, `nginx`, `kubernetes` (the `http` observer), `skipper`,
//!    `traefik`, `osm`, `kuma`, `apisix` and `knative` match exactly; anything else,
//!    including `linkerd:service`, falls back to Istio.
//! 3. [`Observer::query`]: the query, rendered with the canary's [`QueryModel`] and with
//!    every run of whitespace collapsed to one space, which is the exact string Flagger
//!    sends to Prometheus (leading space included).
//!
//! Success rates are percentages. Durations are milliseconds, truncated to whole
//! milliseconds, except for the `http` observer whose query yields seconds
//! ([`Observer::duration_ms`] converts).
//!
//! The query templates are facts taken from fluxcd/flagger `pkg/metrics/observers/*.go`
//! and the expected strings of the `*_test.go` next to them.

use std::fmt;

use super::render::{QueryModel, RenderError, render_query};

/// The two builtin metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuiltinMetric {
    /// `request-success-rate`: percentage of non-5xx responses.
    RequestSuccessRate,
    /// `request-duration`: P99 (or mean) latency in milliseconds.
    RequestDuration,
}

impl BuiltinMetric {
    /// Both, in Flagger's order.
    pub const ALL: [BuiltinMetric; 2] = [
        BuiltinMetric::RequestSuccessRate,
        BuiltinMetric::RequestDuration,
    ];

    /// The metric for a `analysis.metrics[].name`, if it is a builtin one.
    pub fn from_name(name: &str) -> Option<BuiltinMetric> {
        match name {
            "request-success-rate" => Some(BuiltinMetric::RequestSuccessRate),
            "request-duration" => Some(BuiltinMetric::RequestDuration),
            _ => None,
        }
    }

    /// The metric's name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinMetric::RequestSuccessRate => "request-success-rate",
            BuiltinMetric::RequestDuration => "request-duration",
        }
    }
}

impl fmt::Display for BuiltinMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flagger's metric observers: which Prometheus series the builtin metrics read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Observer {
    /// Istio (`istio_requests_total`); also the fallback for unknown providers.
    Istio,
    /// Linkerd (`response_total`).
    Linkerd,
    /// ingress-nginx (`nginx_ingress_controller_*`).
    Nginx,
    /// App Mesh (Envoy sidecar series by pod name).
    AppMesh,
    /// Contour (Envoy cluster `<ns>_<target>-canary_<port>`).
    Contour,
    /// Gloo (Envoy cluster `<ns>-<target>-canaryupstream-...`).
    Gloo,
    /// Traefik (`traefik_service_request_duration_seconds_bucket`).
    Traefik,
    /// Skipper (`skipper_*` by route).
    Skipper,
    /// Open Service Mesh (`osm_request_*`).
    Osm,
    /// Kuma (Envoy series by Kuma service).
    Kuma,
    /// Apache APISIX (`apisix_http_*`).
    Apisix,
    /// Knative (Envoy cluster `<ns>/<revision>`).
    Knative,
    /// Plain application metrics (`http_request_duration_seconds_*`): providers
    /// `kubernetes` and `gatewayapi*`.
    Http,
}

impl Observer {
    /// Every observer.
    pub const ALL: [Observer; 13] = [
        Observer::Istio,
        Observer::Linkerd,
        Observer::Nginx,
        Observer::AppMesh,
        Observer::Contour,
        Observer::Gloo,
        Observer::Traefik,
        Observer::Skipper,
        Observer::Osm,
        Observer::Kuma,
        Observer::Apisix,
        Observer::Knative,
        Observer::Http,
    ];

    /// The observer Flagger's factory picks for a metrics-provider key (see
    /// [`metrics_provider`] for how the key is made).
    pub fn for_provider(key: &str) -> Observer {
        match key {
            k if k.starts_with("appmesh") => Observer::AppMesh,
            "linkerd" => Observer::Linkerd,
            "istio" => Observer::Istio,
            "contour" => Observer::Contour,
            k if k.starts_with("gloo") => Observer::Gloo,
            "nginx" => Observer::Nginx,
            "kubernetes" => Observer::Http,
            "skipper" => Observer::Skipper,
            "traefik" => Observer::Traefik,
            "osm" => Observer::Osm,
            "kuma" => Observer::Kuma,
            "apisix" => Observer::Apisix,
            "knative" => Observer::Knative,
            k if k.starts_with("gatewayapi") => Observer::Http,
            _ => Observer::Istio,
        }
    }

    /// A short name (`istio`, `linkerd`, ..., `http`).
    pub fn as_str(self) -> &'static str {
        match self {
            Observer::Istio => "istio",
            Observer::Linkerd => "linkerd",
            Observer::Nginx => "nginx",
            Observer::AppMesh => "appmesh",
            Observer::Contour => "contour",
            Observer::Gloo => "gloo",
            Observer::Traefik => "traefik",
            Observer::Skipper => "skipper",
            Observer::Osm => "osm",
            Observer::Kuma => "kuma",
            Observer::Apisix => "apisix",
            Observer::Knative => "knative",
            Observer::Http => "http",
        }
    }

    /// The query template (whitespace already collapsed) for every observer but
    /// Skipper, whose route pattern is built in code.
    fn template(self, metric: BuiltinMetric) -> Option<&'static str> {
        use BuiltinMetric::{RequestDuration as Rd, RequestSuccessRate as Sr};
        Some(match (self, metric) {
            (Observer::Istio, Sr) => ISTIO_SR,
            (Observer::Istio, Rd) => ISTIO_RD,
            (Observer::Linkerd, Sr) => LINKERD_SR,
            (Observer::Linkerd, Rd) => LINKERD_RD,
            (Observer::Nginx, Sr) => NGINX_SR,
            (Observer::Nginx, Rd) => NGINX_RD,
            (Observer::AppMesh, Sr) => APPMESH_SR,
            (Observer::AppMesh, Rd) => APPMESH_RD,
            (Observer::Contour, Sr) => CONTOUR_SR,
            (Observer::Contour, Rd) => CONTOUR_RD,
            (Observer::Gloo, Sr) => GLOO_SR,
            (Observer::Gloo, Rd) => GLOO_RD,
            (Observer::Traefik, Sr) => TRAEFIK_SR,
            (Observer::Traefik, Rd) => TRAEFIK_RD,
            (Observer::Osm, Sr) => OSM_SR,
            (Observer::Osm, Rd) => OSM_RD,
            (Observer::Kuma, Sr) => KUMA_SR,
            (Observer::Kuma, Rd) => KUMA_RD,
            (Observer::Apisix, Sr) => APISIX_SR,
            (Observer::Apisix, Rd) => APISIX_RD,
            (Observer::Knative, Sr) => KNATIVE_SR,
            (Observer::Knative, Rd) => KNATIVE_RD,
            (Observer::Http, Sr) => HTTP_SR,
            (Observer::Http, Rd) => HTTP_RD,
            (Observer::Skipper, _) => return None,
        })
    }

    /// The model fields the observer's query for `metric` uses, in the order they
    /// first appear.
    pub fn fields(self, metric: BuiltinMetric) -> Vec<&'static str> {
        let Some(template) = self.template(metric) else {
            return vec!["namespace", "ingress", "service", "interval"];
        };
        let mut found: Vec<(usize, &'static str)> = MODEL_FIELDS
            .iter()
            .filter_map(|&f| template.find(&format!("{{{{ {f} }}}}")).map(|i| (i, f)))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, f)| f).collect()
    }

    /// The exact query Flagger sends for `metric` (whitespace collapsed, leading space
    /// kept). Fails when a field the query needs is empty.
    pub fn query(
        self,
        metric: BuiltinMetric,
        model: &QueryModel,
    ) -> Result<String, BuiltinQueryError> {
        for field in self.fields(metric) {
            if model.function(field).is_none_or(str::is_empty) {
                return Err(BuiltinQueryError::MissingField {
                    observer: self,
                    metric,
                    field,
                });
            }
        }
        let rendered = match self.template(metric) {
            Some(template) => {
                render_query(template, model).map_err(|source| BuiltinQueryError::Render {
                    observer: self,
                    metric,
                    source,
                })?
            }
            None => skipper_query(metric, model),
        };
        Ok(collapse_whitespace(&rendered))
    }

    /// The request duration in milliseconds for a value of this observer's
    /// `request-duration` query (the `http` observer's query yields seconds; Flagger
    /// multiplies by 1000 before truncating).
    pub fn duration_ms(self, value: f64) -> f64 {
        match self {
            Observer::Http => value * 1000.0,
            _ => value,
        }
    }

    /// Whether the observer prefixes a failed query's error with `running query
    /// failed: ` (all do, except the `http` observer's success rate).
    pub fn wraps_query_errors(self, metric: BuiltinMetric) -> bool {
        !(self == Observer::Http && metric == BuiltinMetric::RequestSuccessRate)
    }
}

impl fmt::Display for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a builtin query could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuiltinQueryError {
    /// A field the query needs is empty (Flagger would send a query that selects
    /// nothing).
    #[error("the {observer} {metric} query needs a non-empty {field}")]
    MissingField {
        /// The observer.
        observer: Observer,
        /// The metric.
        metric: BuiltinMetric,
        /// The model field (`namespace`, `target`, `ingress`, `route`, ...).
        field: &'static str,
    },
    /// The template did not render (a bug in the template table).
    #[error("the {observer} {metric} query did not render: {source}")]
    Render {
        /// The observer.
        observer: Observer,
        /// The metric.
        metric: BuiltinMetric,
        /// The renderer's error.
        source: RenderError,
    },
}

/// The metrics-provider key Flagger uses to pick an observer (reference A.8):
/// `mesh_provider` is the controller's `-mesh-provider` flag, `canary_provider` the
/// canary's `spec.provider`, `target_kind` its `spec.targetRef.kind`.
pub fn metrics_provider(
    mesh_provider: &str,
    canary_provider: Option<&str>,
    target_kind: &str,
) -> String {
    let mut key = if mesh_provider.contains("crossover") {
        "crossover".to_string()
    } else {
        mesh_provider.to_string()
    };
    if let Some(p) = canary_provider.filter(|p| !p.is_empty()) {
        key = if mesh_provider.contains("linkerd") {
            "linkerd".to_string()
        } else {
            p.to_string()
        };
    }
    if target_kind == "Service" {
        key.push_str(":service");
    }
    key
}

/// Replaces every run of whitespace (space, tab, newline, carriage return, form feed)
/// with one space, as Flagger's Prometheus client does before sending a query. Leading
/// and trailing runs become one space too.
pub fn collapse_whitespace(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut in_space = false;
    for c in query.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c') {
            if !in_space {
                out.push(' ');
                in_space = true;
            }
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

const MODEL_FIELDS: [&str; 7] = [
    "name",
    "namespace",
    "target",
    "service",
    "ingress",
    "route",
    "interval",
];

/// Skipper's route names replace every non-word character with `_`.
fn skipper_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn skipper_query(metric: BuiltinMetric, model: &QueryModel) -> String {
    let route = format!(
        "kube(ew)?_{}__{}_canary__.*__{}_canary(_[0-9]+)?",
        skipper_word(&model.namespace),
        skipper_word(&model.ingress),
        skipper_word(&model.service)
    );
    let interval = &model.interval;
    match metric {
        BuiltinMetric::RequestSuccessRate => format!(
            " sum(rate(skipper_response_duration_seconds_bucket{{route=~\"{route}\",code!~\"5..\",le=\"+Inf\"}}[{interval}])) / sum(rate(skipper_response_duration_seconds_bucket{{route=~\"{route}\",le=\"+Inf\"}}[{interval}])) * 100"
        ),
        BuiltinMetric::RequestDuration => format!(
            " sum(rate(skipper_serve_route_duration_seconds_sum{{route=~\"{route}\"}}[{interval}])) / sum(rate(skipper_serve_route_duration_seconds_count{{route=~\"{route}\"}}[{interval}])) * 1000"
        ),
    }
}

// The query templates, whitespace collapsed. Facts from fluxcd/flagger
// pkg/metrics/observers/<observer>.go.

const ISTIO_SR: &str = r#" sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) * 100"#;
const ISTIO_RD: &str = r#" histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) by (le) )"#;

const LINKERD_SR: &str = r#" sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", classification!="failure", direction="inbound" }[{{ interval }}] ) ) / sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) * 100"#;
const LINKERD_RD: &str = r#" histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) by (le) )"#;

const NGINX_SR: &str = r#" sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 100"#;
const NGINX_RD: &str = r#" sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 1000"#;

const APPMESH_SR: &str = r#" sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100"#;
const APPMESH_RD: &str = r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )"#;

const CONTOUR_SR: &str = r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#;
const CONTOUR_RD: &str = r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#;

const GLOO_SR: &str = r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#;
const GLOO_RD: &str = r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#;

const TRAEFIK_SR: &str = r#" sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[{{ interval }}] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[{{ interval }}] ) ) * 100"#;
const TRAEFIK_RD: &str = r#" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd" }[{{ interval }}] ) ) by (le) ) * 1000"#;

const OSM_SR: &str = r#" sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) * 100"#;
const OSM_RD: &str = r#" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) by (le) )"#;

const KUMA_SR: &str = r#" sum( rate( envoy_cluster_upstream_rq{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#;
const KUMA_RD: &str = r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#;

const APISIX_SR: &str = r#" sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+", code!~"5.." }[{{ interval }}] ) ) / sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) * 100"#;
const APISIX_RD: &str = r#" histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) by (le) )"#;

const KNATIVE_SR: &str = r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) * 100"#;
const KNATIVE_RD: &str = r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) by (le) )"#;

const HTTP_SR: &str = r#" sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100"#;
const HTTP_RD: &str = r#" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )"#;
