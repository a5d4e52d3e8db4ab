//! The quickstart's simulation: the rollout of `examples/rollout.yaml` deployed on an
//! in-memory cluster, then updated twice in virtual time — a healthy release that is
//! promoted and a bad one whose analysis fails and aborts it. Shared by the `quickstart`
//! example and the examples' tests.

use crate::util::{Noise, counts, image, mm_ss, tag, template_hash};
use std::fmt::Write as _;

use rollout_analysis::expr::Value;
use rollout_analysis::provider::{Measured, ProviderError};
use rollout_analysis::runner::{ManagedRun, MetricSource, TemplateCatalog};
use rollout_analysis::sim::SimAnalysis;
use rollout_analysis::template::Metric;
use rollout_core::canary::{Event, EventType};
use rollout_core::command;
use rollout_core::plan::{Plan, plan};
use rollout_core::sim::{AlwaysSucceeds, AnalysisScript, Harness, PassRecord, SimCluster, SimRun};
use rollout_core::spec::{Rollout, rollout_documents};
use rollout_core::status::{AnalysisPhase, RolloutPhase, RolloutStatus};
use rollout_core::time::Timestamp;

/// The manifest: the Rollout, its AnalysisTemplate and a Service.
pub(crate) const MANIFEST: &str = include_str!("../rollout.yaml");

/// Seconds a new pod takes to become ready and available.
pub(crate) const POD_READY_SECONDS: i64 = 15;

/// The AnalysisTemplate `success-rate` of the manifest: `interval: 30s`, `count: 3`,
/// `failureLimit: 1`, `successCondition: result[0] >= 0.95`.
pub(crate) const INTERVAL_SECONDS: i64 = 30;
/// Measurements a run takes.
pub(crate) const COUNT: usize = 3;
/// Failed measurements tolerated; one more fails the run.
pub(crate) const FAILURE_LIMIT: usize = 1;
/// The success condition's threshold.
pub(crate) const THRESHOLD: f64 = 0.95;

/// 2026-01-01T00:00:00Z: the virtual clock starts here.
const T0: Timestamp = Timestamp::from_secs(1_767_225_600);

/// A release: an image and how its success rate behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// What the release is called in the output.
    pub(crate) title: &'static str,
    /// The image `kubectl argo rollouts set image` puts in the template.
    pub(crate) image: &'static str,
    /// The success rate the metric stream hovers around.
    pub(crate) mean: f64,
    /// Half-width of the uniform noise around the mean.
    pub(crate) spread: f64,
    /// Seed of the noise.
    pub(crate) seed: u64,
}

/// The healthy release: ~99.5 % of requests succeed.
pub(crate) const GOOD: Release = Release {
    title: "a healthy release (success rate ~99.5%)",
    image: "ghcr.io/example/web:1.1",
    mean: 0.995,
    spread: 0.004,
    seed: 11,
};

/// The bad release: ~93 % of requests succeed.
pub(crate) const BAD: Release = Release {
    title: "a bad release (success rate ~93%)",
    image: "ghcr.io/example/web:1.2",
    mean: 0.93,
    spread: 0.02,
    seed: 12,
};

/// One measurement of the success-rate metric.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    /// When it was taken.
    pub(crate) at: Timestamp,
    /// The AnalysisRun it belongs to.
    pub(crate) run: String,
    /// 1-based number of the measurement in its run.
    pub(crate) number: usize,
    /// The measured success rate.
    pub(crate) value: f64,
    /// Whether `result[0] >= 0.95` held.
    pub(crate) ok: bool,
    /// The run's verdict, when this measurement decided it.
    pub(crate) verdict: Option<(AnalysisPhase, String)>,
}

/// The seeded success-rate series of a release: what Prometheus would answer for the
/// template's query while the release is the canary.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    release: Release,
    noise: Noise,
    /// Values answered and not yet logged: (time, run, value).
    answered: Vec<(Timestamp, String, f64)>,
}

