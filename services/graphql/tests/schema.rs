//! Properties of the public schema (SECURITY-TESTS T3.2, T9.2).

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// Output fields whose names suggest secrets, and the ones that are meant
/// to carry one to their owner.
const SENSITIVE: &[&str] = &["password", "hash", "secret", "salt", "token", "private", "internal"];
const ALLOWED: &[&str] = &[
    "AuthPayload.accessToken",
    "AuthPayload.refreshToken",
    "CreateApiKeyPayload.secret",
    "CreateCustomerKeyPayload.secret",
    "CreateWebhookPayload.secret",
    // Model tokens (usage), not credentials.
    "Quotas.monthlyEndpointTokens",
];

#[test]
fn no_output_field_exposes_secrets_beyond_the_allow_list() {
    let doc = async_graphql::parser::parse_schema(tenfold_graphql::sdl()).unwrap();
    let mut offending = Vec::new();
    let mut seen_allowed = Vec::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let type_name = t.node.name.node.to_string();
        // Root fields are operations (resetPassword), not data.
        if matches!(type_name.as_str(), "Query" | "Mutation" | "Subscription") {
            continue;
        }
        let fields = match &t.node.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for f in fields {
            let name = format!("{type_name}.{}", f.node.name.node);
            if SENSITIVE.iter().any(|s| f.node.name.node.to_lowercase().contains(s)) {
                if ALLOWED.contains(&name.as_str()) {
                    seen_allowed.push(name);
                } else {
                    offending.push(name);
                }
            }
        }
    }
    assert!(offending.is_empty(), "fields that look like secrets: {offending:?}");
    assert_eq!(seen_allowed.len(), ALLOWED.len(), "the allow-list names fields that no longer exist: {seen_allowed:?}");
}

#[test]
fn every_root_operation_is_listed() {
    let ops = tenfold_graphql::root_operations();
    for expected in ["query.me", "mutation.signUp", "subscription.auditEvents"] {
        assert!(ops.contains(&expected.to_owned()), "{expected} missing from {ops:?}");
    }
}
