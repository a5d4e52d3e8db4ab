//! The Flagger canary and states the Flagger benchmarks share: a weighted canary
//! (stepWeight 10, maxWeight 50, interval 1m, two builtin metrics) on Istio, and a tiny
//! per-canary world — routes, and the readiness of the target and the primary — that a
//! driver loop updates from the machine's actions.

use std::borrow::Cow;

use rollout_core::flagger::machine::{
    Action, Decision, MetricResult, Observed, Readiness, Routes, ScaleTo, tick,
};
use rollout_core::flagger::spec::Canary;
use rollout_core::flagger::status::{CanaryPhase, CanaryStatus};
use rollout_core::time::Timestamp;

/// Hash of the first revision's pod template.
pub(crate) const V1: &str = "v1";
/// Hash of the second revision's pod template.
pub(crate) const V2: &str = "v2";
/// Seconds new pods take to become ready.
pub(crate) const POD_READY_SECONDS: i64 = 10;
/// The start of virtual time.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_800_000_000);
/// Rounds a tick may take before the driver gives up.
pub(crate) const MAX_ROUNDS: usize = 8;

/// The metric results every check gets: both metrics pass.
pub(crate) fn passing() -> [MetricResult; 2] {
    [
        MetricResult::pass("request-success-rate"),
        MetricResult::pass("request-duration"),
    ]
}

/// The weighted canary: 10 % more traffic per minute up to 50 %, then promotion.
pub(crate) fn canary() -> Canary {
    Canary::from_yaml(
        "apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: shop
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  service:
    port: 8080
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 1m
",
    )
    .expect("the benchmark canary parses")
}

/// One canary's persisted status and its simulated objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    /// The persisted status.
    pub(crate) status: CanaryStatus,
    /// The routes the router reports.
    pub(crate) routes: Routes,
    /// When the target's pods are ready (`None`: scaled to zero).
    pub(crate) target_ready_at: Option<Timestamp>,
    /// When the primary's pods are ready.
    pub(crate) primary_ready_at: Timestamp,
    /// The pod template hash of the target.
    pub(crate) target_hash: &'static str,
    /// The next tick.
    pub(crate) requeue_at: Option<Timestamp>,
}

fn ready(at: Option<Timestamp>, now: Timestamp) -> Readiness {
    match at {
        Some(t) if t <= now => Readiness::Ready,
        _ => Readiness::Waiting(
            "waiting for rollout to finish: 0 of 2 updated replicas are available".into(),
        ),
    }
}

impl Member {
    /// A canary never ticked, its primary (created with the canary) ready.
    pub(crate) fn new() -> Member {
        Member {
            status: CanaryStatus::default(),
            routes: Routes::PRIMARY,
            target_ready_at: Some(T0),
            primary_ready_at: T0,
            target_hash: V1,
            requeue_at: None,
        }
    }

    /// What the caller observes at `now` (no check results yet).
    pub(crate) fn observed(&self, now: Timestamp) -> Observed<'static> {
        Observed {
            target_hash: self.target_hash,
            primary: ready(Some(self.primary_ready_at), now),
            canary: ready(self.target_ready_at, now),
            routes: self.routes,
            ..Observed::default()
        }
    }

    fn execute(&mut self, actions: &[Action], now: Timestamp) {
        for a in actions {
            match a {
                Action::ScaleTarget {
                    replicas: ScaleTo::Zero,
                } => self.target_ready_at = None,
                Action::ScaleTarget { .. } => {
                    self.target_ready_at = Some(now.add_secs(POD_READY_SECONDS));
                }
                Action::SetRoutes {
                    primary,
                    canary,
                    mirrored,
                } => self.routes = Routes::new(*primary, *canary, *mirrored),
                Action::Promote => self.primary_ready_at = now.add_secs(POD_READY_SECONDS),
                _ => {}
            }
        }
    }

    /// One loop tick at `now`: rounds of `tick` until the decision is final (metric checks
    /// answered with `results`), then the actions executed and the status persisted.
    /// Returns the `tick` calls made and whether the final decision was a no-op.
    pub(crate) fn tick(
        &mut self,
        canary: &Canary,
        results: &[MetricResult],
        now: Timestamp,
    ) -> (u64, bool) {
        let mut observed = self.observed(now);
        let mut calls = 0;
        for _ in 0..MAX_ROUNDS {
            let decision = tick(canary, &self.status, &observed, now);
            calls += 1;
            if decision.awaits_results() {
                // The canary has metrics and no awaited webhooks.
                observed.metrics = Some(results);
                continue;
            }
            let noop = decision.is_noop();
            let Decision {
                status,
                actions,
                requeue_at,
                ..
            } = decision;
            let status = match status {
                Cow::Owned(s) => Some(s),
                Cow::Borrowed(_) => None,
            };
            self.requeue_at = requeue_at;
            self.execute(&actions, now);
            if let Some(s) = status {
                self.status = s;
            }
            return (calls, noop);
        }
        panic!("a tick did not settle in {MAX_ROUNDS} rounds");
    }
}

/// Ticks `m` every minute from `now` until `done` holds; returns the time of the next tick.
fn tick_until(
    canary: &Canary,
    m: &mut Member,
    mut now: Timestamp,
    done: impl Fn(&Member) -> bool,
) -> Timestamp {
    let results = passing();
    for _ in 0..100 {
        m.tick(canary, &results, now);
        now = m.requeue_at.unwrap_or(now.add_secs(60));
        if done(m) {
            return now;
        }
    }
    panic!(
        "the canary never reached the expected state: {:?}",
        m.status
    );
}

/// Initialised on [`V1`] (target scaled to zero, routes created), then the target
/// changed to [`V2`]: the next tick starts a run. Returns the time of that tick.
pub(crate) fn deployed(canary: &Canary) -> (Member, Timestamp) {
    let mut m = Member::new();
    let now = tick_until(canary, &mut m, T0, |m| {
        m.status.phase == Some(CanaryPhase::Initialized)
    });
    m.target_hash = V2;
    (m, now)
}

/// Progressing on [`V2`] with 10 % of the traffic on the canary (after the pre-rollout
/// tick), the clock at the next tick.
pub(crate) fn progressing_at_10(canary: &Canary) -> (Member, Timestamp) {
    let (mut m, now) = deployed(canary);
    let now = tick_until(canary, &mut m, now, |m| m.routes.canary == 10);
    assert_eq!(m.status.phase, Some(CanaryPhase::Progressing));
    (m, now)
}

/// The run on [`V2`] finished (Succeeded), the clock at the next tick: an idle canary.
pub(crate) fn succeeded(canary: &Canary) -> (Member, Timestamp) {
    let (mut m, now) = deployed(canary);
    let now = tick_until(canary, &mut m, now, |m| {
        m.status.phase == Some(CanaryPhase::Succeeded)
    });
    (m, now)
}
