//! Sign-up, sign-in, sessions, email flows, members and API keys, through
//! the public GraphQL API with real SMTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tenfold_tests::{PASSWORD, TestApp};

const ME: &str = "{ me { user { id email emailVerified } memberships { role organization { id name slug } } organization { id } } }";

#[tokio::test]
async fn sign_up_makes_an_owner_and_sends_a_verification_email() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("Ada@Example.com", "Acme Labs").await;
    assert_eq!(s.email, "Ada@Example.com");
    let me = app.gql(ME, json!({}), Some(&s.access)).await.ok();
    assert_eq!(me.str_at("/me/user/email"), "ada@example.com", "emails are normalised");
    assert_eq!(me.at("/me/user/emailVerified"), &json!(false));
    assert_eq!(me.str_at("/me/memberships/0/role"), "OWNER");
    assert_eq!(me.str_at("/me/memberships/0/organization/slug"), "acme-labs");
    assert_eq!(me.str_at("/me/organization/id"), s.org_id);

    let mail = app.mailbox.wait_for("ada@example.com", "Confirm your email").await;
    let token = mail.token("tfv_").unwrap();
    app.gql("mutation($t: String!) { verifyEmail(token: $t) }", json!({ "t": token }), None).await.ok();
    let me = app.gql(ME, json!({}), Some(&s.access)).await.ok();
    assert_eq!(me.at("/me/user/emailVerified"), &json!(true));
    // Single use.
    let again = app.gql("mutation($t: String!) { verifyEmail(token: $t) }", json!({ "t": token }), None).await;
    assert_eq!(again.first_code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn sign_up_refuses_bad_input_with_specific_errors_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let q = "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }";
    let cases = [
        (json!({ "email": "not-an-email", "password": PASSWORD, "organizationName": "X" }), "email", "'@'"),
        (json!({ "email": "a@example.com", "password": "short", "organizationName": "X" }), "password", "at least 12"),
        (json!({ "email": "a@example.com", "password": PASSWORD, "organizationName": "   " }), "organizationName", "empty"),
    ];
    for (input, field, hint) in cases {
        let res = app.gql(q, json!({ "i": input }), None).await.expect_code("BAD_USER_INPUT");
        assert_eq!(res.errors()[0]["extensions"]["field"], json!(field), "{:#}", res.body);
        assert!(res.first_message().contains(hint), "message {:?} should say {hint:?}", res.first_message());
    }
    // Nothing was stored: the address is still free.
    app.sign_up("a@example.com", "X").await;
    let dup = app.gql(q, json!({ "i": { "email": "A@example.com", "password": PASSWORD, "organizationName": "Y" } }), None).await;
    assert_eq!(dup.first_code(), "BAD_USER_INPUT");
    assert!(dup.first_message().contains("already exists"));
}

#[tokio::test]
async fn log_in_gives_the_same_error_for_unknown_email_and_wrong_password() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", "Acme").await;
    let wrong = app.log_in("ada@example.com", "wrong password 123").await.expect_code("UNAUTHENTICATED");
    let unknown = app.log_in("nobody@example.com", "wrong password 123").await.expect_code("UNAUTHENTICATED");
    assert_eq!(wrong.first_message(), unknown.first_message());
    let ok = app.log_in("ADA@example.com", PASSWORD).await.ok();
    assert_eq!(ok.str_at("/logIn/role"), "OWNER");
}