impl MetricSource for Sampler {
    fn measure(
        &mut self,
        run: &ManagedRun,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Measured, ProviderError> {
        // Only the Prometheus query of the template is modelled; the runner has already
        // substituted `{{args.service-name}}` into it.
        let query = metric
            .provider
            .prometheus
            .as_ref()
            .and_then(|p| p.query.as_deref())
            .ok_or_else(|| ProviderError::NotConfigured {
                metric: metric.name.clone(),
                provider: "prometheus".into(),
            })?;
        if !query.contains("service=\"web\"") {
            return Err(ProviderError::Query {
                provider: "prometheus",
                error_type: "bad_data".into(),
                message: format!("the simulated server has no series for {query}"),
            });
        }
        let value = self.release.mean + self.release.spread * (2.0 * self.noise.next_unit() - 1.0);
        let value = value.clamp(0.0, 1.0);
        self.answered.push((now, run.name().to_string(), value));
        // An instant vector with one sample, as the Prometheus provider hands it over.
        Ok(Measured::Value(Value::Array(vec![Value::Float(value)])))
    }
}

/// The analysis controller of the quickstart: rollout-analysis' runner ([`SimAnalysis`])
/// runs the manifest's `success-rate` AnalysisTemplate — its interval, count,
/// `failureLimit` and `successCondition` — against the release's seeded series, and
/// keeps a log of the measurements for the timeline.
#[derive(Debug, Clone)]
pub(crate) struct MetricStream {
    analysis: SimAnalysis<Sampler>,
    /// Measurements logged per run.
    taken: std::collections::BTreeMap<String, usize>,
    /// Every measurement taken, in order.
    pub(crate) log: Vec<Measurement>,
}

impl MetricStream {
    /// A stream for `release`, with the templates of [`MANIFEST`].
    pub(crate) fn new(release: Release) -> Result<Self, Error> {
        let catalog = TemplateCatalog::from_yaml(MANIFEST)?;
        let sampler = Sampler {
            release,
            noise: Noise(release.seed),
            answered: Vec::new(),
        };
        Ok(MetricStream {
            analysis: SimAnalysis::new(catalog, "default", "web", sampler),
            taken: std::collections::BTreeMap::new(),
            log: Vec::new(),
        })
    }

    /// Moves the measurements answered since the last call into [`Self::log`], with
    /// their verdicts as the runner judged them.
    fn collect(&mut self) {
        let answered = std::mem::take(&mut self.analysis.source_mut().answered);
        for (at, run_name, value) in answered {
            let Some(run) = self.analysis.runs().run(&run_name) else {
                continue;
            };
            let result = run.status.metric_result("success-rate");
            let number = {
                let n = self.taken.entry(run_name.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let measurement = result.and_then(|r| {
                r.measurements
                    .iter()
                    .find(|m| m.finished_at == Some(at) && m.started_at == Some(at))
                    .or(r.measurements.last())
            });
            let ok = measurement.is_some_and(|m| m.phase == AnalysisPhase::Successful);
            let completed = run.status.phase.is_some_and(AnalysisPhase::is_completed);
            let last =
                result.is_some_and(|r| usize::try_from(r.count + r.error).unwrap_or(0) == number);
            let verdict = (completed && last).then(|| {
                (
                    run.status.phase.unwrap_or(AnalysisPhase::Error),
                    run.status.message.clone(),
                )
            });
            self.log.push(Measurement {
                at,
                run: run_name,
                number,
                value,
                ok,
                verdict,
            });
        }
    }
}

impl AnalysisScript for MetricStream {
    fn verdict(&mut self, run: &SimRun, now: Timestamp) -> Option<(AnalysisPhase, String)> {
        let v = self.analysis.verdict(run, now);
        self.collect();
        v
    }

    fn next_check(&self, run: &SimRun, now: Timestamp) -> Option<Timestamp> {
        self.analysis.next_check(run, now)
    }
}

/// One pass of the controller that did something, as the timeline shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PassLine {
    /// Time of the pass.
    pub(crate) at: Timestamp,
    /// `2/5 pause: 3m`, `done`, `aborted`.
    pub(crate) step: String,
    /// The `setWeight` in force.
    pub(crate) set_weight: i32,
    /// Share of available pods that are canary pods: the traffic a Service selecting
    /// both sends to the canary.
    pub(crate) actual_weight: i32,
    /// The old stable ReplicaSet: (spec, available).
    pub(crate) stable: (i32, i32),
    /// The new ReplicaSet: (spec, available).
    pub(crate) canary: (i32, i32),
    /// The step analysis run's phase, as recorded in the status.
    pub(crate) analysis: String,
    /// Phase and message.
    pub(crate) phase: String,
    /// The events of the pass.
    pub(crate) events: Vec<Event>,
}

/// A line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    /// A controller pass.
    Pass(PassLine),
    /// A metric measurement by the analysis controller.
    Measurement(Measurement),
}

impl Entry {
    fn at(&self) -> Timestamp {
        match self {
            Entry::Pass(p) => p.at,
            Entry::Measurement(m) => m.at,
        }
    }
}

/// One update, from `set image` to the end.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The release rolled out.
    pub(crate) release: Release,
    /// The image that was stable before.
    pub(crate) stable_image: String,
    /// Pod template hash of the stable ReplicaSet before the update.
    pub(crate) stable_hash: String,
    /// Pod template hash of the new ReplicaSet.
    pub(crate) canary_hash: String,
    /// When the update started.
    pub(crate) started: Timestamp,
    /// The timeline.
    pub(crate) entries: Vec<Entry>,
    /// Controller passes run, including the quiet ones.
    pub(crate) passes: usize,
    /// The status when nothing more happened.
    pub(crate) status: RolloutStatus,
    /// The cluster then.
    pub(crate) cluster: SimCluster,
}

