//! Ranking distillation: a small student (e.g. 16 factors) learns the
//! ranking of a large teacher (e.g. 128). Per user, the teacher's top K
//! items (training items left out: they are masked when ranking) and a few
//! uniformly sampled ones form a list; the student's softmax over the list
//! is pulled towards the teacher's at temperature T (KL divergence, scaled
//! by T² so its gradient does not shrink with T, as in Hinton et al.).
//! Each epoch also takes BPR steps on the data itself; `alpha` weighs the
//! data against the teacher.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bpr::{Bpr, negative};
use super::factors::{Factors, dot};
use super::metrics::{Scorer, top_k};
use super::split::UserItems;
use crate::Result;

/// How a student is distilled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct DistillSpec {
    /// Weight of the data's BPR loss; the teacher's is `1 - alpha`.
    pub alpha: f32,
    pub temperature: f32,
    /// The teacher's best items per user in the list.
    pub top_k: usize,
    /// Uniformly sampled items per user added to the list.
    pub sampled: usize,
}

impl Default for DistillSpec {
    fn default() -> Self {
        Self { alpha: 0.5, temperature: 1.0, top_k: 50, sampled: 50 }
    }
}

/// The teacher's scores, and its top K per user (training items left out).
pub struct Teacher {
    pub factors: Factors,
    pub top: Vec<Vec<u32>>,
}

impl Teacher {
    pub fn new(factors: Factors, train: &UserItems, k: usize) -> Result<Self> {
        let n_items = factors.n_items();
        let top = (0..factors.n_users() as u32)
            .collect::<Vec<_>>()
            .par_chunks(256)
            .map(|users| -> Result<Vec<Vec<u32>>> {
                let mut scores = vec![0f32; users.len() * n_items];
                factors.scores(users, &mut scores)?;
                Ok(scores.chunks(n_items).zip(users).map(|(row, &u)| top_k(row, train.of(u as usize), k)).collect())
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(Self { factors, top })
    }

    fn score(&self, u: usize, i: usize) -> f32 {
        dot(self.factors.user(u), self.factors.item(i)) + self.factors.item_bias[i]
    }
}

fn softmax(xs: &[f32], temperature: f32) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|x| ((x - max) / temperature).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Users per Adam step of the teacher's pass.
const USERS_PER_STEP: usize = 64;

/// One pass of the teacher's loss over every user (in `bpr`'s Adam
/// state, weighted by `weight`); the mean KL divergence.
pub fn teacher_epoch(
    bpr: &mut Bpr,
    f: &mut Factors,
    teacher: &Teacher,
    train: &UserItems,
    spec: &DistillSpec,
    weight: f32,
    rng: &mut ChaCha8Rng,
) -> f64 {
    let mut users: Vec<u32> = (0..f.n_users() as u32).filter(|&u| !teacher.top[u as usize].is_empty()).collect();
    users.shuffle(rng);
    let n_items = f.n_items() as u32;
    let d = f.dim;
    let t = spec.temperature;
    let mut total = 0f64;
    let mut list = Vec::with_capacity(spec.top_k + spec.sampled);
    for batch in users.chunks(USERS_PER_STEP) {
        let scale = weight * t / batch.len() as f32;
        for &u in batch {
            let ui = u as usize;
            list.clear();
            list.extend_from_slice(&teacher.top[ui]);
            list.extend((0..spec.sampled).map(|_| negative(train, ui, n_items, rng)));
            let teacher_scores: Vec<f32> = list.iter().map(|&i| teacher.score(ui, i as usize)).collect();
            let pu = f.user(ui);
            let student_scores: Vec<f32> = list.iter().map(|&i| dot(pu, f.item(i as usize))).collect();
            let p = softmax(&teacher_scores, t);
            let q = softmax(&student_scores, t);
            total +=
                p.iter().zip(&q).map(|(&p, &q)| f64::from(p) * (f64::from(p.max(1e-12)).ln() - f64::from(q.max(1e-12)).ln())).sum::<f64>()
                    * f64::from(t * t);
            for (k, &i) in list.iter().enumerate() {
                let g = scale * (q[k] - p[k]);
                let ii = i as usize * d;
                for x in 0..d {
                    bpr.user_grads[ui * d + x] += g * f.items[ii + x];
                    bpr.item_grads[ii + x] += g * f.users[ui * d + x];
                }
                bpr.touched_items.touch(i);
            }
            bpr.touched_users.touch(u);
        }
        bpr.apply(f);
    }
    total / users.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_sharpens_as_the_temperature_falls() {
        let warm = softmax(&[1.0, 2.0, 3.0], 4.0);
        let cold = softmax(&[1.0, 2.0, 3.0], 0.5);
        assert!((warm.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(cold[2] > warm[2]);
    }
}