#[tokio::test]
async fn log_in_is_throttled_per_account_even_through_aliases() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    // Six wrong passwords in one request through aliases: each is counted.
    let fields: String = (0..6)
        .map(|i| format!("a{i}: logIn(input: {{email: \"ada@example.com\", password: \"wrong password {i}\"}}) {{ accessToken }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let res = app.gql(&format!("mutation {{ {fields} }}"), json!({}), None).await;
    let codes = res.codes();
    assert!(codes.iter().filter(|c| *c == "UNAUTHENTICATED").count() == 5, "{codes:?}");
    assert_eq!(codes.last().unwrap(), "RATE_LIMITED", "{codes:?}");
    // Now even the right password is refused until the window passes.
    let blocked = app.log_in("ada@example.com", PASSWORD).await.expect_code("RATE_LIMITED");
    assert!(blocked.errors()[0]["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    assert!(blocked.headers.get("retry-after").is_some(), "429-style Retry-After header");
    // Another account from the same address is unaffected.
    app.sign_up("bob@example.com", "Bobs").await;
    app.log_in("bob@example.com", PASSWORD).await.ok();
    // The failures reach the audit log (written off the request path).
    let mut failed = 0;
    for _ in 0..50 {
        let log = app.gql("{ auditLog(first: 50) { edges { node { action } } } }", json!({}), Some(&owner.access)).await.ok();
        failed = log.at("/auditLog/edges").as_array().unwrap().iter().filter(|e| e["node"]["action"] == "auth.sign_in_failed").count();
        if failed >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(failed, 5);
}

#[tokio::test]
async fn log_in_is_throttled_per_ip() {
    let app = TestApp::spawn_with(|s| s.auth.login_max_attempts_per_ip = 3).await;
    for i in 0..3 {
        app.log_in(&format!("user{i}@example.com"), "whatever password").await.expect_code("UNAUTHENTICATED");
    }
    app.log_in("user9@example.com", "whatever password").await.expect_code("RATE_LIMITED");
}

const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let r1 = app.gql(REFRESH, json!({ "t": s.refresh }), None).await.ok();
    let (access2, refresh2) = (r1.str_at("/refreshSession/accessToken"), r1.str_at("/refreshSession/refreshToken"));
    assert_ne!(refresh2, s.refresh);
    app.gql(ME, json!({}), Some(&access2)).await.ok();

    // The first refresh token again: reuse. The family ends, newest token too.
    let reuse = app.gql(REFRESH, json!({ "t": s.refresh }), None).await.expect_code("UNAUTHENTICATED");
    assert!(reuse.first_message().contains("already used"));
    app.gql(REFRESH, json!({ "t": refresh2 }), None).await.expect_code("UNAUTHENTICATED");
    app.gql(ME, json!({}), Some(&access2)).await.expect_code("UNAUTHENTICATED");
    app.gql(ME, json!({}), Some(&s.access)).await.expect_code("UNAUTHENTICATED");
    app.mailbox.wait_for("ada@example.com", "Security alert").await;
    // A fresh sign-in still works.
    app.log_in("ada@example.com", PASSWORD).await.ok();
}

#[tokio::test]
async fn concurrent_refreshes_issue_exactly_one_new_token() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let attempts = futures::future::join_all((0..8).map(|_| app.gql(REFRESH, json!({ "t": s.refresh }), None))).await;
    let ok = attempts.iter().filter(|r| r.errors().is_empty()).count();
    assert!(ok <= 1, "at most one refresh may win, {ok} did");
}

#[tokio::test]
async fn log_out_ends_refresh_and_access_tokens() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    app.gql("mutation { logOut }", json!({}), Some(&s.access)).await.ok();
    app.gql(ME, json!({}), Some(&s.access)).await.expect_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": s.refresh }), None).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn password_reset_is_single_use_and_ends_all_sessions() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let q = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    // Same answer for an unknown address, and no email is sent for it.
    app.gql(q, json!({ "e": "nobody@example.com" }), None).await.ok();
    app.gql(q, json!({ "e": "ada@example.com" }), None).await.ok();
    let mail = app.mailbox.wait_for("ada@example.com", "Reset your").await;
    assert!(app.mailbox.to("nobody@example.com").is_empty());
    let token = mail.token("tfp_").unwrap();
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    app.gql(reset, json!({ "t": token, "p": "short" }), None).await.expect_code("BAD_USER_INPUT");
    app.gql(reset, json!({ "t": token, "p": "a brand new password" }), None).await.ok();
    app.gql(reset, json!({ "t": token, "p": "another new password" }), None).await.expect_code("BAD_USER_INPUT");
    app.gql(ME, json!({}), Some(&s.access)).await.expect_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": s.refresh }), None).await.expect_code("UNAUTHENTICATED");
    app.log_in("ada@example.com", PASSWORD).await.expect_code("UNAUTHENTICATED");
    app.log_in("ada@example.com", "a brand new password").await.ok();
}

#[tokio::test]
async fn password_reset_answers_as_fast_for_an_account_as_for_an_unknown_address() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", "Acme").await;
    // A mail server that takes 3 s to accept a message: an answer that
    // waited for it would tell who has an account.
    app.mailbox.set_delay(std::time::Duration::from_secs(3));
    let q = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    let timed = |email: &'static str| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            app.gql(q, json!({ "e": email }), None).await.ok();
            started.elapsed()
        }
    };
    let unknown = timed("nobody@example.com").await;
    let known = timed("ada@example.com").await;
    // Far below the server's 3 s: the answer never waits for SMTP.
    assert!(known < std::time::Duration::from_millis(1500), "known {known:?}, unknown {unknown:?}");
    assert!(unknown < std::time::Duration::from_millis(1500), "known {known:?}, unknown {unknown:?}");
    // The email still goes out, after the answer.
    app.mailbox.wait_for("ada@example.com", "Reset your").await;
}

