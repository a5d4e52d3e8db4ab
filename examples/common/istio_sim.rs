//! The quickstart's Istio section: the canary of `examples/rollout-istio.yaml` with its
//! traffic split by an Istio VirtualService. The rollout machine's route actions go
//! through rollout-traffic's router (`MemoryRouter`: the `TrafficRouter` port over
//! objects held in memory), and the timeline shows the weights and the header route as
//! they stand in the VirtualService after each pass. The analysis step runs the
//! `error-rate` template with rollout-analysis' runner against a seeded series. A
//! healthy release is promoted; a bad one fails its analysis and the weights go back to
//! the stable.

use crate::util::{Noise, counts, mm_ss, tag, template_hash};
use std::fmt::Write as _;

use rollout_analysis::expr::Value;
use rollout_analysis::provider::{Measured, ProviderError};
use rollout_analysis::runner::{ManagedRun, MetricSource, TemplateCatalog};
use rollout_analysis::sim::SimAnalysis;
use rollout_analysis::template::Metric;
use rollout_core::command;
use rollout_core::sim::{AlwaysSucceeds, Harness, SimCluster};
use rollout_core::spec::yaml::split_documents;
use rollout_core::spec::{Rollout, rollout_documents};
use rollout_core::status::{RolloutPhase, RolloutStatus};
use rollout_core::time::Timestamp;
use rollout_core::traffic::{TrafficCommand, TrafficRouter};
use rollout_traffic::ObjectRef;
use rollout_traffic::router::{MemoryRouter, RolloutRouting};

/// The manifest: the Rollout, its AnalysisTemplate and the VirtualService.
pub(crate) const MANIFEST: &str = include_str!("../rollout-istio.yaml");

/// Seconds a new pod takes to become ready.
const POD_READY_SECONDS: i64 = 10;

/// 2026-01-01T00:00:00Z, as in the other sections.
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// A release and its error rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// What the release is called in the output.
    pub(crate) title: &'static str,
    /// Its image.
    pub(crate) image: &'static str,
    /// Mean error rate of the canary.
    pub(crate) error_rate: f64,
    /// Seed of the noise.
    pub(crate) seed: u64,
}

/// A healthy release: ~0.2 % errors.
pub(crate) const GOOD: Release = Release {
    title: "a healthy release (~0.2% errors)",
    image: "ghcr.io/example/shop:1.1",
    error_rate: 0.002,
    seed: 31,
};

/// A bad release: ~4 % errors.
pub(crate) const BAD: Release = Release {
    title: "a bad release (~4% errors)",
    image: "ghcr.io/example/shop:1.2",
    error_rate: 0.04,
    seed: 32,
};

/// Plays Prometheus for the template's query.
#[derive(Debug, Clone)]
pub(crate) struct ErrorRates {
    release: Release,
    noise: Noise,
}

impl MetricSource for ErrorRates {
    fn measure(
        &mut self,
        _run: &ManagedRun,
        metric: &Metric,
        _now: Timestamp,
    ) -> Result<Measured, ProviderError> {
        let query = metric
            .provider
            .prometheus
            .as_ref()
            .and_then(|p| p.query.as_deref())
            .unwrap_or_default();
        if !query.contains("destination_service_name=\"shop-canary\"") {
            return Err(ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: format!("the simulated server has no series for {query}"),
            });
        }
        let r = self.release.error_rate * (0.8 + 0.4 * self.noise.next_unit());
        Ok(Measured::Value(Value::Array(vec![Value::Float(r)])))
    }
}

/// One pass that did something.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    /// When.
    pub(crate) at: Timestamp,
    /// `2/7 setWeight: 5`, `done`, `aborted`.
    pub(crate) step: String,
    /// The `primary` route's weights in the VirtualService: (stable, canary).
    pub(crate) vs_weights: (i64, i64),
    /// Whether the VirtualService holds the `beta-testers` header route.
    pub(crate) header_route: bool,
    /// Canary ReplicaSet (spec, available).
    pub(crate) canary: (i32, i32),
    /// Stable ReplicaSet (spec, available).
    pub(crate) stable: (i32, i32),
    /// Phase and message.
    pub(crate) phase: String,
    /// Event reasons.
    pub(crate) events: Vec<String>,
}

