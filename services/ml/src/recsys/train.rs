//! Training a recommender: read and split the interactions (RecBole's
//! protocol), train the architecture with the validation ranking choosing
//! the epoch, rank the test split against the popularity baseline, and write
//! the model folder and its report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::bpr::Bpr;
use super::data::{Interactions, invalid};
use super::distill::{DistillSpec, Teacher, teacher_epoch};
use super::explicit::{Explicit, RatingErrors, errors};
use super::factors::Factors;
use super::fit::{EpochModel, LoopConfig, fit};
use super::metrics::{KS, Ranking, evaluate};
use super::model::{RecModel, save_model};
use super::popularity::Popularity;
use super::split::{Protocol, Split, UserItems};
use super::two_tower::{TowerStep, Towers, keep_known};
use crate::split::SplitSpec;
use crate::train::{Control, Goal, Metrics, Outcome};
use crate::{MlError, Result};

pub const BPR: &str = "bpr-mf";
pub const EXPLICIT: &str = "mf-explicit";
pub const TWO_TOWER: &str = "two-tower";
/// Every architecture, for messages.
pub const ARCHITECTURES: [&str; 3] = [BPR, TWO_TOWER, EXPLICIT];

/// Whether the model learns from the presence of interactions or from
/// their ratings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Implicit,
    Explicit,
}

