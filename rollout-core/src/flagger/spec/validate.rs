//! The rules behind [`super::Canary::validate`].
//!
//! Every rule names its source in a comment:
//! - **CRD**: Flagger's CustomResourceDefinition (`artifacts/flagger/crd.yaml`, 1.44.0);
//!   the API server rejects a canary that breaks it.
//! - **Flagger**: a check Flagger's controller makes, or a behaviour of its loop
//!   described in the research note (`reference/flagger.md`, sections A and B).
//! - **Kubernetes**: a rule the API server applies to an object Flagger generates from the
//!   field (the Service, the HPA).
//! - **never finishes**: Flagger accepts the value, but its loop can then never promote
//!   (or never pass a check); rejected as an authoring error.
//!
//! Paths use the JSON names of the fields; map entries are written `headers.<key>`.

use std::collections::BTreeMap;

use super::analysis::{CanaryAnalysis, CanaryMetric, CanaryWebhook, SessionAffinity};
use super::service::{CanaryService, HttpMatchRequest, IntOrString, StringMatch};
use super::{
    API_VERSION, AutoscalerReference, Canary, CanarySpec, KIND, LocalObjectReference,
    ValidationErrors,
};
use crate::duration::Duration;

/// Values of `spec.provider` (CRD enum).
const PROVIDERS: &[&str] = &[
    "apisix",
    "appmesh",
    "appmesh:v1beta2",
    "contour",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "gloo",
    "istio",
    "knative",
    "kubernetes",
    "kuma",
    "linkerd",
    "nginx",
    "osm",
    "skipper",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "traefik",
];

pub(super) fn validate(c: &Canary) -> ValidationErrors {
    let mut v = ValidationErrors::default();
    if c.api_version != API_VERSION {
        v.push("apiVersion", format!("must be {API_VERSION:?}"));
    }
    if c.kind != KIND {
        v.push("kind", format!("must be {KIND:?}"));
    }
    // Kubernetes: every object needs a name (or a generateName).
    if !is_set(&c.metadata.name) && !is_set(&c.metadata.generate_name) {
        v.push("metadata.name", "required (or metadata.generateName)");
    }
    spec(&mut v, &c.spec);
    v
}

fn is_set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

fn in_range(v: &mut ValidationErrors, path: &str, value: Option<i32>, lo: i32, hi: i32) {
    if let Some(n) = value
        && !(lo..=hi).contains(&n)
    {
        v.push(path, format!("must be {lo}..={hi}, got {n}"));
    }
}

fn at_least(v: &mut ValidationErrors, path: &str, value: Option<i32>, lo: i32) {
    if let Some(n) = value
        && n < lo
    {
        v.push(path, format!("must be >= {lo}, got {n}"));
    }
}

fn required(v: &mut ValidationErrors, path: &str, value: &str) {
    if value.is_empty() {
        v.push(path, "required");
    }
}

fn one_of(v: &mut ValidationErrors, path: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        v.push(
            path,
            format!("must be one of {}, got {value:?}", allowed.join(", ")),
        );
    }
}

/// A duration field with the CRD's pattern `^[0-9]+(m|s)` (CRD), read by Flagger with
/// Go's `time.ParseDuration` (Flagger).
fn duration(v: &mut ValidationErrors, path: &str, value: &str) {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let unit = value.as_bytes().get(digits);
    if digits == 0 || !matches!(unit, Some(b'm' | b's')) {
        v.push(
            path,
            format!(
                "must start with a whole number of minutes or seconds \
                 (pattern ^[0-9]+(m|s), e.g. 1m, 30s), got {value:?}"
            ),
        );
    } else if let Err(e) = Duration::parse(value) {
        v.push(path, e.to_string());
    }
}