#[tokio::test]
async fn invitations_roles_and_the_last_owner() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let admin = app.join(&owner, "bob@example.com", "ADMIN").await;
    assert_eq!(admin.org_id, owner.org_id);
    let viewer = app.join(&owner, "cy@example.com", "VIEWER").await;

    // An admin cannot make owners; a viewer cannot invite at all.
    let invite = "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }";
    app.gql(invite, json!({ "i": { "email": "dee@example.com", "role": "OWNER" } }), Some(&admin.access)).await.expect_code("FORBIDDEN");
    app.gql(invite, json!({ "i": { "email": "dee@example.com", "role": "MEMBER" } }), Some(&viewer.access)).await.expect_code("FORBIDDEN");
    app.gql(invite, json!({ "i": { "email": "bob@example.com", "role": "MEMBER" } }), Some(&owner.access))
        .await
        .expect_code("BAD_USER_INPUT");

    // The last owner can be neither demoted nor removed.
    let change = "mutation($u: ID!, $r: Role!) { changeRole(userId: $u, role: $r) { role } }";
    let demote = app.gql(change, json!({ "u": owner.user_id, "r": "ADMIN" }), Some(&owner.access)).await.expect_code("BAD_USER_INPUT");
    assert!(demote.first_message().contains("last owner"));
    let remove = "mutation($u: ID!) { removeMember(userId: $u) }";
    app.gql(remove, json!({ "u": owner.user_id }), Some(&owner.access)).await.expect_code("BAD_USER_INPUT");
    app.gql(remove, json!({ "u": owner.user_id }), Some(&admin.access)).await.expect_code("FORBIDDEN");

    // A role change takes effect on the next request, without new tokens.
    app.gql(change, json!({ "u": viewer.user_id, "r": "ADMIN" }), Some(&owner.access)).await.ok();
    app.gql("{ auditLog(first: 5) { edges { node { action } } } }", json!({}), Some(&viewer.access)).await.ok();

    // Removing a member ends their access at once, their API keys' too
    // (keys act with their creator's authority); others' keys keep working.
    let (_, admins_key) = app.api_key(&admin, &["org:read"]).await;
    let (_, owners_key) = app.api_key(&owner, &["org:read"]).await;
    let org_name = "{ organization { name } }";
    app.gql(org_name, json!({}), Some(&admins_key)).await.ok();
    app.gql(remove, json!({ "u": admin.user_id }), Some(&owner.access)).await.ok();
    app.gql(ME, json!({}), Some(&admin.access)).await.expect_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": admin.refresh }), None).await.expect_code("UNAUTHENTICATED");
    app.gql(org_name, json!({}), Some(&admins_key)).await.expect_code("UNAUTHENTICATED");
    app.gql(org_name, json!({}), Some(&owners_key)).await.ok();
    let audit = app.gql("{ auditLog(first: 1) { edges { node { action details } } } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(audit.at("/auditLog/edges/0/node/action"), "member.removed");
    assert_eq!(audit.at("/auditLog/edges/0/node/details/apiKeysRevoked"), 1, "{:#}", audit.body);

    let members = app
        .gql("{ organization { members(first: 10) { edges { node { user { email } role } } } } }", json!({}), Some(&owner.access))
        .await
        .ok();
    let emails: Vec<_> = members
        .at("/organization/members/edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["user"]["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails.len(), 2);
    assert!(!emails.contains(&"bob@example.com".to_owned()));

    let log = app.gql("{ auditLog(first: 50) { edges { node { action } } } }", json!({}), Some(&owner.access)).await.ok();
    let actions: Vec<_> =
        log.at("/auditLog/edges").as_array().unwrap().iter().map(|e| e["node"]["action"].as_str().unwrap().to_owned()).collect();
    for expected in ["user.signed_up", "member.invited", "member.joined", "member.role_changed", "member.removed"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} missing from {actions:?}");
    }
}

