//! Random identifiers (`AW_…`, `AJ_…`, `RM_…`, `AD_…`) and the random numbers
//! used by weighted worker selection.
//!
//! LiveKit's `guid.New(prefix)` gives the prefix plus 12 characters; the fake
//! does the same with a small SplitMix64 generator seeded from the standard
//! library's per-process random hasher keys (no extra dependency).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::OnceLock;

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn rng() -> &'static Mutex<u64> {
    static RNG: OnceLock<Mutex<u64>> = OnceLock::new();
    RNG.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        Mutex::new(h.finish())
    })
}

/// Next 64 random bits (SplitMix64).
pub(crate) fn next_u64() -> u64 {
    let mut state = rng().lock().unwrap_or_else(|e| e.into_inner());
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniformly distributed number in `[0, 1)`.
pub(crate) fn next_f64() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `prefix` followed by 12 random characters, like LiveKit's `guid.New`.
pub(crate) fn guid(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 12);
    s.push_str(prefix);
    for _ in 0..12 {
        let i = (next_u64() % ALPHABET.len() as u64) as usize;
        s.push(ALPHABET[i] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn guids_are_prefixed_and_distinct() {
        let a = super::guid("AW_");
        let b = super::guid("AW_");
        assert!(a.starts_with("AW_") && a.len() == 15);
        assert_ne!(a, b);
        let f = super::next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