fn spec(v: &mut ValidationErrors, spec: &CanarySpec) {
    let provider = spec.provider.as_deref();
    // CRD: provider enum.
    if let Some(p) = provider {
        one_of(v, "spec.provider", p, PROVIDERS);
    }

    // Flagger: the deadline is compared with the time a workload has been unready; zero
    // or less makes every wait a deadline failure (and a rollback).
    at_least(
        v,
        "spec.progressDeadlineSeconds",
        spec.progress_deadline_seconds,
        1,
    );

    // Target: a Knative Service (apiVersion serving.knative.dev/*) or a Deployment,
    // DaemonSet or Service.
    let knative = spec
        .target_ref
        .api_version
        .as_deref()
        .is_some_and(|a| a.starts_with("serving.knative.dev/"));
    reference(
        v,
        "spec.targetRef",
        &spec.target_ref,
        &["Deployment", "DaemonSet", "Service"],
    );
    // Flagger (reference A.1): a Knative target needs provider knative.
    if knative && provider != Some("knative") {
        v.push(
            "spec.provider",
            "must be \"knative\" for a Knative Service target",
        );
    }
    if let Some(a) = &spec.autoscaler_ref {
        autoscaler(v, a);
    }
    if let Some(r) = &spec.ingress_ref {
        reference(v, "spec.ingressRef", r, &["Ingress"]);
    }
    if let Some(r) = &spec.route_ref {
        reference(v, "spec.routeRef", r, &["ApisixRoute"]);
    }
    if let Some(r) = &spec.upstream_ref {
        // CRD: apiVersion, kind and name required; kind enum.
        if !is_set(&r.api_version) {
            v.push("spec.upstreamRef.apiVersion", "required");
        }
        match r.kind.as_deref() {
            None | Some("") => v.push("spec.upstreamRef.kind", "required"),
            Some(k) => one_of(v, "spec.upstreamRef.kind", k, &["Upstream"]),
        }
        required(v, "spec.upstreamRef.name", &r.name);
    }
    // Flagger (reference A.1/A.2): the references each router needs.
    match provider {
        Some("nginx" | "skipper") if spec.ingress_ref.is_none() => v.push(
            "spec.ingressRef",
            format!("required with provider {}", provider.unwrap_or_default()),
        ),
        Some("apisix") if spec.route_ref.is_none() => {
            v.push("spec.routeRef", "required with provider apisix")
        }
        Some(p) if p.starts_with("gatewayapi") && spec.service.gateway_refs.is_empty() => v.push(
            "spec.service.gatewayRefs",
            format!("required with provider {p}"),
        ),
        _ => {}
    }

    // Flagger generates no ClusterIP Services for a Knative target, so its `service`
    // may be absent.
    if !(knative && spec.service.is_unset()) {
        service(v, &spec.service);
    }

    // CRD: `analysis` is required (Flagger's own loop would treat a missing one as
    // skipAnalysis, but the API server never stores such a canary).
    match &spec.analysis {
        None => v.push("spec.analysis", "required"),
        Some(a) => analysis(v, a),
    }
}

/// CRD: `apiVersion`, `kind` and `name` are required, `kind` is an enum.
fn reference(v: &mut ValidationErrors, path: &str, r: &LocalObjectReference, kinds: &[&str]) {
    if !is_set(&r.api_version) {
        v.push(format!("{path}.apiVersion"), "required");
    }
    if r.kind.is_empty() {
        v.push(format!("{path}.kind"), "required");
    } else {
        one_of(v, &format!("{path}.kind"), &r.kind, kinds);
    }
    required(v, &format!("{path}.name"), &r.name);
}

fn autoscaler(v: &mut ValidationErrors, a: &AutoscalerReference) {
    let path = "spec.autoscalerRef";
    reference(
        v,
        path,
        &LocalObjectReference {
            api_version: a.api_version.clone(),
            kind: a.kind.clone(),
            name: a.name.clone(),
        },
        &["HorizontalPodAutoscaler", "ScaledObject"],
    );
    if let Some(r) = &a.primary_scaler_replicas {
        // CRD: minimum 1 for both.
        at_least(
            v,
            "spec.autoscalerRef.primaryScalerReplicas.minReplicas",
            r.min_replicas,
            1,
        );
        at_least(
            v,
            "spec.autoscalerRef.primaryScalerReplicas.maxReplicas",
            r.max_replicas,
            1,
        );
        // Kubernetes: an HPA (and KEDA) rejects minReplicas > maxReplicas.
        if let (Some(min), Some(max)) = (r.min_replicas, r.max_replicas)
            && min > max
        {
            v.push(
                "spec.autoscalerRef.primaryScalerReplicas",
                format!("minReplicas ({min}) must not exceed maxReplicas ({max})"),
            );
        }
    }
}

fn service(v: &mut ValidationErrors, s: &CanaryService) {
    // CRD: port required; Kubernetes: a Service port is 1..=65535.
    if s.port == 0 {
        v.push("spec.service.port", "required");
    } else {
        in_range(v, "spec.service.port", Some(s.port), 1, 65535);
    }
    // Kubernetes: targetPort is a port number or an IANA service name.
    match &s.target_port {
        Some(IntOrString::Int(n)) => in_range(v, "spec.service.targetPort", Some(*n), 1, 65535),
        Some(IntOrString::Str(name)) => {
            if let Err(why) = port_name(name) {
                v.push("spec.service.targetPort", why);
            }
        }
        None => {}
    }
    // CRD: trafficDistribution enum.
    if let Some(t) = &s.traffic_distribution {
        one_of(
            v,
            "spec.service.trafficDistribution",
            t,
            &["PreferClose", "PreferSameZone", "PreferSameNode"],
        );
    }
    // Flagger: a delegate VirtualService must not have hosts or gateways.
    if s.delegation {
        if !s.hosts.is_empty() {
            v.push(
                "spec.service.hosts",
                "must be empty when delegation is enabled",
            );
        }
        if !s.gateways.is_empty() {
            v.push(
                "spec.service.gateways",
                "must be empty when delegation is enabled",
            );
        }
    }
    for (i, g) in s.gateway_refs.iter().enumerate() {
        let path = format!("spec.service.gatewayRefs[{i}]");
        // CRD: name required (minLength 1); port 1..=65535.
        required(v, &format!("{path}.name"), &g.name);
        in_range(v, &format!("{path}.port"), g.port, 1, 65535);
    }
    for (i, m) in s.mirror.iter().enumerate() {
        let path = format!("spec.service.mirror[{i}].backendRef");
        // CRD: backendRef.name required; port 1..=65535.
        required(v, &format!("{path}.name"), &m.backend_ref.name);
        in_range(v, &format!("{path}.port"), m.backend_ref.port, 1, 65535);
    }
    for (i, m) in s.match_.iter().enumerate() {
        http_match(v, &format!("spec.service.match[{i}]"), m, false);
    }
}

