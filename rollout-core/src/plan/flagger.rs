//! The tick table of a Flagger `Canary`.
//!
//! Flagger advances a canary once per `analysis.interval` when its checks pass. The
//! table lists, tick by tick, the traffic split a healthy release goes through: the tick
//! that detects the new revision, each weight step of a canary (including Flagger's
//! overshoot past `maxWeight` and the mirroring pre-step), the iterations of A/B testing
//! and blue/green, the promotion (and its `stepWeightPromotion` shift back to the
//! primary), and finalising. With it come the gates that can hold the run (webhooks),
//! the checks that can fail it, and how long a healthy and a failing run take.

use std::fmt;

use super::PlanError;
use crate::flagger::spec::{Canary, CanaryAnalysis, HookType, Strategy};

/// One tick of a healthy run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Seconds after the new revision was detected.
    pub at_seconds: i64,
    /// Flagger's phase after the tick.
    pub phase: &'static str,
    /// Traffic weight of the primary (percent).
    pub primary: i32,
    /// Traffic weight of the canary (percent); for A/B testing, of matching requests.
    pub canary: i32,
    /// Whether the canary gets mirrored traffic.
    pub mirrored: bool,
    /// What happens on this tick.
    pub note: String,
}

/// The tick table of a Flagger canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggerPlan {
    /// Canary name.
    pub name: String,
    /// Canary, A/B testing or blue/green.
    pub strategy: Strategy,
    /// `analysis.interval` in seconds.
    pub interval_seconds: i64,
    /// Failed checks that roll the canary back.
    pub threshold: i32,
    /// Metric names checked each tick.
    pub metrics: Vec<String>,
    /// Webhook gates, as `type: name`.
    pub gates: Vec<String>,
    /// The ticks of a healthy run, detection to Succeeded.
    pub ticks: Vec<Tick>,
}

impl FlaggerPlan {
    /// Seconds from detection to Succeeded for a healthy release.
    pub fn healthy_run_seconds(&self) -> i64 {
        self.ticks.last().map_or(0, |t| t.at_seconds)
    }

    /// Seconds from the first failed check to the rollback: the threshold-th failure,
    /// then one more tick.
    pub fn rollback_seconds(&self) -> i64 {
        i64::from(self.threshold) * self.interval_seconds
    }
}

/// The canary's next weight step (Flagger's rules, reference B.3).
fn next_step(a: &CanaryAnalysis, w: i32) -> i32 {
    if a.step_weight() > 0 || a.step_weights.is_empty() {
        return a.step_weight();
    }
    let room = 100 - w;
    if room <= 0 {
        return 1;
    }
    if w == 0 {
        return room.min(a.step_weights[0]);
    }
    if let Some(i) = a.step_weights.iter().position(|s| *s == w)
        && i + 1 < a.step_weights.len()
    {
        return room.min(a.step_weights[i + 1] - w);
    }
    room
}

