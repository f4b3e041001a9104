//! Matrix factorisation of explicit ratings with biases (Koren, Bell and
//! Volinsky, 2009): `rating ≈ global mean + user bias + item bias + p_u·q_i`,
//! squared error with L2 on what a batch touches, lazy Adam. Judged by
//! RMSE and MAE on held-out ratings (and ranked like any model).

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::adam::{RowAdam, Touched};
use super::factors::Factors;

/// Rating errors on a set of (user, item, rating).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RatingErrors {
    pub rmse: f64,
    pub mae: f64,
    pub ratings: usize,
}

pub fn errors(predict: impl Fn(usize, usize) -> f32, triples: &[(u32, u32, f32)]) -> RatingErrors {
    let (mut se, mut ae) = (0f64, 0f64);
    for &(u, i, r) in triples {
        let e = f64::from(predict(u as usize, i as usize) - r);
        se += e * e;
        ae += e.abs();
    }
    let n = triples.len().max(1) as f64;
    RatingErrors { rmse: (se / n).sqrt(), mae: ae / n, ratings: triples.len() }
}

pub struct Explicit {
    pub triples: Vec<(u32, u32, f32)>,
    pub batch_size: usize,
    pub l2: f32,
    users: RowAdam,
    items: RowAdam,
    user_bias: RowAdam,
    item_bias: RowAdam,
    grads: [Vec<f32>; 4],
    touched_users: Touched,
    touched_items: Touched,
}

impl Explicit {
    pub fn new(f: &Factors, triples: Vec<(u32, u32, f32)>, batch_size: usize, lr: f32, l2: f32) -> Self {
        Self {
            triples,
            batch_size: batch_size.max(1),
            l2,
            users: RowAdam::new(f.n_users(), f.dim, lr),
            items: RowAdam::new(f.n_items(), f.dim, lr),
            user_bias: RowAdam::new(f.n_users(), 1, lr),
            item_bias: RowAdam::new(f.n_items(), 1, lr),
            grads: [vec![0.0; f.users.len()], vec![0.0; f.items.len()], vec![0.0; f.n_users()], vec![0.0; f.n_items()]],
            touched_users: Touched::new(f.n_users()),
            touched_items: Touched::new(f.n_items()),
        }
    }

    /// One pass over the shuffled ratings; the mean squared error.
    pub fn epoch(&mut self, f: &mut Factors, rng: &mut ChaCha8Rng) -> f64 {
        self.triples.shuffle(rng);
        let d = f.dim;
        let mut total = 0f64;
        let triples = std::mem::take(&mut self.triples);
        for batch in triples.chunks(self.batch_size) {
            let scale = 2.0 / batch.len() as f32;
            for &(u, i, r) in batch {
                let (u, i) = (u as usize, i as usize);
                let e = f.predict(u, i) - r;
                total += f64::from(e * e);
                let g = e * scale;
                let [gu, gi, gbu, gbi] = &mut self.grads;
                for k in 0..d {
                    gu[u * d + k] += g * f.items[i * d + k];
                    gi[i * d + k] += g * f.users[u * d + k];
                }
                gbu[u] += g;
                gbi[i] += g;
                self.touched_users.touch(u as u32);
                self.touched_items.touch(i as u32);
            }
            let [gu, gi, gbu, gbi] = &mut self.grads;
            self.users.step(&mut f.users, gu, &self.touched_users.rows, self.l2);
            self.items.step(&mut f.items, gi, &self.touched_items.rows, self.l2);
            self.user_bias.step(&mut f.user_bias, gbu, &self.touched_users.rows, 0.0);
            self.item_bias.step(&mut f.item_bias, gbi, &self.touched_items.rows, 0.0);
            self.touched_users.clear();
            self.touched_items.clear();
        }
        self.triples = triples;
        total / self.triples.len().max(1) as f64
    }
}