impl Update {
    /// The last pass line.
    pub(crate) fn last_pass(&self) -> Option<&PassLine> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Pass(p) => Some(p),
            Entry::Measurement(_) => None,
        })
    }
}

/// The whole quickstart.
#[derive(Debug, Clone)]
pub(crate) struct Quickstart {
    /// The plan of the rollout.
    pub(crate) plan: Plan,
    /// The first image, deployed before the updates.
    pub(crate) initial_image: String,
    /// When the initial deploy became Healthy, in seconds from the start.
    pub(crate) initial_healthy_after: i64,
    /// The healthy update, then the bad one.
    pub(crate) updates: Vec<Update>,
}

/// Why the quickstart could not run (a broken manifest).
pub(crate) type Error = Box<dyn std::error::Error>;

/// Reads the Rollout of [`MANIFEST`].
pub(crate) fn manifest_rollout() -> Result<Rollout, Error> {
    let doc = rollout_documents(MANIFEST)
        .into_iter()
        .next()
        .ok_or("examples/rollout.yaml has no Rollout")?;
    Ok(doc.result?)
}

fn pass_line(
    rec: &PassRecord,
    cluster: &SimCluster,
    plan: &Plan,
    stable_hash: &str,
    canary_hash: &str,
) -> PassLine {
    let st = &rec.status;
    let n = plan.steps().len();
    let index = st
        .current_step_index
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0);
    let (step, set_weight) = if st.abort {
        ("aborted".to_string(), 0)
    } else if index >= n {
        ("done".to_string(), plan.max_traffic_weight)
    } else {
        let row = &plan.rows[index];
        (format!("{}/{n} {}", index + 1, row.step), row.weight)
    };
    let stable = counts(cluster, stable_hash);
    let canary = counts(cluster, canary_hash);
    let available = stable.1 + canary.1;
    let actual_weight = if available > 0 {
        (f64::from(canary.1) * 100.0 / f64::from(available)).round() as i32
    } else {
        0
    };
    let analysis = st
        .canary
        .current_step_analysis_run_status
        .as_ref()
        .map_or_else(|| "-".to_string(), |r| r.status.as_str().to_string());
    let phase = match st.phase {
        Some(p) if st.message.is_empty() => p.to_string(),
        Some(p) => format!("{p}: {}", st.message),
        None => "-".to_string(),
    };
    PassLine {
        at: rec.at,
        step,
        set_weight,
        actual_weight,
        stable,
        canary,
        analysis,
        phase,
        events: rec.events.clone(),
    }
}

