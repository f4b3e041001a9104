//! The recommendation family behind the family seam.

use std::path::Path;

use candle_core::Device;
use serde::Deserialize;
use serde_json::{Value, json};
use tenfold_domain::report::ModelReport;
use tenfold_domain::{Architecture, DataStats, DomainError, Estimate, Family, FamilyPlan, JobKind, JobShape, ParamSpec};

use super::distill::DistillSpec;
use super::model::{ItemFilter, RecModel};
use super::train::{ARCHITECTURES, BPR, EXPLICIT, RecConfig, RecReport, RecTrainRequest, TWO_TOWER, train};
use crate::family::{Evaluated, ModelFamily, ServeInput, Served, TrainJob, Trained};
use crate::split::SplitSpec;
use crate::train::Control;
use crate::{MlError, Result};

/// mf-explicit's L2 when none is given: its validation RMSE on ml-100k
/// bottoms out at 0.905 here (0.922 without; docs/benchmarks.md).
const EXPLICIT_L2: f64 = 2e-4;

/// The most items one answer may list.
pub const MAX_RESULTS: usize = 500;

pub struct RecommendationFamily {
    architectures: Vec<Architecture>,
    hyperparameters: Vec<ParamSpec>,
}

impl RecommendationFamily {
    pub fn new() -> Self {
        // Speeds measured on ml-100k on 2 cores (docs/benchmarks.md), in
        // training interactions per second; sizes for 1k users × 2k items.
        let architectures = vec![
            Architecture {
                name: BPR,
                description: "matrix factorisation with the BPR loss, for implicit feedback (clicks, views, purchases)",
                cpu_samples_per_s: 2_000_000.0,
                parameters: 3_000 * 64,
                activations_per_sample: 0,
                student: true,
            },
            Architecture {
                name: TWO_TOWER,
                description: "a user tower and an item tower (each an id embedding plus the mean of its feature tokens: user_… and \
                              item_… columns such as item_genres) scored by dot product, trained with the BPR loss",
                cpu_samples_per_s: 1_000_000.0,
                parameters: 3_000 * 64,
                activations_per_sample: 0,
                student: false,
            },
            Architecture {
                name: EXPLICIT,
                description: "matrix factorisation of explicit ratings with user and item biases (RMSE)",
                cpu_samples_per_s: 2_000_000.0,
                parameters: 3_000 * 65,
                activations_per_sample: 0,
                student: false,
            },
        ];
        let hyperparameters = vec![
            ParamSpec::integer("epochs", 1, 2_000, Some(300), "passes over the training interactions (the best validation epoch is kept)"),
            ParamSpec::integer("batchSize", 1, 1_000_000, Some(2048), "interactions per step"),
            ParamSpec::positive("learningRate", 1.0, Some(1e-3), "Adam's step size"),
            ParamSpec::integer("embeddingSize", 1, 1024, None, "factors per user and per item (default 64; 16 for a distillation student)"),
            ParamSpec::positive(
                "l2",
                10.0,
                None,
                "L2 penalty on the factors a step touches (default: none for bpr-mf, 0.0002 for mf-explicit)",
            ),
            ParamSpec::positive("initStd", 10.0, Some(0.01), "standard deviation of the initial factors (small works best)"),
            ParamSpec::integer("negatives", 1, 100, Some(1), "BPR: items the user has not interacted with, sampled per positive"),
            ParamSpec::integer(
                "negativeCandidates",
                1,
                100,
                Some(4),
                "BPR: uniform draws per negative, the one the model scores highest is used (dynamic negative sampling; 1: uniform)",
            ),
            ParamSpec::integer("patience", 0, 1_000, Some(20), "stop after this many validations without improvement"),
            ParamSpec::integer("evalEvery", 1, 100, Some(1), "epochs between validation rankings"),
            ParamSpec::split("split", "80/10/10", "train/validation/test percentages of each user's interactions"),
            ParamSpec::integer("seed", 0, i64::from(u32::MAX), Some(42), "seeds the initial factors and negative sampling"),
            ParamSpec::integer("splitSeed", 0, i64::from(u32::MAX), Some(2020), "seeds the per-user split"),
            ParamSpec::number("alpha", 0.0, 1.0, 0.5, "distillation: weight of the data's BPR loss (the rest is the teacher's ranking)"),
            ParamSpec::positive("temperature", 100.0, Some(1.0), "distillation: softmax temperature over the teacher's list"),
            ParamSpec::integer("topK", 1, 1_000, Some(50), "distillation: the teacher's best items per user the student learns to rank"),
            ParamSpec::integer("sampledItems", 0, 1_000, Some(50), "distillation: random items per user added to the teacher's list"),
        ];
        Self { architectures, hyperparameters }
    }
}

