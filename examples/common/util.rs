//! Small helpers shared by the quickstart simulations.

use rollout_core::hash::pod_template_hash;
use rollout_core::sim::SimCluster;
use rollout_core::spec::Rollout;

/// A deterministic pseudo-random stream (SplitMix64), so every run prints the same.
#[derive(Debug, Clone)]
pub(crate) struct Noise(pub(crate) u64);

impl Noise {
    /// A uniform sample in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits as a fraction.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A sample uniform in `mean ± spread`.
    #[allow(dead_code)]
    pub(crate) fn around(&mut self, (mean, spread): (f64, f64)) -> f64 {
        mean + spread * (2.0 * self.next_unit() - 1.0)
    }
}

/// `mm:ss` of a number of seconds.
pub(crate) fn mm_ss(secs: i64) -> String {
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// The tag of an image reference (`web:1.1` -> `1.1`).
pub(crate) fn tag(image: &str) -> &str {
    image.rsplit_once(':').map_or(image, |(_, t)| t)
}

/// The pod template hash of a rollout's current template.
pub(crate) fn template_hash(rollout: &Rollout) -> Result<String, Box<dyn std::error::Error>> {
    let template = rollout
        .spec
        .template
        .as_ref()
        .ok_or("the rollout has no spec.template")?;
    Ok(pod_template_hash(template, None).to_string())
}

/// The image of the rollout's first container.
pub(crate) fn image(rollout: &Rollout) -> String {
    rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// A ReplicaSet's (spec, available) replicas; (0, 0) when it does not exist.
pub(crate) fn counts(cluster: &SimCluster, hash: &str) -> (i32, i32) {
    cluster
        .replica_set(hash)
        .map_or((0, 0), |rs| (rs.spec_replicas, rs.available_replicas))
}
