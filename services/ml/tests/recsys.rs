//! The recommendation family through the family seam, on MovieLens-100k
//! (RecBole 1.2.1's copy, from its PyPI wheel by `scripts/fixtures`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tenfold_domain::{FamilyPlan, JobKind};
use tenfold_ml::Device;
use tenfold_ml::family::{ModelFamily, Registry, ServeInput, TrainJob, Trained};
use tenfold_ml::recsys::RecommendationFamily;
use tenfold_ml::recsys::model::RecModel;
use tenfold_ml::recsys::train::RecReport;
use tenfold_ml::train::Control;
use tenfold_ml::{MlError, Result};

/// RecBole's published BPR test result on ml-100k (Recall, NDCG, MRR, Hit,
/// Precision at 10), the bar the issue sets.
const RECBOLE_BPR: [(&str, f64); 5] =
    [("recall@10", 0.2523), ("ndcg@10", 0.2920), ("mrr@10", 0.4855), ("hit@10", 0.7953), ("precision@10", 0.1962)];

fn movielens() -> PathBuf {
    common::fixture("ml-100k.csv")
}

fn train(data: &Path, out: &Path, arch: &str, params: Value) -> Result<Trained> {
    run(JobKind::FineTune, data, out, arch, params, None, None)
}

fn run(kind: JobKind, data: &Path, out: &Path, arch: &str, params: Value, base: Option<&Path>, teacher: Option<&Path>) -> Result<Trained> {
    let family = RecommendationFamily::new();
    let given: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    let hyperparameters = family.normalise(&given).map_err(|e| MlError::arg("hyperparameters", format!("{e:?}")))?;
    let job =
        TrainJob { kind, data, out, architecture: Some(arch), hyperparameters: &hyperparameters, base, teacher, device: &Device::Cpu };
    let mut quiet = |_: tenfold_ml::train::Event<'_>| {};
    family.train(&job, Control { on_event: &mut quiet, cancel: None, checkpoint_dir: None, resume: false })
}

fn report(dir: &Path) -> RecReport {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn must_show_bpr_reaches_recbole_published_bpr_on_ml_100k_over_three_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut means = [0f64; 5];
    let mut popularity = 0f64;
    for seed in 0..3u64 {
        let out = dir.path().join(format!("bpr-{seed}"));
        let trained = train(&movielens(), &out, "bpr-mf", json!({ "seed": 42 + seed, "splitSeed": 2020 + seed })).unwrap();
        let r = report(&out);
        let at10 = r.test.at(10).unwrap();
        for (m, v) in means.iter_mut().zip([at10.recall, at10.ndcg, at10.mrr, at10.hit, at10.precision]) {
            *m += v / 3.0;
        }
        popularity += r.popularity.ndcg10() / 3.0;
        // RecBole's protocol, stored: 943 users, 1682 items, 80/10/10 per user.
        assert_eq!((r.dataset.users, r.dataset.items, r.dataset.interactions), (943, 1682, 100_000));
        assert_eq!((r.dataset.train, r.dataset.validation, r.dataset.test), (80_808, 9_596, 9_596));
        assert_eq!(r.protocol.split, "80/10/10");
        assert_eq!(r.test.users, 943);
        assert_eq!(trained.summary["ndcg@10"].as_f64().unwrap(), at10.ndcg);
        writeln_metrics(seed, &r);
    }
    for ((name, published), ours) in RECBOLE_BPR.iter().zip(means) {
        assert!(ours >= *published, "BPR {name} averaged over 3 seeds is {ours:.4}; RecBole's published BPR has {published}");
    }
    // The baseline every report carries is far below (the issue measured 0.131).
    assert!((0.12..0.15).contains(&popularity), "popularity NDCG@10 {popularity}");
    assert!(means[1] > popularity * 2.0);
}

fn writeln_metrics(seed: u64, r: &RecReport) {
    use std::io::Write;
    let a = r.test.at(10).unwrap();
    let _ = writeln!(
        std::io::stdout(),
        "seed {seed}: best epoch {:?} of {}: recall@10 {:.4} ndcg@10 {:.4} mrr@10 {:.4} hit@10 {:.4} precision@10 {:.4}; popularity ndcg@10 {:.4}",
        r.training.best_epoch,
        r.training.history.len(),
        a.recall,
        a.ndcg,
        a.mrr,
        a.hit,
        a.precision,
        r.popularity.ndcg10()
    );
}

