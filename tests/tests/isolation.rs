//! Tenant isolation through `node(id:)` for every kind of node (G13), and
//! for lists: another tenant's objects are the same NOT_FOUND as ids that
//! never existed, and never appear in a list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use tenfold_tests::TestApp;

const NODE: &str = "query($id: ID!) { node(id: $id) { id } }";

#[tokio::test]
async fn every_node_kind_of_another_tenant_is_not_found_like_a_random_id() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let (b_key, _) = app.api_key(&b, &["org:read"]).await;
    let inv = app
        .gql("mutation { inviteMember(input: {email: \"cy@example.com\", role: MEMBER}) { id } }", json!({}), Some(&b.access))
        .await
        .ok()
        .str_at("/inviteMember/id");
    let b_event = app
        .gql("{ auditLog(first: 1) { edges { node { id } } } }", json!({}), Some(&b.access))
        .await
        .ok()
        .str_at("/auditLog/edges/0/node/id");

    let ratings = app.upload(Some(&b.access), "ratings", "RECOMMENDATION", "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await.ok();
    let b_version = ratings.str_at("/uploadDataset/id");
    app.wait_validated(&b.access, &b_version).await;
    let b_dataset = app
        .gql("{ datasets(first: 1) { edges { node { id } } } }", json!({}), Some(&b.access))
        .await
        .ok()
        .str_at("/datasets/edges/0/node/id");
    let digits = app.ready_images(&b.access, "digits", tenfold_tests::mnist_subset(&["0", "1"], 10)).await;
    let b_job = app.submit_job(&b.access, &digits, json!({})).await.ok().str_at("/submitJob/id");
    let b_model = tenfold_tests::insert_model_version(&app, &b).await;
    let b_registry_model = app
        .gql("query($id: ID!) { modelVersion(id: $id) { modelId } }", json!({ "id": b_model }), Some(&b.access))
        .await
        .ok()
        .str_at("/modelVersion/modelId");
    let b_hook = app
        .gql(
            "mutation { createWebhook(input: {url: \"https://hooks.example.com/b\", events: [JOB_FAILED]}) { webhook { id } } }",
            json!({}),
            Some(&b.access),
        )
        .await
        .ok()
        .str_at("/createWebhook/webhook/id");

    let b_endpoint = app
        .gql(
            "mutation($v: ID!) { deployModel(input: {modelVersionId: $v, slug: \"b-digits\"}) { id } }",
            json!({ "v": b_model }),
            Some(&b.access),
        )
        .await
        .ok()
        .str_at("/deployModel/id");
    let b_customer_key = app
        .gql(
            "mutation($e: ID!) { createCustomerKey(input: {name: \"b's customer\", endpointIds: [$e]}) { key { id } } }",
            json!({ "e": b_endpoint }),
            Some(&b.access),
        )
        .await
        .ok()
        .str_at("/createCustomerKey/key/id");

    let b_objects = [
        ("User", b.user_id.clone()),
        ("Organization", b.org_id.clone()),
        ("Invitation", inv),
        ("ApiKey", b_key),
        ("AuditEvent", b_event),
        ("Dataset", b_dataset),
        ("DatasetVersion", b_version),
        ("Job", b_job),
        ("Model", b_registry_model),
        ("ModelVersion", b_model),
        ("Webhook", b_hook),
        ("Endpoint", b_endpoint),
        ("CustomerKey", b_customer_key),
    ];
    // Every kind the schema's Node interface has is covered here.
    let node = app.gql("{ __type(name: \"Node\") { possibleTypes { name } } }", json!({}), Some(&a.access)).await.ok();
    let mut kinds: Vec<String> =
        node.at("/__type/possibleTypes").as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    let mut covered: Vec<String> = b_objects.iter().map(|(k, _)| (*k).to_owned()).collect();
    covered.sort();
    assert_eq!(kinds, covered, "a node kind without an isolation case");
    // Control: B sees each of its own objects.
    for (kind, id) in &b_objects {
        let res = app.gql(NODE, json!({ "id": id }), Some(&b.access)).await;
        assert!(res.errors().is_empty(), "B cannot read its own {kind}: {:#}", res.body);
    }
    for (kind, id) in &b_objects {
        let foreign = app.gql(NODE, json!({ "id": id }), Some(&a.access)).await;
        let random_id = B64.encode(format!("{kind}:{}", uuid::Uuid::now_v7()));
        let random = app.gql(NODE, json!({ "id": random_id }), Some(&a.access)).await;
        assert_eq!(foreign.first_code(), "NOT_FOUND", "{kind}: {:#}", foreign.body);
        assert_eq!(foreign.first_message(), random.first_message(), "{kind}: a foreign id must look like a random one");
        assert!(foreign.data().is_null() || foreign.at("/node").is_null());
    }
    // Garbage ids are the same NOT_FOUND too.
    let garbage = app.gql(NODE, json!({ "id": "not-an-id" }), Some(&a.access)).await;
    assert_eq!(garbage.first_code(), "NOT_FOUND");
}

#[tokio::test]
async fn lists_hold_only_the_caller_s_organization() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    app.api_key(&b, &["org:read"]).await;
    app.gql("mutation { inviteMember(input: {email: \"cy@example.com\", role: MEMBER}) { id } }", json!({}), Some(&b.access)).await.ok();
    let res = app
        .gql(
            "{ organization { members { edges { node { user { email } } } } apiKeys { edges { node { id } } } invitations { edges { node { id } } } } auditLog { edges { node { action } } } }",
            json!({}),
            Some(&a.access),
        )
        .await
        .ok();
    let text = res.body.to_string();
    assert!(!text.contains("bob@example.com") && !text.contains("cy@example.com"), "{text}");
    assert_eq!(res.at("/organization/apiKeys/edges").as_array().unwrap().len(), 0);
    assert_eq!(res.at("/organization/invitations/edges").as_array().unwrap().len(), 0);
    assert_eq!(res.at("/organization/members/edges").as_array().unwrap().len(), 1);
    // A cursor from B's list changes nothing about whose rows A gets.
    let b_keys = app.gql("{ organization { apiKeys { pageInfo { endCursor } } } }", json!({}), Some(&b.access)).await.ok();
    let cursor = b_keys.at("/organization/apiKeys/pageInfo/endCursor").clone();
    let res = app
        .gql("query($c: String) { organization { apiKeys(after: $c) { edges { node { id } } } } }", json!({ "c": cursor }), Some(&a.access))
        .await
        .ok();
    assert_eq!(res.at("/organization/apiKeys/edges").as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_membership_elsewhere_does_not_open_that_organization_s_details() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    // Ada joins Bob Co as a viewer; her current credential still acts for Acme.
    app.gql("mutation { inviteMember(input: {email: \"ada@example.com\", role: VIEWER}) { id } }", json!({}), Some(&b.access)).await.ok();
    let token = app.mailbox.wait_for("ada@example.com", "invited you").await.token("tfi_").unwrap();
    app.gql("mutation($t: String!) { acceptInvitation(token: $t) { role } }", json!({ "t": token }), Some(&a.access)).await.ok();
    let me = app
        .gql("{ me { memberships { organization { id name members { edges { node { role } } } } } } }", json!({}), Some(&a.access))
        .await;
    let codes = me.codes();
    assert!(codes.contains(&"FORBIDDEN".to_owned()), "the other organization's members need a switch: {:#}", me.body);
}
