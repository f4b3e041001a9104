//! A recommender from the outside: BPR trained on MovieLens-100k through a
//! worker process, then a two-tower model on the same ratings with user and
//! item features, deployed, and called on its own routes (Amazon
//! Personalize's shapes) and on the Open Inference Protocol; impressions
//! and clicks reported against the answers give the endpoint's
//! click-through rate per model version; every request metered; bad
//! input refused with what to fix, nothing stored; another tenant sees
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, fixtures_dir};

async fn train(app: &TestApp, s: &Session, dataset: &str, architecture: &str, hyperparameters: Value) -> String {
    let input = json!({ "family": "RECOMMENDATION", "architecture": architecture, "model": "movies", "hyperparameters": hyperparameters });
    let job = app.submit_job(&s.access, dataset, input).await.ok().str_at("/submitJob/id");
    let done =
        app.wait_job(&s.access, &job, Duration::from_secs(240), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    done["modelVersionId"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, path: &str, key: &str, body: Value) -> (u16, Value) {
    let res = app.client.post(format!("{}{path}", app.address)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn feedback(app: &TestApp, s: &Session, endpoint: &str) -> Vec<Value> {
    let q = "query($id: ID!) { node(id: $id) { ... on Endpoint { feedback { modelVersionId impressions clicks clickThroughRate } } } }";
    app.gql(q, json!({ "id": endpoint }), Some(&s.access)).await.ok().at("/node/feedback").as_array().unwrap().clone()
}

async fn requests_metered(app: &TestApp, s: &Session) -> f64 {
    let now = chrono::Utc::now();
    let range = json!({ "from": now - chrono::TimeDelta::days(1), "to": now + chrono::TimeDelta::days(1) });
    let rows = app
        .gql("query($from: DateTime!, $to: DateTime!) { usage(from: $from, to: $to) { unit quantity } }", range, Some(&s.access))
        .await
        .ok()
        .at("/usage")
        .as_array()
        .unwrap()
        .clone();
    rows.iter().filter(|r| r["unit"] == "REQUESTS").map(|r| r["quantity"].as_f64().unwrap()).sum()
}

#[tokio::test]
async fn must_show_a_deployed_recommender_answers_takes_feedback_and_counts_every_request() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let _worker = app.spawn_worker_with(1, &[]);
    let data = std::fs::read(fixtures_dir().join("ml-100k.csv")).expect("run scripts/fixtures");
    let upload = app.upload(Some(&s.access), "movielens", "RECOMMENDATION", "ml-100k.csv", data).await.ok();
    let dataset = upload.str_at("/uploadDataset/id");
    assert_eq!(app.wait_validated(&s.access, &dataset).await["status"], "READY");
    let v1 = train(&app, &s, &dataset, "bpr-mf", json!({ "epochs": 20, "evalEvery": 5 })).await;
    // Version 2: a two-tower model on the same ratings with RecBole's user
    // (age, gender, occupation) and item (year, genres) features as columns.
    let features = std::fs::read(fixtures_dir().join("ml-100k-features.csv")).expect("run scripts/fixtures");
    let upload = app.upload(Some(&s.access), "movielens-features", "RECOMMENDATION", "ml-100k-features.csv", features).await.ok();
    let with_features = upload.str_at("/uploadDataset/id");
    let validated = app.wait_validated(&s.access, &with_features).await;
    assert_eq!(validated["status"], "READY", "{validated:#}");
    assert_eq!(validated["stats"]["user_features"], json!(["user_age", "user_gender", "user_occupation"]), "{validated:#}");
    assert_eq!(validated["stats"]["item_features"], json!(["item_year", "item_genres"]));
    assert_eq!(validated["warnings"], json!([]), "feature columns are not ignored columns");
    let v2 = train(&app, &s, &with_features, "two-tower", json!({ "epochs": 10, "evalEvery": 5, "embeddingSize": 16 })).await;

    // The registry's report: the RecBole metrics, the popularity baseline beaten.
    let report = app
        .gql(
            "query($id: ID!) { modelVersion(id: $id) { report { task metrics { name value } baselines { kind beaten } curves { id } } } }",
            json!({ "id": v1 }),
            Some(&s.access),
        )
        .await
        .ok();
    let report = report.at("/modelVersion/report");
    let ndcg = report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "ndcg@10").unwrap()["value"].as_f64().unwrap();
    assert!(ndcg > 0.2, "{report:#}");
    assert_eq!(report["baselines"][0], json!({ "kind": "popularity", "beaten": true }));
    assert!(report["curves"].as_array().unwrap().iter().any(|c| c["id"] == "ndcg_at_k"), "{report:#}");

    let deployed = app
        .gql(
            "mutation($i: DeployModelInput!) { deployModel(input: $i) { id slug state } }",
            json!({ "i": { "modelVersionId": v1, "slug": "movies" } }),
            Some(&s.access),
        )
        .await
        .ok();
    assert_eq!(deployed.at("/deployModel/state"), "ACTIVE", "{:#}", deployed.body);
    let endpoint = deployed.str_at("/deployModel/id");
    let (_, key) = app.api_key(&s, &["endpoints:invoke"]).await;
    let mut answered = 0.0;

    // A known user: 10 items, best first, none they rated; a recommendation id.
    let (status, top) = post(&app, "/v1/endpoints/movies/recommendations", &key, json!({ "userId": "196", "numResults": 10 })).await;
    assert_eq!(status, 200, "{top:#}");
    answered += 1.0;
    let items = top["itemList"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(items.windows(2).all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));
    let rated: Vec<String> = std::fs::read_to_string(fixtures_dir().join("ml-100k.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("196,"))
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert!(items.iter().all(|i| !rated.contains(&i["itemId"].as_str().unwrap().to_owned())), "a rated item was recommended");
    assert_eq!(top["coldStart"], false);
    let rec1 = top["recommendationId"].as_str().unwrap().to_owned();

    // An unknown user: the most popular items, flagged.
    let (status, cold) =
        post(&app, "/v1/endpoints/movies/recommendations", &key, json!({ "userId": "new-customer", "numResults": 5 })).await;
    assert_eq!((status, &cold["coldStart"]), (200, &json!(true)), "{cold:#}");
    answered += 1.0;
    // "50" (Star Wars) is ml-100k's most rated film.
    assert_eq!(cold["itemList"][0]["itemId"], "50");
    // A filter, and similar items.
    let (status, filtered) = post(
        &app,
        "/v1/endpoints/movies/recommendations",
        &key,
        json!({ "userId": "196", "numResults": 5, "filter": { "includeItemIds": ["50", "100", "181"], "excludeItemIds": ["100"] } }),
    )
    .await;
    assert_eq!(status, 200);
    answered += 1.0;
    assert!(filtered["itemList"].as_array().unwrap().iter().all(|i| ["50", "181"].contains(&i["itemId"].as_str().unwrap())));
    let (status, similar) = post(&app, "/v1/endpoints/movies/similar-items", &key, json!({ "itemId": "50", "numResults": 3 })).await;
    assert_eq!(status, 200, "{similar:#}");
    answered += 1.0;
    assert!(similar["itemList"].as_array().unwrap().iter().all(|i| i["itemId"] != "50"));

    // The same model on the Open Inference Protocol.
    let (status, oip) = post(
        &app,
        "/v2/models/movies/infer",
        &key,
        json!({ "inputs": [{ "name": "user_id", "shape": [2], "datatype": "BYTES", "data": ["196", "new-customer"] }], "parameters": { "num_results": 4 } }),
    )
    .await;
    assert_eq!(status, 200, "{oip:#}");
    answered += 1.0;
    let output = |name: &str| oip["outputs"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap().clone();
    assert_eq!(output("item_ids")["shape"], json!([2, 4]));
    assert_eq!(output("cold_start")["data"], json!([false, true]));
    assert_eq!(output("item_ids")["data"][0], items[0]["itemId"]);

    // Bad input: a clear error, nothing answered, nothing counted.
    for (body, words) in [
        (json!({ "userId": "196", "numResults": 0 }), "numResults"),
        (json!({ "userId": "196", "numResults": 501 }), "1 to 500"),
        (json!({ "userId": "" }), "userId"),
        (json!({ "user": "196" }), "unknown field"),
    ] {
        let (status, err) = post(&app, "/v1/endpoints/movies/recommendations", &key, body.clone()).await;
        assert_eq!(status, 400, "{body}: {err:#}");
        assert!(err["error"].as_str().unwrap().contains(words), "{body}: {err:#}");
    }
    let (status, err) = post(&app, "/v1/endpoints/movies/similar-items", &key, json!({ "itemId": "no-such-film" })).await;
    assert_eq!(status, 400, "{err:#}");
    assert!(err["error"].as_str().unwrap().contains("no-such-film"), "{err:#}");

    // Feedback on version 1: 2 impressions, 1 click; a retried event counts once.
    let events = json!({ "eventList": [
        { "eventType": "impression", "recommendationId": rec1, "eventId": "imp-1" },
        { "eventType": "impression", "recommendationId": cold["recommendationId"], "eventId": "imp-2" },
        { "eventType": "click", "recommendationId": rec1, "itemId": items[0]["itemId"], "eventId": "click-1" },
    ] });
    let (status, recorded) = post(&app, "/v1/endpoints/movies/events", &key, events.clone()).await;
    assert_eq!((status, &recorded), (200, &json!({ "recorded": 3 })));
    let (_, again) = post(&app, "/v1/endpoints/movies/events", &key, events).await;
    assert_eq!(again, json!({ "recorded": 0 }));
    // An id no answer gave refuses the whole report; nothing is stored.
    let (status, err) = post(
        &app,
        "/v1/endpoints/movies/events",
        &key,
        json!({ "eventList": [
            { "eventType": "click", "recommendationId": rec1, "eventId": "click-2" },
            { "eventType": "click", "recommendationId": uuid::Uuid::now_v7().to_string() },
        ] }),
    )
    .await;
    assert_eq!(status, 400, "{err:#}");
    assert!(err["error"].as_str().unwrap().contains("recommendationId"), "{err:#}");
    let (status, _) =
        post(&app, "/v1/endpoints/movies/events", &key, json!({ "eventList": [{ "eventType": "like", "recommendationId": rec1 }] })).await;
    assert_eq!(status, 400);

    // Version 2 takes over; its recommendations are counted apart.
    app.gql(
        "mutation($id: ID!, $v: ID!) { updateEndpoint(input: { id: $id, modelVersionId: $v }) { id } }",
        json!({ "id": endpoint, "v": v2 }),
        Some(&s.access),
    )
    .await
    .ok();
    let rec2 = loop {
        let (status, top) = post(&app, "/v1/endpoints/movies/recommendations", &key, json!({ "userId": "196" })).await;
        assert_eq!(status, 200, "{top:#}");
        answered += 1.0;
        assert_eq!(top["itemList"].as_array().unwrap().len(), 25, "numResults defaults to 25");
        if top["modelVersion"] == "2" {
            break top["recommendationId"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, _) =
        post(&app, "/v1/endpoints/movies/events", &key, json!({ "eventList": [{ "eventType": "impression", "recommendationId": rec2 }] }))
            .await;
    assert_eq!(status, 200);
    let mut per_version = feedback(&app, &s, &endpoint).await;
    per_version.sort_by_key(|v| v["modelVersionId"] != v1);
    assert_eq!(per_version.len(), 2, "{per_version:#?}");
    assert_eq!(per_version[0], json!({ "modelVersionId": v1, "impressions": 2, "clicks": 1, "clickThroughRate": 0.5 }));
    assert_eq!(per_version[1], json!({ "modelVersionId": v2, "impressions": 1, "clicks": 0, "clickThroughRate": 0.0 }));

    // Every answered request was metered once; refusals and events were not.
    assert_eq!(requests_metered(&app, &s).await, answered);

    // Another organization: no such endpoint, no feedback, and its key cannot report on ours.
    let (_, foreign) = app.api_key(&other, &["endpoints:invoke"]).await;
    let (status, _) = post(&app, "/v1/endpoints/movies/recommendations", &foreign, json!({ "userId": "196" })).await;
    assert_eq!(status, 404);
    let (status, _) =
        post(&app, "/v1/endpoints/movies/events", &foreign, json!({ "eventList": [{ "eventType": "click", "recommendationId": rec1 }] }))
            .await;
    assert_eq!(status, 404);
    let hidden = app
        .gql(
            "query($id: ID!) { node(id: $id) { ... on Endpoint { feedback { clicks } } } }",
            json!({ "id": endpoint }),
            Some(&other.access),
        )
        .await;
    assert!(hidden.body["data"]["node"].is_null() || hidden.first_code() == "NOT_FOUND", "{:#}", hidden.body);
}
