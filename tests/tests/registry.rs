//! The model registry and reports, end to end (issue 11's "Must show"):
//! real fine-tunes and a distillation on MNIST-5k run as jobs by a worker
//! process; the report equals what `tenfold eval` computes on the
//! downloaded model; the HTML report opens in headless Chromium with every
//! chart and no request leaving the page; the ship gate refuses a worse
//! model; comparisons tell seed noise from a real difference; and bad input
//! (other families, no report, another tenant, bad links) changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, fixtures_dir, tenfold_binary};

const TRAINED: Duration = Duration::from_secs(600);

const VERSION: &str = "query($id: ID!) { modelVersion(id: $id) { id version modelId architecture sizeBytes aliases
    lineage { source jobId jobKind datasetName datasetVersion datasetSha256 architecture hyperparameters split splitSeed seed engine teacherModelVersionId }
    report { task split examples summary metrics { name value higherIsBetter }
      baselines { kind label value modelValue beaten verdict }
      curves { id series { name points { x y } } }
      confusionMatrix { classes counts } perClass { class precision recall f1 support }
      calibration { ece bins { lower upper count confidence accuracy } }
      latency { batch1Ms batch1P95Ms batch64Ms } parameters
      distillation { verdict models { role architecture metric parameters } }
      mistakes(first: 5) { id label predicted confidence thumbnail } } } }";

