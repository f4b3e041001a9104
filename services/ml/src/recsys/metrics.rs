//! Full-ranking evaluation, as RecBole computes it: each user with held-out
//! items gets every item scored, the items they were already shown masked,
//! and the top K compared with the held-out ones. Per user, then averaged
//! over the users who have held-out items:
//! Recall@K = hits / held-out, Precision@K = hits / K, Hit@K = any hit,
//! MRR@K = 1 / rank of the first hit, NDCG@K = DCG / ideal DCG with binary
//! gains (the ideal puts min(held-out, K) hits first). Over the whole list
//! of recommendations: item coverage (distinct items recommended / items),
//! average popularity (training interactions of a recommended item) and the
//! Gini index of how often each item is recommended.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::split::UserItems;
use crate::Result;

/// The cut-offs every report carries.
pub const KS: [usize; 3] = [5, 10, 20];

/// Something that scores every item for a user (higher is better).
pub trait Scorer: Sync {
    fn n_items(&self) -> usize;
    /// Row-major `users.len() × n_items` scores.
    fn scores(&self, users: &[u32], out: &mut [f32]) -> Result<()>;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AtK {
    pub k: usize,
    pub recall: f64,
    pub ndcg: f64,
    pub mrr: f64,
    pub hit: f64,
    pub precision: f64,
    pub item_coverage: f64,
    pub average_popularity: f64,
    pub gini_index: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ranking {
    /// Users evaluated (those with held-out items).
    pub users: usize,
    pub at: Vec<AtK>,
}

impl Ranking {
    pub fn at(&self, k: usize) -> Option<&AtK> {
        self.at.iter().find(|a| a.k == k)
    }

    /// NDCG@10, the headline (0 when absent).
    pub fn ndcg10(&self) -> f64 {
        self.at(10).map_or(0.0, |a| a.ndcg)
    }

    pub fn mrr10(&self) -> f64 {
        self.at(10).map_or(0.0, |a| a.mrr)
    }
}

/// The `k` best items of a score row, best first, skipping `masked`
/// (sorted) and scores that are not numbers; ties go to the lower item
/// index. One pass with a small sorted list of the best so far: an item
/// enters only when it beats the k-th, which after the first few hundred
/// items is rare.
pub fn top_k(scores: &[f32], masked: &[u32], k: usize) -> Vec<u32> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    let mut m = 0;
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        while m < masked.len() && masked[m] < i {
            m += 1;
        }
        if (m < masked.len() && masked[m] == i) || s.is_nan() {
            continue;
        }
        // Scanning upwards, an equal score comes later: it loses the tie.
        if best.len() == k && s <= best[k - 1].0 {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b >= s);
        best.insert(at, (s, i));
        best.truncate(k);
    }
    best.into_iter().map(|(_, i)| i).collect()
}

/// Per-K sums of one chunk of users.
#[derive(Clone)]
struct Sums {
    users: usize,
    per_k: Vec<[f64; 6]>,
    counts: Vec<Vec<u32>>,
}

impl Sums {
    fn new(ks: &[usize], n_items: usize) -> Self {
        Self { users: 0, per_k: vec![[0.0; 6]; ks.len()], counts: vec![vec![0; n_items]; ks.len()] }
    }

    fn merge(mut self, other: Self) -> Self {
        self.users += other.users;
        for (a, b) in self.per_k.iter_mut().zip(other.per_k) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self
    }
}

fn gini(counts: &[u32]) -> f64 {
    let mut sorted: Vec<u32> = counts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let total: f64 = sorted.iter().map(|&c| f64::from(c)).sum();
    if total == 0.0 || n == 0.0 {
        return 0.0;
    }
    let weighted: f64 = sorted.iter().enumerate().map(|(i, &c)| (2.0 * (i as f64 + 1.0) - n - 1.0) * f64::from(c)).sum();
    weighted / (n * total)
}