/// Rolls `release` out from the harness's current state until nothing more happens.
fn update(h: &mut Harness, plan: &Plan, release: Release) -> Result<Update, Error> {
    let stable_image = image(&h.rollout);
    let stable_hash = h.status.stable_rs.clone();
    // `kubectl argo rollouts set image web web=<image>`: the template changes, and with
    // it the pod template hash the controller observes.
    command::set_image(&mut h.rollout, "web", release.image)?;
    let canary_hash = template_hash(&h.rollout)?;
    h.pod_template_hash.clone_from(&canary_hash);

    let started = h.now;
    let until = started.add_secs(3600);
    let mut script = MetricStream::new(release)?;
    let mut entries = Vec::new();
    let mut passes = 0;
    // The loop a controller runs, in virtual time (what `Harness::run` does, spelled out
    // so that measurements land between the passes that see them): let the analysis
    // controller measure, pass, repeat until a pass does nothing; then jump to the next
    // instant at which something can change.
    loop {
        for _ in 0..64 {
            h.run_script(&mut script);
            entries.extend(script.log.drain(..).map(Entry::Measurement));
            let rec = h.pass();
            passes += 1;
            let quiet = rec.actions.is_empty() && rec.events.is_empty() && !rec.status_changed;
            if !quiet {
                let line = pass_line(&rec, &h.cluster, plan, &stable_hash, &canary_hash);
                entries.push(Entry::Pass(line));
                continue;
            }
            let measured = h.run_script(&mut script);
            entries.extend(script.log.drain(..).map(Entry::Measurement));
            if !measured {
                break;
            }
        }
        match h.next_instant(&script) {
            Some(t) if t <= until => h.now = t,
            _ => break,
        }
    }
    Ok(Update {
        release,
        stable_image,
        stable_hash,
        canary_hash,
        started,
        entries,
        passes,
        status: h.status.clone(),
        cluster: h.cluster.clone(),
    })
}

/// Runs the whole quickstart: the initial deploy, the healthy update, the bad update.
pub(crate) fn run() -> Result<Quickstart, Error> {
    let rollout = manifest_rollout()?;
    let plan = plan(&rollout)?;
    let initial_image = image(&rollout);
    let hash = template_hash(&rollout)?;
    let mut h = Harness::new(rollout, &hash, SimCluster::new(POD_READY_SECONDS), T0);
    // The first revision has no stable to compare with: Argo skips the steps.
    h.run(
        &mut AlwaysSucceeds { after_seconds: 0 },
        T0.add_secs(3600),
        |_, _| {},
    );
    if h.status.phase != Some(RolloutPhase::Healthy) {
        return Err(format!(
            "the initial deploy did not become Healthy: {:?}",
            h.status.phase
        )
        .into());
    }
    let initial_healthy_after = h.now.millis_since(T0) / 1000;
    // Some time passes before the next release.
    h.now = h.now.add_secs(600);
    let good = update(&mut h, &plan, GOOD)?;
    h.now = h.now.add_secs(600);
    let bad = update(&mut h, &plan, BAD)?;
    Ok(Quickstart {
        plan,
        initial_image,
        initial_healthy_after,
        updates: vec![good, bad],
    })
}

/// An event's message; only its reason when the phase column already says it.
fn event_text(e: &Event, phase: &str) -> String {
    let warning = if e.type_ == EventType::Warning {
        "WARNING "
    } else {
        ""
    };
    if phase.contains(e.message.as_str()) {
        format!("{warning}{}", e.reason)
    } else {
        format!("{warning}{}", e.message)
    }
}

/// Renders the quickstart's output.
pub(crate) fn render(q: &Quickstart) -> String {
    let mut out = String::new();
    let name = q.plan.name.as_deref().unwrap_or("rollout");
    let _ = writeln!(
        out,
        "Rollout {name} ({} pods), basic canary, simulated in virtual time; pods are ready {POD_READY_SECONDS}s after they are created.",
        q.plan.replicas
    );
    let _ = writeln!(
        out,
        "Analysis success-rate: a measurement every {INTERVAL_SECONDS}s, {COUNT} in all, result >= {THRESHOLD}; a run fails at failure {}.",
        FAILURE_LIMIT + 1
    );
    let _ = writeln!(out);
    let _ = write!(out, "{}", q.plan);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Initial deploy of {}: Healthy after {}.",
        q.initial_image,
        mm_ss(q.initial_healthy_after)
    );
    for (i, u) in q.updates.iter().enumerate() {
        let _ = writeln!(out);
        render_update(&mut out, i + 1, u);
    }
    out
}

