//! Unique ids in LiveKit's style (`RM_…`, `PA_…`, `TR_…`, `ST_…`).
//!
//! Ids are unique within a process (a counter) and unlikely to repeat
//! across processes (mixed with the start time); they are not secrets.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by 12 base-62 characters.
pub(crate) fn guid(prefix: &str) -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let seed = *SEED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id()) << 32
    });
    // A bijective mix (splitmix64 finaliser) of seed + counter.
    let mut x = seed.wrapping_add(
        NEXT.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(prefix.len() + 12);
    out.push_str(prefix);
    for _ in 0..12 {
        out.push(ALPHABET[(x % 62) as usize] as char);
        x /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_prefixed() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| super::guid("PA_")).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|i| i.starts_with("PA_") && i.len() == 15));
    }
}
