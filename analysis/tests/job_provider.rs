//! The Kubernetes Job provider against kube's tower-test mock API server: every request the
//! provider sends is checked (verb, path, query, content type, body) and answered by hand.

#![cfg(feature = "kube")]

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use rollout_analysis::MeasurementPhase;
use rollout_analysis::expr::Value;
use rollout_analysis::provider::job::{JobProvider, build_job, job_name, job_verdict};
use rollout_analysis::provider::{MeasureContext, Measured, Provider, ProviderError};
use rollout_analysis::template::Metric;
use serde_json::json;
use tower_test::mock::{Handle, SendResponse};

type MockHandle = Handle<Request<Body>, Response<Body>>;

const UID: &str = "6e1c2a9e-0d7f-4c55-9a51-3f0f8f6d2b11";
const JOBS: &str = "/apis/batch/v1/namespaces/canary/jobs";

fn ctx() -> MeasureContext<'static> {
    MeasureContext {
        namespace: "canary",
        run_name: "web-7d9c-2",
        run_uid: Some(UID),
        measurement_index: 2,
    }
}

fn name() -> String {
    format!("{UID}.smoke.3")
}

fn metric() -> Metric {
    serde_json::from_value(json!({
        "name": "smoke",
        "provider": {"job": {
            "metadata": {
                "labels": {"team": "checkout"},
                "annotations": {"note": "from the template"}
            },
            "spec": {
                "backoffLimit": 1,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "smoke", "image": "curlimages/curl:8", "args": ["-f", "http://web"]}]
                }}
            }
        }}
    }))
    .unwrap_or_else(|e| panic!("metric: {e}"))
}

fn provider(client: kube::Client) -> JobProvider {
    JobProvider::new(client)
        .with_poll_interval(Duration::from_millis(5))
        .with_deadline(Duration::from_millis(2_000))
}

fn mock() -> (kube::Client, MockHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// A Job as the API server returns it, with the given conditions.
fn job_json(conditions: serde_json::Value, owner_uid: &str) -> serde_json::Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name(),
            "namespace": "canary",
            "uid": "0a0b0c0d-0000-4000-8000-000000000001",
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisRun",
                "name": "web-7d9c-2",
                "uid": owner_uid,
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {"template": {"spec": {"containers": [{"name": "smoke", "image": "curlimages/curl:8"}]}}},
        "status": {"conditions": conditions}
    })
}

fn condition(type_: &str, status: &str) -> serde_json::Value {
    json!({"type": type_, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn status_json(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    })
}

fn respond(send: SendResponse<Response<Body>>, code: u16, body: &serde_json::Value) {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    send.send_response(response);
}

/// One received request, its body decoded.
struct Seen {
    method: Method,
    path: String,
    query: String,
    content_type: Option<String>,
    body: serde_json::Value,
    send: SendResponse<Response<Body>>,
}

async fn next(handle: &mut MockHandle) -> Seen {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request within 5 s"))
        .unwrap_or_else(|| panic!("the client went away before sending a request"));
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect_bytes()
        .await
        .unwrap_or_else(|e| panic!("request body: {e}"));
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("request body is not JSON: {e}"))
    };
    Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
        send,
    }
}

/// Checks the create request and its Job, field by field.
fn assert_create(seen: &Seen) {
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, JOBS);
    assert_eq!(seen.query, "");
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    let job = &seen.body;
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], name());
    assert_eq!(job["metadata"]["namespace"], "canary");
    assert_eq!(
        job["metadata"]["labels"],
        json!({"team": "checkout", "analysisrun.argoproj.io/uid": UID})
    );
    assert_eq!(
        job["metadata"]["annotations"],
        json!({
            "note": "from the template",
            "analysisrun.argoproj.io/name": "web-7d9c-2",
            "analysisrun.argoproj.io/metric-name": "smoke"
        })
    );
    assert_eq!(
        job["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "name": "web-7d9c-2",
            "uid": UID,
            "controller": true,
            "blockOwnerDeletion": true
        }])
    );
    assert_eq!(job["spec"]["backoffLimit"], 1);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["-f", "http://web"])
    );
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert!(job.get("status").is_none(), "{job}");
}

fn assert_get(seen: &Seen) {
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.path, format!("{JOBS}/{}", name()));
    assert_eq!(seen.query, "");
    assert_eq!(seen.body, serde_json::Value::Null);
}

