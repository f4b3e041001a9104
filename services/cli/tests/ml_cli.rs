//! `tenfold train | eval | predict` as a user runs them, on real MNIST
//! digits (from `scripts/fixtures`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tenfold() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenfold"))
}

fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("TENFOLD_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("tenfold/fixtures")
    });
    let path = dir.join(name);
    assert!(path.exists(), "fixtures missing in {}: run scripts/fixtures", dir.display());
    path
}

fn mnist() -> PathBuf {
    fixture("mnist-5k.zip")
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenfold-ml-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Copies one image of `class` out of the ZIP.
fn extract(zip: &Path, class: &str, to: &Path) -> PathBuf {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let name =
        archive.file_names().map(|n| n.unwrap().into_owned()).find(|n| n.starts_with(&format!("{class}/")) && n.ends_with(".png")).unwrap();
    let mut bytes = Vec::new();
    archive.by_name(&name).unwrap().read_to_end(&mut bytes).unwrap();
    let path = to.join(format!("digit-{class}.png"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The Keras reference (measured before this project): 0.95 test accuracy
/// after 10 epochs, batch 64, Adam 1e-3, on an 80/20 split of these digits.
#[test]
fn cnn_small_on_mnist_matches_keras_then_evaluates_and_predicts() {
    let dir = temp_dir();
    let model = dir.join("model");
    let out = tenfold()
        .args(["train", "--family", "image", "--arch", "cnn-small", "--epochs", "10", "--batch-size", "64", "--lr", "0.001"])
        .args(["--split", "80/0/20", "--data"])
        .arg(mnist())
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Not a terminal: plain progress lines, one per epoch.
    assert_eq!(stderr.lines().filter(|l| l.starts_with("epoch ") && l.contains("train_loss")).count(), 10, "{stderr}");
    assert!(stdout.contains("test accuracy"), "{stdout}");

    let report = json(&model.join("report.json"));
    let accuracy = report["evaluation"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.95, "cnn-small reached {accuracy} (Keras: 0.95)");
    assert_eq!(report["dataset"]["split"]["train"], 4000);
    assert_eq!(report["dataset"]["split"]["test"], 1000);
    assert_eq!(report["evaluation"]["metrics"]["confusion_matrix"].as_array().unwrap().len(), 10);
    for key in ["top_k", "per_class", "macro_f1", "weighted_f1", "ece"] {
        assert!(!report["evaluation"]["metrics"][key].is_null(), "report.json lacks {key}");
    }
    for key in ["batch_1_ms", "batch_64_ms"] {
        assert!(report["evaluation"]["latency_ms_per_image"][key].as_f64().unwrap() > 0.0);
    }
    let card = json(&model.join("model.json"));
    assert_eq!(card["family"], "image");
    assert_eq!(card["architecture"], "cnn-small");
    assert_eq!(card["classes"].as_array().unwrap().len(), 10);
    assert_eq!(card["preprocessing"]["channels"], 1);
    assert_eq!(card["dataset"]["sha256"].as_str().unwrap().len(), 64);

    // eval on the training file scores the held-out split only, the same way.
    let out = tenfold().args(["eval", "--model"]).arg(&model).arg("--data").arg(mnist()).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(eval["split"], "test");
    assert_eq!(eval["metrics"]["accuracy"].as_f64().unwrap(), accuracy);

    // predict: the top classes of real digits, best first.
    let images: Vec<PathBuf> = ["3", "7"].iter().map(|c| extract(&mnist(), c, &dir)).collect();
    let out = tenfold().args(["predict", "--json", "--top", "3", "--model"]).arg(&model).args(&images).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let predictions: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for (p, digit) in predictions.as_array().unwrap().iter().zip(["3", "7"]) {
        let top = p["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let probs: Vec<f64> = top.iter().map(|t| t[1].as_f64().unwrap()).collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-6);
        assert_eq!(top[0][0], digit, "{p}");
    }
    let out = tenfold().args(["predict", "--model"]).arg(&model).arg(model.join("model.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("not a PNG or JPEG image"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The recommendation family as the CLI names it: train BPR on
/// MovieLens-100k, evaluate it, recommend for a user (`--top`, `--json`),
/// an unknown user (cold start), and similar items.
#[test]
fn bpr_on_movielens_trains_evaluates_and_recommends() {
    let dir = temp_dir();
    let model = dir.join("bpr");
    let data = fixture("ml-100k.csv");
    let out = tenfold()
        .args(["train", "--family", "recommendation", "--arch", "bpr-mf", "--epochs", "15", "--param", "evalEvery=5", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("NDCG@10") && stdout.contains("popularity NDCG@10"), "{stdout}");
    let card = json(&model.join("model.json"));
    assert_eq!(card["family"], "recommendation");
    assert_eq!(card["preprocessing"]["items"], 1682);

    let eval = tenfold().args(["eval", "--model"]).arg(&model).arg("--data").arg(&data).output().unwrap();
    assert!(eval.status.success(), "{}", text(&eval).1);
    let evaluated: serde_json::Value = serde_json::from_str(&text(&eval).0).unwrap();
    assert_eq!(evaluated["split"], "test");
    assert_eq!(evaluated["ranking"]["users"], 943);

    let top = tenfold().args(["predict", "--model"]).arg(&model).args(["--user", "196", "--top", "4", "--json"]).output().unwrap();
    assert!(top.status.success(), "{}", text(&top).1);
    let answer: serde_json::Value = serde_json::from_str(&text(&top).0).unwrap();
    assert_eq!(answer["itemList"].as_array().unwrap().len(), 4);
    assert_eq!(answer["coldStart"], false);
    let cold = tenfold().args(["predict", "--model"]).arg(&model).args(["--user", "stranger", "--top", "3"]).output().unwrap();
    let (cold_out, _) = text(&cold);
    assert!(cold_out.starts_with("unknown user: the most popular items (cold start)"), "{cold_out}");
    assert_eq!(cold_out.lines().count(), 4);
    let similar = tenfold().args(["predict", "--model"]).arg(&model).args(["--similar-to", "50", "--top", "2"]).output().unwrap();
    assert_eq!(text(&similar).0.lines().count(), 2, "{}", text(&similar).1);
    // An image file is not a user.
    let wrong = tenfold().args(["predict", "--model"]).arg(&model).arg("digit.png").output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong).1.contains("--user"), "{}", text(&wrong).1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--arch two-tower` on MovieLens-100k with user and item feature columns:
/// the summary names them, the folder keeps the vocabularies, and the model
/// answers like any recommender.
#[test]
fn two_tower_trains_on_feature_columns_and_recommends() {
    let dir = temp_dir();
    let model = dir.join("two-tower");
    let out = tenfold()
        .args(["train", "--family", "recommendation", "--arch", "two-tower", "--epochs", "10", "--param", "evalEvery=5", "--data"])
        .arg(fixture("ml-100k-features.csv"))
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("NDCG@10") && !stdout.contains("warning"), "{stdout}");
    let card = json(&model.join("model.json"));
    assert_eq!(card["architecture"], "two-tower");
    assert_eq!(card["preprocessing"]["item_features"], serde_json::json!(["item_year", "item_genres"]));
    let features = json(&model.join("features.json"));
    assert!(features["items"]["vocabulary"].as_array().unwrap().iter().any(|t| t == "item_genres=Sci-Fi"));
    let top = tenfold().args(["predict", "--model"]).arg(&model).args(["--user", "196", "--top", "5", "--json"]).output().unwrap();
    assert!(top.status.success(), "{}", text(&top).1);
    let answer: serde_json::Value = serde_json::from_str(&text(&top).0).unwrap();
    assert_eq!(answer["itemList"].as_array().unwrap().len(), 5);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_arguments_exit_2_with_the_fix_and_write_nothing() {
    let dir = temp_dir();
    let not_a_dataset = dir.join("notes.zip");
    std::fs::write(&not_a_dataset, b"just text").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--arch", "cnn-small", "--lr", "abc"], "--lr: \"abc\" is not a number; use a number above 0 and at most 1, e.g. 0.001"),
        (&["--arch", "cnn-small", "--lr", "-0.5"], "--lr: -0.5 is out of range; use a number above 0 and at most 1"),
        (&["--arch", "cnn-small", "--lr", "0"], "--lr: 0 is out of range"),
        (&["--arch", "cnn-small", "--epochs", "-1"], "--epochs: -1 is out of range; use 1 to 1000"),
        (&["--arch", "cnn-small", "--epochs", "2", "--param", "learningRate=-1", "--param", "lr=1"], "--lr: -1 is out of range"),
        (&["--arch", "cnn-small", "--param", "lr=1"], "\"lr\" is not a hyperparameter of IMAGE_CLASSIFICATION"),
        (
            &["--arch", "vgg-19"],
            "--arch: unknown architecture \"vgg-19\" for IMAGE_CLASSIFICATION; choose one of cnn-small, resnet-s, cnn-tiny",
        ),
        (&["--arch", "cnn-small", "--split", "90/20/0"], "add up to 100"),
        (&["--arch", "cnn-small", "--teacher", "/nonexistent", "--alpha", "2"], "--alpha: 2 is out of range; use 0 to 1"),
        (&["--arch", "cnn-small", "--teacher", "/nonexistent"], "/nonexistent is not a usable model: it is not a directory"),
    ];
    let out_dir = dir.join("out");
    for (args, needle) in cases {
        let out =
            tenfold().args(["train", "--family", "image", "--data"]).arg(mnist()).arg("--out").arg(&out_dir).args(*args).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in {stderr}");
        assert!(!out_dir.join("model.json").exists());
    }
    let out = tenfold()
        .args(["train", "--family", "image", "--arch", "cnn-small", "--data"])
        .arg(&not_a_dataset)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is not a usable image dataset: archive: the file is not a readable ZIP archive"), "{}", text(&out).1);
    let out = tenfold()
        .args(["train", "--family", "recommendation", "--arch", "bpr-mf", "--data"])
        .arg(mnist())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is not a usable recommendation dataset") && text(&out).1.contains(".csv or .tsv"), "{}", text(&out).1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The acceptance runs, ~8 minutes on 2 cores: ignored in the quick
/// pass, run by `.ci/run`'s second pass (`--run-ignored all`). `resnet-s`
/// with augmentation must reach 97%; a `cnn-tiny` student distilled from it
/// must have ≤ 1/10 of its parameters, keep ≥ 97% of its accuracy and be
/// ≥ 3× faster per image, and the report must say whether it beat the same
/// student trained without the teacher.
#[test]
#[ignore = "slow: run with --run-ignored all (CI's second pass)"]
fn must_show_resnet_s_and_distillation_on_mnist() {
    let dir = temp_dir();
    let teacher = dir.join("resnet");
    let out = tenfold()
        .args(["train", "--family", "image", "--arch", "resnet-s", "--epochs", "12", "--schedule", "cosine", "--lr", "0.002"])
        .args(["--augment", "crop", "--data"])
        .arg(mnist())
        .arg("--out")
        .arg(&teacher)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let report = json(&teacher.join("report.json"));
    let teacher_acc = report["evaluation"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(teacher_acc >= 0.97, "resnet-s reached {teacher_acc}");
    assert_eq!(report["augment"]["crop"], true);

    let student = dir.join("student");
    let out = tenfold()
        .args(["train", "--family", "image", "--arch", "cnn-tiny", "--teacher"])
        .arg(&teacher)
        .args(["--alpha", "0.5", "--temperature", "4", "--epochs", "12", "--lr", "0.003", "--schedule", "cosine", "--data"])
        .arg(mnist())
        .arg("--out")
        .arg(&student)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("distillation: the student keeps"), "{stdout}");
    let d = json(&student.join("report.json"))["distillation"].clone();
    assert_eq!(d["teacher"]["accuracy"].as_f64().unwrap(), teacher_acc, "the teacher is scored on the same test split");
    assert!(d["parameter_ratio"].as_f64().unwrap() <= 0.1, "{d}");
    assert!(d["accuracy_retained"].as_f64().unwrap() >= 0.97, "{d}");
    assert!(d["speedup_batch_1"].as_f64().unwrap() >= 3.0, "{d}");
    let (s, b) = (d["student"]["accuracy"].as_f64().unwrap(), d["baseline"]["accuracy"].as_f64().unwrap());
    assert_eq!(d["beats_baseline"].as_bool().unwrap(), s > b, "{d}");
    assert!(d["verdict"].as_str().unwrap().contains(if s > b { "distillation beat" } else { "not beat" }) || s == b, "{d}");
    std::fs::remove_dir_all(dir).unwrap();
}