#[tokio::test]
async fn an_invitation_works_once_and_only_for_its_address() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Eve Corp").await;
    app.gql(
        "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }",
        json!({ "i": { "email": "bob@example.com", "role": "MEMBER" } }),
        Some(&owner.access),
    )
    .await
    .ok();
    let token = app.mailbox.wait_for("bob@example.com", "invited you").await.token("tfi_").unwrap();
    let accept = "mutation($t: String!, $p: String) { acceptInvitation(token: $t, password: $p) { organization { id } } }";
    // Someone else, signed in, cannot take it.
    app.gql(accept, json!({ "t": token }), Some(&other.access)).await.expect_code("FORBIDDEN");
    app.gql(accept, json!({ "t": token, "p": PASSWORD }), None).await.ok();
    app.gql(accept, json!({ "t": token, "p": PASSWORD }), None).await.expect_code("BAD_USER_INPUT");
    app.gql(accept, json!({ "t": "tfi_garbage", "p": PASSWORD }), None).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn switch_organization_moves_the_session_and_refuses_strangers() {
    let app = TestApp::spawn().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let bob = app.sign_up("bob@example.com", "Bob Co").await;
    app.join(&ada, "carl@example.com", "MEMBER").await;
    let switch = "mutation($id: ID!) { switchOrganization(id: $id) { accessToken organization { id } role } }";
    app.gql(switch, json!({ "id": bob.org_id }), Some(&ada.access)).await.expect_code("NOT_FOUND");
    // Bob joins Acme too, then switches between his two organizations.
    app.gql(
        "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { id } }",
        json!({ "i": { "email": "bob@example.com", "role": "VIEWER" } }),
        Some(&ada.access),
    )
    .await
    .ok();
    let token = app.mailbox.wait_for("bob@example.com", "invited you").await.token("tfi_").unwrap();
    app.gql("mutation($t: String!) { acceptInvitation(token: $t) { role } }", json!({ "t": token }), Some(&bob.access)).await.ok();
    let switched = app.gql(switch, json!({ "id": ada.org_id }), Some(&bob.access)).await.ok();
    assert_eq!(switched.str_at("/switchOrganization/organization/id"), ada.org_id);
    assert_eq!(switched.str_at("/switchOrganization/role"), "VIEWER");
    let me = app.gql(ME, json!({}), Some(&switched.str_at("/switchOrganization/accessToken"))).await.ok();
    assert_eq!(me.at("/me/memberships").as_array().unwrap().len(), 2);
    assert_eq!(me.str_at("/me/organization/id"), ada.org_id);
    // The old session ended with the switch.
    app.gql(ME, json!({}), Some(&bob.access)).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let (id, secret) = app.api_key(&owner, &["org:read"]).await;
    assert!(secret.starts_with("tfk_") && secret.len() == 54, "{secret}");

    let list = app
        .gql("{ organization { apiKeys { edges { node { id prefix scopes lastUsedAt } } } } }", json!({}), Some(&owner.access))
        .await
        .ok();
    let node = &list.at("/organization/apiKeys/edges")[0]["node"];
    assert_eq!(node["id"], json!(id));
    assert!(secret.starts_with(node["prefix"].as_str().unwrap()));
    assert!(!list.body.to_string().contains(&secret), "the secret is never listed");

    // The key reads the organization but cannot manage keys or read the audit log.
    let org = app.gql("{ organization { name plan } }", json!({}), Some(&secret)).await.ok();
    assert_eq!(org.str_at("/organization/name"), "Acme");
    app.gql("{ auditLog { edges { node { id } } } }", json!({}), Some(&secret)).await.expect_code("FORBIDDEN");
    app.gql("mutation { createApiKey(input: {name: \"x\", scopes: [\"org:read\"]}) { secret } }", json!({}), Some(&secret))
        .await
        .expect_code("FORBIDDEN");
    app.gql(ME, json!({}), Some(&secret)).await.expect_code("FORBIDDEN");

    // A typo fails the checksum; unknown scopes are named.
    let mut typo = secret.clone();
    typo.replace_range(20..21, if &secret[20..21] == "a" { "b" } else { "a" });
    app.gql("{ organization { name } }", json!({}), Some(&typo)).await.expect_code("UNAUTHENTICATED");
    let bad =
        app.gql("mutation { createApiKey(input: {name: \"x\", scopes: [\"admin:*\"]}) { secret } }", json!({}), Some(&owner.access)).await;
    assert!(bad.expect_code("BAD_USER_INPUT").first_message().contains("admin:*"));

    let used = app.gql("{ organization { apiKeys { edges { node { lastUsedAt } } } } }", json!({}), Some(&owner.access)).await.ok();
    assert!(used.at("/organization/apiKeys/edges/0/node/lastUsedAt").is_string());

    app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }", json!({ "id": id }), Some(&owner.access)).await.ok();
    app.gql("{ organization { name } }", json!({}), Some(&secret)).await.expect_code("UNAUTHENTICATED");
    let log = app.gql("{ auditLog(first: 10) { edges { node { action details } } } }", json!({}), Some(&owner.access)).await.ok();
    let text = log.body.to_string();
    assert!(text.contains("api_key.created") && text.contains("api_key.revoked"));
    assert!(!text.contains(&secret), "the audit log never holds the secret");
}