/// The tick table of a Flagger canary.
///
/// # Errors
///
/// [`PlanError::Invalid`] with every validation error, each naming its field path.
pub fn plan_canary(canary: &Canary) -> Result<FlaggerPlan, PlanError> {
    canary.validate()?;
    let Some(a) = canary.analysis() else {
        return Err(PlanError::Invalid(crate::spec::ValidationErrors(vec![
            crate::spec::ValidationError {
                path: "spec.analysis".into(),
                message: "required for a plan".into(),
            },
        ])));
    };
    let strategy = canary.spec.strategy();
    let interval = a.interval_seconds();
    let kubernetes = canary.spec.provider.as_deref() == Some("kubernetes");
    let mut ticks = vec![Tick {
        at_seconds: 0,
        phase: "Progressing",
        primary: 100,
        canary: 0,
        mirrored: false,
        note: "new revision detected; canary scaled up; pre-rollout hooks".into(),
    }];
    let mut t = 0i64;
    let mut push = |ticks: &mut Vec<Tick>, phase, primary, canary, mirrored, note: String| {
        t += interval;
        ticks.push(Tick {
            at_seconds: t,
            phase,
            primary,
            canary,
            mirrored,
            note,
        });
    };
    let iterations = a.iterations();
    match strategy {
        Strategy::ABTesting => {
            for i in 1..=iterations {
                push(
                    &mut ticks,
                    "Progressing",
                    0,
                    100,
                    false,
                    format!("iteration {i}/{iterations}: matching requests to the canary"),
                );
            }
        }
        Strategy::BlueGreen => {
            for i in 1..=iterations {
                let mirrored = a.mirror && !kubernetes;
                push(
                    &mut ticks,
                    "Progressing",
                    100,
                    0,
                    mirrored,
                    format!(
                        "iteration {i}/{iterations}: canary tested{}",
                        if mirrored {
                            " with mirrored traffic"
                        } else {
                            ""
                        }
                    ),
                );
            }
            if !kubernetes {
                push(
                    &mut ticks,
                    "Progressing",
                    0,
                    100,
                    false,
                    "all traffic to the canary; checks again".into(),
                );
            }
        }
        _ => {
            let max = a.max_weight();
            let mut w = 0;
            if a.mirror {
                push(
                    &mut ticks,
                    "Progressing",
                    100,
                    0,
                    true,
                    "mirroring pre-step".into(),
                );
            }
            let mut guard = 0;
            while w < max && guard < 1000 {
                let step = next_step(a, w);
                if step <= 0 {
                    break;
                }
                w = (w + step).min(100);
                push(
                    &mut ticks,
                    "Progressing",
                    100 - w,
                    w,
                    false,
                    format!("weight +{step}"),
                );
                guard += 1;
            }
            if w < max {
                // No stepWeight: Flagger analyses forever and never promotes.
                return Ok(FlaggerPlan {
                    name: canary.metadata.name.clone().unwrap_or_default(),
                    strategy,
                    interval_seconds: interval,
                    threshold: a.threshold(),
                    metrics: a.metrics.iter().map(|m| m.name.clone()).collect(),
                    gates: gates(a),
                    ticks,
                });
            }
        }
    }
    // Promotion.
    let (mut primary, mut canary_w) = ticks.last().map_or((100, 0), |k| (k.primary, k.canary));
    push(
        &mut ticks,
        "Promoting",
        primary,
        canary_w,
        false,
        "confirm-promotion; canary spec copied to the primary".into(),
    );
    let shift = a.step_weight_promotion();
    if shift > 0 && !(strategy == Strategy::BlueGreen && kubernetes) {
        while primary < 100 {
            primary = (primary + shift).min(100);
            canary_w = (canary_w - shift).max(0);
            let phase = if primary >= 100 {
                "Finalising"
            } else {
                "Promoting"
            };
            push(
                &mut ticks,
                phase,
                primary,
                canary_w,
                false,
                format!("traffic back to the primary (+{shift})"),
            );
        }
    } else {
        push(
            &mut ticks,
            "Finalising",
            100,
            0,
            false,
            "all traffic back to the primary".into(),
        );
    }
    push(
        &mut ticks,
        "Succeeded",
        100,
        0,
        false,
        "canary scaled to 0; post-rollout hooks".into(),
    );
    Ok(FlaggerPlan {
        name: canary.metadata.name.clone().unwrap_or_default(),
        strategy,
        interval_seconds: interval,
        threshold: a.threshold(),
        metrics: a.metrics.iter().map(|m| m.name.clone()).collect(),
        gates: gates(a),
        ticks,
    })
}