async fn train(app: &TestApp, s: &Session, dataset: &str, input: Value) -> String {
    let job = app.submit_job(&s.access, dataset, input).await.ok().str_at("/submitJob/id");
    let done = app.wait_job(&s.access, &job, TRAINED, |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    done["modelVersionId"].as_str().unwrap().to_owned()
}

async fn version(app: &TestApp, s: &Session, id: &str) -> Value {
    app.gql(VERSION, json!({ "id": id }), Some(&s.access)).await.ok().at("/modelVersion").clone()
}

fn metric(report: &Value, name: &str) -> f64 {
    report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["value"].as_f64().unwrap()
}

/// A signed download URL's path for `file` of a version.
async fn link(app: &TestApp, s: &Session, id: &str, file: &str, expires: Option<i32>) -> GqlLink {
    let q = "query($id: ID!, $f: ArtifactFile!, $e: Int) { modelVersion(id: $id) { downloadUrl(file: $f, expiresInSeconds: $e) { url path expiresAt } } }";
    let res = app.gql(q, json!({ "id": id, "f": file, "e": expires }), Some(&s.access)).await;
    GqlLink { path: res.at("/modelVersion/downloadUrl/path").as_str().map(str::to_owned), response: res.body.clone() }
}

struct GqlLink {
    path: Option<String>,
    response: Value,
}

async fn fetch(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(app.url(path)).await.unwrap()
}

async fn download_model(app: &TestApp, s: &Session, id: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (file, name) in [("MODEL_WEIGHTS", "model.safetensors"), ("MODEL_CARD", "model.json"), ("REPORT_JSON", "report.json")] {
        let path = link(app, s, id, file, None).await.path.unwrap();
        let res = fetch(app, &path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
        std::fs::write(dir.join(name), res.bytes().await.unwrap()).unwrap();
    }
}

fn tenfold(args: &[&str]) -> String {
    let out = std::process::Command::new(tenfold_binary()).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap();
    assert!(out.status.success(), "tenfold {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The report's numbers against `tenfold eval` on the downloaded model and
/// the same dataset file (the engine's held-out split, recomputed).
fn assert_report_equals_eval(report: &Value, dir: &Path, data: &Path) {
    let eval: Value =
        serde_json::from_str(&tenfold(&["eval", "--model", dir.to_str().unwrap(), "--data", data.to_str().unwrap()])).unwrap();
    let m = &eval["metrics"];
    assert_eq!(eval["split"], report["split"]);
    assert_eq!(m["examples"], report["examples"]);
    assert!(close(m["accuracy"].as_f64().unwrap(), metric(report, "accuracy")), "{m:#} vs {report:#}");
    assert!(close(m["macro_f1"].as_f64().unwrap(), metric(report, "macro_f1")));
    assert!(close(m["weighted_f1"].as_f64().unwrap(), metric(report, "weighted_f1")));
    assert!(close(m["ece"].as_f64().unwrap(), metric(report, "ece")));
    assert_eq!(m["confusion_matrix"], report["confusionMatrix"]["counts"], "confusion matrices differ");
    for (ours, theirs) in report["perClass"].as_array().unwrap().iter().zip(m["per_class"].as_array().unwrap()) {
        assert_eq!(ours["class"], theirs["class"]);
        assert_eq!(ours["support"], theirs["support"]);
        for k in ["precision", "recall", "f1"] {
            assert!(close(ours[k].as_f64().unwrap(), theirs[k].as_f64().unwrap()), "{k} of {}: {ours} vs {theirs}", ours["class"]);
        }
    }
    for (ours, theirs) in report["calibration"]["bins"].as_array().unwrap().iter().zip(m["reliability"].as_array().unwrap()) {
        assert_eq!(ours["count"], theirs["count"]);
        assert!(close(ours["accuracy"].as_f64().unwrap(), theirs["accuracy"].as_f64().unwrap()));
    }
}

/// Opens the HTML report in headless Chromium: every chart is in the
/// rendered DOM as drawn SVG, the screenshot is not blank, and the browser
/// tried no request at all.
fn assert_report_opens_offline(html: &Path, charts: &[&str], shot: &Path) {
    let Some(browser) = tenfold_tests::browser::chromium() else { return };
    let rendered = tenfold_tests::browser::render(&browser, html, shot, 5000);
    assert!(rendered.requests.is_empty(), "the report made requests: {:?}", rendered.requests);
    for chart in charts {
        let at = rendered.dom.find(&format!("data-chart=\"{chart}\"")).unwrap_or_else(|| panic!("no {chart} chart in the page"));
        let figure = &rendered.dom[at..rendered.dom[at..].find("</figure>").map_or(rendered.dom.len(), |e| at + e)];
        assert!(figure.contains("<svg") && figure.contains("<text"), "{chart} is not a drawn SVG: {}", &figure[..figure.len().min(300)]);
        assert!(figure.contains("<rect") || figure.contains("<path") || figure.contains("<polyline"), "{chart} draws nothing");
    }
    let image = image::open(shot).unwrap().to_rgb8();
    let inked = image.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count();
    let coloured = image.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 60).count();
    assert!(inked > 20_000 && coloured > 5_000, "the screenshot looks empty ({inked} dark, {coloured} coloured pixels)");
}

fn artifacts_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn must_show_reports_gate_and_comparisons_on_mnist() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let _worker = app.spawn_worker_with(2, &[]);
    let data_file = fixtures_dir().join("mnist-5k.zip");
    let dataset = app.ready_images(&s.access, "digits", std::fs::read(&data_file).unwrap()).await;

    let fine = |epochs: i64, seed: i64| json!({ "architecture": "cnn-small", "hyperparameters": { "epochs": epochs, "batchSize": 64, "seed": seed } });
    let ten_a = train(&app, &s, &dataset, fine(10, 42)).await;
    let ten_b = train(&app, &s, &dataset, fine(10, 7)).await;
    let one = train(&app, &s, &dataset, fine(1, 42)).await;
    // A fine-tune from a base: the base model is its baseline, on the same examples.
    let tuned = train(
        &app,
        &s,
        &dataset,
        json!({ "architecture": null, "baseModelVersionId": ten_a, "hyperparameters": { "epochs": 2, "batchSize": 64, "learningRate": 0.0002 } }),
    )
    .await;
    let student = train(
        &app,
        &s,
        &dataset,
        json!({ "kind": "DISTILL", "architecture": "cnn-tiny", "teacherModelVersionId": ten_a, "model": "digits-small",
            "hyperparameters": { "epochs": 10, "batchSize": 64 } }),
    )
    .await;

    // Registry: one model line numbered 1, 2, 3; the student in its own.
    let v = version(&app, &s, &ten_a).await;
    assert_eq!(v["version"], 1, "{v:#}");
    assert_eq!(version(&app, &s, &one).await["version"], 3);
    let model_id = v["modelId"].as_str().unwrap().to_owned();
    let l = &v["lineage"];
    assert_eq!((l["source"].as_str(), l["jobKind"].as_str(), l["datasetName"].as_str()), (Some("job"), Some("FINE_TUNE"), Some("digits")));
    assert_eq!(l["datasetSha256"].as_str().unwrap().len(), 64);
    assert_eq!((l["split"].as_str(), l["splitSeed"].as_f64(), l["seed"].as_f64()), (Some("80/10/10"), Some(42.0), Some(42.0)), "{l:#}");
    assert_eq!(version(&app, &s, &ten_b).await["lineage"]["seed"], 7.0);
    assert_eq!(l["hyperparameters"]["epochs"], 10);
    assert!(l["engine"].as_str().unwrap().starts_with("tenfold-ml"));
    let sv = version(&app, &s, &student).await;
    assert_eq!(sv["lineage"]["teacherModelVersionId"], json!(ten_a));
    assert_ne!(sv["modelId"], v["modelId"]);

    // The report: typed sections, baselines in words, numbers equal to `tenfold eval`.
    let report = &v["report"];
    assert_eq!((report["split"].as_str(), report["examples"].as_i64()), (Some("test"), Some(500)), "{report:#}");
    let majority = report["baselines"].as_array().unwrap().iter().find(|b| b["kind"] == "majority_class").unwrap();
    assert_eq!(majority["beaten"], true, "{majority:#}");
    assert!(majority["verdict"].as_str().unwrap().starts_with("beats it"));
    assert!(report["summary"].as_str().unwrap().contains("majority class"), "{}", report["summary"]);
    let curves = report["curves"].as_array().unwrap();
    for id in ["loss", "accuracy"] {
        let c = curves.iter().find(|c| c["id"] == id).unwrap();
        let names: Vec<&str> = c["series"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["train", "validation"], "{id}");
        assert!(c["series"].as_array().unwrap().iter().all(|s| s["points"].as_array().unwrap().len() == 10));
    }
    assert_eq!(report["calibration"]["bins"].as_array().unwrap().len(), 15);
    assert!(report["latency"]["batch1P95Ms"].as_f64().unwrap() >= report["latency"]["batch1Ms"].as_f64().unwrap());
    let work = tempfile::tempdir().unwrap();
    for (id, name) in [(&ten_a, "fine-tune"), (&student, "student")] {
        let dir = work.path().join(name);
        download_model(&app, &s, id, &dir).await;
        assert_report_equals_eval(&version(&app, &s, id).await["report"], &dir, &data_file);
    }
    // Import: the downloaded files into another organization, checked first.
    let read = |dir: &str, f: &str| std::fs::read(work.path().join(dir).join(f)).unwrap();
    let used = || async {
        app.gql("{ organization { storageUsedBytes } }", json!({}), Some(&other.access))
            .await
            .ok()
            .at("/organization/storageUsedBytes")
            .clone()
    };
    let before = used().await;
    let weights = read("fine-tune", "model.safetensors");
    let truncated = app
        .import_model(
            Some(&other.access),
            "broken",
            "IMAGE_CLASSIFICATION",
            weights[..weights.len() / 2].to_vec(),
            read("fine-tune", "model.json"),
            None,
        )
        .await;
    assert_eq!(truncated.first_code(), "BAD_USER_INPUT", "{:#}", truncated.body);
    assert!(truncated.first_message().contains("safetensors"), "{}", truncated.first_message());
    let mismatched = app
        .import_model(
            Some(&other.access),
            "broken",
            "IMAGE_CLASSIFICATION",
            read("student", "model.safetensors"),
            read("fine-tune", "model.json"),
            None,
        )
        .await;
    assert_eq!(mismatched.first_code(), "BAD_USER_INPUT", "{:#}", mismatched.body);
    assert!(mismatched.first_message().contains("does not fit the cnn-small"), "{}", mismatched.first_message());
    assert_eq!(app.gql("{ model(name: \"broken\") { id } }", json!({}), Some(&other.access)).await.first_code(), "NOT_FOUND");
    assert_eq!(used().await, before, "a refused import stores nothing");
    let imported = app
        .import_model(
            Some(&other.access),
            "imported",
            "IMAGE_CLASSIFICATION",
            weights.clone(),
            read("fine-tune", "model.json"),
            Some(read("fine-tune", "report.json")),
        )
        .await
        .ok();
    let iv = imported.at("/importModelVersion").clone();
    assert_eq!(
        (iv["version"].as_i64(), iv["architecture"].as_str(), iv["lineage"]["source"].as_str()),
        (Some(1), Some("cnn-small"), Some("import"))
    );
    let iv_report = version(&app, &other, iv["id"].as_str().unwrap()).await["report"].clone();
    assert!(close(metric(&iv_report, "accuracy"), metric(report, "accuracy")), "the imported report is the same report");
    let promoted = app
        .gql(
            "mutation($v: ID!) { setAlias(input: {modelVersionId: $v, alias: \"production\"}) { moved } }",
            json!({ "v": iv["id"] }),
            Some(&other.access),
        )
        .await
        .ok();
    assert_eq!(promoted.at("/setAlias/moved"), &json!(true));

    // The CLI renders a local model's report as the same page.
    let local = work.path().join("local.html");
    let printed = tenfold(&["report", "--model", work.path().join("fine-tune").to_str().unwrap(), "--html", local.to_str().unwrap()]);
    assert!(printed.contains("accuracy"), "{printed}");
    let page = std::fs::read_to_string(&local).unwrap();
    for chart in ["loss", "accuracy", "confusion", "reliability"] {
        assert!(page.contains(&format!("data-chart=\"{chart}\"")), "{chart} missing from the CLI's report");
    }
    assert!(page.contains(&format!("{:.4}", metric(report, "accuracy"))), "the CLI's page shows the same accuracy");

    let tuned_report = version(&app, &s, &tuned).await["report"].clone();
    assert_eq!(tuned_report["task"], "fine_tune");
    let base = tuned_report["baselines"].as_array().unwrap().iter().find(|b| b["kind"] == "base_model").unwrap().clone();
    assert!(close(base["value"].as_f64().unwrap(), metric(report, "accuracy")), "the base model scored on the same examples: {base:#}");
    assert!(tuned_report["summary"].as_str().unwrap().contains("base model"), "{}", tuned_report["summary"]);

    let d = &sv["report"]["distillation"];
    let roles: Vec<&str> = d["models"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["teacher", "student", "student_alone"]);
    let kinds: Vec<&str> = sv["report"]["baselines"].as_array().unwrap().iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["majority_class", "teacher", "student_alone"]);

    // The HTML report, downloaded by signed URL, opens offline with every chart.
    for (id, name, charts) in [
        (&ten_a, "fine-tune", &["loss", "accuracy", "confusion", "reliability"][..]),
        (&student, "distillation", &["loss", "accuracy", "confusion", "reliability", "distillation"][..]),
    ] {
        let path = link(&app, &s, id, "REPORT_HTML", None).await.path.unwrap();
        let res = fetch(&app, &path).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let html = work.path().join(format!("{name}.html"));
        std::fs::write(&html, res.bytes().await.unwrap()).unwrap();
        assert_report_opens_offline(&html, charts, &artifacts_dir().join(format!("{name}.png")));
    }

    // Comparisons: two seeds are within noise; 1 epoch against 10 is not.
    let cmp = "query($a: ID!, $b: ID!) { compareModelVersions(a: $a, b: $b) { examples restricted summary
        metrics { name a b difference ciLow ciHigh beyondNoise } perClass { class recallA recallB }
        fixed { id thumbnail } fixedCount brokenCount } }";
    let seeds = app.gql(cmp, json!({ "a": ten_a, "b": ten_b }), Some(&s.access)).await.ok().at("/compareModelVersions").clone();
    let acc = |c: &Value| c["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "accuracy").unwrap().clone();
    assert_eq!(seeds["examples"], 500);
    assert!(seeds["restricted"].is_null());
    assert_eq!(acc(&seeds)["beyondNoise"], false, "two seeds of one setup: {seeds:#}");
    let epochs = app.gql(cmp, json!({ "a": one, "b": ten_a }), Some(&s.access)).await.ok().at("/compareModelVersions").clone();
    let a = acc(&epochs);
    assert_eq!(a["beyondNoise"], true, "1 epoch vs 10: {epochs:#}");
    assert!(a["difference"].as_f64().unwrap() > 0.0 && a["ciLow"].as_f64().unwrap() > 0.0);
    assert!(epochs["fixedCount"].as_i64().unwrap() > epochs["brokenCount"].as_i64().unwrap());
    assert!(epochs["fixed"].as_array().unwrap().iter().all(|f| f["thumbnail"].as_str().is_some_and(|t| t.starts_with("data:image/png"))));
    assert_eq!(epochs["perClass"].as_array().unwrap().len(), 10);

    // The ship gate: rules that the ten-epoch model meets and the one-epoch one does not.
    let acc_ten = metric(&v["report"], "accuracy");
    let acc_one = metric(&version(&app, &s, &one).await["report"], "accuracy");
    assert!(acc_one < acc_ten - 0.02, "one epoch should be clearly worse: {acc_one} vs {acc_ten}");
    let floor = ((acc_ten - 0.01) * 1000.0).floor() / 1000.0;
    let rules = json!({ "metrics": [{ "metric": "accuracy", "atLeast": floor }], "maxClassRecallDropPoints": 10.0, "maxSizeMb": 50.0 });
    let set = "mutation($m: ID!, $r: PromotionRulesInput!) { setPromotionRules(input: {modelId: $m, rules: $r}) { promotionRules { maxSizeMb } } }";
    app.gql(set, json!({ "m": model_id, "r": rules }), Some(&s.access)).await.ok();
    let alias = "mutation($v: ID!, $a: String!, $why: String) { setAlias(input: {modelVersionId: $v, alias: $a, overrideReason: $why}) {
        moved alias overridden message previousVersionId verdicts { rule passed value threshold message } } }";
    let up = app.gql(alias, json!({ "v": ten_a, "a": "production" }), Some(&s.access)).await.ok().at("/setAlias").clone();
    assert_eq!(up["moved"], true, "{up:#}");
    assert!(up["verdicts"].as_array().unwrap().iter().all(|r| r["passed"] == true), "{up:#}");
    let refused = app.gql(alias, json!({ "v": one, "a": "production" }), Some(&s.access)).await.ok().at("/setAlias").clone();
    assert_eq!(refused["moved"], false, "{refused:#}");
    let failed: Vec<&Value> = refused["verdicts"].as_array().unwrap().iter().filter(|r| r["passed"] == false).collect();
    assert!(failed.iter().any(|r| r["rule"] == format!("accuracy ≥ {floor}")), "{refused:#}");
    assert!(refused["message"].as_str().unwrap().contains("accuracy ≥"), "{refused:#}");
    assert_eq!(refused["verdicts"].as_array().unwrap().len(), 3, "every rule answered: {refused:#}");
    let production = "query($m: ID!) { model(id: $m) { version(alias: \"production\") { id } aliases { alias modelVersionId } } }";
    let now = app.gql(production, json!({ "m": model_id }), Some(&s.access)).await.ok();
    assert_eq!(now.at("/model/version/id"), &json!(ten_a), "a refused move changes nothing");
    // Admins cannot override; an owner can, with a reason that is audited.
    let admin = app.join(&s, "root@example.com", "ADMIN").await;
    let denied = app.gql(alias, json!({ "v": one, "a": "production", "why": "hotfix" }), Some(&admin.access)).await;
    assert_eq!(denied.first_code(), "FORBIDDEN");
    let forced =
        app.gql(alias, json!({ "v": one, "a": "production", "why": "rollback drill" }), Some(&s.access)).await.ok().at("/setAlias").clone();
    assert_eq!((forced["moved"].as_bool(), forced["overridden"].as_bool()), (Some(true), Some(true)), "{forced:#}");
    let audit = app.gql("{ auditLog(first: 50) { edges { node { action details } } } }", json!({}), Some(&s.access)).await.ok();
    let moves: Vec<Value> = audit
        .at("/auditLog/edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| n["action"] == "model.alias_moved")
        .collect();
    assert_eq!(moves.len(), 2, "the refused move is not a move: {moves:?}");
    assert_eq!(moves[0]["details"]["reason"], "rollback drill");
    assert_eq!(moves[0]["details"]["overridden"], true);

    // Bad input, each a clear error and no effect.
    let other_family = insert_version_of(&app, &s, "RECOMMENDATION").await;
    let mixed = app.gql(cmp, json!({ "a": ten_a, "b": other_family }), Some(&s.access)).await;
    assert_eq!(mixed.first_code(), "BAD_USER_INPUT");
    assert!(
        mixed.first_message().contains("different families") || mixed.first_message().contains("of one family"),
        "{}",
        mixed.first_message()
    );
    // A model name is one family: importing image files under a recommendation model is refused.
    let wrong = app
        .import_model(
            Some(&s.access),
            "other-RECOMMENDATION",
            "IMAGE_CLASSIFICATION",
            read("fine-tune", "model.safetensors"),
            read("fine-tune", "model.json"),
            None,
        )
        .await;
    assert_eq!(wrong.first_code(), "BAD_USER_INPUT");
    assert!(wrong.first_message().contains("holds RECOMMENDATION versions"), "{}", wrong.first_message());
    let bare = tenfold_tests::insert_model_version(&app, &s).await;
    let no_report = app.gql(alias, json!({ "v": bare, "a": "production" }), Some(&s.access)).await;
    assert_eq!(no_report.first_code(), "BAD_USER_INPUT");
    assert!(no_report.first_message().contains("has no report"), "{}", no_report.first_message());
    // Another tenant's artifact: the same NOT_FOUND as a random id.
    let theirs = link(&app, &other, &ten_a, "MODEL_WEIGHTS", None).await;
    let random = tenfold_graphql::GlobalId::new(tenfold_graphql::NodeKind::ModelVersion, uuid::Uuid::now_v7()).encode();
    let nobody = link(&app, &other, &random, "MODEL_WEIGHTS", None).await;
    assert!(theirs.path.is_none());
    assert_eq!(theirs.response["errors"][0]["message"], nobody.response["errors"][0]["message"]);
    assert_eq!(theirs.response["errors"][0]["extensions"]["code"], "NOT_FOUND");
    // A tampered or expired link.
    let good = link(&app, &s, &ten_a, "MODEL_WEIGHTS", None).await.path.unwrap();
    let last = good.chars().last().unwrap();
    let flipped = format!("{}{}", &good[..good.len() - 1], if last == '0' { '1' } else { '0' });
    let other_version = good.replace(&uuid_of(&ten_a).to_string(), &uuid_of(&ten_b).to_string());
    let other_org = good.replace(&format!("org={}", uuid_of_org(&s)), &format!("org={}", uuid_of_org(&other)));
    for bad in [flipped, other_version, other_org] {
        let res = fetch(&app, &bad).await;
        assert_eq!(res.status(), 403, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("not valid"), "{body:#}");
    }
    let short = link(&app, &s, &ten_a, "MODEL_CARD", Some(1)).await.path.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = fetch(&app, &short).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body:#}");
    let refused = link(&app, &s, &ten_a, "MODEL_CARD", Some(8 * 24 * 3600)).await;
    assert_eq!(refused.response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Deleting is guarded: production points at `one`; `ten_a` teaches nobody now.
    let delete = "mutation($id: ID!) { deleteModelVersion(id: $id) }";
    let guarded = app.gql(delete, json!({ "id": one }), Some(&s.access)).await;
    assert_eq!(guarded.first_code(), "CONFLICT");
    assert!(guarded.first_message().contains("production"), "{}", guarded.first_message());
    let weights = link(&app, &s, &ten_b, "MODEL_WEIGHTS", None).await.path.unwrap();
    app.gql(delete, json!({ "id": ten_b }), Some(&s.access)).await.ok();
    let gone = app.gql(VERSION, json!({ "id": ten_b }), Some(&s.access)).await;
    assert_eq!(gone.first_code(), "NOT_FOUND");
    assert_eq!(fetch(&app, &weights).await.status(), 404, "a link to a deleted version finds nothing");
}

/// The offline check itself can fail: a page that fetches a picture or a
/// web font is caught (the report test relies on this).
#[test]
fn the_offline_check_catches_a_page_that_makes_requests() {
    let Some(browser) = tenfold_tests::browser::chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("leaky.html");
    std::fs::write(
        &page,
        "<!doctype html><html><head><link rel=stylesheet href=\"https://fonts.googleapis.com/css2?family=Roboto\"></head>\
         <body><p>hello</p><img src=\"http://tenfold-leak.test/pixel.png\"></body></html>",
    )
    .unwrap();
    let rendered = tenfold_tests::browser::render(&browser, &page, &dir.path().join("leaky.png"), 600);
    assert!(rendered.requests.iter().any(|r| r.contains("tenfold-leak.test")), "{:?}", rendered.requests);
    assert!(rendered.requests.iter().any(|r| r.contains("fonts.googleapis.com")), "{:?}", rendered.requests);
}

fn uuid_of(global: &str) -> uuid::Uuid {
    tenfold_graphql::GlobalId::decode(global, "id").unwrap().id
}

fn uuid_of_org(s: &Session) -> uuid::Uuid {
    tenfold_graphql::GlobalId::decode(&s.org_id, "organization").unwrap().id
}

/// A version row of another family (no engine trains one yet).
async fn insert_version_of(app: &TestApp, s: &Session, family: &str) -> String {
    let org = s.org();
    let tx = app.app.store().tenant(org, None).await.unwrap();
    let now = chrono::Utc::now();
    let model = tenfold_store::queries::models::insert(&tx, org, &format!("other-{family}"), family, None, now).await.unwrap();
    let id = uuid::Uuid::now_v7();
    let row = tenfold_store::entities::model_versions::Model {
        org_id: org.0,
        id,
        model_id: model.id,
        version: 1,
        source: "import".into(),
        job_id: None,
        family: family.into(),
        architecture: "popularity".into(),
        classes: "[]".into(),
        files: "{\"report.json\":\"0000\"}".into(),
        size_bytes: 1,
        metrics: "{}".into(),
        lineage: "{\"source\":\"import\"}".into(),
        created_by: None,
        created_at: now,
    };
    tenfold_store::queries::jobs::insert_model_version(&tx, row).await.unwrap();
    tx.commit().await.unwrap();
    tenfold_graphql::GlobalId::new(tenfold_graphql::NodeKind::ModelVersion, id).encode()
}
