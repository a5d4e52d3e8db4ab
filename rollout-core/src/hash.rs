//! Hashes that name things: the pod template hash and the step hash.
//!
//! Argo labels every ReplicaSet with `rollouts-pod-template-hash`, a hash of the pod
//! template, and keeps `status.currentStepHash` to notice edits of the steps. Both are
//! 32-bit FNV-1a hashes of a JSON encoding, rendered in decimal with Argo's "safe"
//! alphabet (no vowels, no look-alike characters) so they can appear in names. The
//! values are stable for a given input but are not byte-identical to Argo's, which
//! hashes Go structs: a status written by Argo carries Argo's hashes, and the first
//! pass of this library over it restarts the steps only if the caller hands in a
//! differently computed template hash.

use serde::Serialize;

/// Argo's alphabet for hashes rendered into names.
pub const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// A rendered hash, stored inline (at most 10 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashStr {
    buf: [u8; 10],
    len: u8,
}

impl HashStr {
    /// The rendered text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Display for HashStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

struct Fnv(u32);

impl std::io::Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// FNV-1a of the JSON encoding of `value`, streamed (no allocation), then rendered.
pub fn fnv_hash<T: Serialize + ?Sized>(value: &T) -> HashStr {
    let mut h = Fnv(0x811c_9dc5);
    if serde_json::to_writer(&mut h, value).is_err() {
        h.0 = 0;
    }
    render(h.0)
}

fn render(mut v: u32) -> HashStr {
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        digits[n] = (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut out = HashStr {
        buf: [0; 10],
        len: n as u8,
    };
    for i in 0..n {
        out.buf[i] = SAFE_ALPHABET[usize::from(digits[n - 1 - i])];
    }
    out
}

/// The `rollouts-pod-template-hash` for a pod template (with Argo's collision count,
/// when one is recorded in `status.collisionCount`).
pub fn pod_template_hash(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    collision_count: Option<i32>,
) -> HashStr {
    #[derive(Serialize)]
    struct Keyed<'a> {
        template: &'a k8s_openapi::api::core::v1::PodTemplateSpec,
        #[serde(skip_serializing_if = "Option::is_none")]
        collision_count: Option<i32>,
    }
    fnv_hash(&Keyed {
        template,
        collision_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_safe() {
        let a = fnv_hash(&serde_json::json!([{"setWeight": 10}]));
        let b = fnv_hash(&serde_json::json!([{"setWeight": 10}]));
        let c = fnv_hash(&serde_json::json!([{"setWeight": 20}]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.as_str().bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert!(!a.as_str().is_empty() && a.as_str().len() <= 10);
    }

    #[test]
    fn template_hash_changes_with_image() {
        use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
        let mk = |image: &str| PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..PodTemplateSpec::default()
        };
        let a = pod_template_hash(&mk("app:1"), None);
        assert_eq!(a, pod_template_hash(&mk("app:1"), None));
        assert_ne!(a, pod_template_hash(&mk("app:2"), None));
        assert_ne!(a, pod_template_hash(&mk("app:1"), Some(1)));
    }
}