fn render_update(out: &mut String, number: usize, u: &Update) {
    let _ = writeln!(
        out,
        "== Update {number}: {} -> {}, {}",
        tag(&u.stable_image),
        tag(u.release.image),
        u.release.title
    );
    let stable_col = format!("STABLE {}", tag(&u.stable_image));
    let canary_col = format!("CANARY {}", tag(u.release.image));
    let step_w = u
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Pass(p) => Some(p.step.len()),
            Entry::Measurement(_) => None,
        })
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<5}  {:<step_w$}  {:>6}  {:>6}  {:>10}  {:>10}  {:<10}  PHASE | EVENTS",
        "TIME", "STEP", "WEIGHT", "ACTUAL", stable_col, canary_col, "ANALYSIS"
    );
    let mut previous: Option<&PassLine> = None;
    for e in &u.entries {
        let t = mm_ss(e.at().millis_since(u.started) / 1000);
        match e {
            Entry::Pass(p) => {
                // A pass that changed only status bookkeeping (counters, condition
                // timestamps) looks like the one before it: not shown.
                let same = previous.is_some_and(|q| {
                    (
                        &q.step,
                        q.set_weight,
                        q.actual_weight,
                        q.stable,
                        q.canary,
                        &q.analysis,
                        &q.phase,
                    ) == (
                        &p.step,
                        p.set_weight,
                        p.actual_weight,
                        p.stable,
                        p.canary,
                        &p.analysis,
                        &p.phase,
                    )
                });
                if same && p.events.is_empty() {
                    continue;
                }
                // The phase message only when it changes.
                let mut tail = match previous {
                    Some(q) if q.phase == p.phase => short_phase(&p.phase).to_string(),
                    _ => p.phase.clone(),
                };
                for ev in &p.events {
                    tail.push_str(" | ");
                    tail.push_str(&event_text(ev, &p.phase));
                }
                previous = Some(p);
                let _ = writeln!(
                    out,
                    "{t:<5}  {:<step_w$}  {:>5}%  {:>5}%  {:>10}  {:>10}  {:<10}  {tail}",
                    p.step,
                    p.set_weight,
                    p.actual_weight,
                    format!("{}/{}", p.stable.0, p.stable.1),
                    format!("{}/{}", p.canary.0, p.canary.1),
                    p.analysis,
                );
            }
            Entry::Measurement(m) => {
                let verdict = match &m.verdict {
                    Some((phase, msg)) if msg.is_empty() => format!(" -> run {}", phase.as_str()),
                    Some((phase, msg)) => format!(" -> run {}: {msg}", phase.as_str()),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{t:<5}  {:<step_w$}  measurement {}/{COUNT}: success-rate {:.4} {}{verdict}",
                    "",
                    m.number,
                    m.value,
                    if m.ok { "ok" } else { "FAILED" },
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "-> {} after {} ({} controller passes); stable ReplicaSet: {}",
        u.status.phase.map_or("-", RolloutPhase::as_str),
        mm_ss(
            u.last_pass()
                .map_or(0, |p| p.at.millis_since(u.started) / 1000)
        ),
        u.passes,
        if u.status.stable_rs == u.canary_hash {
            format!("web-{} ({}, promoted)", u.canary_hash, tag(u.release.image))
        } else {
            format!(
                "web-{} ({}, kept)",
                u.status.stable_rs,
                tag(&u.stable_image)
            )
        }
    );
}

/// `Degraded: RolloutAborted: ...` -> `Degraded`.
fn short_phase(phase: &str) -> &str {
    phase.split_once(':').map_or(phase, |(p, _)| p)
}
