//! The rules behind [`super::Rollout::validate`].
//!
//! The rules are Argo's (its validation package and the checks its controller makes before
//! it acts on a rollout), plus the Kubernetes rules the API server applies to the pod
//! template's selector. Paths use the JSON names of the fields.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::analysis::{AnalysisRunArgument, DryRun, ExperimentStep, MeasurementRetention};
use super::canary::{AntiAffinity, CanaryStep, CanaryStrategy, ProgressThresholdType, StringMatch};
use super::error::ValidationErrors;
use super::traffic::TrafficRouting;
use super::{
    API_VERSION, BlueGreenStrategy, KIND, Rollout, RolloutAnalysis, RolloutSpec,
    canary::duration_text_seconds,
};
use crate::intstr::IntOrPercent;

pub(crate) fn validate(ro: &Rollout) -> ValidationErrors {
    let mut v = ValidationErrors::default();
    if ro.api_version != API_VERSION {
        v.push("apiVersion", format!("must be {API_VERSION:?}"));
    }
    if ro.kind != KIND {
        v.push("kind", format!("must be {KIND:?}"));
    }
    let named = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if !named(&ro.metadata.name) && !named(&ro.metadata.generate_name) {
        v.push("metadata.name", "required (or metadata.generateName)");
    }
    spec(&mut v, &ro.spec);
    v
}

fn non_negative(v: &mut ValidationErrors, path: &str, value: Option<i32>) {
    if let Some(n) = value
        && n < 0
    {
        v.push(path, format!("must be >= 0, got {n}"));
    }
}

fn in_range(v: &mut ValidationErrors, path: &str, value: i32, lo: i32, hi: i32) {
    if !(lo..=hi).contains(&value) {
        v.push(path, format!("must be {lo}..={hi}, got {value}"));
    }
}

fn required(v: &mut ValidationErrors, path: &str, value: &str) {
    if value.is_empty() {
        v.push(path, "required");
    }
}

fn is_set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

fn spec(v: &mut ValidationErrors, spec: &RolloutSpec) {
    non_negative(v, "spec.replicas", spec.replicas);

    // Pod template or workload reference.
    match (&spec.template, &spec.workload_ref) {
        (None, None) => v.push("spec.template", "required unless spec.workloadRef is set"),
        (Some(t), Some(_)) => {
            let meta = t.metadata.as_ref();
            let has_labels = meta
                .and_then(|m| m.labels.as_ref())
                .is_some_and(|l| !l.is_empty());
            let has_annotations = meta
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| !a.is_empty());
            if has_labels || has_annotations || t.spec.is_some() {
                v.push(
                    "spec.template",
                    "must be empty when spec.workloadRef is set",
                );
            }
        }
        (Some(t), None) => {
            let containers = t.spec.as_ref().map_or(0, |s| s.containers.len());
            if containers == 0 {
                v.push(
                    "spec.template.spec.containers",
                    "must have at least one container",
                );
            }
        }
        (None, Some(_)) => {}
    }
    if let Some(w) = &spec.workload_ref {
        required(v, "spec.workloadRef.apiVersion", &w.api_version);
        required(v, "spec.workloadRef.name", &w.name);
        if !matches!(w.kind.as_str(), "Deployment" | "ReplicaSet" | "PodTemplate") {
            v.push(
                "spec.workloadRef.kind",
                format!(
                    "must be Deployment, ReplicaSet or PodTemplate, got {:?}",
                    w.kind
                ),
            );
        }
    }

    // Selector.
    match &spec.selector {
        None if spec.workload_ref.is_none() => {
            v.push("spec.selector", "required unless spec.workloadRef is set");
        }
        None => {}
        Some(sel) => {
            if selector(v, "spec.selector", sel)
                && spec.workload_ref.is_none()
                && let Some(t) = &spec.template
            {
                let empty = BTreeMap::new();
                let labels = t
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.as_ref())
                    .unwrap_or(&empty);
                if !selector_matches(sel, labels) {
                    v.push("spec.template.metadata.labels", "must match spec.selector");
                }
            }
        }
    }

    non_negative(v, "spec.minReadySeconds", spec.min_ready_seconds);
    non_negative(v, "spec.revisionHistoryLimit", spec.revision_history_limit);
    non_negative(
        v,
        "spec.progressDeadlineSeconds",
        spec.progress_deadline_seconds,
    );
    let deadline = spec.progress_deadline_seconds();
    let min_ready = spec.min_ready_seconds();
    if deadline <= min_ready {
        v.push(
            "spec.progressDeadlineSeconds",
            format!("must be greater than minReadySeconds ({min_ready}), got {deadline}"),
        );
    }
    if let Some(w) = &spec.rollback_window {
        non_negative(v, "spec.rollbackWindow.revisions", w.revisions);
    }
    if let Some(a) = &spec.analysis {
        non_negative(
            v,
            "spec.analysis.successfulRunHistoryLimit",
            a.successful_run_history_limit,
        );
        non_negative(
            v,
            "spec.analysis.unsuccessfulRunHistoryLimit",
            a.unsuccessful_run_history_limit,
        );
    }

    let strategy = &spec.strategy;
    match (&strategy.canary, &strategy.blue_green) {
        (None, None) => v.push("spec.strategy", "must set one of canary and blueGreen"),
        (Some(_), Some(_)) => v.push(
            "spec.strategy",
            "canary and blueGreen are mutually exclusive",
        ),
        _ => {}
    }
    if let Some(c) = &strategy.canary {
        canary(v, c);
    }
    if let Some(b) = &strategy.blue_green {
        blue_green(v, spec, b);
    }
}

