//! Tests generated from `tests/authz/matrix.toml`: every operation × every
//! kind of caller (each role; an API key holding exactly the operation's
//! scope and one holding every other scope; anonymous) × own and other
//! organization (over HTTP and WebSocket alike). One trial per operation, plus one that fails
//! when the schema has an operation the matrix does not cover.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::{Value, json};
use tenfold_tests::{PASSWORD, Session, TestApp};

#[derive(Debug, Clone, Deserialize)]
struct Matrix {
    operation: Vec<Operation>,
}

#[derive(Debug, Clone, Deserialize)]
struct Operation {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    public: bool,
    target: String,
    document: String,
    #[serde(default)]
    allowed_errors: Vec<String>,
    #[serde(default)]
    transport: Option<String>,
}

fn load() -> Matrix {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/authz/matrix.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn main() {
    let args = Arguments::from_args();
    let matrix = load();
    let mut trials = vec![Trial::test("authz::matrix_covers_every_operation", {
        let names: Vec<String> = matrix.operation.iter().map(|o| o.name.clone()).collect();
        move || covers_every_operation(&names)
    })];
    for op in matrix.operation {
        trials.push(Trial::test(format!("authz::{}", op.name), move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(run_operation(op))
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

fn covers_every_operation(names: &[String]) -> Result<(), Failed> {
    let ops = tenfold_graphql::root_operations();
    let missing: Vec<_> = ops.iter().filter(|o| !names.contains(o)).collect();
    let stale: Vec<_> = names.iter().filter(|n| !ops.contains(n)).collect();
    if missing.is_empty() && stale.is_empty() {
        Ok(())
    } else {
        Err(format!("tests/authz/matrix.toml is out of date: operations without a row: {missing:?}; rows without an operation: {stale:?}")
            .into())
    }
}

enum Caller {
    Person(&'static str, String),
    /// A key holding exactly the operation's scope (operations without a
    /// scope: every scope, which must still be refused).
    ApiKeyExact,
    /// A key holding every scope but the operation's: wiring an operation
    /// to the wrong scope fails here.
    ApiKeyLacking,
    Anonymous,
}

impl Caller {
    fn label(&self) -> String {
        match self {
            Caller::Person(role, _) => (*role).to_owned(),
            Caller::ApiKeyExact => "API key with exactly its scope".into(),
            Caller::ApiKeyLacking => "API key with every other scope".into(),
            Caller::Anonymous => "anonymous".into(),
        }
    }
}

struct Fixture {
    owner_a: Session,
    owner_b: Session,
    key_exact: String,
    /// None when the operation's scope is every scope (no such key exists).
    key_lacking: Option<String>,
}

async fn run_operation(op: Operation) -> Result<(), Failed> {
    let app = TestApp::spawn_with(|s| {
        s.auth.login_max_attempts_per_ip = 100_000;
        s.auth.login_max_failures_per_account = 100_000;
        s.auth.emails_per_hour = 100_000;
    })
    .await;
    let owner_a = app.sign_up("owner-a@example.com", "Tenant A").await;
    app.join(&owner_a, "admin-a@example.com", "ADMIN").await;
    app.join(&owner_a, "member-a@example.com", "MEMBER").await;
    app.join(&owner_a, "viewer-a@example.com", "VIEWER").await;
    let owner_b = app.sign_up("owner-b@example.com", "Tenant B").await;
    // Room for the members and keys the cells create.
    for owner in [&owner_a, &owner_b] {
        app.app.set_plan(owner.org(), tenfold_domain::Plan::Enterprise).await.unwrap();
    }
    let every_scope: Vec<&str> = tenfold_domain::Scope::ALL.iter().map(|s| s.as_str()).collect();
    let exact: Vec<&str> = if op.scopes.is_empty() { every_scope.clone() } else { op.scopes.iter().map(String::as_str).collect() };
    let others: Vec<&str> = every_scope.iter().copied().filter(|s| !op.scopes.iter().any(|o| o == s)).collect();
    let (_, key_exact) = app.api_key(&owner_a, &exact).await;
    let key_lacking = if others.is_empty() || op.scopes.is_empty() { None } else { Some(app.api_key(&owner_a, &others).await.1) };
    let fx = Fixture { owner_a, owner_b, key_exact, key_lacking };

    let callers = [
        Caller::Person("OWNER", "owner-a@example.com".into()),
        Caller::Person("ADMIN", "admin-a@example.com".into()),
        Caller::Person("MEMBER", "member-a@example.com".into()),
        Caller::Person("VIEWER", "viewer-a@example.com".into()),
        Caller::ApiKeyExact,
        Caller::ApiKeyLacking,
        Caller::Anonymous,
    ];
    let mut failures = Vec::new();
    for caller in &callers {
        if matches!(caller, Caller::ApiKeyLacking) && fx.key_lacking.is_none() {
            continue;
        }
        if let Err(e) = run_cell(&app, &fx, &op, caller).await {
            failures.push(format!("{} as {}: {e}", op.name, caller.label()));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n").into()) }
}

async fn credential(app: &TestApp, fx: &Fixture, caller: &Caller) -> Option<String> {
    match caller {
        // A fresh sign-in per cell: some operations end the caller's session.
        Caller::Person(_, email) => Some(app.log_in(email, PASSWORD).await.ok().str_at("/logIn/accessToken")),
        Caller::ApiKeyExact => Some(fx.key_exact.clone()),
        Caller::ApiKeyLacking => fx.key_lacking.clone(),
        Caller::Anonymous => None,
    }
}

fn allowed(op: &Operation, caller: &Caller) -> bool {
    op.public
        || match caller {
            Caller::Person(role, _) => op.roles.iter().any(|r| r == role),
            Caller::ApiKeyExact => !op.scopes.is_empty(),
            Caller::ApiKeyLacking | Caller::Anonymous => false,
        }
}

async fn run_cell(app: &TestApp, fx: &Fixture, op: &Operation, caller: &Caller) -> Result<(), String> {
    if op.transport.as_deref() == Some("ws") {
        return run_ws_cell(app, fx, op, caller).await;
    }
    let fresh = format!("fresh-{}@example.com", uuid::Uuid::new_v4().simple());
    let target = make_target(app, &fx.owner_a, &op.target).await;
    let token = credential(app, fx, caller).await;
    let res = if op.transport.as_deref() == Some("upload") {
        // `document` names the family; the file is a small valid one.
        app.upload(token.as_deref(), &fresh, &op.document, "ratings.csv", RATINGS.to_vec()).await
    } else if op.transport.as_deref() == Some("import") {
        // `document` names the family; the files are not a model (checked after the permission).
        app.import_model(token.as_deref(), &fresh, &op.document, b"not weights".to_vec(), b"{}".to_vec(), None).await
    } else {
        let version = served_version(app, &fx.owner_a, &op.target, &target).await;
        app.gql(&op.document, json!({ "target": target, "fresh": fresh, "slug": fresh_slug(), "version": version }), token.as_deref()).await
    };
    let codes = res.codes();
    if allowed(op, caller) {
        if let Some(bad) = codes.iter().find(|c| !op.allowed_errors.contains(c)) {
            return Err(format!("expected to be allowed, got {bad}: {:#}", res.body));
        }
    } else {
        let expected = if matches!(caller, Caller::Anonymous) { "UNAUTHENTICATED" } else { "FORBIDDEN" };
        if codes.first().map(String::as_str) != Some(expected) {
            return Err(format!("expected {expected}, got {codes:?}: {:#}", res.body));
        }
        if res.data().is_object() && res.data().as_object().unwrap().values().any(|v| !v.is_null()) {
            return Err(format!("denied but data was returned: {:#}", res.body));
        }
        return Ok(());
    }
    // The same call on the other organization's object: NOT_FOUND, and the
    // object is unchanged.
    if op.target != "none" && !op.public {
        let foreign = make_target(app, &fx.owner_b, &op.target).await;
        let token = credential(app, fx, caller).await;
        let version = served_version(app, &fx.owner_b, &op.target, &foreign).await;
        let vars = json!({ "target": foreign, "fresh": fresh, "slug": fresh_slug(), "version": version });
        let res = app.gql(&op.document, vars, token.as_deref()).await;
        if res.first_code() != "NOT_FOUND" {
            return Err(format!("on another organization's {}: expected NOT_FOUND, got {:#}", op.target, res.body));
        }
        assert_intact(app, &fx.owner_b, &op.target, &foreign).await?;
    }
    Ok(())
}

const RATINGS: &[u8] = b"user_id,item_id,rating\n1,2,5\n";

/// A unique endpoint slug (`$slug`).
fn fresh_slug() -> String {
    format!("e-{}", uuid::Uuid::new_v4().simple())
}

/// For an endpoint target, the version it serves (`$version`).
async fn served_version(app: &TestApp, owner: &Session, kind: &str, target: &Value) -> Value {
    if kind != "endpoint" {
        return Value::Null;
    }
    let res = app
        .gql("query($id: ID!) { node(id: $id) { ... on Endpoint { modelVersion { id } } } }", json!({ "id": target }), Some(&owner.access))
        .await;
    res.at("/node/modelVersion/id").clone()
}

async fn endpoint(app: &TestApp, owner: &Session) -> String {
    let version = tenfold_tests::insert_model_version(app, owner).await;
    let res = app
        .gql(
            "mutation($v: ID!, $s: String!) { deployModel(input: {modelVersionId: $v, slug: $s}) { id } }",
            json!({ "v": version, "s": fresh_slug() }),
            Some(&owner.access),
        )
        .await
        .ok();
    res.str_at("/deployModel/id")
}

/// A fresh object of `kind` in `owner`'s organization; its global id.
async fn make_target(app: &TestApp, owner: &Session, kind: &str) -> Value {
    match kind {
        "none" => Value::Null,
        "organization" => json!(owner.org_id),
        "apiKey" => json!(app.api_key(owner, &["org:read"]).await.0),
        "member" => {
            let email = format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
            json!(app.join(owner, &email, "MEMBER").await.user_id)
        }
        "invitation" => {
            let email = format!("i-{}@example.com", uuid::Uuid::new_v4().simple());
            let res = app
                .gql(
                    "mutation($e: String!) { inviteMember(input: {email: $e, role: MEMBER}) { id } }",
                    json!({ "e": email }),
                    Some(&owner.access),
                )
                .await
                .ok();
            json!(res.str_at("/inviteMember/id"))
        }
        "dataset" => {
            let name = format!("d-{}", uuid::Uuid::new_v4().simple());
            app.upload(Some(&owner.access), &name, "RECOMMENDATION", "ratings.csv", RATINGS.to_vec()).await.ok();
            let res = app.gql("{ datasets(first: 100) { edges { node { id name } } } }", json!({}), Some(&owner.access)).await.ok();
            let edges = res.at("/datasets/edges").as_array().cloned().unwrap_or_default();
            json!(edges.iter().find(|e| e["node"]["name"] == json!(name)).unwrap()["node"]["id"])
        }
        "imageDataset" => json!(image_dataset(app, owner).await),
        "job" => {
            let dataset = image_dataset(app, owner).await;
            json!(app.submit_job(&owner.access, &dataset, json!({})).await.ok().str_at("/submitJob/id"))
        }
        "modelVersion" => json!(tenfold_tests::insert_model_version(app, owner).await),
        "model" => {
            let version = tenfold_tests::insert_model_version(app, owner).await;
            let res = app.gql("query($id: ID!) { modelVersion(id: $id) { modelId } }", json!({ "id": version }), Some(&owner.access)).await;
            json!(res.ok().str_at("/modelVersion/modelId"))
        }
        "webhook" => {
            let res = app
                .gql(
                    "mutation { createWebhook(input: {url: \"https://hooks.example.com/t\", events: [JOB_FAILED]}) { webhook { id } } }",
                    json!({}),
                    Some(&owner.access),
                )
                .await
                .ok();
            json!(res.str_at("/createWebhook/webhook/id"))
        }
        "endpoint" => json!(endpoint(app, owner).await),
        "customerKey" => {
            let endpoint = endpoint(app, owner).await;
            let res = app
                .gql(
                    "mutation($e: ID!) { createCustomerKey(input: {name: \"c\", endpointIds: [$e]}) { key { id } } }",
                    json!({ "e": endpoint }),
                    Some(&owner.access),
                )
                .await
                .ok();
            json!(res.str_at("/createCustomerKey/key/id"))
        }
        other => panic!("unknown target kind {other:?} in matrix.toml"),
    }
}

async fn assert_intact(app: &TestApp, owner: &Session, kind: &str, id: &Value) -> Result<(), String> {
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("the other organization's {kind} changed: {what}")) };
    match kind {
        "apiKey" => {
            let res = app
                .gql("query($id: ID!) { node(id: $id) { ... on ApiKey { revokedAt } } }", json!({ "id": id }), Some(&owner.access))
                .await;
            check(res.errors().is_empty() && res.at("/node/revokedAt").is_null(), "revoked")
        }
        "member" => {
            let res = app
                .gql("{ organization { members(first: 100) { edges { node { user { id } role } } } } }", json!({}), Some(&owner.access))
                .await;
            let edges = res.at("/organization/members/edges").as_array().cloned().unwrap_or_default();
            let found = edges.iter().find(|e| &e["node"]["user"]["id"] == id);
            check(found.is_some_and(|e| e["node"]["role"] == "MEMBER"), "removed or role changed")
        }
        "invitation" => {
            let res =
                app.gql("{ organization { invitations(first: 100) { edges { node { id } } } } }", json!({}), Some(&owner.access)).await;
            let edges = res.at("/organization/invitations/edges").as_array().cloned().unwrap_or_default();
            check(edges.iter().any(|e| &e["node"]["id"] == id), "revoked")
        }
        "organization" => {
            let res = app.gql("{ organization { id } }", json!({}), Some(&owner.access)).await;
            check(res.errors().is_empty(), "unreadable")
        }
        "dataset" => {
            let res = app.gql("query($id: ID!) { dataset(id: $id) { id } }", json!({ "id": id }), Some(&owner.access)).await;
            check(res.errors().is_empty(), "deleted")
        }
        "imageDataset" => {
            let jobs = app.gql("{ jobs(first: 100) { edges { node { datasetVersionId } } } }", json!({}), Some(&owner.access)).await;
            let used = jobs.at("/jobs/edges").as_array().is_some_and(|e| e.iter().any(|e| &e["node"]["datasetVersionId"] == id));
            check(!used, "a job was queued on it")
        }
        "job" => {
            let res =
                app.gql("query($id: ID!) { job(id: $id) { status cancelRequested } }", json!({ "id": id }), Some(&owner.access)).await;
            check(res.at("/job/status") == "QUEUED" && res.at("/job/cancelRequested") == false, "cancelled")
        }
        "webhook" => {
            let res = app.gql("{ webhooks { id } }", json!({}), Some(&owner.access)).await;
            let hooks = res.at("/webhooks").as_array().cloned().unwrap_or_default();
            check(hooks.iter().any(|h| &h["id"] == id), "deleted")
        }
        "modelVersion" => {
            let res = app.gql("query($id: ID!) { modelVersion(id: $id) { id aliases } }", json!({ "id": id }), Some(&owner.access)).await;
            check(res.errors().is_empty() && res.at("/modelVersion/id") == id, "deleted")?;
            check(*res.at("/modelVersion/aliases") == json!([]), "an alias was set")
        }
        "model" => {
            let q = "query($id: ID!) { model(id: $id) { id promotionRules { maxSizeMb } aliases { alias } } }";
            let res = app.gql(q, json!({ "id": id }), Some(&owner.access)).await;
            check(res.errors().is_empty() && res.at("/model/id") == id, "deleted")?;
            check(res.at("/model/promotionRules/maxSizeMb").is_null(), "its promotion rules changed")?;
            check(*res.at("/model/aliases") == json!([]), "its aliases changed")
        }
        "endpoint" => {
            let q = "query($id: ID!) { node(id: $id) { ... on Endpoint { id state canary { percent } scaling { maxBatchSize } } } }";
            let res = app.gql(q, json!({ "id": id }), Some(&owner.access)).await;
            check(res.errors().is_empty() && res.at("/node/id") == id, "deleted")?;
            check(res.at("/node/state") == "ACTIVE" && res.at("/node/canary").is_null(), "paused or given a canary")?;
            check(res.at("/node/scaling/maxBatchSize") == 32, "its scaling changed")
        }
        "customerKey" => {
            let q = "query($id: ID!) { node(id: $id) { ... on CustomerKey { id revokedAt } } }";
            let res = app.gql(q, json!({ "id": id }), Some(&owner.access)).await;
            check(res.errors().is_empty() && res.at("/node/id") == id && res.at("/node/revokedAt").is_null(), "revoked")
        }
        "none" => Ok(()),
        other => Err(format!("assert_intact does not know how to check a {other}; add it")),
    }
}

async fn image_dataset(app: &TestApp, owner: &Session) -> String {
    let name = format!("digits-{}", uuid::Uuid::new_v4().simple());
    app.ready_images(&owner.access, &name, tenfold_tests::mnist_subset(&["0", "1"], 10)).await
}

/// A subscription cell: allowed callers see an event that happens after
/// they subscribe; others get FORBIDDEN, or a closed socket when anonymous.
async fn run_ws_cell(app: &TestApp, fx: &Fixture, op: &Operation, caller: &Caller) -> Result<(), String> {
    use std::time::Duration;
    let token = credential(app, fx, caller).await;
    let mut socket = match app.ws_connect(token.as_deref(), None).await {
        Ok(s) => s,
        Err(refused) if matches!(caller, Caller::Anonymous) && !op.public => {
            return if matches!(refused, tenfold_tests::WsRefused::Closed(4403 | 1002)) {
                Ok(())
            } else {
                Err(format!("expected the socket closed (4403, or 1002 from async-graphql), got {refused:?}"))
            };
        }
        Err(refused) => return Err(format!("connection refused: {refused:?}")),
    };
    let target = make_target(app, &fx.owner_a, &op.target).await;
    socket.subscribe_with("1", &op.document, json!({ "target": target })).await;
    if allowed(op, caller) {
        // The subscription starts asynchronously: trigger events until one arrives.
        let mut live = false;
        for _ in 0..50 {
            app.api_key(&fx.owner_a, &["org:read"]).await;
            match socket.next_message(Duration::from_millis(300)).await {
                Some(m) if m["type"] == "next" && m["payload"]["errors"].is_null() => {
                    live = true;
                    break;
                }
                Some(other) => return Err(format!("expected a live event, got {other}")),
                None => continue,
            }
        }
        if !live {
            return Err("no live event arrived".into());
        }
        // The other organization's object over the same transport: NOT_FOUND.
        if op.target != "none" {
            let foreign = make_target(app, &fx.owner_b, &op.target).await;
            let token = credential(app, fx, caller).await;
            let mut socket = app.ws_connect(token.as_deref(), None).await.map_err(|e| format!("connection refused: {e:?}"))?;
            socket.subscribe_with("2", &op.document, json!({ "target": foreign })).await;
            let msg = socket.next_message(Duration::from_secs(5)).await;
            let code = msg.as_ref().map(|m| {
                let errors = if m["type"] == "error" { &m["payload"] } else { &m["payload"]["errors"] };
                errors[0]["extensions"]["code"].clone()
            });
            if code != Some(json!("NOT_FOUND")) {
                return Err(format!("on another organization's {}: expected NOT_FOUND, got {msg:?}", op.target));
            }
        }
        Ok(())
    } else {
        let msg = socket.next_message(Duration::from_secs(5)).await;
        match msg {
            Some(m) if m["type"] == "error" && m["payload"][0]["extensions"]["code"] == "FORBIDDEN" => Ok(()),
            Some(m)
                if m["type"] == "next"
                    && m["payload"]["data"].is_null()
                    && m["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN" =>
            {
                Ok(())
            }
            other => Err(format!("expected FORBIDDEN, got {other:?}")),
        }
    }
}
