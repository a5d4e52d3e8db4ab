//! The shipped scenario, scaled down, through every policy: determinism, and outcomes
//! that must hold whatever the noise.

use std::path::{Path, PathBuf};

use rollout_simulate::scenario::Effect;
use rollout_simulate::{End, RunOptions, Scenario, ScenarioError, Simulation};

fn scenario(rollouts: u64) -> (Scenario, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut s = Scenario::from_file(&dir.join("error-spike.yaml")).expect("the scenario loads");
    s.rollouts = rollouts;
    (s, dir)
}

fn threads(n: usize, in_flight: usize) -> RunOptions<'static> {
    RunOptions {
        threads: n,
        in_flight,
        ..RunOptions::default()
    }
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let (s, dir) = scenario(240);
    let sim = Simulation::new(s.clone(), &dir).unwrap();
    let one = sim.run(threads(1, 1000));
    let two = sim.run(threads(2, 7));
    let three = sim.run(threads(3, 50));
    assert_eq!(one.to_csv(), two.to_csv());
    assert_eq!(one.to_csv(), three.to_csv());
    for (a, b) in one.policies.iter().zip(&two.policies) {
        assert_eq!(a.outcomes, b.outcomes, "{}", a.name);
    }
    // A new simulation from the same file gives the same bytes too.
    let again = Simulation::new(s.clone(), &dir)
        .unwrap()
        .run(threads(2, 100));
    assert_eq!(one.to_csv(), again.to_csv());
    // Another seed gives other releases.
    let mut other = s;
    other.seed += 1;
    let other = Simulation::new(other, &dir).unwrap().run(threads(2, 100));
    assert_ne!(one.to_csv(), other.to_csv());
}

#[test]
fn every_policy_sees_the_same_releases_and_ends_every_rollout() {
    let (s, dir) = scenario(200);
    let r = Simulation::new(s, &dir).unwrap().run(threads(2, 64));
    let bad: Vec<bool> = r.policies[0].outcomes.iter().map(|o| o.bad).collect();
    assert!(bad.iter().any(|b| *b) && bad.iter().any(|b| !*b));
    for p in &r.policies {
        let these: Vec<bool> = p.outcomes.iter().map(|o| o.bad).collect();
        assert_eq!(these, bad, "{}", p.name);
        assert_eq!(p.summary.stalled, 0, "{}", p.name);
        assert!(p.summary.decisions > 0 && p.summary.measurements > 0);
        // Good releases are promoted, most of the time, in more than the pauses take.
        assert!(p.summary.false_abort_rate < 0.1, "{}", p.name);
        assert!(
            p.summary.promote.p50.is_some_and(|t| t >= 240),
            "{}",
            p.name
        );
    }
}

#[test]
fn a_huge_effect_is_detected_by_every_policy() {
    let (mut s, dir) = scenario(200);
    s.releases.bad_share = 0.5;
    s.releases.effects = vec![Effect {
        weight: 1.0,
        error_rate: 0.5,
        latency_ms: 2000.0,
    }];
    let r = Simulation::new(s, &dir).unwrap().run(threads(2, 64));
    for p in &r.policies {
        assert_eq!(p.summary.detected, p.summary.bad, "{}", p.name);
        assert_eq!(p.summary.missed, 0, "{}", p.name);
        // Detection comes before the end of the canary.
        assert!(p.summary.abort.p99 < p.summary.promote.p50, "{}", p.name);
    }
}

#[test]
fn a_zero_effect_is_detected_no_more_often_than_good_releases_are_aborted() {
    let (mut s, dir) = scenario(600);
    s.releases.bad_share = 0.5;
    s.releases.effects = vec![Effect {
        weight: 1.0,
        error_rate: 0.0,
        latency_ms: 0.0,
    }];
    let r = Simulation::new(s, &dir).unwrap().run(threads(2, 128));
    for p in &r.policies {
        let s = &p.summary;
        // "Bad" releases that are identical to good ones are aborted at the false-abort
        // rate, give or take sampling error.
        assert!(
            s.detection_rate <= s.false_abort_rate + 0.04,
            "{}: detection {} vs false aborts {}",
            p.name,
            s.detection_rate,
            s.false_abort_rate
        );
    }
}

#[test]
fn bigger_effects_are_detected_more_often() {
    let (mut s, dir) = scenario(300);
    s.releases.bad_share = 1.0;
    let mut rates = Vec::new();
    for effect in [0.002, 0.03] {
        s.releases.effects = vec![Effect {
            weight: 1.0,
            error_rate: effect,
            latency_ms: 0.0,
        }];
        let r = Simulation::new(s.clone(), &dir)
            .unwrap()
            .run(threads(2, 128));
        rates.push(
            r.policies
                .iter()
                .map(|p| p.summary.detection_rate)
                .collect::<Vec<_>>(),
        );
    }
    for (small, big) in rates[0].iter().zip(&rates[1]) {
        assert!(small < big, "{small} vs {big}");
    }
}

