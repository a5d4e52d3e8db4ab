//! The README's quickstart: a canary `Rollout` driven through two updates on an
//! in-memory cluster in virtual time, with a scripted metric source standing in for
//! Prometheus.
//!
//! ```text
//! cargo run -p rollout-examples --example quickstart
//! ```
//!
//! The rollout is the one in `examples/rollout.yaml` (10 pods; setWeight 10, pause 3m,
//! setWeight 50, analysis `success-rate`, setWeight 100). Its plan is printed first.
//! Then a healthy release is rolled out and promoted, and a bad one fails its analysis
//! and is aborted back to the stable release. Each line of a timeline is one controller
//! pass that did something, or one metric measurement. Nothing is installed, nothing
//! sleeps, and the output is the same on every run.
//!
//! A second section does the same with a blue-green `Rollout` driven through
//! `bluegreen::reconcile` (5 pods; a 2-pod preview behind `web-preview` with a smoke test,
//! manual promotion, then a success-rate check behind `web-active`): a healthy release
//! is promoted and takes over `web-active`; a bad one passes its smoke test, fails its
//! post-promotion analysis, and `web-active` is switched back to the old release.
//!
//! A third section runs a canary whose traffic an Istio VirtualService splits
//! (`examples/rollout-istio.yaml`): rollout-traffic's router rewrites the weights of the
//! `primary` route and adds a header route for beta testers, and the timeline shows the
//! VirtualService's weights after each pass.
//!
//! A fourth section does the same with Flagger: an A/B testing `Canary` (Istio, header
//! and cookie match, 5 iterations, threshold 2) driven through `flagger::machine::tick`
//! — a healthy release held once at its confirm-promotion gate and then promoted, and a
//! bad one rolled back after two failed checks. Each line is one Flagger tick that did
//! something.

#[path = "common/quickstart_sim.rs"]
#[allow(dead_code)] // Some fields are there for the tests.
mod quickstart_sim;
#[path = "common/util.rs"]
mod util;

#[path = "common/bluegreen_sim.rs"]
#[allow(dead_code)] // Some fields are there for the tests.
mod bluegreen_sim;

#[path = "common/istio_sim.rs"]
#[allow(dead_code)] // Some fields are there for the tests.
mod istio_sim;

#[path = "common/flagger_sim.rs"]
#[allow(dead_code)] // Some fields are there for the tests.
mod flagger_sim;

use std::process::ExitCode;

fn main() -> ExitCode {
    match quickstart_sim::run() {
        Ok(q) => print!("{}", quickstart_sim::render(&q)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match bluegreen_sim::run() {
        Ok(b) => {
            println!();
            print!("{}", bluegreen_sim::render(&b));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match istio_sim::run() {
        Ok(q) => {
            println!();
            print!("{}", istio_sim::render(&q));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match flagger_sim::run() {
        Ok(q) => {
            println!();
            print!("{}", flagger_sim::render(&q));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