/// Kubernetes' IANA_SVC_NAME rule for named ports.
fn port_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty()
        || name.len() > 15
        || !valid_chars
        || !name.bytes().any(|b| b.is_ascii_lowercase())
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        Err(format!(
            "must be a port number (1..=65535) or a port name (at most 15 lowercase \
             letters, digits and single inner hyphens, with a letter), got {name:?}"
        ))
    } else {
        Ok(())
    }
}

/// CRD: in `service.match` each string match sets at most one kind; in `analysis.match`
/// each header sets exactly one of `exact`, `prefix`, `suffix`, `regex`.
fn http_match(v: &mut ValidationErrors, path: &str, m: &HttpMatchRequest, analysis: bool) {
    let single = [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ];
    for (name, sm) in single {
        if let Some(sm) = sm {
            string_match(v, &format!("{path}.{name}"), sm, false);
        }
    }
    let maps: [(&str, &BTreeMap<String, StringMatch>); 3] = [
        ("headers", &m.headers),
        ("queryParams", &m.query_params),
        ("withoutHeaders", &m.without_headers),
    ];
    for (name, map) in maps {
        for (key, sm) in map {
            let exactly_one = analysis && name == "headers";
            string_match(v, &format!("{path}.{name}.{key}"), sm, exactly_one);
        }
    }
}

fn string_match(v: &mut ValidationErrors, path: &str, sm: &StringMatch, exactly_one: bool) {
    let kinds = sm.kinds();
    if kinds.len() > 1 {
        v.push(
            path,
            format!(
                "set only one of exact, prefix, suffix, regex, found {}",
                kinds.join(", ")
            ),
        );
    } else if exactly_one && kinds.is_empty() {
        v.push(path, "set one of exact, prefix, suffix, regex");
    }
}