/// Checks a label selector's syntax; true when it is usable for matching.
fn selector(v: &mut ValidationErrors, path: &str, sel: &LabelSelector) -> bool {
    let labels = sel.match_labels.as_ref().map_or(0, BTreeMap::len);
    let exprs = sel.match_expressions.as_deref().unwrap_or(&[]);
    if labels + exprs.len() == 0 {
        v.push(path, "empty selector is invalid");
        return false;
    }
    let mut ok = true;
    for (i, e) in exprs.iter().enumerate() {
        let values = e.values.as_deref().unwrap_or(&[]);
        let p = format!("{path}.matchExpressions[{i}]");
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                v.push(format!("{p}.values"), "must be non-empty for In and NotIn");
                ok = false;
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                v.push(
                    format!("{p}.values"),
                    "must be empty for Exists and DoesNotExist",
                );
                ok = false;
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                v.push(
                    format!("{p}.operator"),
                    format!("must be In, NotIn, Exists or DoesNotExist, got {other:?}"),
                );
                ok = false;
            }
        }
        if e.key.is_empty() {
            v.push(format!("{p}.key"), "required");
            ok = false;
        }
    }
    ok
}

/// Whether `labels` are selected by `sel` (Kubernetes label selector semantics).
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, want)| labels.get(k) == Some(want));
    let by_exprs = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_exprs
}

/// Validates an int-or-percent; returns its value (count or percent) when valid.
fn int_or_percent(
    v: &mut ValidationErrors,
    path: &str,
    value: &IntOrPercent,
    max_percent: Option<i32>,
) -> Option<i32> {
    let (n, is_percent) = match value {
        IntOrPercent::Int(n) => (*n, false),
        other => match other.as_percent() {
            Ok(Some(p)) => (p, true),
            Ok(None) => return None,
            Err(e) => {
                v.push(path, e.to_string());
                return None;
            }
        },
    };
    if n < 0 {
        v.push(path, format!("must be >= 0, got {value}"));
        return None;
    }
    if is_percent
        && let Some(max) = max_percent
        && n > max
    {
        v.push(path, format!("must not exceed {max}%, got {value}"));
        return None;
    }
    Some(n)
}

