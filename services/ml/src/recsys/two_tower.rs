//! The two-tower model: a user tower and an item tower each map an entity
//! to a vector, and a user's score for an item is their dot product. A
//! tower here is an embedding bag — the entity's own embedding plus the
//! mean of its feature tokens' embeddings (LightFM's hybrid factorisation;
//! the first model of TensorFlow Recommenders' retrieval guide) — so items
//! that share a genre, or users that share an occupation, share part of
//! their vector and sparse entities borrow from their neighbours.
//!
//! It trains with BPR's loss and negative sampling: BPR computes the
//! gradient with respect to the towers' outputs (the factors it sees), and
//! [`TowerStep`] carries it back into the id and token embeddings. After
//! training the outputs are materialised as ordinary factors, so ranking,
//! serving and distillation read a two-tower model like any other.

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;

use super::adam::{RowAdam, Touched};
use super::data::Interactions;
use super::factors::Factors;
use super::features::FeatureTable;
use crate::{MlError, Result};

/// Prefix of the tower tensors in a model file.
const PREFIX: &str = "tower.";

/// One tower's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Tower {
    pub dim: usize,
    /// `entities × dim`: each entity's own embedding.
    pub ids: Vec<f32>,
    /// `vocabulary × dim`: each feature token's embedding.
    pub features: Vec<f32>,
    pub table: FeatureTable,
}

impl Tower {
    pub fn new(entities: usize, table: FeatureTable, dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Result<Self> {
        let ids = (0..entities).map(|_| Factors::fresh_row(dim, std, rng)).collect::<Result<Vec<_>>>()?.concat();
        let features = (0..table.vocabulary.len()).map(|_| Factors::fresh_row(dim, std, rng)).collect::<Result<Vec<_>>>()?.concat();
        Ok(Self { dim, ids, features, table })
    }

    pub fn entities(&self) -> usize {
        self.ids.len() / self.dim.max(1)
    }

    /// An entity's vector: its own embedding plus the mean of its tokens'.
    fn output(&self, e: usize, out: &mut [f32]) {
        let d = self.dim;
        out.copy_from_slice(&self.ids[e * d..(e + 1) * d]);
        let tokens = self.table.of(e);
        if tokens.is_empty() {
            return;
        }
        let w = 1.0 / tokens.len() as f32;
        for &t in tokens {
            let row = &self.features[t as usize * d..(t as usize + 1) * d];
            for (o, x) in out.iter_mut().zip(row) {
                *o += w * x;
            }
        }
    }

    /// Every entity's vector into `out` (`entities × dim`).
    pub fn materialise(&self, out: &mut [f32]) {
        for (e, row) in out.chunks_exact_mut(self.dim).enumerate() {
            self.output(e, row);
        }
    }

    fn materialise_rows(&self, out: &mut [f32], rows: &[u32]) {
        let d = self.dim;
        for &r in rows {
            let r = r as usize;
            self.output(r, &mut out[r * d..(r + 1) * d]);
        }
    }

    fn tensors(&self, side: &str, t: &mut BTreeMap<String, Tensor>) -> Result<()> {
        let cpu = Device::Cpu;
        t.insert(format!("{PREFIX}{side}_ids"), Tensor::from_slice(&self.ids, (self.entities(), self.dim), &cpu)?);
        let vocabulary = self.table.vocabulary.len();
        t.insert(format!("{PREFIX}{side}_features"), Tensor::from_slice(&self.features, (vocabulary, self.dim), &cpu)?);
        Ok(())
    }

    fn from_tensors(t: &BTreeMap<String, Tensor>, side: &str, table: FeatureTable, entities: usize, dim: usize) -> Result<Self> {
        let get = |name: String, shape: [usize; 2]| -> Result<Vec<f32>> {
            let x = t.get(&name).ok_or_else(|| MlError::Incompatible(format!("the model file has no tensor {name}")))?;
            if x.dims() != shape {
                return Err(MlError::Incompatible(format!("{name} has shape {:?}; the features imply {shape:?}", x.dims())));
            }
            Ok(x.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
        };
        let ids = get(format!("{PREFIX}{side}_ids"), [entities, dim])?;
        let features = get(format!("{PREFIX}{side}_features"), [table.vocabulary.len(), dim])?;
        Ok(Self { dim, ids, features, table })
    }
}

/// The user and the item tower.
#[derive(Debug, Clone, PartialEq)]
pub struct Towers {
    pub users: Tower,
    pub items: Tower,
}

impl Towers {
    /// Fresh towers for a dataset's users, items and their features.
    pub fn fresh(data: &Interactions, dim: usize, std: f32, rng: &mut ChaCha8Rng) -> Result<Self> {
        Ok(Self {
            users: Tower::new(data.n_users(), data.user_features.clone(), dim, std, rng)?,
            items: Tower::new(data.n_items(), data.item_features.clone(), dim, std, rng)?,
        })
    }

    /// The towers' outputs as factors (biases zero: the towers are the whole score).
    pub fn factors(&self) -> Factors {
        let dim = self.users.dim;
        let mut f = Factors {
            dim,
            users: vec![0.0; self.users.ids.len()],
            items: vec![0.0; self.items.ids.len()],
            user_bias: vec![0.0; self.users.entities()],
            item_bias: vec![0.0; self.items.entities()],
            global: 0.0,
        };
        self.users.materialise(&mut f.users);
        self.items.materialise(&mut f.items);
        f
    }

    /// Trainable numbers besides the id embeddings (which factors count).
    pub fn feature_parameters(&self) -> usize {
        self.users.features.len() + self.items.features.len()
    }

    pub fn tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut t = BTreeMap::new();
        self.users.tensors("user", &mut t)?;
        self.items.tensors("item", &mut t)?;
        Ok(t)
    }

    pub fn from_tensors(
        t: &BTreeMap<String, Tensor>,
        tables: [FeatureTable; 2],
        n_users: usize,
        n_items: usize,
        dim: usize,
    ) -> Result<Self> {
        let [user_table, item_table] = tables;
        Ok(Self {
            users: Tower::from_tensors(t, "user", user_table, n_users, dim)?,
            items: Tower::from_tensors(t, "item", item_table, n_items, dim)?,
        })
    }
}

/// Adam state of one tower's token embeddings.
struct TokenStep {
    adam: RowAdam,
    grads: Vec<f32>,
    touched: Touched,
}

impl TokenStep {
    fn new(tower: &Tower, lr: f32) -> Self {
        let n = tower.table.vocabulary.len();
        Self { adam: RowAdam::new(n, tower.dim, lr), grads: vec![0.0; n * tower.dim], touched: Touched::new(n) }
    }
}

/// Training state: the towers, and Adam for their token embeddings (BPR's
/// own row optimisers move the id embeddings).
pub struct TowerStep {
    pub towers: Towers,
    users: TokenStep,
    items: TokenStep,
}

/// One side of a step: the gradients BPR left for the tower's outputs,
/// the rows they touched, and the optimiser of the id embeddings.
pub struct Side<'a> {
    pub grads: &'a mut [f32],
    pub rows: &'a [u32],
    pub ids_adam: &'a mut RowAdam,
    /// The materialised outputs, brought up to date.
    pub outputs: &'a mut [f32],
}

