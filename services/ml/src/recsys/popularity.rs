//! The popularity baseline: every user gets the items with the most
//! training interactions. Always computed beside a model (a recommender
//! that does not beat it is not worth serving), and what an unknown user is
//! served (cold start).

use super::metrics::Scorer;
use super::split::UserItems;
use crate::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    /// Training interactions per item.
    pub counts: Vec<u32>,
}

impl Popularity {
    pub fn new(train: &UserItems, n_items: usize) -> Self {
        let mut counts = vec![0u32; n_items];
        for &i in &train.items {
            counts[i as usize] += 1;
        }
        Self { counts }
    }
}

impl Scorer for Popularity {
    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn scores(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        for row in out.chunks_mut(self.counts.len()).take(users.len()) {
            for (s, &c) in row.iter_mut().zip(&self.counts) {
                *s = c as f32;
            }
        }
        Ok(())
    }
}