fn gates(a: &CanaryAnalysis) -> Vec<String> {
    a.webhooks
        .iter()
        .filter(|w| {
            matches!(
                w.r#type,
                HookType::ConfirmRollout
                    | HookType::ConfirmTrafficIncrease
                    | HookType::ConfirmPromotion
                    | HookType::Rollback
            )
        })
        .map(|w| format!("{}: {}", w.r#type.as_str(), w.name))
        .collect()
}

impl fmt::Display for FlaggerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Canary {}: {} (Flagger), a tick every {}",
            self.name,
            self.strategy.as_str(),
            super::human_seconds(self.interval_seconds)
        )?;
        if !self.metrics.is_empty() {
            writeln!(f, "  checks each tick: {}", self.metrics.join(", "))?;
        }
        writeln!(
            f,
            "  rollback after {} failed checks (about {} after the first failure)",
            self.threshold,
            super::human_seconds(self.rollback_seconds())
        )?;
        if !self.gates.is_empty() {
            writeln!(f, "  gates: {}", self.gates.join(", "))?;
        }
        writeln!(f)?;
        writeln!(f, "TIME      PHASE        PRIMARY  CANARY  NOTE")?;
        for t in &self.ticks {
            let canary = if t.mirrored {
                format!("{}%+m", t.canary)
            } else {
                format!("{}%", t.canary)
            };
            writeln!(
                f,
                "{:<8}  {:<11}  {:>6}%  {:>6}  {}",
                super::human_seconds(t.at_seconds),
                t.phase,
                t.primary,
                canary,
                t.note
            )?;
        }
        let last = self.ticks.last().map(|t| t.phase);
        if last == Some("Succeeded") {
            writeln!(
                f,
                "\na healthy release is promoted after {}",
                super::human_seconds(self.healthy_run_seconds())
            )?;
        } else {
            writeln!(
                f,
                "\nthe weight never reaches maxWeight: the canary is analysed forever"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(analysis: &str) -> Canary {
        Canary::from_yaml(&format!(
            "apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: podinfo}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 9898}}
  analysis:
{analysis}"
        ))
        .unwrap()
    }

    fn weights(p: &FlaggerPlan) -> Vec<i32> {
        p.ticks
            .iter()
            .filter(|t| t.phase == "Progressing")
            .map(|t| t.canary)
            .collect()
    }

    #[test]
    fn canary_weights_overshoot_like_flagger() {
        let p = plan_canary(&canary(
            "    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 20\n",
        ))
        .unwrap();
        assert_eq!(weights(&p), [0, 20, 40, 60]);
        assert_eq!(
            p.ticks.iter().map(|t| t.phase).collect::<Vec<_>>()[4..],
            ["Promoting", "Finalising", "Succeeded"]
        );
        assert_eq!(p.healthy_run_seconds(), 6 * 60);
        assert_eq!(p.rollback_seconds(), 5 * 60);
        let p = plan_canary(&canary(
            "    interval: 30s\n    threshold: 2\n    stepWeights: [1, 2, 10, 200]\n",
        ))
        .unwrap();
        assert_eq!(weights(&p), [0, 1, 2, 10, 100]);
        let p = plan_canary(&canary(
            "    interval: 30s\n    threshold: 2\n    stepWeights: [1, 2, 10, 80]\n",
        ))
        .unwrap();
        assert_eq!(weights(&p), [0, 1, 2, 10, 80]);
    }

    #[test]
    fn promotion_shift_and_mirroring() {
        let p = plan_canary(&canary("    interval: 1m\n    threshold: 5\n    stepWeight: 50\n    maxWeight: 100\n    stepWeightPromotion: 50\n")).unwrap();
        let promo: Vec<_> = p
            .ticks
            .iter()
            .skip_while(|t| t.phase == "Progressing")
            .map(|t| (t.phase, t.primary))
            .collect();
        assert_eq!(
            promo,
            [
                ("Promoting", 0),
                ("Promoting", 50),
                ("Finalising", 100),
                ("Succeeded", 100)
            ]
        );
        let p = plan_canary(&canary(
            "    interval: 1m\n    threshold: 5\n    stepWeight: 50\n    mirror: true\n",
        ))
        .unwrap();
        assert!(p.ticks[1].mirrored && p.ticks[1].canary == 0);
    }

    #[test]
    fn ab_testing_and_blue_green_iterations() {
        let ab = canary(
            "    interval: 1m\n    threshold: 5\n    iterations: 3\n    match:\n    - headers:\n        x-canary: {exact: insider}\n",
        );
        let p = plan_canary(&ab).unwrap();
        assert_eq!(p.strategy, Strategy::ABTesting);
        assert_eq!(
            p.ticks
                .iter()
                .filter(|t| t.note.starts_with("iteration"))
                .count(),
            3
        );
        let bg = canary("    interval: 1m\n    threshold: 5\n    iterations: 2\n");
        let p = plan_canary(&bg).unwrap();
        assert_eq!(p.strategy, Strategy::BlueGreen);
        assert!(
            p.ticks
                .iter()
                .any(|t| t.canary == 100 && t.phase == "Progressing")
        );
        assert!(p.to_string().contains("promoted after"));
    }
}
