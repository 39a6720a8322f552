//! A small deterministic generator for motion and colour choices, seeded from the prompt.
//!
//! Written out (SplitMix64) rather than taken from `rand`, whose generators may change their
//! output between versions: the same prompt must animate the same way after an upgrade.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the SHA-256 of `text` and a `stream` number, so each use gets its own
    /// sequence from one prompt.
    pub fn from_text(text: &str, stream: u64) -> Self {
        let digest = Sha256::new()
            .chain_update(text.as_bytes())
            .chain_update(stream.to_le_bytes())
            .finalize();
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_depend_on_text_and_stream_only() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::from_text("海边日落", 0);
                move |_| r.next_u64()
            })
            .collect();
        let mut again = Rng::from_text("海边日落", 0);
        assert!(a.iter().all(|&x| x == again.next_u64()));
        assert_ne!(
            Rng::from_text("海边日落", 1).next_u64(),
            Rng::from_text("海边日落", 0).next_u64()
        );
        let mut r = Rng::from_text("x", 0);
        assert!((0..1000).map(|_| r.unit()).all(|u| (0.0..1.0).contains(&u)));
    }
}
