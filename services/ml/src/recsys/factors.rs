//! Latent factors: a vector per user and per item, and per-item (and for
//! explicit ratings per-user and global) biases. A user's score for an item
//! is `global + user_bias + item_bias + user · item`; ranking needs only
//! `item_bias + user · item` (the rest is the same for all of a user's items).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::metrics::Scorer;
use crate::kernels::gemm::{Mat, matmul};
use crate::{MlError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    pub dim: usize,
    /// `n_users × dim`, row-major.
    pub users: Vec<f32>,
    /// `n_items × dim`, row-major.
    pub items: Vec<f32>,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    pub global: f32,
}

impl Factors {
    /// Normal(0, std) vectors and zero biases.
    pub fn normal(n_users: usize, n_items: usize, dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Result<Self> {
        let normal = Normal::new(0.0f32, std).map_err(|e| MlError::arg("initStd", e.to_string()))?;
        let mut draw = |n: usize| (0..n).map(|_| normal.sample(rng)).collect::<Vec<f32>>();
        Ok(Self {
            dim,
            users: draw(n_users * dim),
            items: draw(n_items * dim),
            user_bias: vec![0.0; n_users],
            item_bias: vec![0.0; n_items],
            global: 0.0,
        })
    }

    pub fn n_users(&self) -> usize {
        self.user_bias.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_bias.len()
    }

    pub fn user(&self, u: usize) -> &[f32] {
        &self.users[u * self.dim..(u + 1) * self.dim]
    }

    pub fn item(&self, i: usize) -> &[f32] {
        &self.items[i * self.dim..(i + 1) * self.dim]
    }

    /// The full predicted value (a rating, for explicit models).
    pub fn predict(&self, u: usize, i: usize) -> f32 {
        self.global + self.user_bias[u] + self.item_bias[i] + dot(self.user(u), self.item(i))
    }

    /// Scores of every item for a vector in the users' space: one pass over
    /// the item factors (a GEMM would pack all of them for one row).
    pub fn score_vector(&self, vector: &[f32], out: &mut [f32]) -> Result<()> {
        if vector.len() != self.dim || out.len() != self.n_items() {
            return Err(MlError::Incompatible(format!("a {}-factor vector scores {} items", self.dim, self.n_items())));
        }
        for ((s, item), b) in out.iter_mut().zip(self.items.chunks_exact(self.dim)).zip(&self.item_bias) {
            *s = dot(vector, item) + b;
        }
        Ok(())
    }

    fn score_rows(&self, rows: &[f32], n: usize, out: &mut [f32], threads: usize) -> Result<()> {
        let n_items = self.n_items();
        matmul(out, false, Mat::rows(rows, n, self.dim), Mat::rows(&self.items, n_items, self.dim).t(), threads)?;
        for row in out.chunks_mut(n_items) {
            for (s, b) in row.iter_mut().zip(&self.item_bias) {
                *s += b;
            }
        }
        Ok(())
    }

    /// The tensors a model file stores, under `prefix`.
    pub fn tensors(&self, prefix: &str) -> Result<BTreeMap<String, Tensor>> {
        let cpu = Device::Cpu;
        let mut t = BTreeMap::new();
        t.insert(format!("{prefix}user_factors"), Tensor::from_slice(&self.users, (self.n_users(), self.dim), &cpu)?);
        t.insert(format!("{prefix}item_factors"), Tensor::from_slice(&self.items, (self.n_items(), self.dim), &cpu)?);
        t.insert(format!("{prefix}user_bias"), Tensor::from_slice(&self.user_bias, self.n_users(), &cpu)?);
        t.insert(format!("{prefix}item_bias"), Tensor::from_slice(&self.item_bias, self.n_items(), &cpu)?);
        t.insert(format!("{prefix}global_bias"), Tensor::from_slice(&[self.global], 1, &cpu)?);
        Ok(t)
    }

    /// Reads them back, checking every shape against the counts given.
    pub fn from_tensors(t: &BTreeMap<String, Tensor>, prefix: &str, n_users: usize, n_items: usize) -> Result<Self> {
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let key = format!("{prefix}{name}");
            let tensor = t.get(&key).ok_or_else(|| MlError::Incompatible(format!("the model file has no tensor {key}")))?;
            if tensor.dims() != shape {
                return Err(MlError::Incompatible(format!("{key} has shape {:?}; the model card implies {shape:?}", tensor.dims())));
            }
            Ok(tensor.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
        };
        let dim = t.get(&format!("{prefix}item_factors")).and_then(|x| x.dims().get(1).copied()).unwrap_or(0);
        Ok(Self {
            dim,
            users: get("user_factors", &[n_users, dim])?,
            items: get("item_factors", &[n_items, dim])?,
            user_bias: get("user_bias", &[n_users])?,
            item_bias: get("item_bias", &[n_items])?,
            global: get("global_bias", &[1])?.first().copied().unwrap_or(0.0),
        })
    }

    /// A Normal(0, std) row for a new user or item (fine-tuning's newcomers).
    pub fn fresh_row(dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
        let normal = Normal::new(0.0f32, std).map_err(|e| MlError::arg("initStd", e.to_string()))?;
        Ok((0..dim).map(|_| normal.sample(rng)).collect())
    }
}

impl Scorer for Factors {
    fn n_items(&self) -> usize {
        self.item_bias.len()
    }

    fn scores(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let mut rows = Vec::with_capacity(users.len() * self.dim);
        for &u in users {
            rows.extend_from_slice(self.user(u as usize));
        }
        self.score_rows(&rows, users.len(), out, 1)
    }
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators: the compiler vectorises them into
    // SIMD lanes. A plain multiply and add, not `mul_add`: without the FMA
    // target feature (the build targets baseline x86-64) `mul_add` is a
    // call into libm per element and nothing vectorises.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (x, y) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scores_are_dot_products_plus_item_bias_and_round_trip_through_tensors() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut f = Factors::normal(3, 5, 12, 0.1, &mut rng).unwrap();
        f.item_bias = vec![0.0, 1.0, 0.0, -1.0, 0.5];
        let mut out = vec![0.0; 2 * 5];
        f.scores(&[2, 0], &mut out).unwrap();
        for (row, u) in out.chunks(5).zip([2usize, 0]) {
            for (i, s) in row.iter().enumerate() {
                assert!((s - (dot(f.user(u), f.item(i)) + f.item_bias[i])).abs() < 1e-5);
            }
        }
        let back = Factors::from_tensors(&f.tensors("x.").unwrap(), "x.", 3, 5).unwrap();
        assert_eq!(back, f);
        assert!(Factors::from_tensors(&f.tensors("x.").unwrap(), "x.", 4, 5).is_err());
    }
}