/// One update.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The release.
    pub(crate) release: Release,
    /// The timeline.
    pub(crate) lines: Vec<Line>,
    /// The final status.
    pub(crate) status: RolloutStatus,
    /// The VirtualService at the end.
    pub(crate) virtual_service: serde_json::Value,
    /// Patches the router sent.
    pub(crate) patches: usize,
}

/// The section's result.
#[derive(Debug, Clone)]
pub(crate) struct IstioQuickstart {
    /// The VirtualService as written in the manifest.
    pub(crate) initial_vs: serde_json::Value,
    /// The healthy update, then the bad one.
    pub(crate) updates: Vec<Update>,
}

/// Why the section could not run.
pub(crate) type Error = Box<dyn std::error::Error>;

fn virtual_service() -> Result<serde_json::Value, Error> {
    for chunk in split_documents(MANIFEST).iter().filter(|c| c.has_content) {
        let doc: serde_json::Value = serde_saphyr::from_str(chunk.text)?;
        if doc["kind"] == "VirtualService" {
            return Ok(doc);
        }
    }
    Err("examples/rollout-istio.yaml has no VirtualService".into())
}

fn primary_weights(vs: &serde_json::Value) -> (i64, i64) {
    let routes = vs["spec"]["http"].as_array().cloned().unwrap_or_default();
    let primary = routes.iter().find(|r| r["name"] == "primary");
    let weight = |host: &str| {
        primary
            .and_then(|p| p["route"].as_array())
            .and_then(|r| r.iter().find(|d| d["destination"]["host"] == host))
            .and_then(|d| d["weight"].as_i64())
            .unwrap_or(0)
    };
    (weight("shop-stable"), weight("shop-canary"))
}

fn has_header_route(vs: &serde_json::Value) -> bool {
    vs["spec"]["http"]
        .as_array()
        .is_some_and(|r| r.iter().any(|h| h["name"] == "beta-testers"))
}

fn step_text(rollout: &Rollout, st: &RolloutStatus) -> String {
    let steps = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .map_or(0, |c| c.steps.len());
    let index = st
        .current_step_index
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0);
    if st.abort {
        "aborted".into()
    } else if index >= steps {
        "done".into()
    } else {
        format!("{}/{steps}", index + 1)
    }
}

fn update(
    h: &mut Harness,
    router: &mut MemoryRouter,
    vs_ref: &ObjectRef,
    release: Release,
) -> Result<Update, Error> {
    let stable_hash = h.status.stable_rs.clone();
    command::set_image(&mut h.rollout, "shop", release.image)?;
    let canary_hash = template_hash(&h.rollout)?;
    h.pod_template_hash.clone_from(&canary_hash);
    let mut script = SimAnalysis::new(
        TemplateCatalog::from_yaml(MANIFEST)?,
        "default",
        "shop",
        ErrorRates {
            release,
            noise: Noise(release.seed),
        },
    );
    let until = h.now.add_secs(1800);
    let mut lines = Vec::new();
    let mut patches = 0;
    let mut failure: Option<String> = None;
    let rollout = h.rollout.clone();
    h.run(&mut script, until, |rec, cluster| {
        for action in &rec.actions {
            if let Some(cmd) = TrafficCommand::from_action(action)
                && let Err(e) = router.execute(&cmd)
            {
                failure.get_or_insert_with(|| e.to_string());
            }
        }
        patches += router.take_sent().len();
        let vs = router.objects().get(vs_ref).cloned().unwrap_or_default();
        let st = &rec.status;
        lines.push(Line {
            at: rec.at,
            step: step_text(&rollout, st),
            vs_weights: primary_weights(&vs),
            header_route: has_header_route(&vs),
            canary: counts(cluster, &canary_hash),
            stable: counts(cluster, &stable_hash),
            phase: match st.phase {
                Some(p) if st.message.is_empty() => p.to_string(),
                Some(p) => format!("{p}: {}", st.message),
                None => "-".into(),
            },
            events: rec.events.iter().map(|e| e.reason.to_string()).collect(),
        });
    });
    if let Some(e) = failure {
        return Err(format!("the router refused a route change: {e}").into());
    }
    Ok(Update {
        release,
        lines,
        status: h.status.clone(),
        virtual_service: router.objects().get(vs_ref).cloned().unwrap_or_default(),
        patches,
    })
}