impl Default for RecommendationFamily {
    fn default() -> Self {
        Self::new()
    }
}

impl FamilyPlan for RecommendationFamily {
    fn family(&self) -> Family {
        Family::Recommendation
    }

    fn architectures(&self) -> &[Architecture] {
        &self.architectures
    }

    fn hyperparameters(&self) -> &[ParamSpec] {
        &self.hyperparameters
    }

    fn kinds(&self) -> &[JobKind] {
        &[JobKind::FineTune, JobKind::Distill, JobKind::Evaluate]
    }

    fn serves(&self) -> bool {
        true
    }

    fn report_metrics(&self) -> &[&'static str] {
        super::report::METRICS
    }

    fn model_report(&self, report_json: &[u8], size_bytes: u64) -> std::result::Result<ModelReport, DomainError> {
        super::report::model_report(report_json, size_bytes)
    }

    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        let h = job.hyperparameters;
        let stat = |k: &str, default: u64| data.raw.get(k).and_then(Value::as_u64).unwrap_or(default).max(1) as f64;
        let (users, items, interactions) = (stat("users", 1_000), stat("items", 2_000), stat("interactions", 100_000));
        let dim = h.int("embeddingSize").unwrap_or(64) as f64;
        let epochs = h.int("epochs").unwrap_or(300) as f64;
        let negatives = h.int("negatives").unwrap_or(1) as f64;
        let every = h.int("evalEvery").unwrap_or(1).max(1) as f64;
        // Training at the measured rate (scaled by width and negatives);
        // a validation ranking is users × items × dim multiply-adds at
        // about 2 GFLOP/s.
        let measured = self.architectures.iter().find(|a| a.name == job.architecture).unwrap_or(&self.architectures[0]).cpu_samples_per_s;
        let rate = measured * 64.0 / dim.max(8.0) / negatives;
        let train = interactions * h.train_fraction() * epochs / rate;
        let validate = users * items * dim * 2.0 / 2e9 * epochs / every;
        let seconds = match job.kind {
            JobKind::Evaluate => users * items * dim * 2.0 / 2e9 + 5.0,
            // The student, then the same student without the teacher, at
            // the student's size (the teacher's lists are ~100 items a user).
            JobKind::Distill => 2.0 * (train + validate) * 16.0 / dim.max(16.0) + users * 100.0 * epochs * 16.0 / 2e8 + 10.0,
            _ => train + validate + 10.0,
        };
        // The factors five times (weights, two Adam moments, gradients, the
        // best epoch's copy), the interactions, a ranking chunk per thread.
        // A two-tower model adds its id embeddings and
        // their best copy, and five copies of a row per feature token: at
        // most one per entity and column when every value is distinct (a
        // zip code, say).
        let columns = |k: &str| data.raw.get(k).and_then(Value::as_array).map_or(0, Vec::len) as f64;
        let tower_rows = if job.architecture == TWO_TOWER {
            2.0 * (users + items) + 5.0 * (users * columns("user_features") + items * columns("item_features"))
        } else {
            0.0
        };
        let row_mb = dim * 4.0 / 1_048_576.0;
        let memory = 256.0 + (5.0 * (users + items) + tower_rows) * row_mb + interactions * 48.0 / 1_048_576.0 + 64.0;
        Estimate { seconds: seconds.ceil() as i64, memory_mb: ((memory / 64.0).ceil() * 64.0) as i32 }
    }
}

