//! Flagger's builtin metric queries per observer (`rollout_analysis::flagger::queries`).
//!
//! Expected strings are facts from fluxcd/flagger `pkg/metrics/observers/*_test.go`
//! (the `expected` PromQL each observer test asserts, whitespace already collapsed by
//! Flagger's Prometheus client), with the models those tests pass. Where the newest
//! observer source differs from the stored test, the source wins and the comment says so.

use rollout_analysis::flagger::queries::{
    BuiltinMetric, BuiltinQueryError, Observer, collapse_whitespace, metrics_provider,
};
use rollout_analysis::flagger::render::QueryModel;

use BuiltinMetric::{RequestDuration as Rd, RequestSuccessRate as Sr};

fn model(namespace: &str, target: &str) -> QueryModel {
    QueryModel {
        name: target.into(),
        namespace: namespace.into(),
        target: target.into(),
        service: target.into(),
        ingress: target.into(),
        route: target.into(),
        interval: "1m".into(),
        variables: Default::default(),
    }
}

fn podinfo() -> QueryModel {
    model("default", "podinfo")
}

fn q(observer: Observer, metric: BuiltinMetric, m: &QueryModel) -> String {
    observer.query(metric, m).expect("query renders")
}

// istio_test.go
#[test]
fn istio() {
    assert_eq!(
        q(Observer::Istio, Sr, &podinfo()),
        r#" sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Istio, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )"#
    );
}

// linkerd_test.go
#[test]
fn linkerd() {
    assert_eq!(
        q(Observer::Linkerd, Sr, &podinfo()),
        r#" sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Linkerd, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )"#
    );
}

// nginx_test.go (namespace "nginx", ingress "podinfo"). The duration query reads
// `nginx_ingress_controller_response_duration_seconds` since fluxcd/flagger#1686
// (it was `..._ingress_upstream_latency_seconds`); labels unchanged.
#[test]
fn nginx() {
    let m = model("nginx", "podinfo");
    assert_eq!(
        q(Observer::Nginx, Sr, &m),
        r#" sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Nginx, Rd, &m),
        r#" sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000"#
    );
}

// appmesh_test.go
#[test]
fn appmesh() {
    assert_eq!(
        q(Observer::AppMesh, Sr, &podinfo()),
        r#" sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::AppMesh, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )"#
    );
}

// contour_test.go (note the trailing comma inside the selector, as in Flagger)
#[test]
fn contour() {
    assert_eq!(
        q(Observer::Contour, Sr, &podinfo()),
        r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Contour, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#
    );
}

// gloo_test.go
#[test]
fn gloo() {
    assert_eq!(
        q(Observer::Gloo, Sr, &podinfo()),
        r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Gloo, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#
    );
}

// traefik.go / traefik_test.go: the `service` label (older releases matched
// `exported_service`), and the duration in seconds scaled to ms in the query.
#[test]
fn traefik() {
    assert_eq!(
        q(Observer::Traefik, Sr, &podinfo()),
        r#" sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Traefik, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000"#
    );
}

// skipper_test.go: namespace "skipper", service "backend", ingress "skipper-ingress"
// (non-word characters become `_`).
#[test]
fn skipper() {
    let m = QueryModel {
        namespace: "skipper".into(),
        service: "backend".into(),
        ingress: "skipper-ingress".into(),
        interval: "1m".into(),
        ..QueryModel::default()
    };
    assert_eq!(
        q(Observer::Skipper, Sr, &m),
        r#" sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100"#
    );
    assert_eq!(
        q(Observer::Skipper, Rd, &m),
        r#" sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) * 1000"#
    );
}

// osm_test.go
#[test]
fn osm() {
    assert_eq!(
        q(Observer::Osm, Sr, &podinfo()),
        r#" sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Osm, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )"#
    );
}

// kuma_test.go
#[test]
fn kuma() {
    assert_eq!(
        q(Observer::Kuma, Sr, &podinfo()),
        r#" sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Kuma, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )"#
    );
}

// apisix_test.go (route "podinfo")
#[test]
fn apisix() {
    assert_eq!(
        q(Observer::Apisix, Sr, &podinfo()),
        r#" sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Apisix, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )"#
    );
    // route and target are distinct fields: routeRef "api", target "podinfo".
    let m = QueryModel {
        route: "api".into(),
        ..podinfo()
    };
    assert!(q(Observer::Apisix, Sr, &m).contains(r#"route=~"default_api-podinfo-canary_.+""#));
}

// knative_test.go (route = the latest revision "podinfo-00001")
#[test]
fn knative() {
    let m = QueryModel {
        route: "podinfo-00001".into(),
        ..podinfo()
    };
    assert_eq!(
        q(Observer::Knative, Sr, &m),
        r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Knative, Rd, &m),
        r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) by (le) )"#
    );
}

// http_test.go (providers `kubernetes`, `gatewayapi:*`); the duration query yields
// seconds, which the observer turns into milliseconds.
#[test]
fn http() {
    assert_eq!(
        q(Observer::Http, Sr, &podinfo()),
        r#" sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100"#
    );
    assert_eq!(
        q(Observer::Http, Rd, &podinfo()),
        r#" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )"#
    );
    // Flagger's test answers 0.100 (seconds) and expects 100ms.
    assert_eq!(Observer::Http.duration_ms(0.100), 100.0);
    assert_eq!(Observer::Istio.duration_ms(100.0), 100.0);
}