#[test]
fn crash_looping_releases_end_and_are_not_promoted() {
    let (mut s, dir) = scenario(120);
    s.releases.bad_share = 1.0;
    s.workload.crash_loop_share = 1.0;
    s.max_minutes = Some(120);
    let r = Simulation::new(s, &dir).unwrap().run(threads(2, 64));
    for p in &r.policies {
        assert_eq!(p.summary.missed, 0, "{}", p.name);
        // No canary pod ever serves: nothing is exposed.
        assert_eq!(p.summary.bad_exposure, 0.0, "{}", p.name);
    }
    // Flagger rolls back after its progress deadline; the Argo rollouts (no
    // progressDeadlineAbort) wait, Degraded, and count as stalled.
    let flagger = &r.policies[1].summary;
    assert_eq!(flagger.detected, flagger.bad);
    assert_eq!(r.policies[0].summary.stalled, r.policies[0].summary.bad);
}

#[test]
fn a_missing_manifest_names_the_policy_and_file() {
    let (mut s, dir) = scenario(10);
    s.policies[1].canary = Some("manifests/nope.yaml".into());
    let e = Simulation::new(s, &dir).unwrap_err();
    match &e {
        ScenarioError::Manifest {
            index,
            policy,
            file,
            ..
        } => {
            assert_eq!((*index, policy.as_str()), (1, "flagger-range"));
            assert!(file.ends_with("manifests/nope.yaml"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_blue_green_rollout_is_simulated_and_one_without_a_strategy_is_refused() {
    let dir = std::env::temp_dir().join(format!("rollout-simulate-bg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rollout = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
";
    std::fs::write(
        dir.join("bg.yaml"),
        format!("{rollout}  strategy:\n    blueGreen: {{activeService: web}}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("none.yaml"), rollout).unwrap();
    std::fs::write(dir.join("t.yaml"), "").unwrap();
    let (mut s, _) = scenario(10);
    s.policies.truncate(1);
    s.policies[0].rollout = Some("bg.yaml".into());
    s.policies[0].templates = Some("t.yaml".into());
    // Without analysis every release, good or bad, is switched to and promoted.
    let r = Simulation::new(s.clone(), &dir)
        .unwrap()
        .run(threads(1, 10));
    let p = &r.policies[0];
    assert!(
        p.outcomes.iter().all(|o| o.end == End::Promoted),
        "{:?}",
        p.outcomes
    );
    // Switched to (and promoted at once) when the new pods are available: 5 s or more.
    assert!(
        p.outcomes.iter().all(|o| o.seconds >= 5),
        "{:?}",
        p.outcomes
    );
    s.policies[0].rollout = Some("none.yaml".into());
    let e = Simulation::new(s, &dir).unwrap_err();
    assert!(
        matches!(&e, ScenarioError::Manifest { file, .. } if file.ends_with("none.yaml")),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The blue-green scenario, scaled down.
fn bluegreen(rollouts: u64) -> (Scenario, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut s = Scenario::from_file(&dir.join("bluegreen.yaml")).expect("the scenario loads");
    s.rollouts = rollouts;
    (s, dir)
}

#[test]
fn blue_green_is_deterministic_for_a_seed() {
    let (s, dir) = bluegreen(150);
    let sim = Simulation::new(s.clone(), &dir).unwrap();
    let one = sim.run(threads(1, 1000));
    let two = sim.run(threads(2, 9));
    assert_eq!(one.to_csv(), two.to_csv());
    let mut other = s;
    other.seed += 1;
    let other = Simulation::new(other, &dir).unwrap().run(threads(2, 50));
    assert_ne!(one.to_csv(), other.to_csv());
}

#[test]
fn blue_green_switches_bad_releases_back_and_promotes_good_ones() {
    // Every other release raises the error ratio a lot: the preview's latency check
    // cannot see it, the post-promotion analysis must.
    let (mut s, dir) = bluegreen(200);
    s.releases.bad_share = 0.5;
    s.releases.effects = vec![Effect {
        weight: 1.0,
        error_rate: 0.2,
        latency_ms: 0.0,
    }];
    let r = Simulation::new(s, &dir).unwrap().run(threads(2, 64));
    let bg = r
        .policies
        .iter()
        .find(|p| p.name == "bluegreen-analysis")
        .unwrap();
    let canary = r
        .policies
        .iter()
        .find(|p| p.name == "argo-threshold")
        .unwrap();
    let sum = &bg.summary;
    assert_eq!(sum.stalled, 0);
    assert_eq!(sum.detected, sum.bad, "{sum:?}");
    assert!(sum.false_abort_rate < 0.05, "{sum:?}");
    for o in &bg.outcomes {
        // Every release served all the traffic at some point (after the switch).
        assert!(o.exposure > 0.0, "{o:?}");
        if !o.bad {
            // Promoted only after the post-promotion analysis (five 1-minute points).
            assert!(o.end == End::Aborted || o.seconds >= 300, "{o:?}");
        }
    }
    // All the traffic instead of the canary's 10% at first: more requests reach a bad
    // version before the verdict.
    assert!(sum.bad_exposure > canary.summary.bad_exposure, "{sum:?}");
}
