//! Evaluating a trained recommender on a file: on the file it was trained
//! on, its own held-out test split (recomputed from the card's split and
//! seed, training and validation items masked); on any other file, every
//! interaction of a user and an item the model knows that it has not seen
//! is a held-out positive (what it saw is masked). Users and items the
//! model does not know are counted, not ranked.

use std::path::Path;

use serde_json::{Value, json};

use super::data::Interactions;
use super::explicit::errors;
use super::metrics::{KS, Ranking, evaluate as rank};
use super::model::RecModel;
use super::split::UserItems;
use super::train::{Prepared, Task};
use crate::artifact::read_card;
use crate::split::SplitSpec;
use crate::{MlError, Result};

fn headline(r: &Ranking, popularity: &Ranking) -> Value {
    let a = r.at(10);
    json!({
        "users": r.users,
        "ndcg@10": a.map(|a| a.ndcg),
        "recall@10": a.map(|a| a.recall),
        "mrr@10": a.map(|a| a.mrr),
        "hit@10": a.map(|a| a.hit),
        "precision@10": a.map(|a| a.precision),
        "popularity_ndcg@10": popularity.ndcg10(),
    })
}

/// The evaluation's summary and its whole report.
pub fn evaluate(dir: &Path, data: &Path) -> Result<(Value, Value)> {
    let model = RecModel::load(dir)?;
    let card = read_card(dir)?;
    let split: SplitSpec = serde_json::from_value(card.training["split"].clone()).unwrap_or_default();
    let seed = card.training["split_seed"].as_u64().unwrap_or(2020);
    let sha = crate::artifact::sha256_file(data)?;
    if sha == card.dataset.sha256 {
        let p = Prepared::load(data, split, seed)?;
        if p.data.users != model.users || p.data.items != model.items {
            return Err(MlError::Incompatible("the file has the training data's checksum but not its users and items".into()));
        }
        let ranking = p.test_ranking(&model.factors)?;
        let popularity = p.test_ranking(&p.popularity)?;
        let ratings = (model.task == Task::Explicit).then(|| {
            let triples: Vec<(u32, u32, f32)> = p.split.test.iter().map(|&i| p.data.rows[i]).map(|r| (r.user, r.item, r.rating)).collect();
            errors(|u, i| model.factors.predict(u, i), &triples)
        });
        let mut summary = headline(&ranking, &popularity);
        summary["split"] = json!("test");
        if let Some(r) = &ratings {
            summary["rmse"] = json!(r.rmse);
            summary["mae"] = json!(r.mae);
        }
        let report = json!({ "split": "test", "protocol": p.protocol, "ranking": ranking, "popularity": popularity, "ratings": ratings });
        return Ok((summary, report));
    }
    let other = Interactions::load(data)?;
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); model.users.len()];
    let (mut unknown_users, mut unknown_items, mut already_seen) = (0usize, 0usize, 0usize);
    let mut triples = Vec::new();
    for r in &other.rows {
        let (Some(u), Some(i)) = (model.user_index(&other.users[r.user as usize]), model.item_index(&other.items[r.item as usize])) else {
            if model.user_index(&other.users[r.user as usize]).is_none() {
                unknown_users += 1;
            } else {
                unknown_items += 1;
            }
            continue;
        };
        if model.seen.contains(u as usize, i) {
            already_seen += 1;
            continue;
        }
        lists[u as usize].push(i);
        triples.push((u, i, r.rating));
    }
    if triples.is_empty() {
        return Err(MlError::InvalidDataset {
            path: data.into(),
            family: "recommendation",
            summary: format!(
                "nothing to evaluate: of {} interactions, {unknown_users} are of users and {unknown_items} of items the model does not \
                 know, and {already_seen} it was trained on; give interactions of known users with known items it has not seen",
                other.rows.len()
            ),
        });
    }
    let positives = UserItems::from_lists(lists);
    let ranking = rank(&model.factors, &positives, &model.seen, &model.popularity.counts, &KS)?;
    let popularity = rank(&model.popularity, &positives, &model.seen, &model.popularity.counts, &KS)?;
    let ratings = (model.task == Task::Explicit && other.has_rating).then(|| errors(|u, i| model.factors.predict(u, i), &triples));
    let mut summary = headline(&ranking, &popularity);
    summary["split"] = json!("file");
    let report = json!({
        "split": "file",
        "interactions": other.rows.len(),
        "evaluated_interactions": triples.len(),
        "unknown_user_interactions": unknown_users,
        "unknown_item_interactions": unknown_items,
        "already_seen": already_seen,
        "ranking": ranking,
        "popularity": popularity,
        "ratings": ratings,
    });
    Ok((summary, report))
}