fn request(job: &TrainJob<'_>) -> Result<RecTrainRequest> {
    let h = job.hyperparameters;
    let int = |name: &'static str, default: i64| h.int(name).unwrap_or(default).max(0) as usize;
    // Fine-tuning continues the base's architecture; a student is BPR.
    let architecture = match (job.architecture, job.base) {
        (Some(a), _) => a.to_owned(),
        (None, Some(base)) if job.kind != JobKind::Distill => crate::artifact::read_card(base)?.architecture,
        (None, _) => BPR.to_owned(),
    };
    if !ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(MlError::UnknownArchitecture { family: "recommendation", given: architecture, known: ARCHITECTURES.join(", ") });
    }
    let teacher = match job.kind {
        JobKind::Distill => Some(
            job.teacher
                .ok_or_else(|| MlError::arg("teacher", "a distillation needs the teacher: a trained recommendation model's folder"))?
                .to_path_buf(),
        ),
        _ => None,
    };
    if teacher.is_some() && architecture != BPR {
        return Err(MlError::arg("architecture", format!("a recommendation student is {BPR}; got {architecture:?}")));
    }
    let default_dim = if teacher.is_some() { 16 } else { 64 };
    let l2 = h.float("l2").unwrap_or(if architecture == EXPLICIT { EXPLICIT_L2 } else { 0.0 });
    Ok(RecTrainRequest {
        data: job.data.to_path_buf(),
        out: job.out.to_path_buf(),
        architecture,
        config: RecConfig {
            dim: int("embeddingSize", default_dim).max(1),
            epochs: int("epochs", 300),
            batch_size: int("batchSize", 2048),
            learning_rate: h.float("learningRate").unwrap_or(1e-3) as f32,
            l2: l2 as f32,
            init_std: h.float("initStd").unwrap_or(0.01) as f32,
            negatives: int("negatives", 1).max(1),
            candidates: int("negativeCandidates", 4).max(1),
            patience: Some(int("patience", 20)),
            eval_every: int("evalEvery", 1).max(1),
            seed: h.int("seed").unwrap_or(42).max(0) as u64,
        },
        split: SplitSpec::parse(h.text("split").unwrap_or("80/10/10"))?,
        split_seed: h.int("splitSeed").unwrap_or(2020).max(0) as u64,
        base: if teacher.is_none() { job.base.map(Path::to_path_buf) } else { None },
        teacher,
        distill: DistillSpec {
            alpha: h.float("alpha").unwrap_or(0.5) as f32,
            temperature: h.float("temperature").unwrap_or(1.0) as f32,
            top_k: int("topK", 50).max(1),
            sampled: int("sampledItems", 50),
        },
    })
}

/// The headline numbers a model version shows.
pub fn summary(r: &RecReport) -> Value {
    let at10 = r.test.at(10);
    let mut s = json!({
        "task": r.task,
        "users": r.dataset.users,
        "items": r.dataset.items,
        "interactions": r.dataset.interactions,
        "ndcg@10": at10.map(|a| a.ndcg),
        "recall@10": at10.map(|a| a.recall),
        "mrr@10": at10.map(|a| a.mrr),
        "hit@10": at10.map(|a| a.hit),
        "precision@10": at10.map(|a| a.precision),
        "item_coverage@10": at10.map(|a| a.item_coverage),
        "popularity_ndcg@10": r.popularity.ndcg10(),
        "epochs_run": r.training.history.len(),
        "best_epoch": r.training.best_epoch,
        "samples_per_s": r.training.samples_per_s,
        "top10_ms": r.speed.top10_ms,
        "parameters": r.parameters,
        "artifact_bytes": r.artifact_bytes,
    });
    if let (Some(map), Some(d)) = (s.as_object_mut(), &r.distillation) {
        map.insert("teacher_ndcg@10".into(), json!(d.teacher.ndcg_at_10));
        map.insert("ndcg_retained".into(), json!(d.retained));
        map.insert("student_alone_ndcg@10".into(), json!(d.student_alone.ndcg_at_10));
    }
    if let (Some(map), Some(ratings)) = (s.as_object_mut(), &r.ratings) {
        map.insert("rmse".into(), json!(ratings.model.rmse));
        map.insert("mae".into(), json!(ratings.model.mae));
    }
    s
}

fn report_text(r: &RecReport, out: &Path) -> String {
    let mut text = format!("model written to {}\n", out.display());
    if let Some(a) = r.test.at(10) {
        text.push_str(&format!(
            "test ({} users, full ranking): NDCG@10 {:.4}, Recall@10 {:.4}, MRR@10 {:.4}, Hit@10 {:.4}, Precision@10 {:.4}; \
             popularity NDCG@10 {:.4}; best epoch {} of {}\n",
            r.test.users,
            a.ndcg,
            a.recall,
            a.mrr,
            a.hit,
            a.precision,
            r.popularity.ndcg10(),
            r.training.best_epoch.map_or_else(|| "-".into(), |e| e.to_string()),
            r.training.history.len()
        ));
    }
    if let Some(ratings) = &r.ratings {
        text.push_str(&format!(
            "ratings: RMSE {:.4}, MAE {:.4} (the training mean: RMSE {:.4})\n",
            ratings.model.rmse, ratings.model.mae, ratings.global_mean.rmse
        ));
    }
    if let Some(w) = &r.warm_start {
        text.push_str(&format!(
            "warm start: {} known users and {} known items kept their factors; {} new users and {} new items started fresh\n",
            w.known_users, w.known_items, w.new_users, w.new_items
        ));
    }
    if let Some(d) = &r.distillation {
        text.push_str(&format!("distillation: {}\n", d.verdict));
    }
    for w in &r.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!("report: {}\n", out.join("report.json").display()));
    text
}