/// Which kinds of routers a canary uses, for the rules that depend on it.
struct Routers<'a> {
    tr: Option<&'a TrafficRouting>,
}

impl Routers<'_> {
    fn any(&self) -> bool {
        self.tr.is_some()
    }
    fn istio(&self) -> bool {
        self.tr.is_some_and(|t| t.istio.is_some())
    }
    fn alb(&self) -> bool {
        self.tr.is_some_and(|t| t.alb.is_some())
    }
    fn plugins(&self) -> bool {
        self.tr.is_some_and(TrafficRouting::has_plugins)
    }
    fn managed_route(&self, name: &str) -> bool {
        self.tr
            .is_some_and(|t| t.managed_routes.iter().any(|r| r.name == name))
    }
}

fn canary(v: &mut ValidationErrors, c: &CanaryStrategy) {
    let p = "spec.strategy.canary";
    let routers = Routers {
        tr: c.traffic_routing.as_ref(),
    };
    let max_weight = c.max_traffic_weight();

    // Surge and unavailability.
    let surge = int_or_percent(v, &format!("{p}.maxSurge"), &c.max_surge(), None);
    let unavailable = int_or_percent(
        v,
        &format!("{p}.maxUnavailable"),
        &c.max_unavailable(),
        Some(100),
    );
    if surge == Some(0) && unavailable == Some(0) {
        v.push(
            format!("{p}.maxSurge"),
            "maxSurge and maxUnavailable must not both be 0",
        );
    }

    // Services.
    if is_set(&c.canary_service) && c.canary_service == c.stable_service {
        v.push(
            format!("{p}.stableService"),
            "must differ from canaryService",
        );
    }
    if let Some(pp) = &c.ping_pong {
        required(v, &format!("{p}.pingPong.pingService"), &pp.ping_service);
        required(v, &format!("{p}.pingPong.pongService"), &pp.pong_service);
        if !pp.ping_service.is_empty() && pp.ping_service == pp.pong_service {
            v.push(
                format!("{p}.pingPong.pongService"),
                "must differ from pingService",
            );
        }
        if let Some(alb) = c.traffic_routing.as_ref().and_then(|t| t.alb.as_ref())
            && !is_set(&alb.root_service)
        {
            v.push(
                format!("{p}.trafficRouting.alb.rootService"),
                "required with alb and pingPong",
            );
        }
    }
    if let Some(tr) = &c.traffic_routing {
        // Argo needs both services for every built-in router that shifts traffic between
        // them; not with ping-pong services, subset-based Istio (DestinationRule), or
        // plugins only (a plugin brings its own rules).
        let needs_services = c.ping_pong.is_none()
            && (tr.alb.is_some()
                || tr
                    .istio
                    .as_ref()
                    .is_some_and(|i| i.destination_rule.is_none())
                || tr.smi.is_some()
                || tr.apisix.is_some()
                || tr.ambassador.is_some()
                || tr.nginx.is_some()
                || tr.app_mesh.is_some()
                || tr.traefik.is_some());
        if needs_services {
            for (field, value) in [
                ("canaryService", &c.canary_service),
                ("stableService", &c.stable_service),
            ] {
                if !is_set(value) {
                    v.push(
                        format!("{p}.{field}"),
                        "required when trafficRouting is used",
                    );
                }
            }
        }
        traffic_routing(v, &format!("{p}.trafficRouting"), tr);
        if c.scale_down_delay_seconds.is_some() && c.dynamic_stable_scale {
            v.push(
                format!("{p}.dynamicStableScale"),
                "cannot be combined with scaleDownDelaySeconds",
            );
        }
    } else {
        if c.scale_down_delay_seconds.is_some() {
            v.push(
                format!("{p}.scaleDownDelaySeconds"),
                "requires trafficRouting",
            );
        }
        if c.dynamic_stable_scale {
            v.push(format!("{p}.dynamicStableScale"), "requires trafficRouting");
        }
        if c.min_pods_per_replica_set.is_some() {
            v.push(
                format!("{p}.minPodsPerReplicaSet"),
                "requires trafficRouting",
            );
        }
    }
    non_negative(
        v,
        &format!("{p}.scaleDownDelaySeconds"),
        c.scale_down_delay_seconds,
    );
    non_negative(
        v,
        &format!("{p}.scaleDownDelayRevisionLimit"),
        c.scale_down_delay_revision_limit,
    );
    non_negative(
        v,
        &format!("{p}.abortScaleDownDelaySeconds"),
        c.abort_scale_down_delay_seconds,
    );
    if let Some(n) = c.min_pods_per_replica_set
        && n < 1
    {
        v.push(
            format!("{p}.minPodsPerReplicaSet"),
            format!("must be >= 1, got {n}"),
        );
    }
    if let Some(t) = &c.replica_progress_threshold {
        let path = format!("{p}.replicaProgressThreshold.value");
        if t.value <= 0 {
            v.push(path, format!("must be > 0, got {}", t.value));
        } else if t.r#type == ProgressThresholdType::Percent && t.value > 100 {
            v.push(
                path,
                format!("must be <= 100 for type Percent, got {}", t.value),
            );
        }
    }
    if let Some(a) = &c.anti_affinity {
        anti_affinity(v, &format!("{p}.antiAffinity"), a);
    }

    for (i, step) in c.steps.iter().enumerate() {
        canary_step(v, &format!("{p}.steps[{i}]"), step, &routers, max_weight);
    }

    if let Some(bg) = &c.analysis {
        analysis(v, &format!("{p}.analysis"), &bg.analysis);
        if let Some(s) = bg.starting_step {
            let n = i32::try_from(c.steps.len()).unwrap_or(i32::MAX);
            in_range(v, &format!("{p}.analysis.startingStep"), s, 0, n);
        }
    }
}

