//! A recommender's folder and the loaded model that answers with it.
//!
//! `model.safetensors` holds the factors (`user_factors`, `item_factors`,
//! biases), each item's training popularity (`popularity`, the cold-start
//! answer) and every user's known items (`seen_offsets`, `seen_items`, a
//! CSR matrix: what `excludeSeen` removes); `ids.json` the external user and
//! item ids in index order; `model.json` the card. A two-tower model adds
//! its towers' embeddings (`tower.*`) and `features.json`, the feature
//! vocabularies and each user's and item's tokens; its factors are the
//! towers' outputs, so answering reads it like any other.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::factors::Factors;
use super::features::FeatureTable;
use super::metrics::top_k;
use super::popularity::Popularity;
use super::split::UserItems;
use super::train::{RecReport, TWO_TOWER, Task};
use super::two_tower::Towers;
use crate::artifact::{self, DatasetRef, ModelCard, REPORT, WEIGHTS};
use crate::params::{load_tensors, save_tensors};
use crate::split::SplitSpec;
use crate::{MlError, Result};

pub const IDS: &str = "ids.json";
pub const FEATURES: &str = "features.json";
pub const FAMILY: &str = "recommendation";

#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
    /// Each item vector's length (similar items are by cosine).
    item_norms: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct RecModel {
    pub architecture: String,
    pub task: Task,
    pub users: Vec<String>,
    pub items: Vec<String>,
    pub factors: Factors,
    pub popularity: Popularity,
    pub seen: UserItems,
    /// A two-tower model's towers.
    pub towers: Option<Towers>,
    pub index: IdIndex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    pub item_id: String,
    pub score: f32,
}

/// A user's recommendations; `cold_start` when the user was unknown and
/// got the most popular items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub item_list: Vec<Scored>,
    pub cold_start: bool,
}

/// Which items may be recommended: only `include` (when given), never
/// `exclude`. Ids the model does not know are ignored (they cannot be
/// recommended anyway).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemFilter {
    #[serde(default)]
    pub include_item_ids: Option<Vec<String>>,
    #[serde(default)]
    pub exclude_item_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Ids {
    users: Vec<String>,
    items: Vec<String>,
}

/// `features.json`: what the towers' token embeddings stand for.
#[derive(Serialize, Deserialize)]
struct Features {
    users: FeatureTable,
    items: FeatureTable,
}

fn bad(dir: &Path, reason: impl Into<String>) -> MlError {
    MlError::InvalidModel { path: dir.into(), reason: reason.into() }
}

impl RecModel {
    /// Builds the id lookups and the item norms.
    pub fn indexed(mut self) -> Self {
        self.index.users = self.users.iter().enumerate().map(|(i, u)| (u.clone(), i as u32)).collect();
        self.index.items = self.items.iter().enumerate().map(|(i, u)| (u.clone(), i as u32)).collect();
        let f = &self.factors;
        self.index.item_norms = (0..f.n_items()).map(|i| super::factors::dot(f.item(i), f.item(i)).sqrt().max(1e-12)).collect();
        self
    }

