//! Argo Rollouts' and Flagger's progressive delivery as a library you call: no controller,
//! no cluster, no clock.
//!
//! # The model
//!
//! A progressive rollout is a state machine whose state is the `Rollout`'s status. Every
//! reconcile is a pure function
//!
//! ```text
//! reconcile(rollout, persisted status, observed cluster, now) -> Decision
//! ```
//!
//! and a [`canary::Decision`] carries the next status, the [`canary::Action`]s to carry
//! out (scale a ReplicaSet, set a traffic weight, add a header route, start or terminate
//! an analysis run, point a service at a ReplicaSet), the events to record, and when to
//! call again. Nothing inside does I/O, reads a clock or draws a random number, so the
//! same inputs always give the same decision. Everything that must survive a crash is
//! in the status (Argo's own schema, [`status::RolloutStatus`]) or in the cluster
//! (ReplicaSets and their annotations), so a process may die between any two calls: the
//! next call with the persisted status continues exactly. The actions are idempotent;
//! the caller executes them and then persists the status.
//!
//! The same library serves a kube-rs controller (observe with kube, execute actions with
//! kube, persist to the status subresource), a CLI (`kubectl argo rollouts`-style
//! [`command`]s and the [`plan`] of a manifest), and simulators (the `sim` cluster and
//! harness, in virtual time).
//!
//! # The pieces
//!
//! - [`spec`]: the `argoproj.io/v1alpha1` `Rollout`, read unchanged from real YAML, with
//!   validation errors that name the field (`spec.strategy.canary.steps[3].setWeight`).
//! - [`replicas`]: Argo's replica and weight arithmetic (maxSurge / maxUnavailable
//!   fenceposts, the weighted approximation of basic canaries, traffic-routed counts with
//!   `setCanaryScale`, `minPodsPerReplicaSet`, `dynamicStableScale`, abort).
//! - [`canary`]: the canary machine; [`bluegreen`]: the blue-green machine (preview,
//!   pre/post-promotion analysis, pauses, the active switch, scale-down delays);
//!   [`experiment`]: the Experiment machine behind `experiment` steps; [`phase`]:
//!   Healthy / Progressing / Paused / Degraded with Argo's messages; [`command`]: promote,
//!   promote --full, abort, retry, pause, resume, restart, set image.
//! - [`flagger`]: Flagger's `Canary` (`flagger.app/v1beta1`) spec and its machine, one
//!   tick of Flagger's loop per call (canary, A/B testing and blue/green by iterations,
//!   mirroring, webhook gates as actions and inputs).
//! - [`plan`]: step, stage and tick tables a reviewer reads before applying a manifest.
//! - [`duration`] (Go durations), [`time`] (the `now` you pass in), [`hash`] (pod
//!   template and step hashes), [`intstr`] (int-or-percent values).
//! - [`driver`]: one controller pass through three async ports (`Workloads`, `Traffic`,
//!   `Analysis`): observe, reconcile, execute; runtime-agnostic, no clock.
//! - `kube` (feature `kube`): `KubeWorkloads`, the `Workloads` port over a kube client
//!   (ReplicaSets in Argo's shape, service selectors).
//! - `sim` (feature `test-util`): an in-memory cluster and a virtual-time harness.
//!
//! # A pass, end to end
//!
//! ```
//! use rollout_core::canary::{reconcile, Observed, ReplicaSetState};
//! use rollout_core::{spec::Rollout, RolloutStatus, Timestamp};
//!
//! let rollout = Rollout::from_yaml(r#"
//! apiVersion: argoproj.io/v1alpha1
//! kind: Rollout
//! metadata: {name: web}
//! spec:
//!   replicas: 10
//!   selector: {matchLabels: {app: web}}
//!   template:
//!     metadata: {labels: {app: web}}
//!     spec: {containers: [{name: web, image: "web:2"}]}
//!   strategy:
//!     canary:
//!       steps: [{setWeight: 20}, {pause: {}}]
//! "#)?;
//! // Revision "v1" is stable and fully available; the template now hashes to "v2".
//! let status = RolloutStatus { stable_rs: "v1".into(), current_pod_hash: "v1".into(),
//!                              ..RolloutStatus::default() };
//! let sets = [ReplicaSetState { pod_template_hash: "v1".into(), spec_replicas: 10,
//!                               replicas: 10, ready_replicas: 10, available_replicas: 10,
//!                               ..ReplicaSetState::default() }];
//! let observed = Observed { pod_template_hash: "v2", replica_sets: &sets, ..Observed::default() };
//! let decision = reconcile(&rollout, &status, &observed, Timestamp::from_secs(1_800_000_000));
//! // 20% of 10 pods: the stable set shrinks to 8 (maxUnavailable 25% allows 2 fewer
//! // available pods) and the canary set is created with 2 (within maxSurge 25% = 3).
//! use rollout_core::canary::Action::{CreateReplicaSet, ScaleReplicaSet};
//! assert!(matches!(&decision.actions[..], [
//!     ScaleReplicaSet { replicas: 8, .. },
//!     CreateReplicaSet { replicas: 2, .. },
//! ]));
//! assert_eq!(decision.status.current_step_index, Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where this differs from Argo Rollouts
//!
//! - A lower traffic weight is written before the canary shrinks, and the canary keeps the
//!   pods its routed weight needs until the router holds the lower weight. Argo waits for
//!   the replica counts first and briefly routes to removed pods.
//! - An abort with `dynamicStableScale` and `minPodsPerReplicaSet` always ends: Argo's
//!   step-down walk keeps choosing a setWeight while the floor keeps canary pods
//!   available. The machine uses the variant Argo adopted for its issue #4898 there.
//! - Hashes (pod template, steps) are FNV-1a of a JSON encoding, not of Go structs, so
//!   they do not equal Argo's byte for byte ([`hash`]).
//! - Analysis run and experiment names are `<rollout>-<hash>-<step>-<time>` (Argo uses
//!   the revision and a collision counter), so a retried step never collides with the
//!   failed run it replaces.
//! - Pod restarts (`spec.restartAt`) and ephemeral metadata are not carried out by the
//!   machine: the phase reports "rollout is restarting", no eviction action exists yet.
//! - Blue-green: see [`bluegreen`]'s module docs for its deviations (the first
//!   ReplicaSet becomes stable when the active service switches to it; an abort cancels
//!   an earlier `promote --full`, which otherwise flaps with `progressDeadlineAbort`).
//! - Flagger: see [`flagger::machine`]'s module docs (checks are requests and answers,
//!   idle canaries are no-ops, every route split sums to 100).
//! - The machine assumes a validated spec ([`spec::Rollout::validate`], on admission or
//!   when the spec changes). It never panics on an invalid one, and reports a spec it
//!   cannot compute counts for as `InvalidSpec` (phase Degraded).

pub mod bluegreen;
pub mod canary;
pub mod command;
mod conditions;
pub mod driver;
pub mod duration;
pub mod experiment;
pub mod flagger;
pub mod hash;
pub mod intstr;
#[cfg(feature = "kube")]
pub mod kube;
pub mod phase;
pub mod plan;
pub mod replicas;
#[cfg(any(test, feature = "test-util"))]
pub mod sim;
pub mod spec;
pub mod status;
pub mod time;
pub mod traffic;

#[cfg(test)]
mod canary_tests;

pub use intstr::IntOrPercent;
pub use status::RolloutStatus;
pub use time::Timestamp;
