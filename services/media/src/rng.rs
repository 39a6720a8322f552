//! The deterministic generator the sandbox engines draw their choices from (composition,
//! palette, motion).
//!
//! SplitMix64, seeded from SHA-256 of the given parts, written out rather than taken from
//! `rand`, whose generators may change output between versions: the same prompt and seed must
//! give the same image or clip after an upgrade.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from SHA-256 of `parts`, in order.
    pub fn from_parts(parts: &[&[u8]]) -> Self {
        let digest = parts
            .iter()
            .fold(Sha256::new(), |hash, part| hash.chain_update(part))
            .finalize();
        let mut state = [0u8; 8];
        state.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(state))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 24 bits.
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub fn range_f32(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit_f32()
    }

    /// Uniform in `[low, high)`.
    pub fn range_f64(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit_f64()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_and_their_order_decide_the_sequence() {
        let first = |parts: &[&[u8]]| Rng::from_parts(parts).next_u64();
        assert_eq!(first(&[b"a", b"b"]), first(&[b"a", b"b"]));
        assert_ne!(first(&[b"a", b"b"]), first(&[b"b", b"a"]));
        assert_ne!(first(&[b"a", b"b"]), first(&[b"a", b"c"]));
        // The same digest as hashing the concatenation: parts are a convenience, not a format.
        assert_eq!(first(&[b"ab", b"c"]), first(&[b"abc"]));
        let mut rng = Rng::from_parts(&[b"x"]);
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.unit_f32())));
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.unit_f64())));
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }
}