fn canary_step(
    v: &mut ValidationErrors,
    sp: &str,
    step: &CanaryStep,
    routers: &Routers<'_>,
    max_weight: i32,
) {
    match step {
        CanaryStep::Combined(parts) => {
            for part in parts {
                canary_step(v, sp, part, routers, max_weight);
            }
        }
        CanaryStep::SetWeight(w) => in_range(v, &format!("{sp}.setWeight"), *w, 0, max_weight),
        CanaryStep::Pause(pause) => {
            if let Some(d) = &pause.duration {
                let path = format!("{sp}.pause.duration");
                match d.seconds() {
                    Err(e) => v.push(path, e.to_string()),
                    Ok(s) if s < 0 => v.push(path, format!("must be >= 0, got {d}")),
                    Ok(s) if s > i64::from(i32::MAX) => {
                        v.push(
                            path,
                            format!("must be at most {} seconds, got {d}", i32::MAX),
                        );
                    }
                    Ok(_) => {}
                }
            }
        }
        CanaryStep::SetCanaryScale(s) => {
            let path = format!("{sp}.setCanaryScale");
            if !routers.any() {
                v.push(path.clone(), "requires trafficRouting");
            }
            let set = usize::from(s.weight.is_some())
                + usize::from(s.replicas.is_some())
                + usize::from(s.match_traffic_weight);
            if set != 1 {
                v.push(
                    path.clone(),
                    "must set exactly one of weight, replicas and matchTrafficWeight",
                );
            }
            if let Some(w) = s.weight {
                in_range(v, &format!("{path}.weight"), w, 0, max_weight);
            }
            non_negative(v, &format!("{path}.replicas"), s.replicas);
        }
        CanaryStep::SetHeaderRoute(h) => {
            let path = format!("{sp}.setHeaderRoute");
            if !(routers.istio()
                || routers.alb()
                || routers.plugins()
                || routers.tr.is_some_and(|t| t.apisix.is_some()))
            {
                v.push(
                    path.clone(),
                    "requires trafficRouting with istio, alb, apisix or a plugin",
                );
            }
            managed_route(v, &format!("{path}.name"), &h.name, routers);
            for (j, m) in h.r#match.iter().enumerate() {
                let mp = format!("{path}.match[{j}]");
                required(v, &format!("{mp}.headerName"), &m.header_name);
                let vp = format!("{mp}.headerValue");
                if routers.alb() && !routers.istio() && !routers.plugins() {
                    let exact_only = is_set(&m.header_value.exact)
                        && m.header_value.prefix.is_none()
                        && m.header_value.regex.is_none();
                    if !exact_only {
                        v.push(vp, "alb supports only an exact header value");
                    }
                } else {
                    string_match(v, &vp, &m.header_value);
                }
            }
        }
        CanaryStep::SetMirrorRoute(m) => {
            let path = format!("{sp}.setMirrorRoute");
            if !(routers.istio() || routers.plugins()) {
                v.push(
                    path.clone(),
                    "requires trafficRouting with istio or a plugin",
                );
            }
            managed_route(v, &format!("{path}.name"), &m.name, routers);
            if let Some(pct) = m.percentage {
                in_range(v, &format!("{path}.percentage"), pct, 0, 100);
            }
            for (j, rm) in m.r#match.iter().enumerate() {
                let mp = format!("{path}.match[{j}]");
                if let Some(method) = &rm.method {
                    string_match(v, &format!("{mp}.method"), method);
                }
                if let Some(pm) = &rm.path {
                    string_match(v, &format!("{mp}.path"), pm);
                }
                for (name, hm) in &rm.headers {
                    string_match(v, &format!("{mp}.headers.{name}"), hm);
                }
            }
        }
        CanaryStep::Analysis(a) => analysis(v, &format!("{sp}.analysis"), a),
        CanaryStep::Experiment(e) => experiment(v, &format!("{sp}.experiment"), e, routers),
        CanaryStep::Plugin(pl) => required(v, &format!("{sp}.plugin.name"), &pl.name),
    }
}

