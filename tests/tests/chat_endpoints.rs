//! A chat model from the outside: all-MiniLM-L6-v2 fine-tuned through a
//! worker process on part of the chatterbot corpus, deployed, and called
//! by the real `openai` Python client (OpenAI's chat completions, plain and
//! streamed); hand-over on what the model cannot read; tokens metered
//! exactly as the client counted them; another tenant sees nothing; then
//! distilled through a job into a one-layer student that answers too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, fixtures_dir, import_chat_base};

/// Intents of the corpus this test trains on, and conversations of each at most.
const INTENTS: [&str; 4] = ["AI", "coding", "emotion", "trivia"];
const PER_INTENT: usize = 50;

/// Part of the chatterbot corpus: (JSONL, approved replies by intent).
fn support_data() -> (Vec<u8>, BTreeMap<String, BTreeSet<String>>) {
    let corpus = std::fs::read_to_string(fixtures_dir().join("chatterbot-en.jsonl")).expect("run scripts/fixtures");
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    let (mut out, mut replies) = (Vec::new(), BTreeMap::<String, BTreeSet<String>>::new());
    for line in corpus.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let intent = row["intent"].as_str().unwrap_or_default().to_owned();
        if !INTENTS.contains(&intent.as_str()) || taken.get(&intent).is_some_and(|n| *n >= PER_INTENT) {
            continue;
        }
        *taken.entry(intent.clone()).or_default() += 1;
        let reply = row["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "assistant").unwrap();
        replies.entry(intent).or_default().insert(reply["content"].as_str().unwrap().to_owned());
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    (out, replies)
}

fn openai_python() -> String {
    let default = format!("{}/.cache/tenfold/tools/openai/bin/python", std::env::var("HOME").unwrap());
    let python = std::env::var("TENFOLD_OPENAI_PYTHON").unwrap_or(default);
    assert!(std::path::Path::new(&python).exists(), "{python} not found: run scripts/test-tools");
    python
}

async fn usage_tokens(app: &TestApp, s: &Session) -> (f64, f64) {
    let now = chrono::Utc::now();
    let range = json!({ "from": now - chrono::TimeDelta::days(1), "to": now + chrono::TimeDelta::days(1) });
    let res = app
        .gql("query($from: DateTime!, $to: DateTime!) { usage(from: $from, to: $to) { unit quantity } }", range, Some(&s.access))
        .await
        .ok();
    let rows = res.at("/usage").as_array().unwrap().clone();
    let sum = |unit: &str| rows.iter().filter(|r| r["unit"] == unit).map(|r| r["quantity"].as_f64().unwrap()).sum::<f64>();
    (sum("INPUT_TOKENS"), sum("OUTPUT_TOKENS"))
}

#[tokio::test]
async fn must_show_the_openai_client_gets_a_reply_and_a_stream_from_a_deployed_chat_model() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let _worker = app.spawn_worker_with(1, &[]);
    let base = import_chat_base(&app, &s).await;
    let (data, replies) = support_data();
    let upload = app.upload(Some(&s.access), "support", "CHAT", "support.jsonl", data).await.ok();
    let dataset = upload.str_at("/uploadDataset/id");
    let validated = app.wait_validated(&s.access, &dataset).await;
    assert_eq!(validated["status"], "READY", "{validated:#}");

    let input = json!({
        "family": "CHAT", "architecture": null, "baseModelVersionId": base, "model": "support-bot",
        "hyperparameters": { "epochs": 3, "batchSize": 16, "learningRate": 1e-4, "maxTokens": 32, "targetPrecision": 0.8 },
    });
    let job = app.submit_job(&s.access, &dataset, input).await.ok().str_at("/submitJob/id");
    let done =
        app.wait_job(&s.access, &job, Duration::from_secs(600), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let version = done["modelVersionId"].as_str().unwrap().to_owned();

    // The registry shows the family's report.
    let report = app
        .gql(
            "query($id: ID!) { modelVersion(id: $id) { report { task metrics { name value } perClass { class support } \
             confusionMatrix { classes } curves { id } latency { batch1Ms } baselines { kind beaten } summary } } }",
            json!({ "id": version }),
            Some(&s.access),
        )
        .await
        .ok();
    let report = report.at("/modelVersion/report");
    assert_eq!(report["task"], "chat-intent", "{report:#}");
    let metric =
        |name: &str| report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == name).map(|m| m["value"].as_f64().unwrap());
    assert!(metric("accuracy").unwrap() > 0.5 && metric("handoff_rate").is_some() && metric("answer_hit_at_1").is_some(), "{report:#}");
    assert_eq!(report["perClass"].as_array().unwrap().len(), INTENTS.len());
    assert_eq!(report["confusionMatrix"]["classes"].as_array().unwrap().len(), INTENTS.len());
    assert!(report["curves"].as_array().unwrap().iter().any(|c| c["id"] == "handoff"), "{report:#}");
    assert!(report["latency"]["batch1Ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["baselines"][0]["kind"], "majority_class");

    let deployed = app
        .gql(
            "mutation($i: DeployModelInput!) { deployModel(input: $i) { slug state inferPath } }",
            json!({ "i": { "modelVersionId": version, "slug": "support" } }),
            Some(&s.access),
        )
        .await
        .ok();
    assert_eq!(deployed.at("/deployModel/state"), "ACTIVE", "{:#}", deployed.body);
    let (_, key) = app.api_key(&s, &["endpoints:invoke"]).await;

    // Off the test's runtime: the server's connections are driven by it.
    let (base_url, secret) = (format!("{}/v1", app.address), key.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(openai_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/openai_check.py"))
            .args([base_url.as_str(), secret.as_str(), "support", "What is AI?"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "openai_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(report["models"], json!(["support"]), "{report:#}");
    let completion = &report["completion"];
    assert_eq!((completion["object"].as_str(), completion["role"].as_str()), (Some("chat.completion"), Some("assistant")));
    assert_eq!(completion["finish_reason"], "stop");
    // A question the model was trained on: routed, and answered with one of that intent's approved replies.
    let routing = &completion["tenfold"];
    assert_eq!((routing["intent"].as_str(), routing["handoff"].as_bool()), (Some("AI"), Some(false)), "{report:#}");
    let content = completion["content"].as_str().unwrap();
    assert!(replies["AI"].contains(content), "{content:?} is not an approved AI reply");
    assert!(routing["confidence"].as_f64().unwrap() > 0.25);
    let usage = &completion["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() >= 5, "[CLS] what is ai ? [SEP]: {usage}");
    assert!(usage["completion_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap())
    );

    // The same conversation streamed: the same reply, word by word, and the same usage.
    let stream = &report["stream"];
    assert_eq!(stream["content"], completion["content"], "{report:#}");
    assert_eq!(stream["finish_reason"], "stop");
    assert_eq!(stream["usage"], completion["usage"]);
    assert_eq!(stream["tenfold"]["intent"], "AI");
    assert!(stream["chunks"].as_u64().unwrap() >= 4, "role, words, end, usage: {stream}");
    // The newest user turn is answered, with the earlier ones as context.
    assert_eq!(report["multi_turn"]["tenfold"]["intent"], "AI", "{report:#}");

    // What the model cannot read gets the hand-over answer, not a confident wrong one.
    let all_replies: BTreeSet<&String> = replies.values().flatten().collect();
    for case in ["gibberish", "georgian"] {
        let answer = &report[case];
        assert_eq!(answer["tenfold"]["handoff"], true, "{case}: {report:#}");
        assert_eq!(answer["tenfold"]["unreadable"], true, "{case}: {report:#}");
        assert!(!all_replies.contains(&answer["content"].as_str().unwrap().to_owned()), "{case} got an approved reply");
    }
    assert_eq!(report["gibberish"]["content"], report["georgian"]["content"]);

    // Refusals, as the client raises them, in OpenAI's error shape.
    let errors = &report["errors"];
    for (case, status, class, param) in [
        ("unknown_model", 404, "NotFoundError", Some("model")),
        ("no_user_message", 400, "BadRequestError", Some("messages")),
        ("two_choices", 400, "BadRequestError", Some("n")),
        ("image_part", 400, "BadRequestError", Some("messages")),
        ("bad_key", 401, "AuthenticationError", None),
    ] {
        let e = &errors[case];
        assert_eq!((e["status"].as_u64(), e["class"].as_str()), (Some(status), Some(class)), "{case}: {e:#}");
        // The client hands over the body's `error` object.
        assert!(e["body"]["message"].as_str().is_some_and(|m| m.len() > 20), "{case}: {e:#}");
        assert_eq!(e["body"]["param"].as_str(), param, "{case}: {e:#}");
    }
    assert!(errors["unknown_model"]["body"]["message"].as_str().unwrap().contains("/v1/models"));
    assert!(errors["image_part"]["body"]["message"].as_str().unwrap().contains("text only"));

    // Every token the client was told about is metered, none more.
    let answered = report["answers"].as_u64().unwrap();
    assert_eq!(answered, 5);
    let (input_tokens, output_tokens) = usage_tokens(&app, &s).await;
    assert_eq!(input_tokens, report["usage"]["prompt_tokens"].as_f64().unwrap(), "{report:#}");
    assert_eq!(output_tokens, report["usage"]["completion_tokens"].as_f64().unwrap(), "{report:#}");

    // Another organization's key neither lists nor reaches the endpoint.
    let (_, eve_key) = app.api_key(&other, &["endpoints:invoke"]).await;
    let client = reqwest::Client::new();
    let listed: Value = client.get(app.url("/v1/models")).bearer_auth(&eve_key).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
    let res = client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&eve_key)
        .json(&json!({ "model": "support", "messages": [{ "role": "user", "content": "What is AI?" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(usage_tokens(&app, &other).await, (0.0, 0.0));

    // The intent model on the Open Inference Protocol: messages in, intent,
    // confidence, hand-over flag and reply out, tokens metered.
    let meta: Value = client.get(app.url("/v2/models/support")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["inputs"], json!([{ "name": "text", "datatype": "BYTES", "shape": [-1] }]), "{meta:#}");
    assert_eq!(meta["parameters"]["intents"].as_array().unwrap().len(), INTENTS.len());
    let body =
        json!({ "inputs": [{ "name": "text", "shape": [2], "datatype": "BYTES", "data": ["What is AI?", "qzxv brrkt zzyqx plmph"] }] });
    let res = client.post(app.url("/v2/models/support/infer")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let output = |name: &str| answer["outputs"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap()["data"].clone();
    assert_eq!(output("intent")[0], "AI", "{answer:#}");
    assert_eq!(output("handoff"), json!([false, true]), "{answer:#}");
    assert_eq!(output("reply")[0], report["completion"]["content"]);
    assert!(output("confidence")[0].as_f64().unwrap() > 0.25);
    let (read, replied) = usage_tokens(&app, &s).await;
    assert!(read > input_tokens && replied > output_tokens, "the OIP request's tokens are metered too");
    let bad = json!({ "inputs": [{ "name": "text", "shape": [1], "datatype": "FP32", "data": [1.0] }] });
    let res = client.post(app.url("/v2/models/support/infer")).bearer_auth(&key).json(&bad).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("BYTES"));

    // The deployed model distilled through a job into a one-layer student,
    // compared with its teacher, deployed beside it, answering.
    let input = json!({
        "kind": "DISTILL", "family": "CHAT", "architecture": "bert-intent-l1", "teacherModelVersionId": version, "model": "support-bot",
        "hyperparameters": { "epochs": 3, "batchSize": 16, "learningRate": 1e-4, "maxTokens": 32, "targetPrecision": 0.8 },
    });
    let job = app.submit_job(&s.access, &dataset, input).await.ok().str_at("/submitJob/id");
    let done =
        app.wait_job(&s.access, &job, Duration::from_secs(600), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let result = &done["result"];
    assert!(result["teacher_accuracy"].as_f64().unwrap() > 0.5 && result["accuracy_retained"].as_f64().unwrap() > 0.5, "{result:#}");
    assert!(result["speedup_batch_1"].as_f64().unwrap() > 0.0 && result["baseline_accuracy"].is_number(), "{result:#}");
    assert_eq!(done["modelVersions"][0]["architecture"], "bert-intent-l1");
    let student = done["modelVersionId"].as_str().unwrap().to_owned();
    let deployed = app
        .gql(
            "mutation($i: DeployModelInput!) { deployModel(input: $i) { state } }",
            json!({ "i": { "modelVersionId": student, "slug": "support-fast" } }),
            Some(&s.access),
        )
        .await
        .ok();
    assert_eq!(deployed.at("/deployModel/state"), "ACTIVE", "{:#}", deployed.body);
    let res = client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "support-fast", "messages": [{ "role": "user", "content": "What is AI?" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tenfold"]["model_version"], "2", "the student is the model's second version: {body:#}");
    assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()), "{body:#}");
}

#[tokio::test]
async fn a_base_model_import_is_checked_before_anything_is_stored() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let dir = fixtures_dir().join("all-minilm-l6-v2");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("run scripts/fixtures");
    let (weights, config, tokenizer) = (read("model.safetensors"), read("config.json"), read("tokenizer.json"));
    let mut gpt2: Value = serde_json::from_slice(&config).unwrap();
    gpt2["model_type"] = json!("gpt2");
    gpt2["architectures"] = json!(["GPT2LMHeadModel"]);
    let tiny_tokenizer = json!({ "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": { "type": "Whitespace" }, "post_processor": null, "decoder": null,
        "model": { "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                   "vocab": { "[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4 } } });
    // (case, files as (input field, file name, bytes), the field at fault, words of the message)
    type Files<'a> = Vec<(&'a str, &'a str, Vec<u8>)>;
    let cases: Vec<(&str, Files<'_>, &str, &str)> = vec![
        (
            "no tokenizer",
            vec![("weights", "model.safetensors", weights.clone()), ("config", "config.json", config.clone())],
            "tokenizer",
            "tokenizer.json is missing",
        ),
        (
            "another architecture",
            vec![
                ("weights", "model.safetensors", weights.clone()),
                ("config", "config.json", serde_json::to_vec(&gpt2).unwrap()),
                ("tokenizer", "tokenizer.json", tokenizer.clone()),
            ],
            "config",
            "gpt2",
        ),
        (
            "another model's tokenizer",
            vec![
                ("weights", "model.safetensors", weights.clone()),
                ("config", "config.json", config.clone()),
                ("tokenizer", "tokenizer.json", serde_json::to_vec(&tiny_tokenizer).unwrap()),
            ],
            "tokenizer",
            "belongs to another model",
        ),
        (
            "truncated weights",
            vec![
                ("weights", "model.safetensors", weights[..weights.len() / 3].to_vec()),
                ("config", "config.json", config.clone()),
                ("tokenizer", "tokenizer.json", tokenizer.clone()),
            ],
            "weights",
            "safetensors",
        ),
        (
            "a fine-tuned chat model's card",
            vec![
                ("weights", "model.safetensors", weights.clone()),
                ("card", "model.json", b"{}".to_vec()),
                ("config", "config.json", config.clone()),
            ],
            "card",
            "imported as its pretrained base",
        ),
    ];
    for (case, files, field, words) in cases {
        let res = app.import_files(Some(&s.access), "minilm", "CHAT", files).await;
        assert_eq!(res.first_code(), "BAD_USER_INPUT", "{case}: {:#}", res.body);
        assert_eq!(res.errors()[0]["extensions"]["field"], field, "{case}: {:#}", res.body);
        assert!(res.first_message().contains(words), "{case}: {}", res.first_message());
        assert!(!res.first_message().contains("/tmp"), "{case} shows a server path: {}", res.first_message());
    }
    assert_eq!(app.gql("{ model(name: \"minilm\") { id } }", json!({}), Some(&s.access)).await.first_code(), "NOT_FOUND");

    let base = import_chat_base(&app, &s).await;
    let version = app
        .gql(
            "query($id: ID!) { modelVersion(id: $id) { architecture classes sizeBytes lineage { source engine } } }",
            json!({ "id": base }),
            Some(&s.access),
        )
        .await
        .ok();
    let v = version.at("/modelVersion");
    assert_eq!(
        (v["architecture"].as_str(), v["lineage"]["source"].as_str(), v["lineage"]["engine"].as_str()),
        (Some("bert"), Some("import"), Some("huggingface"))
    );
    assert_eq!(v["classes"], json!([]));
    assert!(v["sizeBytes"].as_f64().unwrap() > 90e6, "{v}");
    // Another organization neither sees it nor fine-tunes from it.
    let res = app.gql("query($id: ID!) { modelVersion(id: $id) { id } }", json!({ "id": base }), Some(&other.access)).await;
    assert_eq!(res.first_code(), "NOT_FOUND");
}

/// Found by schemathesis on PostgreSQL: a model name with a NUL byte
/// reached the database (which refuses it) and answered 500.
#[tokio::test]
async fn a_model_name_no_endpoint_can_have_is_not_found() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let (_, key) = app.api_key(&s, &["endpoints:invoke"]).await;
    for model in ["a\u{0}b", "Support", "", &"x".repeat(10_000)] {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
        let res = app.client.post(app.url("/v1/chat/completions")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 404, "{model:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "model_not_found");
    }
    let res = app.client.get(app.url("/v2/models/a%00b")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