/// Ranks every item for each user who has `positives`, with `masked`
/// removed, and averages the metrics at each K in `ks`. `popularity` is
/// each item's number of training interactions.
pub fn evaluate(scorer: &dyn Scorer, positives: &UserItems, masked: &UserItems, popularity: &[u32], ks: &[usize]) -> Result<Ranking> {
    let n_items = scorer.n_items();
    let max_k = ks.iter().copied().max().unwrap_or(10);
    let users: Vec<u32> = (0..positives.n_users() as u32).filter(|&u| !positives.of(u as usize).is_empty()).collect();
    // About 4 M scores per chunk, whatever the catalogue's size.
    let chunk = (4_000_000 / n_items.max(1)).clamp(1, 512);
    let discounts: Vec<f64> = (0..max_k).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
    let sums = users
        .par_chunks(chunk)
        .map(|batch| -> Result<Sums> {
            let mut scores = vec![0f32; batch.len() * n_items];
            scorer.scores(batch, &mut scores)?;
            let mut sums = Sums::new(ks, n_items);
            for (row, &u) in scores.chunks(n_items).zip(batch) {
                let held_out = positives.of(u as usize);
                let top = top_k(row, masked.of(u as usize), max_k);
                sums.users += 1;
                for (slot, &k) in ks.iter().enumerate() {
                    let list = &top[..k.min(top.len())];
                    let mut hits = 0usize;
                    let mut dcg = 0.0;
                    let mut first = None;
                    for (rank, item) in list.iter().enumerate() {
                        sums.counts[slot][*item as usize] += 1;
                        if held_out.binary_search(item).is_ok() {
                            hits += 1;
                            dcg += discounts[rank];
                            first.get_or_insert(rank);
                        }
                    }
                    let ideal: f64 = discounts[..held_out.len().min(k)].iter().sum();
                    let popular: f64 = list.iter().map(|&i| f64::from(popularity[i as usize])).sum::<f64>() / list.len().max(1) as f64;
                    let s = &mut sums.per_k[slot];
                    s[0] += hits as f64 / held_out.len() as f64;
                    s[1] += if ideal > 0.0 { dcg / ideal } else { 0.0 };
                    s[2] += first.map_or(0.0, |r| 1.0 / (r + 1) as f64);
                    s[3] += if hits > 0 { 1.0 } else { 0.0 };
                    s[4] += hits as f64 / k as f64;
                    s[5] += popular;
                }
            }
            Ok(sums)
        })
        .try_reduce(|| Sums::new(ks, n_items), |a, b| Ok(a.merge(b)))?;
    let n = sums.users.max(1) as f64;
    let at = ks
        .iter()
        .zip(&sums.per_k)
        .zip(&sums.counts)
        .map(|((&k, s), counts)| AtK {
            k,
            recall: s[0] / n,
            ndcg: s[1] / n,
            mrr: s[2] / n,
            hit: s[3] / n,
            precision: s[4] / n,
            item_coverage: counts.iter().filter(|&&c| c > 0).count() as f64 / n_items.max(1) as f64,
            average_popularity: s[5] / n,
            gini_index: gini(counts),
        })
        .collect();
    Ok(Ranking { users: sums.users, at })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<Vec<f32>>);

    impl Scorer for Fixed {
        fn n_items(&self) -> usize {
            self.0[0].len()
        }
        fn scores(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
            for (row, &u) in out.chunks_mut(self.n_items()).zip(users) {
                row.copy_from_slice(&self.0[u as usize]);
            }
            Ok(())
        }
    }

    #[test]
    fn top_k_skips_masked_items_and_breaks_ties_by_index() {
        let scores = [0.5, 0.9, 0.9, 0.1, 0.7];
        assert_eq!(top_k(&scores, &[], 3), vec![1, 2, 4]);
        assert_eq!(top_k(&scores, &[1, 4], 3), vec![2, 0, 3]);
        assert_eq!(top_k(&scores, &[0, 1, 2, 3, 4], 3), Vec::<u32>::new());
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // User 0: ranking 3, 2, 1, 0 (item 3 masked) → 2, 1, 0; held out {1}.
        // User 1: ranking 0, 1, 2, 3; held out {0, 3}.
        let scorer = Fixed(vec![vec![0.1, 0.2, 0.3, 0.4], vec![0.4, 0.3, 0.2, 0.1]]);
        let positives = UserItems::from_lists(vec![vec![1], vec![0, 3]]);
        let masked = UserItems::from_lists(vec![vec![3], vec![]]);
        let r = evaluate(&scorer, &positives, &masked, &[5, 1, 1, 1], &[2]).unwrap();
        let a = r.at(2).unwrap();
        assert_eq!(r.users, 2);
        // User 0: hit at rank 2. User 1: hit at rank 1 of 2 held out.
        let d2 = 1.0 / 3f64.log2();
        let expected_ndcg = (d2 / 1.0 + 1.0 / (1.0 + d2)) / 2.0;
        assert!((a.ndcg - expected_ndcg).abs() < 1e-12, "{}", a.ndcg);
        assert!((a.recall - (1.0 + 0.5) / 2.0).abs() < 1e-12);
        assert!((a.mrr - (0.5 + 1.0) / 2.0).abs() < 1e-12);
        assert!((a.hit - 1.0).abs() < 1e-12);
        assert!((a.precision - 0.5).abs() < 1e-12);
        // Recommended: {2, 1} and {0, 1} → 3 of 4 items.
        assert!((a.item_coverage - 0.75).abs() < 1e-12);
        assert!((a.average_popularity - (1.0 + 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn gini_is_zero_when_even_and_near_one_when_concentrated() {
        assert!(gini(&[3, 3, 3]).abs() < 1e-12);
        assert!(gini(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 10]) > 0.85);
    }
}