impl TowerStep {
    pub fn new(towers: Towers, lr: f32) -> Self {
        Self { users: TokenStep::new(&towers.users, lr), items: TokenStep::new(&towers.items, lr), towers }
    }

    /// Carries the output gradients into both towers, steps them, and
    /// re-materialises the outputs.
    pub fn apply(&mut self, users: Side<'_>, items: Side<'_>, l2: f32) {
        step_tower(&mut self.towers.users, &mut self.users, users, l2);
        step_tower(&mut self.towers.items, &mut self.items, items, l2);
    }
}

fn step_tower(tower: &mut Tower, tokens: &mut TokenStep, side: Side<'_>, l2: f32) {
    let d = tower.dim;
    // The output is id + mean(tokens): each token gets its share of the
    // output's gradient, the id all of it.
    for &r in side.rows {
        let of = tower.table.of(r as usize);
        if of.is_empty() {
            continue;
        }
        let w = 1.0 / of.len() as f32;
        let g = &side.grads[r as usize * d..(r as usize + 1) * d];
        for &t in of {
            let row = &mut tokens.grads[t as usize * d..(t as usize + 1) * d];
            for (a, x) in row.iter_mut().zip(g) {
                *a += w * x;
            }
            tokens.touched.touch(t);
        }
    }
    side.ids_adam.step(&mut tower.ids, side.grads, side.rows, l2);
    let moved_tokens = !tokens.touched.rows.is_empty();
    tokens.adam.step(&mut tower.features, &mut tokens.grads, &tokens.touched.rows, l2);
    tokens.touched.clear();
    // A token is shared: when one moved, every entity holding it did.
    if moved_tokens {
        tower.materialise(side.outputs);
    } else {
        tower.materialise_rows(side.outputs, side.rows);
    }
}