impl Task {
    pub fn of(architecture: &str) -> Self {
        if architecture == EXPLICIT { Task::Explicit } else { Task::Implicit }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecConfig {
    pub dim: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub init_std: f32,
    /// BPR: negatives sampled per positive.
    pub negatives: usize,
    /// BPR: uniform draws per negative, the highest-scored kept (1: uniform sampling).
    pub candidates: usize,
    pub patience: Option<usize>,
    pub eval_every: usize,
    pub seed: u64,
}

impl Default for RecConfig {
    fn default() -> Self {
        Self {
            dim: 64,
            epochs: 300,
            batch_size: 2048,
            learning_rate: 1e-3,
            l2: 0.0,
            init_std: 0.01,
            negatives: 1,
            candidates: 4,
            patience: Some(20),
            eval_every: 1,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecTrainRequest {
    pub data: PathBuf,
    pub out: PathBuf,
    pub architecture: String,
    pub config: RecConfig,
    pub split: SplitSpec,
    pub split_seed: u64,
    /// Fine-tuning: the earlier version to warm-start from.
    pub base: Option<PathBuf>,
    /// Distillation: the teacher's folder, and how.
    pub teacher: Option<PathBuf>,
    pub distill: DistillSpec,
}

/// The data read, split and indexed for training and evaluation.
pub struct Prepared {
    pub data: Interactions,
    pub split: Split,
    pub train: UserItems,
    pub val: UserItems,
    pub test: UserItems,
    /// Training and validation items: what is masked when testing.
    pub train_val: UserItems,
    pub popularity: Popularity,
    pub protocol: Protocol,
}

impl Prepared {
    pub fn load(path: &Path, spec: SplitSpec, seed: u64) -> Result<Self> {
        let data = Interactions::load(path)?;
        let split = Split::recbole(&data, spec, seed);
        if split.test.is_empty() {
            return Err(invalid(
                path,
                format!(
                    "nothing to evaluate: {} users, none with more than one interaction, so no user has an interaction to hold out \
                     and rank; give each user at least two interactions (ten or more make a meaningful test)",
                    data.n_users()
                ),
            ));
        }
        let train = UserItems::new(&data, &[&split.train]);
        let popularity = Popularity::new(&train, data.n_items());
        Ok(Self {
            val: UserItems::new(&data, &[&split.val]),
            test: UserItems::new(&data, &[&split.test]),
            train_val: UserItems::new(&data, &[&split.train, &split.val]),
            train,
            popularity,
            protocol: Protocol::recbole(spec, seed),
            split,
            data,
        })
    }

    fn triples(&self, part: &[usize]) -> Vec<(u32, u32, f32)> {
        part.iter().map(|&i| self.data.rows[i]).map(|r| (r.user, r.item, r.rating)).collect()
    }

    fn pairs(&self, part: &[usize]) -> Vec<(u32, u32)> {
        part.iter().map(|&i| self.data.rows[i]).map(|r| (r.user, r.item)).collect()
    }

    /// Ranks the test split (training and validation items masked).
    pub fn test_ranking(&self, scorer: &dyn super::metrics::Scorer) -> Result<Ranking> {
        evaluate(scorer, &self.test, &self.train_val, &self.popularity.counts, &KS)
    }

    fn val_metrics(&self, f: &Factors) -> Result<Option<Metrics>> {
        if self.split.val.is_empty() {
            return Ok(None);
        }
        let r = evaluate(f, &self.val, &self.train, &self.popularity.counts, &[10])?;
        let a = r.at(10).ok_or_else(|| MlError::Incompatible("no metrics at 10".into()))?;
        Ok(Some(Metrics::from([("ndcg@10".to_owned(), a.ndcg), ("mrr@10".to_owned(), a.mrr), ("recall@10".to_owned(), a.recall)])))
    }
}

/// A factor model in training, with the best epoch's copy.
struct Run<'a, S> {
    prepared: &'a Prepared,
    /// A distillation's teacher.
    teacher: Option<(&'a Teacher, DistillSpec)>,
    factors: Factors,
    /// The best epoch's factors (and towers).
    best: Option<(Factors, Option<Towers>)>,
    step: S,
    rng: ChaCha8Rng,
    lr: f32,
    val_ratings: Vec<(u32, u32, f32)>,
}

impl EpochModel for Run<'_, Bpr> {
    fn epoch(&mut self, _epoch: usize) -> Result<(f64, usize)> {
        let Some((teacher, spec)) = self.teacher else {
            let loss = self.step.epoch(&mut self.factors, &self.prepared.train, &mut self.rng);
            return Ok((loss, self.step.pairs.len()));
        };
        self.step.weight = spec.alpha;
        let data = if spec.alpha > 0.0 { self.step.epoch(&mut self.factors, &self.prepared.train, &mut self.rng) } else { 0.0 };
        let kd = teacher_epoch(&mut self.step, &mut self.factors, teacher, &self.prepared.train, &spec, 1.0 - spec.alpha, &mut self.rng);
        Ok((f64::from(spec.alpha) * data + f64::from(1.0 - spec.alpha) * kd, self.step.pairs.len()))
    }
    fn validate(&mut self) -> Result<Option<Metrics>> {
        self.prepared.val_metrics(&self.factors)
    }
    fn lr(&self) -> f64 {
        f64::from(self.lr)
    }
    fn keep_best(&mut self) {
        self.best = Some((self.factors.clone(), self.step.towers.as_ref().map(|t| t.towers.clone())));
    }
    fn restore_best(&mut self) {
        if let Some((factors, towers)) = self.best.take() {
            self.factors = factors;
            if let (Some(step), Some(towers)) = (&mut self.step.towers, towers) {
                step.towers = towers;
            }
        }
    }
}

impl EpochModel for Run<'_, Explicit> {
    fn epoch(&mut self, _epoch: usize) -> Result<(f64, usize)> {
        let loss = self.step.epoch(&mut self.factors, &mut self.rng);
        Ok((loss, self.step.triples.len()))
    }
    fn validate(&mut self) -> Result<Option<Metrics>> {
        if self.val_ratings.is_empty() {
            return Ok(None);
        }
        let e = errors(|u, i| self.factors.predict(u, i), &self.val_ratings);
        Ok(Some(Metrics::from([("rmse".to_owned(), e.rmse), ("mae".to_owned(), e.mae)])))
    }
    fn lr(&self) -> f64 {
        f64::from(self.lr)
    }
    fn keep_best(&mut self) {
        self.best = Some((self.factors.clone(), None));
    }
    fn restore_best(&mut self) {
        if let Some((factors, _)) = self.best.take() {
            self.factors = factors;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetSummary {
    pub file: String,
    pub sha256: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub duplicates: usize,
    pub density: f64,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    /// Feature columns (a two-tower model learns from them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_features: Vec<String>,
}

/// Speed of answering, measured on the trained model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Speed {
    /// Top-10 for one user over the whole catalogue.
    pub top10_ms: f64,
    pub top10_p95_ms: f64,
    pub top10_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecReport {
    pub task: Task,
    pub architecture: String,
    pub dataset: DatasetSummary,
    pub protocol: Protocol,
    pub config: RecConfig,
    pub training: Outcome,
    pub test: Ranking,
    /// The popularity baseline on the same test split.
    pub popularity: Ranking,
    /// Held-out rating errors (explicit models), with the global mean's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratings: Option<RatingReport>,
    pub speed: Speed,
    pub parameters: usize,
    pub artifact_bytes: u64,
    pub warnings: Vec<String>,
    /// Fine-tuning from an earlier version: who kept their factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStart>,
    /// Teacher, student and the student trained alone, on the same test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distillation: Option<RecDistillation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WarmStart {
    pub base_users: usize,
    pub base_items: usize,
    /// Users and items of this data the base knew (they start from its factors).
    pub known_users: usize,
    pub known_items: usize,
    /// Newcomers (fresh factors).
    pub new_users: usize,
    pub new_items: usize,
}

/// One model of a distillation's comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecComparison {
    pub role: String,
    pub architecture: String,
    pub dim: usize,
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub parameters: usize,
    pub size_bytes: u64,
    pub top10_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecDistillation {
    pub spec: DistillSpec,
    pub teacher: RecComparison,
    pub student: RecComparison,
    pub student_alone: RecComparison,
    /// The student's NDCG@10 as a share of the teacher's.
    pub retained: f64,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RatingReport {
    pub model: RatingErrors,
    /// Predicting the training mean for every rating.
    pub global_mean: RatingErrors,
}

fn summary(p: &Prepared) -> DatasetSummary {
    let d = &p.data;
    DatasetSummary {
        file: d.file.clone(),
        sha256: d.sha256.clone(),
        users: d.n_users(),
        items: d.n_items(),
        interactions: d.rows.len(),
        duplicates: d.duplicates,
        density: d.rows.len() as f64 / (d.n_users() as f64 * d.n_items() as f64).max(1.0),
        train: p.split.train.len(),
        validation: p.split.val.len(),
        test: p.split.test.len(),
        user_features: d.user_features.columns.clone(),
        item_features: d.item_features.columns.clone(),
    }
}

/// Where training starts: fresh, warm-started, or a student.
pub struct Start {
    pub factors: Factors,
    /// A two-tower model's towers (the factors are their outputs).
    pub towers: Option<Towers>,
    pub rng: ChaCha8Rng,
}

/// A trained model's parameters and how training went.
pub struct Fitted {
    pub factors: Factors,
    pub towers: Option<Towers>,
    pub outcome: Outcome,
}

/// Trains `architecture` from scratch on prepared data.
pub fn train_factors(p: &Prepared, architecture: &str, cfg: &RecConfig, control: Control<'_>) -> Result<Fitted> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let start = if architecture == TWO_TOWER {
        let towers = Towers::fresh(&p.data, cfg.dim, cfg.init_std, &mut rng)?;
        Start { factors: towers.factors(), towers: Some(towers), rng }
    } else {
        let factors = Factors::normal(p.data.n_users(), p.data.n_items(), cfg.dim, cfg.init_std, &mut rng)?;
        Start { factors, towers: None, rng }
    };
    fit_factors(p, architecture, cfg, start, None, control)
}

/// Trains from where `start` is.
pub fn fit_factors(
    p: &Prepared,
    architecture: &str,
    cfg: &RecConfig,
    start: Start,
    teacher: Option<(&Teacher, DistillSpec)>,
    control: Control<'_>,
) -> Result<Fitted> {
    let loop_cfg = LoopConfig { epochs: cfg.epochs, patience: cfg.patience, eval_every: cfg.eval_every };
    let Start { mut factors, towers, rng } = start;
    match Task::of(architecture) {
        Task::Implicit => {
            let mut step =
                Bpr::new(&factors, p.pairs(&p.split.train), cfg.batch_size, cfg.learning_rate, cfg.l2, cfg.negatives, cfg.candidates);
            step.towers = towers.map(|t| TowerStep::new(t, cfg.learning_rate));
            let mut run = Run { prepared: p, teacher, factors, best: None, step, rng, lr: cfg.learning_rate, val_ratings: Vec::new() };
            let outcome = fit(&mut run, loop_cfg, ("ndcg@10", Goal::Maximize), control)?;
            Ok(Fitted { factors: run.factors, towers: run.step.towers.map(|t| t.towers), outcome })
        }
        Task::Explicit => {
            let triples = p.triples(&p.split.train);
            if factors.global == 0.0 {
                factors.global = (triples.iter().map(|t| f64::from(t.2)).sum::<f64>() / triples.len().max(1) as f64) as f32;
            }
            let step = Explicit::new(&factors, triples, cfg.batch_size, cfg.learning_rate, cfg.l2);
            let val_ratings = p.triples(&p.split.val);
            let mut run = Run { prepared: p, teacher: None, factors, best: None, step, rng, lr: cfg.learning_rate, val_ratings };
            let outcome = fit(&mut run, loop_cfg, ("rmse", Goal::Minimize), control)?;
            Ok(Fitted { factors: run.factors, towers: None, outcome })
        }
    }
}

/// Top-10 latency for single users over the whole catalogue.
pub fn measure_speed(model: &RecModel, users: usize) -> Speed {
    let n = users.clamp(1, 200).min(model.users.len().max(1));
    let mut times = Vec::with_capacity(n);
    for u in 0..n {
        let id = model.users.get(u).cloned().unwrap_or_default();
        let start = Instant::now();
        let _ = model.recommend(&id, 10, true, None);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / n as f64;
    times.sort_by(f64::total_cmp);
    let p95 = times[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
    Speed { top10_ms: mean, top10_p95_ms: p95, top10_per_s: 1000.0 / mean.max(1e-9) }
}

pub fn train(req: &RecTrainRequest, control: Control<'_>) -> Result<RecReport> {
    let task = Task::of(&req.architecture);
    let p = Prepared::load(&req.data, req.split, req.split_seed)?;
    if task == Task::Explicit && !p.data.has_rating {
        return Err(invalid(
            &req.data,
            format!("{EXPLICIT} learns ratings and the file has no rating column; add one (user_id,item_id,rating) or train {BPR}"),
        ));
    }
    let mut warnings = Vec::new();
    if p.data.duplicates > 0 {
        warnings.push(format!("{} rows repeated an earlier user–item pair; each pair counts once (its last rating)", p.data.duplicates));
    }
    if p.split.val.is_empty() {
        warnings.push("no validation split: the last epoch is kept".into());
    }
    if req.architecture == TWO_TOWER && p.data.user_features.is_empty() && p.data.item_features.is_empty() {
        warnings.push(format!(
            "the file has no feature columns (user_… or item_…, e.g. item_genres), so the towers hold only ids and {TWO_TOWER} \
             learns what {BPR} does; add features to the file or train {BPR}"
        ));
    }
    let Control { on_event, cancel, .. } = control;
    let control = Control { on_event, cancel, checkpoint_dir: None, resume: false };
    let (fitted, warm_start, teacher) = if let Some(dir) = &req.teacher {
        let (fitted, teacher) = distil(&p, req, dir, control)?;
        (fitted, None, Some(teacher))
    } else if let Some(dir) = &req.base {
        let (fitted, warm) = warm_start(&p, req, dir, control)?;
        (fitted, Some(warm), None)
    } else {
        (train_factors(&p, &req.architecture, &req.config, control)?, None, None)
    };
    let Fitted { factors, towers, outcome: training } = fitted;
    let test = p.test_ranking(&factors)?;
    let popularity = p.test_ranking(&p.popularity)?;
    let ratings = (task == Task::Explicit).then(|| {
        let test_triples = p.triples(&p.split.test);
        let model = errors(|u, i| factors.predict(u, i), &test_triples);
        let global_mean = errors(|_, _| factors.global, &test_triples);
        RatingReport { model, global_mean }
    });
    let seen = UserItems::new(&p.data, &[&p.split.train, &p.split.val, &p.split.test]);
    let model = RecModel {
        architecture: req.architecture.clone(),
        task,
        users: p.data.users.clone(),
        items: p.data.items.clone(),
        factors,
        popularity: p.popularity.clone(),
        seen,
        towers,
        index: Default::default(),
    }
    .indexed();
    let parameters = model.parameters();
    let speed = measure_speed(&model, 200);
    let distillation = match teacher {
        Some(t) => {
            let mut quiet = |_: crate::train::Event<'_>| {};
            let quiet = Control { on_event: &mut quiet, cancel, checkpoint_dir: None, resume: false };
            let alone = train_factors(&p, BPR, &req.config, quiet)?;
            Some(compare(&p, &t, &model, alone.factors, &req.distill)?)
        }
        None => None,
    };
    let mut report = RecReport {
        task,
        architecture: req.architecture.clone(),
        dataset: summary(&p),
        protocol: p.protocol.clone(),
        config: req.config.clone(),
        training,
        test,
        popularity,
        ratings,
        speed,
        parameters,
        artifact_bytes: 0,
        warnings,
        warm_start,
        distillation,
    };
    report.artifact_bytes = save_model(&req.out, &model, &report, &req.split, req.split_seed)?;
    if let Some(d) = &mut report.distillation {
        d.student.size_bytes = report.artifact_bytes;
        d.student_alone.size_bytes = report.artifact_bytes;
    }
    Ok(report)
}

/// A loaded teacher and its size on disk.
struct LoadedTeacher {
    model: RecModel,
    size_bytes: u64,
}

fn distil(p: &Prepared, req: &RecTrainRequest, dir: &Path, control: Control<'_>) -> Result<(Fitted, LoadedTeacher)> {
    let model = RecModel::load(dir)?;
    if model.task != Task::Implicit {
        return Err(MlError::Incompatible(format!(
            "the teacher is a {} model; distil from a {BPR} or {TWO_TOWER} teacher",
            model.architecture
        )));
    }
    if model.users != p.data.users || model.items != p.data.items {
        return Err(MlError::Incompatible(
            "the teacher was trained on other data (its users and items differ); distil on the dataset the teacher was trained on".into(),
        ));
    }
    let teacher = Teacher::new(model.factors.clone(), &p.train, req.distill.top_k)?;
    let mut rng = ChaCha8Rng::seed_from_u64(req.config.seed);
    let factors = Factors::normal(p.data.n_users(), p.data.n_items(), req.config.dim, req.config.init_std, &mut rng)?;
    let student = Start { factors, towers: None, rng };
    let fitted = fit_factors(p, BPR, &req.config, student, Some((&teacher, req.distill)), control)?;
    Ok((fitted, LoadedTeacher { model, size_bytes: crate::artifact::size_on_disk(dir) }))
}

fn comparison(p: &Prepared, role: &str, model: &RecModel, size_bytes: u64) -> Result<RecComparison> {
    let ranking = p.test_ranking(&model.factors)?;
    Ok(RecComparison {
        role: role.into(),
        architecture: model.architecture.clone(),
        dim: model.factors.dim,
        ndcg_at_10: ranking.ndcg10(),
        recall_at_10: ranking.at(10).map_or(0.0, |a| a.recall),
        parameters: model.parameters(),
        size_bytes,
        top10_ms: measure_speed(model, 200).top10_ms,
    })
}

fn compare(p: &Prepared, teacher: &LoadedTeacher, student: &RecModel, alone: Factors, spec: &DistillSpec) -> Result<RecDistillation> {
    let t = comparison(p, "teacher", &teacher.model, teacher.size_bytes)?;
    let s = comparison(p, "student", student, 0)?;
    let alone_model = RecModel { factors: alone, ..student.clone() };
    let a = comparison(p, "student_alone", &alone_model, 0)?;
    let retained = s.ndcg_at_10 / t.ndcg_at_10.max(1e-12);
    let verdict = format!(
        "the {}-factor student keeps {:.1}% of the {}-factor teacher's NDCG@10 ({:.4} against {:.4}) with {:.1}× fewer parameters; \
         trained alone it reaches {:.4}, so distillation {}",
        s.dim,
        retained * 100.0,
        t.dim,
        s.ndcg_at_10,
        t.ndcg_at_10,
        t.parameters as f64 / s.parameters.max(1) as f64,
        a.ndcg_at_10,
        if s.ndcg_at_10 > a.ndcg_at_10 { "helped" } else { "did not help" }
    );
    Ok(RecDistillation { spec: *spec, teacher: t, student: s, student_alone: a, retained, verdict })
}

fn warm_start(p: &Prepared, req: &RecTrainRequest, dir: &Path, control: Control<'_>) -> Result<(Fitted, WarmStart)> {
    let base = RecModel::load(dir)?;
    if base.task != Task::of(&req.architecture) || (base.architecture == TWO_TOWER) != (req.architecture == TWO_TOWER) {
        return Err(MlError::Incompatible(format!("the base is a {} model; fine-tune it as {}", base.architecture, base.architecture)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(req.config.seed);
    let (d, b) = (&p.data, &base.factors);
    // Everyone starts fresh; then whoever the base knew takes its values back.
    let mut f = Factors::normal(d.n_users(), d.n_items(), b.dim, req.config.init_std, &mut rng)?;
    f.global = b.global;
    let known_users = keep_known(&mut f.users, &d.users, &b.users, &base.users, b.dim);
    let known_items = keep_known(&mut f.items, &d.items, &b.items, &base.items, b.dim);
    keep_known(&mut f.user_bias, &d.users, &b.user_bias, &base.users, 1);
    keep_known(&mut f.item_bias, &d.items, &b.item_bias, &base.items, 1);
    // A two-tower base: the factors above are its outputs; what it learnt
    // is its id and token embeddings.
    let towers = match &base.towers {
        Some(t) => {
            let mut towers = Towers::fresh(d, b.dim, req.config.init_std, &mut rng)?;
            towers.users.keep_known(&d.users, &t.users, &base.users);
            towers.items.keep_known(&d.items, &t.items, &base.items);
            f = towers.factors();
            Some(towers)
        }
        None => None,
    };
    let warm = WarmStart {
        base_users: base.users.len(),
        base_items: base.items.len(),
        known_users,
        known_items,
        new_users: d.n_users() - known_users,
        new_items: d.n_items() - known_items,
    };
    let cfg = RecConfig { dim: b.dim, ..req.config.clone() };
    let fitted = fit_factors(p, &base.architecture, &cfg, Start { factors: f, towers, rng }, None, control)?;
    Ok((fitted, warm))
}