fn managed_route(v: &mut ValidationErrors, path: &str, name: &str, routers: &Routers<'_>) {
    if name.is_empty() {
        v.push(path, "required");
    } else if !routers.managed_route(name) {
        v.push(
            path,
            format!("route {name:?} is not listed in trafficRouting.managedRoutes"),
        );
    }
}

fn string_match(v: &mut ValidationErrors, path: &str, m: &StringMatch) {
    if m.kinds_set() != 1 {
        v.push(path, "must set exactly one of exact, prefix and regex");
    }
}

fn traffic_routing(v: &mut ValidationErrors, p: &str, tr: &TrafficRouting) {
    if !tr.has_router() {
        v.push(p, "must configure at least one traffic router");
    }
    if let Some(w) = tr.max_traffic_weight {
        if w < 1 {
            v.push(
                format!("{p}.maxTrafficWeight"),
                format!("must be >= 1, got {w}"),
            );
        } else if tr.nginx.is_none() && !tr.has_plugins() {
            v.push(
                format!("{p}.maxTrafficWeight"),
                "is supported only with nginx and plugins",
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, r) in tr.managed_routes.iter().enumerate() {
        let path = format!("{p}.managedRoutes[{i}].name");
        if r.name.is_empty() {
            v.push(path, "required");
        } else if !seen.insert(r.name.as_str()) {
            v.push(path, format!("duplicate route {:?}", r.name));
        }
    }
    if let Some(istio) = &tr.istio {
        let ip = format!("{p}.istio");
        match (&istio.virtual_service, istio.virtual_services.is_empty()) {
            (Some(_), false) => v.push(
                format!("{ip}.virtualServices"),
                "virtualService and virtualServices are mutually exclusive",
            ),
            (None, true) => v.push(
                format!("{ip}.virtualService"),
                "required (or virtualServices)",
            ),
            _ => {}
        }
        if let Some(vs) = &istio.virtual_service {
            required(v, &format!("{ip}.virtualService.name"), &vs.name);
        }
        for (i, vs) in istio.virtual_services.iter().enumerate() {
            required(v, &format!("{ip}.virtualServices[{i}].name"), &vs.name);
        }
        if let Some(dr) = &istio.destination_rule {
            let dp = format!("{ip}.destinationRule");
            required(v, &format!("{dp}.name"), &dr.name);
            required(v, &format!("{dp}.canarySubsetName"), &dr.canary_subset_name);
            required(v, &format!("{dp}.stableSubsetName"), &dr.stable_subset_name);
            if !dr.canary_subset_name.is_empty() && dr.canary_subset_name == dr.stable_subset_name {
                v.push(
                    format!("{dp}.stableSubsetName"),
                    "must differ from canarySubsetName",
                );
            }
        }
    }
    if let Some(n) = &tr.nginx {
        match (is_set(&n.stable_ingress), n.stable_ingresses.is_empty()) {
            (true, false) => v.push(
                format!("{p}.nginx.stableIngresses"),
                "stableIngress and stableIngresses are mutually exclusive",
            ),
            (false, true) => v.push(
                format!("{p}.nginx.stableIngress"),
                "required (or stableIngresses)",
            ),
            _ => {}
        }
    }
    if let Some(a) = &tr.alb {
        match (is_set(&a.ingress), a.ingresses.is_empty()) {
            (true, false) => v.push(
                format!("{p}.alb.ingresses"),
                "ingress and ingresses are mutually exclusive",
            ),
            (false, true) => v.push(format!("{p}.alb.ingress"), "required (or ingresses)"),
            _ => {}
        }
        in_range(v, &format!("{p}.alb.servicePort"), a.service_port, 1, 65535);
    }
    if let Some(a) = &tr.ambassador
        && a.mappings.is_empty()
    {
        v.push(format!("{p}.ambassador.mappings"), "must not be empty");
    }
    if let Some(t) = &tr.traefik {
        required(
            v,
            &format!("{p}.traefik.weightedTraefikServiceName"),
            &t.weighted_traefik_service_name,
        );
    }
    if let Some(a) = &tr.apisix {
        match &a.route {
            Some(r) => required(v, &format!("{p}.apisix.route.name"), &r.name),
            None => v.push(format!("{p}.apisix.route"), "required"),
        }
    }
    if let Some(m) = &tr.app_mesh {
        if let Some(vs) = &m.virtual_service {
            required(v, &format!("{p}.appMesh.virtualService.name"), &vs.name);
        }
        if let Some(g) = &m.virtual_node_group {
            let gp = format!("{p}.appMesh.virtualNodeGroup");
            required(
                v,
                &format!("{gp}.canaryVirtualNodeRef.name"),
                &g.canary_virtual_node_ref.name,
            );
            required(
                v,
                &format!("{gp}.stableVirtualNodeRef.name"),
                &g.stable_virtual_node_ref.name,
            );
        }
    }
    for name in tr.plugins.iter().flat_map(BTreeMap::keys) {
        if name.is_empty() {
            v.push(format!("{p}.plugins"), "plugin names must not be empty");
        }
    }
}

fn anti_affinity(v: &mut ValidationErrors, p: &str, a: &AntiAffinity) {
    let preferred = &a.preferred_during_scheduling_ignored_during_execution;
    let required = &a.required_during_scheduling_ignored_during_execution;
    if preferred.is_some() == required.is_some() {
        v.push(
            p,
            "must set exactly one of preferredDuringSchedulingIgnoredDuringExecution and requiredDuringSchedulingIgnoredDuringExecution",
        );
    }
    if let Some(pref) = preferred {
        in_range(
            v,
            &format!("{p}.preferredDuringSchedulingIgnoredDuringExecution.weight"),
            pref.weight,
            1,
            100,
        );
    }
}

fn analysis(v: &mut ValidationErrors, p: &str, a: &RolloutAnalysis) {
    if a.templates.is_empty() {
        v.push(
            format!("{p}.templates"),
            "must reference at least one analysis template",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, t) in a.templates.iter().enumerate() {
        let path = format!("{p}.templates[{i}].templateName");
        if t.template_name.is_empty() {
            v.push(path, "required");
        } else if !seen.insert((t.template_name.as_str(), t.cluster_scope)) {
            v.push(path, format!("duplicate template {:?}", t.template_name));
        }
    }
    args(v, &format!("{p}.args"), &a.args);
    dry_run_and_retention(v, p, &a.dry_run, &a.measurement_retention);
}

fn args(v: &mut ValidationErrors, p: &str, args: &[AnalysisRunArgument]) {
    let mut seen = BTreeSet::new();
    for (i, arg) in args.iter().enumerate() {
        let ap = format!("{p}[{i}]");
        if arg.name.is_empty() {
            v.push(format!("{ap}.name"), "required");
        } else if !seen.insert(arg.name.as_str()) {
            v.push(
                format!("{ap}.name"),
                format!("duplicate argument {:?}", arg.name),
            );
        }
        let Some(from) = &arg.value_from else {
            continue;
        };
        if arg.value.is_some() {
            v.push(ap.clone(), "value and valueFrom are mutually exclusive");
        }
        let fp = format!("{ap}.valueFrom");
        match (&from.pod_template_hash_value, &from.field_ref) {
            (Some(_), Some(_)) => v.push(
                fp,
                "podTemplateHashValue and fieldRef are mutually exclusive",
            ),
            (None, None) => v.push(fp, "must set one of podTemplateHashValue and fieldRef"),
            (None, Some(f)) => {
                let path = format!("{fp}.fieldRef.fieldPath");
                if f.field_path.is_empty() {
                    v.push(path, "required");
                } else if f.field_path.starts_with("metadata")
                    && !metadata_field_path(&f.field_path)
                {
                    v.push(
                        path,
                        format!(
                            "unsupported metadata field {:?}: use metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'] or metadata.annotations['<key>']",
                            f.field_path
                        ),
                    );
                }
            }
            (Some(_), None) => {}
        }
    }
}

/// The metadata paths Kubernetes' downward API (and so Argo) can read from an object.
fn metadata_field_path(path: &str) -> bool {
    match path {
        "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "metadata.labels"
        | "metadata.annotations" => true,
        _ => ["metadata.labels['", "metadata.annotations['"]
            .iter()
            .any(|prefix| {
                path.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix("']"))
                    .is_some_and(|key| !key.is_empty())
            }),
    }
}

fn dry_run_and_retention(
    v: &mut ValidationErrors,
    p: &str,
    dry_run: &[DryRun],
    retention: &[MeasurementRetention],
) {
    for (i, d) in dry_run.iter().enumerate() {
        required(v, &format!("{p}.dryRun[{i}].metricName"), &d.metric_name);
    }
    for (i, r) in retention.iter().enumerate() {
        required(
            v,
            &format!("{p}.measurementRetention[{i}].metricName"),
            &r.metric_name,
        );
        non_negative(
            v,
            &format!("{p}.measurementRetention[{i}].limit"),
            Some(r.limit),
        );
    }
}

fn experiment(v: &mut ValidationErrors, p: &str, e: &ExperimentStep, routers: &Routers<'_>) {
    if e.templates.is_empty() {
        v.push(format!("{p}.templates"), "must not be empty");
    }
    let mut names = BTreeSet::new();
    for (i, t) in e.templates.iter().enumerate() {
        let tp = format!("{p}.templates[{i}]");
        if t.name.is_empty() {
            v.push(format!("{tp}.name"), "required");
        } else if !names.insert(t.name.as_str()) {
            v.push(
                format!("{tp}.name"),
                format!("duplicate template name {:?}", t.name),
            );
        }
        non_negative(v, &format!("{tp}.replicas"), t.replicas);
        if let Some(w) = t.weight {
            let wp = format!("{tp}.weight");
            let supported = routers
                .tr
                .is_some_and(|tr| tr.alb.is_some() || tr.smi.is_some() || tr.istio.is_some());
            if !routers.any() {
                v.push(wp, "requires trafficRouting");
            } else if !supported {
                v.push(
                    wp,
                    "is supported only with alb, smi and istio traffic routing",
                );
            } else {
                in_range(v, &wp, w, 0, 100);
            }
        }
        if let Some(sel) = &t.selector {
            selector(v, &format!("{tp}.selector"), sel);
        }
    }
    if let Some(d) = &e.duration
        && let Err(err) = duration_text_seconds(d)
    {
        v.push(format!("{p}.duration"), err.to_string());
    }
    let mut analyses = BTreeSet::new();
    for (i, a) in e.analyses.iter().enumerate() {
        let ap = format!("{p}.analyses[{i}]");
        if a.name.is_empty() {
            v.push(format!("{ap}.name"), "required");
        } else if !analyses.insert(a.name.as_str()) {
            v.push(
                format!("{ap}.name"),
                format!("duplicate analysis name {:?}", a.name),
            );
        }
        required(v, &format!("{ap}.templateName"), &a.template_name);
        args(v, &format!("{ap}.args"), &a.args);
    }
    dry_run_and_retention(v, p, &e.dry_run, &e.measurement_retention);
    non_negative(
        v,
        &format!("{p}.scaleDownDelaySeconds"),
        e.scale_down_delay_seconds,
    );
}

fn blue_green(v: &mut ValidationErrors, spec: &RolloutSpec, b: &BlueGreenStrategy) {
    let p = "spec.strategy.blueGreen";
    required(v, &format!("{p}.activeService"), &b.active_service);
    if !b.active_service.is_empty() && b.preview_service.as_deref() == Some(&b.active_service) {
        v.push(
            format!("{p}.previewService"),
            "must differ from activeService",
        );
    }
    non_negative(
        v,
        &format!("{p}.previewReplicaCount"),
        b.preview_replica_count,
    );
    non_negative(
        v,
        &format!("{p}.autoPromotionSeconds"),
        b.auto_promotion_seconds,
    );
    if let Some(mu) = &b.max_unavailable {
        int_or_percent(v, &format!("{p}.maxUnavailable"), mu, Some(100));
    }
    non_negative(
        v,
        &format!("{p}.scaleDownDelaySeconds"),
        b.scale_down_delay_seconds,
    );
    non_negative(
        v,
        &format!("{p}.abortScaleDownDelaySeconds"),
        b.abort_scale_down_delay_seconds,
    );
    if let Some(limit) = b.scale_down_delay_revision_limit {
        let path = format!("{p}.scaleDownDelayRevisionLimit");
        if limit < 0 {
            v.push(path, format!("must be >= 0, got {limit}"));
        } else if limit > spec.revision_history_limit() {
            v.push(
                path,
                format!(
                    "must not exceed revisionHistoryLimit ({})",
                    spec.revision_history_limit()
                ),
            );
        }
    }
    if let Some(a) = &b.pre_promotion_analysis {
        analysis(v, &format!("{p}.prePromotionAnalysis"), a);
    }
    if let Some(a) = &b.post_promotion_analysis {
        analysis(v, &format!("{p}.postPromotionAnalysis"), a);
    }
    if let Some(a) = &b.anti_affinity {
        anti_affinity(v, &format!("{p}.antiAffinity"), a);
    }
}
