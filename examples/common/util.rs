//! Small helpers shared by the quickstart simulations.

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