    pub fn user_index(&self, id: &str) -> Option<u32> {
        self.index.users.get(id).copied()
    }

    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.index.items.get(id).copied()
    }

    pub fn parameters(&self) -> usize {
        let f = &self.factors;
        f.users.len()
            + f.items.len()
            + f.user_bias.len()
            + f.item_bias.len()
            + 1
            + self.towers.as_ref().map_or(0, Towers::feature_parameters)
    }

    /// Sorted item indices a filter rules out (`None`: nothing).
    fn masked(&self, user: Option<u32>, exclude_seen: bool, filter: Option<&ItemFilter>) -> Vec<u32> {
        let mut masked: Vec<u32> = match user {
            Some(u) if exclude_seen => self.seen.of(u as usize).to_vec(),
            _ => Vec::new(),
        };
        if let Some(f) = filter {
            masked.extend(f.exclude_item_ids.iter().filter_map(|id| self.item_index(id)));
            if let Some(include) = &f.include_item_ids {
                let mut keep: Vec<u32> = include.iter().filter_map(|id| self.item_index(id)).collect();
                keep.sort_unstable();
                masked.extend((0..self.items.len() as u32).filter(|i| keep.binary_search(i).is_err()));
            }
        }
        masked.sort_unstable();
        masked.dedup();
        masked
    }

    /// The `n` best items for a user over the whole catalogue (exact), or
    /// the most popular ones for a user the model has not seen.
    pub fn recommend(&self, user_id: &str, n: usize, exclude_seen: bool, filter: Option<&ItemFilter>) -> Result<Recommendation> {
        let user = self.user_index(user_id);
        let mut scores = vec![0f32; self.items.len()];
        match user {
            Some(u) => self.factors.score_vector(self.factors.user(u as usize), &mut scores)?,
            None => scores.iter_mut().zip(&self.popularity.counts).for_each(|(s, &c)| *s = c as f32),
        }
        let masked = self.masked(user, exclude_seen, filter);
        let item_list = top_k(&scores, &masked, n)
            .into_iter()
            .map(|i| Scored { item_id: self.items[i as usize].clone(), score: scores[i as usize] })
            .collect();
        Ok(Recommendation { item_list, cold_start: user.is_none() })
    }

    /// The `n` items whose factors point the same way as `item_id`'s
    /// (cosine similarity), the item itself left out.
    pub fn similar(&self, item_id: &str, n: usize) -> Result<Vec<Scored>> {
        let Some(item) = self.item_index(item_id) else {
            return Err(MlError::arg("itemId", format!("the model does not know the item {item_id:?}; it was not in the training data")));
        };
        let (f, norms) = (&self.factors, &self.index.item_norms);
        let query = f.item(item as usize);
        let scores: Vec<f32> =
            (0..self.items.len()).map(|i| super::factors::dot(query, f.item(i)) / (norms[i] * norms[item as usize])).collect();
        Ok(top_k(&scores, &[item], n)
            .into_iter()
            .map(|i| Scored { item_id: self.items[i as usize].clone(), score: scores[i as usize] })
            .collect())
    }

    fn tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let cpu = Device::Cpu;
        let mut t = self.factors.tensors("")?;
        t.insert("popularity".into(), Tensor::from_slice(&self.popularity.counts, self.popularity.counts.len(), &cpu)?);
        let offsets: Vec<i64> = self.seen.offsets.iter().map(|&o| o as i64).collect();
        t.insert("seen_offsets".into(), Tensor::from_slice(&offsets, offsets.len(), &cpu)?);
        t.insert("seen_items".into(), Tensor::from_slice(&self.seen.items, self.seen.items.len(), &cpu)?);
        if let Some(towers) = &self.towers {
            t.extend(towers.tensors()?);
        }
        Ok(t)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let card = artifact::read_card(dir)?;
        artifact::expect_family(dir, &card, FAMILY)?;
        let ids: Ids = serde_json::from_slice(&std::fs::read(dir.join(IDS)).map_err(|_| bad(dir, format!("{IDS} is missing")))?)
            .map_err(|e| bad(dir, format!("{IDS} is not a list of users and items ({e})")))?;
        let t = load_tensors(&dir.join(WEIGHTS), &Device::Cpu)?;
        let (n_users, n_items) = (ids.users.len(), ids.items.len());
        let factors = Factors::from_tensors(&t, "", n_users, n_items).map_err(|e| bad(dir, e.to_string()))?;
        let vector = |name: &str, dtype: DType| -> Result<Tensor> {
            let x = t.get(name).ok_or_else(|| bad(dir, format!("{WEIGHTS} has no tensor {name}")))?;
            if x.dtype() != dtype || x.rank() != 1 {
                return Err(bad(dir, format!("{name} is not a vector of {dtype:?}")));
            }
            Ok(x.clone())
        };
        let counts = vector("popularity", DType::U32)?.to_vec1::<u32>()?;
        let offsets: Vec<usize> = vector("seen_offsets", DType::I64)?.to_vec1::<i64>()?.into_iter().map(|o| o.max(0) as usize).collect();
        let items = vector("seen_items", DType::U32)?.to_vec1::<u32>()?;
        let consistent = counts.len() == n_items
            && offsets.len() == n_users + 1
            && offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last() == Some(&items.len())
            && items.iter().all(|&i| (i as usize) < n_items);
        if !consistent {
            return Err(bad(dir, "the popularity and seen-item tensors do not match ids.json"));
        }
        let task = card.preprocessing.get("task").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or(Task::Implicit);
        let towers = if card.architecture == TWO_TOWER { Some(load_towers(dir, &t, n_users, n_items, factors.dim)?) } else { None };
        Ok(Self {
            architecture: card.architecture,
            task,
            users: ids.users,
            items: ids.items,
            factors,
            popularity: Popularity { counts },
            seen: UserItems { offsets, items },
            towers,
            index: IdIndex::default(),
        }
        .indexed())
    }
}

