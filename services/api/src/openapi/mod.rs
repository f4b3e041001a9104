//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of every HTTP route.
//! It is generated from the routes as they are registered (utoipa-actix-web
//! collects each handler's `#[utoipa::path]` as it is mounted), so a route
//! cannot be served without being documented, and schemathesis in the
//! test suite checks the live server's answers against it.

pub mod schemas;

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Server};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

/// The document's parts that do not come from a route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenfold",
        description = "Tenfold's HTTP API beside GraphQL: resumable uploads (tus 1.0), signed downloads, usage exports, \
                       and hosted model endpoints over the Open Inference Protocol (KServe v2), for chat models \
                       OpenAI's chat completions, and for recommenders Amazon Personalize's shapes. Everything else is in the GraphQL schema at /graphql.",
    ),
    modifiers(&Bearer),
    tags(
        (name = "graphql", description = "GraphQL over HTTP; the schema is GraphQL's own"),
        (name = "uploads", description = "Resumable dataset uploads, tus 1.0"),
        (name = "downloads", description = "Model files by signed, expiring URL"),
        (name = "usage", description = "Metered usage exports"),
        (name = "inference", description = "Hosted endpoints, Open Inference Protocol (KServe v2) REST"),
        (name = "chat", description = "Hosted chat endpoints, OpenAI's chat completions API (`model` is the endpoint's slug)"),
        (name = "recommendations", description = "Hosted recommenders: top-K for a user, similar items, feedback events (Amazon Personalize's shapes)"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct Base;

/// `Authorization: Bearer …`: a session's access token, an API key
/// (`tfk_…`) or, on inference routes, a customer key (`tfc_…`).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session access token, an API key (tfk_…), or on inference routes a customer key (tfc_…)"))
                    .build(),
            ),
        );
    }
}

/// The served document, rendered once.
#[derive(Clone)]
pub struct Rendered(pub String);

/// The document for the routes `register` mounts.
pub fn document(register: impl FnOnce(&mut ServiceConfig)) -> Document {
    let (_, mut doc) = actix_web::App::new().into_utoipa_app().openapi(Base::openapi()).configure(register).split_for_parts();
    doc.servers = Some(vec![Server::new("/")]);
    doc
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(openapi_json);
}

/// This document.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
#[get("/v1/openapi.json")]
async fn openapi_json(doc: web::Data<Rendered>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(doc.0.clone())
}