/// Overwrites the rows of `rows` (one per name, `width` wide) whose name
/// `base_names` holds with that row of `base`: fine-tuning keeps what an
/// earlier version learnt. How many were kept.
pub fn keep_known(rows: &mut [f32], names: &[String], base: &[f32], base_names: &[String], width: usize) -> usize {
    let index: HashMap<&str, usize> = base_names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut kept = 0;
    for (row, name) in rows.chunks_exact_mut(width).zip(names) {
        if let Some(from) = index.get(name.as_str()).and_then(|&b| base.get(b * width..(b + 1) * width)) {
            row.copy_from_slice(from);
            kept += 1;
        }
    }
    kept
}

impl Tower {
    /// Keeps the id and token embeddings `base` has for the same names.
    pub fn keep_known(&mut self, names: &[String], base: &Tower, base_names: &[String]) {
        keep_known(&mut self.ids, names, &base.ids, base_names, self.dim);
        keep_known(&mut self.features, &self.table.vocabulary, &base.features, &base.table.vocabulary, self.dim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recsys::factors::dot;
    use rand::SeedableRng;

    fn table() -> FeatureTable {
        // Entity 0: tokens 0 and 1; entity 1: none; entity 2: token 1.
        FeatureTable {
            columns: vec!["item_g".into()],
            vocabulary: vec!["a".into(), "b".into()],
            offsets: vec![0, 2, 2, 3],
            tokens: vec![0, 1, 1],
        }
    }

    #[test]
    fn an_output_is_the_id_embedding_plus_the_mean_of_its_tokens() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let t = Tower::new(3, table(), 4, 0.5, &mut rng).unwrap();
        let mut out = vec![0.0; 12];
        t.materialise(&mut out);
        for k in 0..4 {
            let expect0 = t.ids[k] + 0.5 * (t.features[k] + t.features[4 + k]);
            assert!((out[k] - expect0).abs() < 1e-6);
            assert!((out[4 + k] - t.ids[4 + k]).abs() < 1e-6);
            assert!((out[8 + k] - (t.ids[8 + k] + t.features[4 + k])).abs() < 1e-6);
        }
    }

    #[test]
    fn a_step_moves_shared_tokens_and_every_output_that_holds_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let items = Tower::new(3, table(), 4, 0.5, &mut rng).unwrap();
        let users = Tower::new(1, FeatureTable::default(), 4, 0.5, &mut rng).unwrap();
        let towers = Towers { users, items };
        let mut f = towers.factors();
        let before = f.clone();
        let mut step = TowerStep::new(towers, 0.1);
        let (mut ua, mut ia) = (RowAdam::new(1, 4, 0.1), RowAdam::new(3, 4, 0.1));
        let (mut ug, mut ig) = (vec![0.0; 4], vec![0.0; 12]);
        // A gradient on item 0's output only: its tokens move, so item 2
        // (sharing token 1) moves too, and item 1 (no tokens) stays.
        ig[..4].copy_from_slice(&[1.0, -1.0, 1.0, -1.0]);
        step.apply(
            Side { grads: &mut ug, rows: &[], ids_adam: &mut ua, outputs: &mut f.users },
            Side { grads: &mut ig, rows: &[0], ids_adam: &mut ia, outputs: &mut f.items },
            0.0,
        );
        assert_ne!(f.item(0), before.item(0));
        assert_ne!(f.item(2), before.item(2));
        assert_eq!(f.item(1), before.item(1));
        assert_eq!(f.users, before.users);
        assert_eq!(step.towers.factors(), f);
        // The step went against the gradient.
        let g = [1.0, -1.0, 1.0, -1.0];
        assert!(dot(f.item(0), &g) < dot(before.item(0), &g));
        let back = Towers::from_tensors(&step.towers.tensors().unwrap(), [FeatureTable::default(), table()], 1, 3, 4).unwrap();
        assert_eq!(back, step.towers);
    }

    #[test]
    fn known_names_keep_their_rows_and_new_ones_stay_fresh() {
        let mut rows = vec![9.0; 4];
        let kept = keep_known(&mut rows, &["y".into(), "z".into()], &[1.0, 1.0, 2.0, 2.0], &["x".into(), "y".into()], 2);
        assert_eq!((rows, kept), (vec![2.0, 2.0, 9.0, 9.0], 1));
    }
}