fn verdict(phase: MeasurementPhase) -> Result<Measured, ProviderError> {
    Ok(Measured::Verdict {
        phase,
        value: Value::Nil,
    })
}

async fn measure(p: JobProvider) -> Result<Measured, ProviderError> {
    p.measure(&ctx(), &metric()).await
}

#[tokio::test]
async fn completed_job_is_successful() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        // Created, not finished yet.
        respond(seen.send, 201, &job_json(json!([]), UID));
        // Still running: a condition that is not a verdict.
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            200,
            &job_json(json!([condition("Suspended", "False")]), UID),
        );
        // Done.
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            200,
            &job_json(
                json!([
                    condition("SuccessCriteriaMet", "True"),
                    condition("Complete", "True")
                ]),
                UID,
            ),
        );
    });
    assert_eq!(
        measure(provider(client)).await,
        verdict(MeasurementPhase::Successful)
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn failed_job_is_failed() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(seen.send, 201, &job_json(json!(null), UID));
        let seen = next(&mut handle).await;
        assert_get(&seen);
        // A Failed condition that is not True yet is not a verdict.
        respond(
            seen.send,
            200,
            &job_json(json!([condition("Failed", "False")]), UID),
        );
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            200,
            &job_json(
                json!([
                    condition("FailureTarget", "True"),
                    condition("Failed", "True")
                ]),
                UID,
            ),
        );
    });
    assert_eq!(
        measure(provider(client)).await,
        verdict(MeasurementPhase::Failed)
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn already_existing_job_of_the_same_run_is_adopted() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(
            seen.send,
            409,
            &status_json(409, "AlreadyExists", "jobs.batch \"x\" already exists"),
        );
        // The provider reads the existing Job, checks its owner, and follows it.
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(seen.send, 200, &job_json(json!([]), UID));
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            200,
            &job_json(json!([condition("Complete", "True")]), UID),
        );
    });
    assert_eq!(
        measure(provider(client)).await,
        verdict(MeasurementPhase::Successful)
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn already_finished_job_is_adopted_without_polling() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(seen.send, 409, &status_json(409, "AlreadyExists", "exists"));
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            200,
            &job_json(json!([condition("Failed", "True")]), UID),
        );
        // No third request: the verdict was already there.
        assert!(handle.next_request().await.is_none());
    });
    assert_eq!(
        measure(provider(client)).await,
        verdict(MeasurementPhase::Failed)
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn existing_job_of_another_run_is_not_adopted() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(seen.send, 409, &status_json(409, "AlreadyExists", "exists"));
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(seen.send, 200, &job_json(json!([]), "some-other-uid"));
    });
    let err = measure(provider(client)).await.err();
    let Some(ProviderError::Backend { provider, message }) = err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert_eq!(provider, "job");
    assert_eq!(
        message,
        format!(
            "job canary/{}: already exists and belongs to another AnalysisRun",
            name()
        )
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn server_error_on_create_is_a_backend_error() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(
            seen.send,
            500,
            &status_json(500, "InternalError", "etcdserver: request timed out"),
        );
        // No retry, no poll.
        assert!(handle.next_request().await.is_none());
    });
    let err = measure(provider(client)).await;
    assert_eq!(
        err,
        Err(ProviderError::Backend {
            provider: "job",
            message: format!(
                "job canary/{}: create failed: HTTP 500 InternalError: etcdserver: request timed out",
                name()
            ),
        })
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn forbidden_create_is_a_backend_error() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(
            seen.send,
            403,
            &status_json(
                403,
                "Forbidden",
                "jobs.batch is forbidden: User \"system:serviceaccount:argo:rollouts\" cannot create resource \"jobs\"",
            ),
        );
    });
    let err = measure(provider(client)).await.err();
    let Some(ProviderError::Backend { provider, message }) = err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert_eq!(provider, "job");
    assert!(
        message.starts_with(&format!(
            "job canary/{}: create failed: HTTP 403 Forbidden: jobs.batch is forbidden",
            name()
        )),
        "{message}"
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn error_while_polling_is_a_backend_error() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(seen.send, 201, &job_json(json!([]), UID));
        let seen = next(&mut handle).await;
        assert_get(&seen);
        respond(
            seen.send,
            404,
            &status_json(404, "NotFound", "jobs.batch not found"),
        );
    });
    let err = measure(provider(client)).await;
    assert_eq!(
        err,
        Err(ProviderError::Backend {
            provider: "job",
            message: format!(
                "job canary/{}: read failed: HTTP 404 NotFound: jobs.batch not found",
                name()
            ),
        })
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[tokio::test]
async fn job_that_never_finishes_times_out() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_create(&seen);
        respond(seen.send, 201, &job_json(json!([]), UID));
        // Answer every poll with a running Job until the provider gives up.
        let mut polls = 0;
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.uri().path(), format!("{JOBS}/{}", name()));
            respond(send, 200, &job_json(json!([]), UID));
            polls += 1;
        }
        polls
    });
    let p = JobProvider::new(client)
        .with_poll_interval(Duration::from_millis(10))
        .with_deadline(Duration::from_millis(120));
    let started = std::time::Instant::now();
    let result = measure(p).await;
    let took = started.elapsed();
    assert_eq!(
        result,
        Err(ProviderError::Timeout {
            provider: "job",
            address: format!("canary/{}", name()),
            timeout_ms: 120,
        })
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let polls = server.await.unwrap_or_else(|e| panic!("server: {e}"));
    assert!(polls >= 2, "only {polls} polls");
}