#[test]
fn explicit_mf_predicts_held_out_ratings_better_than_the_mean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mf");
    train(&movielens(), &out, "mf-explicit", json!({})).unwrap();
    let r = report(&out);
    let ratings = r.ratings.as_ref().unwrap();
    assert!(ratings.model.rmse < 0.95, "RMSE {}", ratings.model.rmse);
    assert!(ratings.model.rmse < ratings.global_mean.rmse - 0.15, "{ratings:?}");
    assert_eq!(ratings.model.ratings, 9_596);
    // The report shows the rating errors beside the mean's.
    let m = RecommendationFamily::new().model_report(&std::fs::read(out.join("report.json")).unwrap(), 0).unwrap();
    assert!(m.metric("rmse").is_some_and(|x| !x.higher_is_better));
    assert!(m.baselines.iter().any(|b| b.kind == "global_mean" && b.beaten == Some(true)), "{:?}", m.baselines);
}

#[test]
fn a_trained_model_serves_known_and_unknown_users_and_similar_items() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bpr");
    train(&movielens(), &out, "bpr-mf", json!({ "epochs": 20, "evalEvery": 5 })).unwrap();
    let model = RecModel::load(&out).unwrap();
    // User "196" (the file's first) has seen items; excludeSeen leaves them out.
    let seen: Vec<String> =
        model.seen.of(model.user_index("196").unwrap() as usize).iter().map(|&i| model.items[i as usize].clone()).collect();
    let top = model.recommend("196", 20, true, None).unwrap();
    assert!(!top.cold_start);
    assert_eq!(top.item_list.len(), 20);
    assert!(top.item_list.iter().all(|s| !seen.contains(&s.item_id)));
    assert!(top.item_list.windows(2).all(|w| w[0].score >= w[1].score));
    let with_seen = model.recommend("196", 20, false, None).unwrap();
    assert!(with_seen.item_list.iter().any(|s| seen.contains(&s.item_id)), "a known user's favourites include what they saw");
    // A filter: only some items, or not these.
    let only = ["50", "100", "181"];
    let filter = serde_json::from_value(json!({ "includeItemIds": only, "excludeItemIds": ["100"] })).unwrap();
    let filtered = model.recommend("unknown-user", 10, true, Some(&filter)).unwrap();
    let ids: Vec<&str> = filtered.item_list.iter().map(|s| s.item_id.as_str()).collect();
    assert!(ids.iter().all(|i| ["50", "181"].contains(i)) && ids.len() == 2, "{ids:?}");
    // An unknown user gets the most popular items, flagged as a cold start.
    let cold = model.recommend("no-such-user", 5, true, None).unwrap();
    assert!(cold.cold_start);
    let mut by_count: Vec<(u32, usize)> = model.popularity.counts.iter().copied().zip(0..).collect();
    by_count.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let expected: Vec<String> = by_count[..5].iter().map(|&(_, i)| model.items[i].clone()).collect();
    assert_eq!(cold.item_list.iter().map(|s| s.item_id.clone()).collect::<Vec<_>>(), expected);
    // Similar items: not the item itself, most similar first.
    let similar = model.similar("50", 5).unwrap();
    assert_eq!(similar.len(), 5);
    assert!(similar.iter().all(|s| s.item_id != "50" && s.score <= 1.0001));
    assert!(model.similar("no-such-item", 5).unwrap_err().to_string().contains("no-such-item"));

    // The same through the family's serving seam, with its errors.
    let served = Registry::standard().get(tenfold_domain::Family::Recommendation).unwrap().load_for_serving(&out, &Device::Cpu).unwrap();
    let answers = served
        .predict(&[
            ServeInput::Json(json!({ "userId": "196", "numResults": 3 })),
            ServeInput::Json(json!({ "itemId": "50", "numResults": 2 })),
        ])
        .unwrap();
    assert_eq!(answers[0]["itemList"].as_array().unwrap().len(), 3);
    assert_eq!(answers[0]["coldStart"], false);
    assert_eq!(answers[1]["itemList"].as_array().unwrap().len(), 2);
    for (bad, words) in [
        (json!({ "userId": "196", "numResults": 0 }), "numResults"),
        (json!({ "userId": "196", "numResults": 100000 }), "1 to 500"),
        (json!({ "userId": "196", "itemId": "50" }), "not both"),
        (json!({ "user": "196" }), "unknown field"),
    ] {
        let e = served.predict(&[ServeInput::Json(bad.clone())]).unwrap_err().to_string();
        assert!(e.contains(words), "{bad}: {e}");
    }
}