fn load_towers(dir: &Path, t: &BTreeMap<String, Tensor>, n_users: usize, n_items: usize, dim: usize) -> Result<Towers> {
    let text = std::fs::read(dir.join(FEATURES)).map_err(|_| bad(dir, format!("{FEATURES} is missing (a {TWO_TOWER} model has one)")))?;
    let f: Features =
        serde_json::from_slice(&text).map_err(|e| bad(dir, format!("{FEATURES} is not the users' and items' features ({e})")))?;
    if !f.users.consistent_with(n_users) || !f.items.consistent_with(n_items) {
        return Err(bad(dir, format!("{FEATURES} does not match {IDS}")));
    }
    Towers::from_tensors(t, [f.users, f.items], n_users, n_items, dim).map_err(|e| bad(dir, e.to_string()))
}

/// Writes the model folder (weights, ids, then the card) and the report
/// beside it; returns the model's size on disk.
pub fn save_model(dir: &Path, model: &RecModel, report: &RecReport, split: &SplitSpec, split_seed: u64) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(MlError::io(dir))?;
    save_tensors(&model.tensors()?, &dir.join(WEIGHTS))?;
    let ids = serde_json::to_vec(&Ids { users: model.users.clone(), items: model.items.clone() }).map_err(|e| bad(dir, e.to_string()))?;
    std::fs::write(dir.join(IDS), ids).map_err(MlError::io(dir.join(IDS)))?;
    if let Some(t) = &model.towers {
        let features = serde_json::to_vec(&Features { users: t.users.table.clone(), items: t.items.table.clone() })
            .map_err(|e| bad(dir, e.to_string()))?;
        std::fs::write(dir.join(FEATURES), features).map_err(MlError::io(dir.join(FEATURES)))?;
    }
    let at10 = report.test.at(10);
    let card = ModelCard {
        format: artifact::FORMAT.into(),
        format_version: artifact::FORMAT_VERSION,
        family: FAMILY.into(),
        architecture: model.architecture.clone(),
        classes: Vec::new(),
        preprocessing: json!({
            "task": model.task,
            "users": model.users.len(),
            "items": model.items.len(),
            "dim": model.factors.dim,
            "user_features": model.towers.as_ref().map(|t| &t.users.table.columns),
            "item_features": model.towers.as_ref().map(|t| &t.items.table.columns),
        }),
        training: json!({
            "config": report.config,
            "split": split,
            "split_seed": split_seed,
            "protocol": report.protocol,
            "best_epoch": report.training.best_epoch,
            "epochs_run": report.training.history.len(),
        }),
        dataset: DatasetRef {
            file: report.dataset.file.clone(),
            sha256: report.dataset.sha256.clone(),
            examples: report.dataset.interactions,
        },
        metrics: json!({
            "ndcg@10": at10.map(|a| a.ndcg),
            "recall@10": at10.map(|a| a.recall),
            "mrr@10": at10.map(|a| a.mrr),
            "hit@10": at10.map(|a| a.hit),
            "precision@10": at10.map(|a| a.precision),
            "rmse": report.ratings.as_ref().map(|r| r.model.rmse),
        }),
        parameters: model.parameters(),
        engine: ModelCard::engine(),
    };
    artifact::write_card(dir, &card)?;
    let bytes = artifact::size_on_disk(dir);
    let mut report = report.clone();
    report.artifact_bytes = bytes;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| bad(dir, e.to_string()))?;
    std::fs::write(dir.join(REPORT), json).map_err(MlError::io(dir.join(REPORT)))?;
    Ok(bytes)
}
