//! RecBole's evaluation split: every interaction is a positive; each user's
//! interactions are shuffled (seeded) and cut by ratio, train / validation /
//! test, with RecBole's rounding (`_calcu_split_ids`: floors for the held-out
//! parts, and a user too small for a part still gives it one interaction
//! while more than one stays in training). Training items are masked when
//! ranking for validation; training and validation items when testing.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::data::Interactions;
use crate::split::SplitSpec;

/// Interaction indices (into `Interactions::rows`) of each part.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// How a model was evaluated, stored in its report.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Protocol {
    pub name: String,
    pub split: String,
    pub order: String,
    pub group_by: String,
    pub mode: String,
    pub seed: u64,
    pub masked: String,
}

impl Protocol {
    pub fn recbole(spec: SplitSpec, seed: u64) -> Self {
        Self {
            name: "RecBole (general recommendation)".into(),
            split: format!("{}/{}/{}", spec.train, spec.val, spec.test),
            order: "random per user (RO)".into(),
            group_by: "user".into(),
            mode: "full ranking over all items".into(),
            seed,
            masked: "the user's training items (and validation items when testing)".into(),
        }
    }
}

/// A user's `n` interactions as (train, val, test) counts, RecBole's way.
pub fn part_sizes(n: usize, spec: SplitSpec) -> (usize, usize, usize) {
    let ratios = [f64::from(spec.train) / 100.0, f64::from(spec.val) / 100.0, f64::from(spec.test) / 100.0];
    let mut cnt = [0usize; 3];
    for i in 1..3 {
        cnt[i] = (ratios[i] * n as f64).floor() as usize;
    }
    cnt[0] = n - cnt[1] - cnt[2];
    // The last parts first: test, then validation.
    for i in [2, 1] {
        if cnt[0] <= 1 {
            break;
        }
        let share = ratios[i] * n as f64;
        if share > 0.0 && share < 1.0 {
            cnt[i] += 1;
            cnt[0] -= 1;
        }
    }
    (cnt[0], cnt[1], cnt[2])
}

impl Split {
    pub fn recbole(data: &Interactions, spec: SplitSpec, seed: u64) -> Self {
        let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); data.n_users()];
        for (i, r) in data.rows.iter().enumerate() {
            by_user[r.user as usize].push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut split = Split::default();
        for mut rows in by_user {
            rows.shuffle(&mut rng);
            let (train, val, _) = part_sizes(rows.len(), spec);
            split.train.extend_from_slice(&rows[..train]);
            split.val.extend_from_slice(&rows[train..train + val]);
            split.test.extend_from_slice(&rows[train + val..]);
        }
        split
    }
}

/// Items per user (sorted), a compressed sparse row matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct UserItems {
    pub offsets: Vec<usize>,
    pub items: Vec<u32>,
}

impl UserItems {
    pub fn new(data: &Interactions, parts: &[&[usize]]) -> Self {
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); data.n_users()];
        for part in parts {
            for &i in *part {
                let r = data.rows[i];
                lists[r.user as usize].push(r.item);
            }
        }
        Self::from_lists(lists)
    }

    pub fn from_lists(lists: Vec<Vec<u32>>) -> Self {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut items = Vec::new();
        offsets.push(0);
        for mut list in lists {
            list.sort_unstable();
            list.dedup();
            items.extend_from_slice(&list);
            offsets.push(items.len());
        }
        Self { offsets, items }
    }

    pub fn n_users(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn of(&self, user: usize) -> &[u32] {
        self.offsets.get(user).zip(self.offsets.get(user + 1)).map_or(&[], |(&a, &b)| &self.items[a..b])
    }

    pub fn contains(&self, user: usize, item: u32) -> bool {
        self.of(user).binary_search(&item).is_ok()
    }

    pub fn nnz(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_recbole_rounding() {
        let s = SplitSpec::default();
        // ml-100k's smallest users have 20 interactions: 16/2/2.
        assert_eq!(part_sizes(20, s), (16, 2, 2));
        assert_eq!(part_sizes(25, s), (21, 2, 2));
        // Small users: the test part first gets one, then validation.
        assert_eq!(part_sizes(1, s), (1, 0, 0));
        assert_eq!(part_sizes(2, s), (1, 0, 1));
        assert_eq!(part_sizes(3, s), (1, 1, 1));
        assert_eq!(part_sizes(9, s), (7, 1, 1));
        assert_eq!(part_sizes(10, s), (8, 1, 1));
        let no_val = SplitSpec { train: 80, val: 0, test: 20 };
        assert_eq!(part_sizes(3, no_val), (2, 0, 1));
    }
}