fn analysis(v: &mut ValidationErrors, a: &CanaryAnalysis) {
    // CRD: oneOf required [interval, threshold] plus exactly one of iterations,
    // stepWeight, stepWeights.
    match &a.interval {
        None => v.push("spec.analysis.interval", "required"),
        Some(i) => duration(v, "spec.analysis.interval", i),
    }
    if a.threshold.is_none() {
        v.push("spec.analysis.threshold", "required");
    }
    let progression: Vec<&str> = [
        ("iterations", a.iterations.is_some()),
        ("stepWeight", a.step_weight.is_some()),
        ("stepWeights", !a.step_weights.is_empty()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name)
    .collect();
    match progression.len() {
        0 => v.push(
            "spec.analysis",
            "one of iterations, stepWeight, stepWeights is required",
        ),
        1 => {}
        _ => v.push(
            "spec.analysis",
            format!(
                "only one of iterations, stepWeight, stepWeights may be set, found {}",
                progression.join(", ")
            ),
        ),
    }
    // Flagger reads a threshold <= 0 as 1 and a negative iteration count as 0; negative
    // values are rejected as authoring errors.
    at_least(v, "spec.analysis.threshold", a.threshold, 0);
    at_least(v, "spec.analysis.iterations", a.iterations, 0);
    // Weights are percentages of the traffic (docs: "percentage (0-100)"). A maxWeight
    // above 100 never finishes: the canary weight stops at 100 and never reaches it.
    in_range(v, "spec.analysis.stepWeight", a.step_weight, 0, 100);
    in_range(v, "spec.analysis.maxWeight", a.max_weight, 0, 100);
    in_range(
        v,
        "spec.analysis.stepWeightPromotion",
        a.step_weight_promotion,
        0,
        100,
    );
    // Never finishes: Flagger moves from one entry to the next by their difference, so
    // a ladder that does not start above 0 and increase stalls. Entries above 100 are
    // fine (a Flagger test uses [1, 2, 10, 200]: the last step goes to 100).
    let mut previous = 0;
    for (i, &w) in a.step_weights.iter().enumerate() {
        if w <= previous {
            let message = if i == 0 {
                format!("must be > 0, got {w}")
            } else {
                format!("must be greater than the previous step ({previous}), got {w}")
            };
            v.push(format!("spec.analysis.stepWeights[{i}]"), message);
        }
        previous = previous.max(w);
    }
    // Istio: mirrorPercentage is 0..=100.
    in_range(v, "spec.analysis.mirrorWeight", a.mirror_weight, 0, 100);
    // Never finishes: more than 100 % of the pods can never be available.
    in_range(
        v,
        "spec.analysis.primaryReadyThreshold",
        a.primary_ready_threshold,
        0,
        100,
    );
    in_range(
        v,
        "spec.analysis.canaryReadyThreshold",
        a.canary_ready_threshold,
        0,
        100,
    );
    for (i, alert) in a.alerts.iter().enumerate() {
        // CRD: name and providerRef.name required.
        required(v, &format!("spec.analysis.alerts[{i}].name"), &alert.name);
        required(
            v,
            &format!("spec.analysis.alerts[{i}].providerRef.name"),
            &alert.provider_ref.name,
        );
    }
    for (i, m) in a.metrics.iter().enumerate() {
        metric(v, &format!("spec.analysis.metrics[{i}]"), m);
    }
    for (i, w) in a.webhooks.iter().enumerate() {
        webhook(v, &format!("spec.analysis.webhooks[{i}]"), w);
    }
    for (i, m) in a.match_.iter().enumerate() {
        http_match(v, &format!("spec.analysis.match[{i}]"), m, true);
    }
    if let Some(s) = &a.session_affinity {
        session_affinity(v, s);
    }
}

fn metric(v: &mut ValidationErrors, path: &str, m: &CanaryMetric) {
    required(v, &format!("{path}.name"), &m.name);
    if let Some(i) = &m.interval {
        duration(v, &format!("{path}.interval"), i);
    }
    // Flagger: a metric that is neither builtin nor has a query or a template fails
    // every check.
    let has_query = m.query.as_deref().is_some_and(|q| !q.trim().is_empty());
    if !m.is_builtin() && !has_query && m.template_ref.is_none() {
        v.push(
            path.to_string(),
            "needs a query or a templateRef (or a builtin name: request-success-rate, \
             request-duration)",
        );
    }
    if let Some(t) = &m.template_ref {
        // CRD: templateRef.name required.
        required(v, &format!("{path}.templateRef.name"), &t.name);
    }
    // Never finishes: no value satisfies min > max, so every check fails.
    if let Some(r) = &m.threshold_range
        && let (Some(min), Some(max)) = (r.min, r.max)
        && min > max
    {
        v.push(
            format!("{path}.thresholdRange"),
            format!("min ({min}) must not exceed max ({max})"),
        );
    }
}

fn webhook(v: &mut ValidationErrors, path: &str, w: &CanaryWebhook) {
    required(v, &format!("{path}.name"), &w.name);
    // Flagger POSTs to the URL with Go's HTTP client, which speaks http and https only.
    if let Err(why) = http_url(&w.url) {
        v.push(format!("{path}.url"), why);
    }
    if let Some(t) = &w.timeout {
        duration(v, &format!("{path}.timeout"), t);
    }
    // Flagger: a negative retry count means no retries; rejected as an authoring error.
    at_least(v, &format!("{path}.retries"), w.retries, 0);
}

/// An absolute `http://` or `https://` URL with a host.
fn http_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("required".to_string());
    }
    let scheme_end = url.find("://");
    let scheme = scheme_end.map(|i| url[..i].to_ascii_lowercase());
    let (Some(i), Some("http" | "https")) = (scheme_end, scheme.as_deref()) else {
        return Err(format!("must be an http:// or https:// URL, got {url:?}"));
    };
    let rest = &url[i + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("has no host: {url:?}"));
    }
    if host.chars().any(char::is_whitespace) || url.chars().any(char::is_control) {
        return Err(format!("is not a valid URL: {url:?}"));
    }
    Ok(())
}

fn session_affinity(v: &mut ValidationErrors, s: &SessionAffinity) {
    let path = "spec.analysis.sessionAffinity";
    // CRD: cookieName required.
    required(v, &format!("{path}.cookieName"), &s.cookie_name);
    // Flagger: the two cookies must differ.
    if let Some(p) = &s.primary_cookie_name
        && *p == s.cookie_name
    {
        v.push(
            format!("{path}.primaryCookieName"),
            "must differ from cookieName",
        );
    }
    // CRD: sameSite enum.
    if let Some(ss) = &s.same_site {
        one_of(
            v,
            &format!("{path}.sameSite"),
            ss,
            &["Strict", "Lax", "None"],
        );
    }
}