#[test]
fn the_interval_and_names_are_substituted() {
    let m = QueryModel {
        interval: "30s".into(),
        ..model("prod", "api")
    };
    let query = q(Observer::Linkerd, Sr, &m);
    assert!(query.contains(r#"namespace="prod", deployment=~"api""#));
    assert_eq!(query.matches("[30s]").count(), 2);
}

#[test]
fn every_observer_renders_both_metrics_without_leftover_actions() {
    let m = QueryModel {
        route: "podinfo-00001".into(),
        ..podinfo()
    };
    let mut count = 0;
    for observer in Observer::ALL {
        for metric in BuiltinMetric::ALL {
            let query = q(observer, metric, &m);
            assert!(query.starts_with(' '), "{observer} {metric}: {query}");
            assert!(!query.contains("{{"), "{observer} {metric}: {query}");
            assert!(!query.contains("  "), "{observer} {metric}: {query}");
            assert!(query.contains("[1m]"), "{observer} {metric}: {query}");
            count += 1;
        }
    }
    assert_eq!(count, 26);
}

#[test]
fn empty_fields_are_typed_errors() {
    let m = QueryModel {
        ingress: String::new(),
        ..model("nginx", "podinfo")
    };
    assert_eq!(
        Observer::Nginx.query(Sr, &m),
        Err(BuiltinQueryError::MissingField {
            observer: Observer::Nginx,
            metric: Sr,
            field: "ingress"
        })
    );
    let m = QueryModel {
        namespace: String::new(),
        ..podinfo()
    };
    let err = Observer::Istio.query(Rd, &m).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the istio request-duration query needs a non-empty namespace"
    );
    assert_eq!(
        Observer::Apisix.fields(Sr),
        vec!["namespace", "route", "target", "interval"]
    );
    assert_eq!(
        Observer::Skipper.fields(Rd),
        vec!["namespace", "ingress", "service", "interval"]
    );
}

#[test]
fn observer_selection_follows_flaggers_factory() {
    let cases = [
        ("istio", Observer::Istio),
        ("linkerd", Observer::Linkerd),
        ("nginx", Observer::Nginx),
        ("appmesh", Observer::AppMesh),
        ("appmesh:v1beta2", Observer::AppMesh),
        ("appmesh:service", Observer::AppMesh),
        ("contour", Observer::Contour),
        ("gloo", Observer::Gloo),
        ("gloo:service", Observer::Gloo),
        ("traefik", Observer::Traefik),
        ("skipper", Observer::Skipper),
        ("osm", Observer::Osm),
        ("kuma", Observer::Kuma),
        ("apisix", Observer::Apisix),
        ("knative", Observer::Knative),
        ("kubernetes", Observer::Http),
        ("gatewayapi:v1", Observer::Http),
        ("gatewayapi:v1beta1:service", Observer::Http),
        // Exact matches do not survive the `:service` suffix: Istio.
        ("linkerd:service", Observer::Istio),
        ("kubernetes:service", Observer::Istio),
        ("nginx:service", Observer::Istio),
        // Unknown providers and SMI meshes fall back to Istio.
        ("smi:v1alpha3:linkerd", Observer::Istio),
        ("crossover", Observer::Istio),
        ("", Observer::Istio),
    ];
    for (key, observer) in cases {
        assert_eq!(Observer::for_provider(key), observer, "{key}");
    }
}

#[test]
fn metrics_provider_key_rules() {
    // The controller's flag when the canary sets no provider.
    assert_eq!(metrics_provider("istio", None, "Deployment"), "istio");
    assert_eq!(metrics_provider("istio", Some(""), "Deployment"), "istio");
    // The canary's provider overrides it...
    assert_eq!(
        metrics_provider("istio", Some("nginx"), "Deployment"),
        "nginx"
    );
    // ...except under a linkerd controller, which forces linkerd.
    assert_eq!(
        metrics_provider("linkerd", Some("nginx"), "Deployment"),
        "linkerd"
    );
    assert_eq!(
        metrics_provider("smi:linkerd", Some("gatewayapi:v1"), "Deployment"),
        "linkerd"
    );
    // Without a canary provider the flag is used as it is (smi:linkerd -> Istio).
    assert_eq!(
        metrics_provider("smi:linkerd", None, "Deployment"),
        "smi:linkerd"
    );
    // Crossover controllers.
    assert_eq!(
        metrics_provider("smi:crossover", None, "Deployment"),
        "crossover"
    );
    // Service targets get the suffix.
    assert_eq!(
        metrics_provider("istio", Some("gatewayapi:v1"), "Service"),
        "gatewayapi:v1:service"
    );
    assert_eq!(
        Observer::for_provider(&metrics_provider("istio", Some("kubernetes"), "Service")),
        Observer::Istio
    );
}

#[test]
fn whitespace_collapses_like_flaggers_prometheus_client() {
    assert_eq!(
        collapse_whitespace("\n\tsum(\n\t\trate(x[1m])\n\t) \n\t* 100"),
        " sum( rate(x[1m]) ) * 100"
    );
    assert_eq!(collapse_whitespace("a\r\n\x0cb "), "a b ");
    assert_eq!(collapse_whitespace(""), "");
}