impl ModelFamily for RecommendationFamily {
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> Result<Trained> {
        let report = train(&request(job)?, control)?;
        Ok(Trained {
            architecture: report.architecture.clone(),
            classes: Vec::new(),
            summary: summary(&report),
            text: report_text(&report, job.out),
        })
    }

    fn evaluate(&self, model: &Path, data: &Path, _device: &Device) -> Result<Evaluated> {
        let (summary, report) = super::evaluate::evaluate(model, data)?;
        Ok(Evaluated { summary, report })
    }

    fn load_for_serving(&self, model: &Path, _device: &Device) -> Result<Box<dyn Served>> {
        Ok(Box::new(ServedRecommender { model: RecModel::load(model)? }))
    }
}

/// One request to a served recommender: top-K for a user, or the items
/// most like an item.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Query {
    user_id: Option<String>,
    item_id: Option<String>,
    #[serde(default = "ten")]
    num_results: usize,
    #[serde(default = "yes")]
    exclude_seen: bool,
    filter: Option<ItemFilter>,
}

fn ten() -> usize {
    10
}

fn yes() -> bool {
    true
}

struct ServedRecommender {
    model: RecModel,
}

fn answer(model: &RecModel, input: &ServeInput) -> Result<Value> {
    let ServeInput::Json(value) = input else {
        return Err(MlError::arg("userId", "a recommender takes JSON: {\"userId\": \"…\", \"numResults\": 10}"));
    };
    let q: Query = serde_json::from_value(value.clone()).map_err(|e| MlError::arg("body", e.to_string()))?;
    if q.num_results == 0 || q.num_results > MAX_RESULTS {
        return Err(MlError::arg("numResults", format!("ask for 1 to {MAX_RESULTS} items; got {}", q.num_results)));
    }
    let to_json = |v: Result<Value, serde_json::Error>| v.map_err(|e| MlError::Incompatible(e.to_string()));
    match (q.user_id, q.item_id) {
        (Some(user), None) => to_json(serde_json::to_value(model.recommend(&user, q.num_results, q.exclude_seen, q.filter.as_ref())?)),
        (None, Some(item)) => to_json(Ok(json!({ "itemList": model.similar(&item, q.num_results)? }))),
        _ => Err(MlError::arg("userId", "give a userId (recommendations for a user) or an itemId (similar items), not both")),
    }
}

impl Served for ServedRecommender {
    fn predict(&self, inputs: &[ServeInput]) -> Result<Vec<Value>> {
        inputs.iter().map(|i| answer(&self.model, i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(architecture: &str, raw: Value) -> Estimate {
        let family = RecommendationFamily::new();
        let h = family.normalise(&serde_json::Map::new()).unwrap();
        family
            .estimate(&DataStats { bytes: 0, raw }, &JobShape { kind: JobKind::FineTune, architecture, hyperparameters: &h, device: "cpu" })
    }

    #[test]
    fn the_plan_lists_every_architecture_the_engine_trains() {
        let names: Vec<&str> = RecommendationFamily::new().architectures().iter().map(|a| a.name).collect();
        let mut known = super::super::train::ARCHITECTURES.to_vec();
        known.sort_unstable();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        assert_eq!(names_sorted, known);
    }

    #[test]
    fn a_two_tower_job_with_many_distinct_feature_values_asks_for_more_memory_and_time() {
        let big = json!({ "users": 2_000_000, "items": 1_000_000, "interactions": 10_000_000,
                          "user_features": ["user_zip", "user_age"], "item_features": ["item_brand"] });
        let bpr = estimate(BPR, big.clone());
        let towers = estimate(TWO_TOWER, big.clone());
        assert!(towers.memory_mb > bpr.memory_mb, "{towers:?} vs {bpr:?}");
        assert!(towers.seconds > bpr.seconds, "two-tower trains at half BPR's measured rate: {towers:?} vs {bpr:?}");
        // Without feature columns, the towers add their id embeddings (and their best copy) only.
        let plain = json!({ "users": 2_000_000, "items": 1_000_000, "interactions": 10_000_000 });
        let (towers, bpr) = (estimate(TWO_TOWER, plain.clone()).memory_mb, estimate(BPR, plain).memory_mb);
        let ids_mb = 3_000_000 * 64 * 4 / 1_048_576;
        assert!((towers - bpr - 2 * ids_mb).abs() <= 64, "{towers} vs {bpr}");
    }
}