#[tokio::test]
async fn terminate_deletes_the_job_in_the_background() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle).await;
        assert_eq!(seen.method, Method::DELETE);
        assert_eq!(seen.path, format!("{JOBS}/{}", name()));
        assert_eq!(seen.query, "");
        assert_eq!(seen.content_type.as_deref(), Some("application/json"));
        assert_eq!(seen.body["propagationPolicy"], "Background");
        respond(seen.send, 200, &job_json(json!([]), UID));
        // Deleting again: the Job is gone, which is fine.
        let seen = next(&mut handle).await;
        assert_eq!(seen.method, Method::DELETE);
        respond(seen.send, 404, &status_json(404, "NotFound", "not found"));
        // A real failure is reported.
        let seen = next(&mut handle).await;
        assert_eq!(seen.method, Method::DELETE);
        respond(
            seen.send,
            403,
            &status_json(403, "Forbidden", "no delete for you"),
        );
    });
    let p = provider(client);
    assert_eq!(p.terminate(&ctx(), &metric()).await, Ok(()));
    assert_eq!(p.terminate(&ctx(), &metric()).await, Ok(()));
    assert_eq!(
        p.terminate(&ctx(), &metric()).await,
        Err(ProviderError::Backend {
            provider: "job",
            message: format!(
                "job canary/{}: delete failed: HTTP 403 Forbidden: no delete for you",
                name()
            ),
        })
    );
    server.await.unwrap_or_else(|e| panic!("server: {e}"));
}

#[test]
fn job_name_follows_argo() {
    assert_eq!(job_name(&ctx(), "smoke"), name());
    let first = MeasureContext {
        measurement_index: 0,
        run_uid: None,
        ..ctx()
    };
    assert_eq!(job_name(&first, "smoke"), "web-7d9c-2.smoke.1");
}

#[test]
fn without_a_uid_there_is_no_owner_reference() {
    let no_uid = MeasureContext {
        run_uid: None,
        ..ctx()
    };
    let job = build_job(&no_uid, &metric()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.metadata.owner_references, None);
    let labels = job.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("checkout"));
    assert!(!labels.contains_key("analysisrun.argoproj.io/uid"));
}

#[test]
fn invalid_spec_names_the_field() {
    let mut m = metric();
    if let Some(job) = m.provider.job.as_mut() {
        job.spec["backoffLimit"] = json!("one");
    }
    let err = build_job(&ctx(), &m).err();
    let Some(ProviderError::Config {
        provider, field, ..
    }) = err
    else {
        panic!("expected a config error, got {err:?}");
    };
    assert_eq!(provider, "job");
    assert_eq!(field, "spec.backoffLimit");

    let mut no_job = metric();
    no_job.provider.job = None;
    assert!(matches!(
        build_job(&ctx(), &no_job),
        Err(ProviderError::Config { .. })
    ));
}

#[test]
fn verdict_needs_a_true_condition() {
    let job = |conditions: serde_json::Value| {
        serde_json::from_value(job_json(conditions, UID)).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(job_verdict(&job(json!([]))), None);
    assert_eq!(
        job_verdict(&job(json!([condition("Complete", "False")]))),
        None
    );
    assert_eq!(
        job_verdict(&job(json!([condition("Complete", "True")]))),
        Some(MeasurementPhase::Successful)
    );
    assert_eq!(
        job_verdict(&job(json!([condition("Failed", "True")]))),
        Some(MeasurementPhase::Failed)
    );
}