/// Runs the section: the initial deploy, the healthy update, the bad update.
pub(crate) fn run() -> Result<IstioQuickstart, Error> {
    let rollout: Rollout = rollout_documents(MANIFEST)
        .into_iter()
        .next()
        .ok_or("examples/rollout-istio.yaml has no Rollout")?
        .result?;
    let routing = RolloutRouting::from_rollout(&rollout)?;
    let initial_vs = virtual_service()?;
    let vs_ref = ObjectRef::new("VirtualService", "default", "shop");
    let mut router = MemoryRouter::new(routing, [(vs_ref.clone(), initial_vs.clone())]);
    let hash = template_hash(&rollout)?;
    let mut h = Harness::new(rollout, &hash, SimCluster::new(POD_READY_SECONDS), T0);
    h.run(
        &mut AlwaysSucceeds { after_seconds: 0 },
        T0.add_secs(600),
        |_, _| {},
    );
    if h.status.phase != Some(RolloutPhase::Healthy) {
        return Err("the initial deploy did not become Healthy".into());
    }
    h.now = h.now.add_secs(300);
    let good = update(&mut h, &mut router, &vs_ref, GOOD)?;
    h.now = h.now.add_secs(300);
    let bad = update(&mut h, &mut router, &vs_ref, BAD)?;
    Ok(IstioQuickstart {
        initial_vs,
        updates: vec![good, bad],
    })
}

/// Renders the section.
pub(crate) fn render(q: &IstioQuickstart) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Rollout shop (5 pods) with Istio traffic routing: rollout-traffic rewrites the weights of route `primary` in VirtualService default/shop and adds header route `beta-testers` (x-beta: true); retries, gateways and hosts stay as written. Analysis error-rate: 3 measurements 20s apart, result <= 1%."
    );
    for (i, u) in q.updates.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "== Istio update {}: -> {}, {}",
            i + 1,
            tag(u.release.image),
            u.release.title
        );
        let _ = writeln!(
            out,
            "{:<5}  {:<7}  {:>17}  {:<12}  {:>7}  {:>7}  PHASE | EVENTS",
            "TIME", "STEP", "VS stable/canary", "HEADER ROUTE", "CANARY", "STABLE"
        );
        let start = u.lines.first().map_or(T0, |l| l.at);
        let mut previous: Option<&Line> = None;
        for l in &u.lines {
            let same = previous.is_some_and(|p| {
                (
                    &p.step,
                    p.vs_weights,
                    p.header_route,
                    p.canary,
                    p.stable,
                    &p.phase,
                ) == (
                    &l.step,
                    l.vs_weights,
                    l.header_route,
                    l.canary,
                    l.stable,
                    &l.phase,
                )
            });
            if same && l.events.is_empty() {
                continue;
            }
            previous = Some(l);
            let mut tail = l.phase.clone();
            for e in &l.events {
                tail.push_str(" | ");
                tail.push_str(e);
            }
            let _ = writeln!(
                out,
                "{:<5}  {:<7}  {:>17}  {:<12}  {:>7}  {:>7}  {tail}",
                mm_ss(l.at.millis_since(start) / 1000),
                l.step,
                format!("{}/{}", l.vs_weights.0, l.vs_weights.1),
                if l.header_route { "x-beta:true" } else { "-" },
                format!("{}/{}", l.canary.0, l.canary.1),
                format!("{}/{}", l.stable.0, l.stable.1),
            );
        }
        let (s, c) = primary_weights(&u.virtual_service);
        let _ = writeln!(
            out,
            "-> {}; VirtualService primary route {s}/{c}, retries kept: {}; {} patches sent",
            u.status.phase.map_or("-", RolloutPhase::as_str),
            u.virtual_service["spec"]["http"]
                .as_array()
                .and_then(|r| r.iter().find(|h| h["name"] == "primary"))
                .is_some_and(|p| p["retries"] == q.initial_vs["spec"]["http"][0]["retries"]),
            u.patches
        );
    }
    out
}
