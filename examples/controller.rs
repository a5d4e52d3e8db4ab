//! A kube-rs controller that runs Argo `Rollout`s with this library.
//!
//! ```text
//! cargo run -p rollout-examples --example controller -- [--namespace NS]
//! ```
//!
//! Connects with the current kubeconfig (or the in-cluster service account), watches
//! `argoproj.io/v1alpha1` Rollouts (install Argo's CRD, not its controller) with the
//! ReplicaSets and AnalysisRuns they own, and drives each through the canary or
//! blue-green machine: ReplicaSets and services through rollout-core's kube port,
//! Istio / Nginx / SMI / Gateway API routes through rollout-traffic's, AnalysisRuns
//! through rollout-analysis's (Prometheus, web and Job providers). Status goes to the
//! Rollout's status subresource, events to the Events API. Stop it with Ctrl-C; it
//! continues where it left off when started again, since all state is in the status.
//!
//! The end-to-end tests (`examples/tests/controller.rs`) run this controller against a
//! real kube-apiserver built by `testenv/build.sh`.

#[path = "common/controller.rs"]
mod controller;

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut namespace = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--namespace" | "-n" => namespace = args.next(),
            "--help" | "-h" => {
                println!("usage: controller [--namespace NS]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let client = kube::Client::try_default().await?;
    let mut ctx = controller::Context::new(client);
    ctx.verbose = true;
    let ctx = Arc::new(ctx);
    eprintln!(
        "{}: watching Rollouts in {}",
        controller::CONTROLLER_NAME,
        namespace.as_deref().unwrap_or("all namespaces")
    );
    tokio::select! {
        () = controller::run(ctx, namespace.as_deref()) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted"),
    }
    Ok(())
}