#[tokio::test]
async fn a_member_cannot_create_keys_with_scopes_beyond_their_role() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let member = app.join(&owner, "bob@example.com", "MEMBER").await;
    let res = app
        .gql("mutation { createApiKey(input: {name: \"x\", scopes: [\"org:read\"]}) { secret } }", json!({}), Some(&member.access))
        .await;
    res.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn organization_shows_plan_and_quotas_and_the_admin_command_changes_them() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let q = "{ organization { id plan quotas { storageBytes concurrentJobs monthlyComputeSeconds monthlyEndpointRequests monthlyEndpointTokens } } }";
    let before = app.gql(q, json!({}), Some(&owner.access)).await.ok();
    assert_eq!(before.str_at("/organization/plan"), "FREE");
    assert_eq!(before.at("/organization/quotas/concurrentJobs"), &json!(1));
    app.gql("{ me { memberships { organization { id } } } }", json!({}), Some(&owner.access)).await.ok();
    // The operator command works on the raw organization id.
    app.app.set_plan(owner.org(), tenfold_domain::Plan::Pro).await.unwrap();
    let after = app.gql(q, json!({}), Some(&owner.access)).await.ok();
    assert_eq!(after.str_at("/organization/plan"), "PRO");
    assert_eq!(after.at("/organization/quotas/concurrentJobs"), &json!(4));
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let (_, key) = app.api_key(&s, &["org:read"]).await;
    let verify = app.mailbox.wait_for("ada@example.com", "Confirm").await.token("tfv_").unwrap();
    // The owner connection sees every row, whatever row-level security says.
    let db = Database::connect(app.db.owner_url()).await.unwrap();
    let backend = db.get_database_backend();
    let mut stored = String::new();
    for (table, columns) in [
        ("users", "email, password_hash"),
        ("api_keys", "name, lookup_id, prefix, secret_hash, scopes"),
        ("refresh_tokens", "token_hash"),
        ("email_tokens", "token_hash"),
        ("audit_events", "action, details"),
    ] {
        for row in db.query_all_raw(Statement::from_string(backend, format!("SELECT {columns} FROM {table}"))).await.unwrap() {
            for col in columns.split(", ") {
                stored.push_str(&row.try_get::<String>("", col).unwrap_or_default());
                stored.push('\n');
            }
        }
    }
    assert!(stored.contains("$argon2id$"), "passwords are argon2id hashes");
    for (what, secret) in
        [("password", PASSWORD), ("API key", key.as_str()), ("refresh token", s.refresh.as_str()), ("email token", verify.as_str())]
    {
        assert!(!stored.contains(secret), "the {what} is stored in clear");
    }
    assert!(stored.contains(&tenfold_app::secrets::sha256_hex(&key)), "the API key is stored as its SHA-256");
    assert!(stored.contains(&tenfold_app::secrets::sha256_hex(&s.refresh)), "the refresh token is stored as its SHA-256");
}

#[tokio::test]
async fn emails_are_capped_per_organization_and_per_address() {
    let app = TestApp::spawn_with(|s| s.auth.emails_per_hour = 2).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let invite = "mutation($e: String!) { inviteMember(input: {email: $e, role: MEMBER}) { id } }";
    app.gql(invite, json!({ "e": "a1@example.com" }), Some(&owner.access)).await.ok();
    app.gql(invite, json!({ "e": "a2@example.com" }), Some(&owner.access)).await.ok();
    app.gql(invite, json!({ "e": "a3@example.com" }), Some(&owner.access)).await.expect_code("RATE_LIMITED");
    assert!(app.mailbox.to("a3@example.com").is_empty(), "no email for the refused invitation");
    let pending = app.gql("{ organization { invitations { edges { node { email } } } } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(pending.at("/organization/invitations/edges").as_array().unwrap().len(), 2, "nothing stored for the refused one");

    // Reset requests: three an hour per address, whether or not it has an account.
    let reset = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    for email in ["ada@example.com", "ghost@example.com"] {
        for _ in 0..3 {
            app.gql(reset, json!({ "e": email }), None).await.ok();
        }
        app.gql(reset, json!({ "e": email }), None).await.expect_code("RATE_LIMITED");
    }
    assert_eq!(app.mailbox.wait_for_count("ada@example.com", "Reset", 3).await.len(), 3);
}
