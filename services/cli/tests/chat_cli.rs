//! `tenfold train | eval | predict` for the chat family, on a slice of the
//! real chatterbot corpus and the real all-MiniLM-L6-v2 (both from
//! `scripts/fixtures`). The full-corpus accuracy is `tenfold-ml`'s must-show.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    assert!(path.exists(), "fixture {name} missing in {}: run scripts/fixtures", dir.display());
    path
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The chatterbot rows of a few intents, as an intent table.
fn slice(dir: &Path, intents: &[&str]) -> PathBuf {
    let mut reader = csv::Reader::from_path(fixture("chatterbot-en-intents.csv")).unwrap();
    let path = dir.join("slice.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(["text", "intent", "response"]).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        if intents.contains(&&record[1]) {
            writer.write_record(&record).unwrap();
        }
    }
    writer.flush().unwrap();
    path
}

fn train(data: &Path, out: &Path, base: Option<&Path>) -> Output {
    let mut cmd = tenfold();
    cmd.args(["train", "--family", "chat", "--epochs", "2", "--batch-size", "16", "--lr", "0.0001", "--param", "maxTokens=32"]);
    cmd.arg("--data").arg(data).arg("--out").arg(out);
    if let Some(base) = base {
        cmd.arg("--base").arg(base);
    }
    cmd.output().unwrap()
}

#[test]
fn a_chat_model_trains_evaluates_and_answers_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = slice(dir.path(), &["greetings", "food", "money"]);
    let model = dir.path().join("model");
    let out = train(&data, &model, Some(&fixture("all-minilm-l6-v2")));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("epoch ") && l.contains("train_loss")).count(), 2, "{stderr}");
    assert!(stdout.contains("intent accuracy") && stdout.contains("hand-over below"), "{stdout}");
    // A Hugging Face folder plus Tenfold's card and replies.
    for file in ["config.json", "tokenizer.json", "model.safetensors", "model.json", "replies.json", "replies.safetensors", "report.json"] {
        assert!(model.join(file).is_file(), "{file} missing");
    }
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["family"], "chat");
    assert_eq!(card["classes"], serde_json::json!(["food", "greetings", "money"]));

    let out = tenfold().args(["eval", "--model"]).arg(&model).arg("--data").arg(&data).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"hit_at_1\"") && stdout.contains("\"handoff\""), "{stdout}");

    let out = tenfold().args(["predict", "--json", "--model"]).arg(&model).args(["Hello there, how are you?"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let answers: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let answer = &answers[0];
    for key in ["intent", "confidence", "handoff", "reply", "candidates"] {
        assert!(!answer[key].is_null(), "{key} missing from {answer}");
    }
    assert!(["food", "greetings", "money"].contains(&answer["intent"].as_str().unwrap()), "{answer}");
}

#[test]
fn bad_chat_input_exits_2_with_the_fix_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");

    let one = slice(dir.path(), &["greetings"]);
    let out = train(&one, &model, Some(&fixture("all-minilm-l6-v2")));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("at least two intents"), "{stderr}");
    assert!(!model.exists(), "a model folder was written for a refused job");

    let two = slice(dir.path(), &["greetings", "food"]);
    let out = train(&two, &model, None);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("give a base model"), "{stderr}");

    // A base that is not a BERT folder (it holds only the CSV).
    let out = train(&two, &model, Some(dir.path()));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config.json is missing"), "{stderr}");
    assert!(!model.exists());
}