#[test]
fn evaluating_on_the_training_file_reproduces_the_test_split_and_other_files_are_ranked_as_held_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bpr");
    train(&movielens(), &out, "bpr-mf", json!({ "epochs": 10, "evalEvery": 5 })).unwrap();
    let r = report(&out);
    let family = RecommendationFamily::new();
    let same = family.evaluate(&out, &movielens(), &Device::Cpu).unwrap();
    assert_eq!(same.summary["split"], "test");
    assert!((same.summary["ndcg@10"].as_f64().unwrap() - r.test.ndcg10()).abs() < 1e-9);
    // Another file: two known users' unseen items, an unknown user, an unknown item.
    let model = RecModel::load(&out).unwrap();
    let unseen = (0..model.items.len() as u32).find(|&i| !model.seen.contains(0, i)).unwrap();
    let other = write(
        dir.path(),
        "later.csv",
        &format!("user_id,item_id\n{},{}\nnobody,50\n{},no-such-item\n", model.users[0], model.items[unseen as usize], model.users[0]),
    );
    let later = family.evaluate(&out, &other, &Device::Cpu).unwrap();
    assert_eq!(later.summary["split"], "file");
    assert_eq!(later.report["evaluated_interactions"], 1);
    assert_eq!(later.report["unknown_user_interactions"], 1);
    assert_eq!(later.report["unknown_item_interactions"], 1);
}

#[test]
fn bad_data_is_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    // Every user has one interaction: nothing can be held out.
    let single = write(dir.path(), "single.csv", "user_id,item_id\n1,10\n2,11\n3,10\n");
    let e = train(&single, &out, "bpr-mf", json!({})).unwrap_err().to_string();
    assert!(e.contains("nothing to evaluate") && e.contains("at least two interactions"), "{e}");
    // Ratings that are not numbers, named with their place.
    let words = write(dir.path(), "words.csv", "user_id,item_id,rating\n1,10,5\n1,11,great\n");
    let e = train(&words, &out, "mf-explicit", json!({})).unwrap_err().to_string();
    assert!(e.contains("line 3, column 3") && e.contains("great"), "{e}");
    // An explicit model needs ratings.
    let implicit = write(dir.path(), "clicks.csv", "user_id,item_id\n1,10\n1,11\n1,12\n2,10\n2,12\n2,13\n");
    let e = train(&implicit, &out, "mf-explicit", json!({})).unwrap_err().to_string();
    assert!(e.contains("no rating column") && e.contains("bpr-mf"), "{e}");
    // Nothing was written for any of them.
    assert!(!out.exists());
}

/// A 128-factor teacher distilled into a 16-factor student: the student
/// keeps at least 95% of the teacher's NDCG@10, and the report compares it
/// with the same student trained on the data alone.
#[test]
fn must_show_a_16_factor_student_keeps_95_percent_of_a_128_factor_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher, student) = (dir.path().join("teacher"), dir.path().join("student"));
    train(&movielens(), &teacher, "bpr-mf", json!({ "embeddingSize": 128 })).unwrap();
    let trained = run(JobKind::Distill, &movielens(), &student, "bpr-mf", json!({}), None, Some(&teacher)).unwrap();
    let r = report(&student);
    let d = r.distillation.as_ref().unwrap();
    {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{}", d.verdict);
    }
    assert_eq!((d.teacher.dim, d.student.dim, d.student_alone.dim), (128, 16, 16));
    assert!(d.retained >= 0.95, "{}", d.verdict);
    assert!((d.student.ndcg_at_10 - r.test.ndcg10()).abs() < 1e-12);
    assert!(d.teacher.parameters > 7 * d.student.parameters);
    assert!(trained.text.contains("distillation"), "{}", trained.text);
    // The family-neutral report shows the three side by side.
    let m = RecommendationFamily::new().model_report(&std::fs::read(student.join("report.json")).unwrap(), 0).unwrap();
    let rows: Vec<&str> = m.distillation.as_ref().unwrap().models.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(rows, ["teacher", "student", "student_alone"]);
    assert!(m.baselines.iter().any(|b| b.kind == "student_alone"));
}

/// Fine-tuning warm-starts from an earlier version: users and items it
/// knew keep their factors as the starting point, newcomers get fresh ones.
#[test]
fn fine_tuning_warm_starts_known_users_and_items_and_adds_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let all = std::fs::read_to_string(movielens()).unwrap();
    let mut lines = all.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    // The first version knows users below 800; the second adds the rest.
    let early: Vec<&str> = rows.iter().copied().filter(|r| r.split(',').next().unwrap().parse::<u32>().unwrap() < 800).collect();
    let v1 = write(dir.path(), "v1.csv", &format!("{header}\n{}\n", early.join("\n")));
    let (base, tuned) = (dir.path().join("v1"), dir.path().join("v2"));
    train(&v1, &base, "bpr-mf", json!({ "epochs": 30, "embeddingSize": 32 })).unwrap();
    let base_model = RecModel::load(&base).unwrap();
    run(JobKind::FineTune, &movielens(), &tuned, "bpr-mf", json!({ "epochs": 1, "evalEvery": 1 }), Some(&base), None).unwrap();
    let r = report(&tuned);
    let w = r.warm_start.as_ref().unwrap();
    assert_eq!(w.base_users, base_model.users.len());
    assert_eq!(w.known_users + w.new_users, 943);
    assert_eq!(w.new_users, 943 - base_model.users.len());
    assert_eq!(w.known_items + w.new_items, 1682);
    // The base's dimension is kept, and one epoch from its factors ranks far
    // better than one epoch from scratch.
    let tuned_model = RecModel::load(&tuned).unwrap();
    assert_eq!(tuned_model.factors.dim, 32);
    let scratch = dir.path().join("scratch");
    train(&movielens(), &scratch, "bpr-mf", json!({ "epochs": 1, "embeddingSize": 32 })).unwrap();
    assert!(r.test.ndcg10() > report(&scratch).test.ndcg10() + 0.05, "{} vs {}", r.test.ndcg10(), report(&scratch).test.ndcg10());
}

/// The two-tower model on ml-100k with RecBole's user features (age,
/// gender, occupation) and item features (year, genres) as columns.
#[test]
fn two_tower_learns_from_user_and_item_features_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::fixture("ml-100k-features.csv");
    let out = dir.path().join("two-tower");
    train(&data, &out, "two-tower", json!({})).unwrap();
    let r = report(&out);
    assert_eq!(r.dataset.user_features, ["user_age", "user_gender", "user_occupation"]);
    assert_eq!(r.dataset.item_features, ["item_year", "item_genres"]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    writeln_metrics(0, &r);
    // The same split as BPR's test (seed 2020), and above RecBole's published BPR.
    assert_eq!((r.dataset.train, r.dataset.validation, r.dataset.test), (80_808, 9_596, 9_596));
    let ndcg = r.test.ndcg10();
    assert!(ndcg > 0.2920, "two-tower NDCG@10 {ndcg}; RecBole's published BPR has 0.2920");
    // The folder holds the towers and their vocabularies; the factors it
    // answers with are the towers' outputs.
    let model = RecModel::load(&out).unwrap();
    let towers = model.towers.as_ref().unwrap();
    assert_eq!(towers.factors(), model.factors);
    assert!(towers.items.table.vocabulary.contains(&"item_genres=Film-Noir".to_owned()));
    assert_eq!(towers.users.table.vocabulary.iter().filter(|t| t.starts_with("user_gender=")).count(), 2);
    assert_eq!(model.parameters(), r.parameters);
    assert!(r.parameters > (943 + 1682) * 64, "ids and tokens: {}", r.parameters);
    let top = model.recommend("196", 10, true, None).unwrap();
    assert_eq!(top.item_list.len(), 10);

    // Fine-tuning a two-tower version keeps its id and token embeddings.
    let tuned = dir.path().join("tuned");
    run(JobKind::FineTune, &data, &tuned, "two-tower", json!({ "epochs": 1 }), Some(&out), None).unwrap();
    let w = report(&tuned).warm_start.unwrap();
    assert_eq!((w.known_users, w.known_items, w.new_users, w.new_items), (943, 1682, 0, 0));
    assert!(report(&tuned).test.ndcg10() > ndcg - 0.02, "one more epoch from the base: {}", report(&tuned).test.ndcg10());

    // Without feature columns the towers hold ids only, and the report says so.
    let plain = dir.path().join("plain");
    train(&movielens(), &plain, "two-tower", json!({ "epochs": 1 })).unwrap();
    assert!(report(&plain).warnings.iter().any(|w| w.contains("no feature columns")), "{:?}", report(&plain).warnings);
}
