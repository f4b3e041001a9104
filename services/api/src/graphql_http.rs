//! `/graphql` over HTTP, hardened beyond async-graphql-actix-web's defaults
//! (SECURITY-TESTS D4–D6): the body is capped before parsing, batching is
//! refused, mutations only run over POST with a JSON content type (which a
//! browser cannot send cross-site without a CORS preflight), and every
//! authenticated response says `Cache-Control: no-store`.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensionValues, Response, Value};
use serde_json::json;
use tenfold_app::{AppError, ErrorCode, RequestMeta};
use tenfold_graphql::{RequestAuth, to_graphql_error};
use tracing_actix_web::RequestId;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::ServerState;
use crate::openapi::schemas::{GraphqlErrors, GraphqlRequest, GraphqlResponse};
use crate::request;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(graphql_post).service(graphql_get);
}

pub(crate) fn http_error(status: StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }))
}

/// Runs one GraphQL operation (GraphQL over HTTP). JSON bodies, or the
/// GraphQL multipart request spec for file uploads. The operations and
/// types are GraphQL's own schema (introspection).
#[utoipa::path(
    tag = "graphql",
    request_body(content(
        (GraphqlRequest = "application/json"),
        (GraphqlRequest = "application/graphql+json"),
    )),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The result; field errors are in `errors`", content(
            (GraphqlResponse = "application/json"),
            (GraphqlResponse = "application/graphql-response+json"),
        )),
        (status = 400, description = "Not a GraphQL request (bad JSON, a batch, no query), or a request error under application/graphql-response+json", content(
            (GraphqlErrors = "application/json"),
            (GraphqlErrors = "application/graphql-response+json"),
        )),
        (status = 401, description = "A bad credential", body = GraphqlErrors),
        (status = 413, description = "The body is larger than `graphql.maxBodyBytes`", body = GraphqlErrors),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = GraphqlErrors),
        (status = 402, description = "A multipart upload over the plan's storage quota", body = GraphqlErrors),
        (status = 403, description = "A multipart upload by a credential that may not upload", body = GraphqlErrors),
        (status = 415, description = "Neither JSON nor multipart/form-data", body = GraphqlErrors),
    )
)]
#[post("/graphql")]
async fn graphql_post(req: HttpRequest, payload: web::Payload, state: web::Data<ServerState>, request_id: RequestId) -> HttpResponse {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "multipart/form-data" {
        return upload(&req, payload, &content_type, &state, request_id).await;
    }
    if mime != "application/json" && mime != "application/graphql+json" {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadUserInput,
            "send GraphQL requests as POST with `Content-Type: application/json` (or multipart/form-data for file uploads)",
        );
    }
    let body = match crate::uploads::read_capped(&req, payload, state.app.settings().graphql.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &format!("the body is not valid JSON: {e}")),
    };
    if value.is_array() {
        return http_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "batched requests are not supported; send one operation per request",
        );
    }
    let gql_request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!("the body is not a GraphQL request ({{\"query\": …, \"variables\": …}}): {e}"),
            );
        }
    };
    if let Some(refused) = missing_query(&gql_request) {
        return refused;
    }
    execute(&req, &state, gql_request, request_id).await
}

/// A request without a document is not a GraphQL request at all: 400
/// before anything runs, whatever the client accepts.
fn missing_query(request: &async_graphql::Request) -> Option<HttpResponse> {
    request.query.trim().is_empty().then(|| {
        http_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, "the request has no `query`; give the GraphQL document to run")
    })
}

/// A query over GET (`?query=…&variables=…`); mutations are refused.
/// Without a query string: GraphiQL, where enabled. With
/// `Upgrade: websocket`: subscriptions (graphql-transport-ws).
#[utoipa::path(
    tag = "graphql",
    params(
        ("query" = Option<String>, Query, description = "The GraphQL document"),
        ("variables" = Option<String>, Query, description = "The variables as JSON"),
        ("operationName" = Option<String>, Query),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The result, or GraphiQL", content(
            (GraphqlResponse = "application/json"),
            (GraphqlResponse = "application/graphql-response+json"),
            (String = "text/html"),
        )),
        (status = 400, description = "The query string is not a GraphQL request", content(
            (GraphqlErrors = "application/json"),
            (GraphqlErrors = "application/graphql-response+json"),
        )),
        (status = 401, description = "A bad credential", body = GraphqlErrors),
        (status = 405, description = "A mutation over GET, or no query where GraphiQL is off", body = GraphqlErrors),
        (status = 413, description = "The body is larger than `graphql.maxBodyBytes`", body = GraphqlErrors),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = GraphqlErrors),
    )
)]
#[get("/graphql")]
async fn graphql_get(req: HttpRequest, payload: web::Payload, state: web::Data<ServerState>, request_id: RequestId) -> HttpResponse {
    let upgrade = req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if upgrade.eq_ignore_ascii_case("websocket") {
        return match crate::graphql_ws::start(req, payload, state, request_id).await {
            Ok(res) => res,
            Err(e) => HttpResponse::from_error(e),
        };
    }
    let query_string = req.query_string();
    if query_string.is_empty() {
        if state.app.settings().graphql.graphiql {
            let html = async_graphql::http::GraphiQLSource::build().endpoint("/graphql").finish();
            return HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html);
        }
        return http_error(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::BadUserInput, "send GraphQL requests as POST to /graphql");
    }
    let gql_request = match async_graphql::http::parse_query_string(query_string) {
        Ok(r) => r,
        Err(e) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!("the query string is not a GraphQL request: {e}"),
            );
        }
    };
    if let Some(refused) = missing_query(&gql_request) {
        return refused;
    }
    // Mutations over GET could be triggered by a link or an <img>: refused
    // before anything runs.
    if is_mutation(&gql_request) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(
                json!({ "errors": [{ "message": "mutations are only accepted over POST", "extensions": { "code": "BAD_USER_INPUT" } }] }),
            );
    }
    execute(&req, &state, gql_request, request_id).await
}

/// A file upload: the caller is authenticated, allowed to upload and has
/// room for the declared size *before* a byte of the body is read, so an
/// anonymous or over-quota client cannot make the server write its file.
async fn upload(req: &HttpRequest, payload: web::Payload, content_type: &str, state: &ServerState, request_id: RequestId) -> HttpResponse {
    let settings = state.app.settings();
    if let Some(refused) = crate::uploads::refuse_multipart_headers(req, settings) {
        return refused;
    }
    let meta: RequestMeta = request::meta(req, settings.server.trust_forwarded_for, request_id.to_string());
    let refuse = |e: AppError| refused(e, &meta);
    let principal = match authenticate(req, state, &meta).await {
        Ok(Some(p)) => p,
        Ok(None) => return refuse(AppError::unauthenticated("sign in (Authorization: Bearer <token or API key>) before uploading a file")),
        Err(e) => return refuse(e),
    };
    if let Err(e) = state.app.admit_request(&meta, Some(&principal)).await {
        return refuse(e);
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Err(e) = state.app.precheck_upload(&principal, declared).await {
        return refuse(e);
    }
    match crate::uploads::parse_multipart(req, payload, content_type, settings).await {
        Ok(gql_request) => run(req, state, gql_request, meta, Ok(Some(principal))).await,
        Err(response) => response,
    }
}

/// An error answered before GraphQL runs: its status from the error
/// table, `Retry-After` when rate limited, the body in GraphQL's shape.
fn refused(e: AppError, meta: &RequestMeta) -> HttpResponse {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    if e.code == ErrorCode::Internal {
        tracing::error!(request_id = %meta.request_id, error = %e, "a request could not be checked");
    }
    let mut res = http_error(status, e.code, e.public_message());
    if let Some(secs) = e.retry_after_secs
        && let Ok(value) = header::HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, value);
    }
    res
}

/// The caller of a request, from its bearer credential (none: anonymous).
async fn authenticate(req: &HttpRequest, state: &ServerState, meta: &RequestMeta) -> Result<Option<tenfold_app::Principal>, AppError> {
    match request::bearer(req) {
        Ok(None) => Ok(None),
        Ok(Some(credential)) => state.app.authenticate(&credential, meta.clone()).await.map(Some),
        Err(e) => Err(e),
    }
}

fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return false };
    doc.operations.iter().any(|(name, op)| {
        let selected = match (&request.operation_name, name) {
            (Some(wanted), Some(name)) => wanted.as_str() == name.as_str(),
            _ => true,
        };
        selected && op.node.ty != OperationType::Query
    })
}

async fn execute(req: &HttpRequest, state: &ServerState, gql_request: async_graphql::Request, request_id: RequestId) -> HttpResponse {
    let settings = state.app.settings();
    let meta: RequestMeta = request::meta(req, settings.server.trust_forwarded_for, request_id.to_string());
    let principal = authenticate(req, state, &meta).await;
    if let Err(e) = state.app.admit_request(&meta, principal.as_ref().ok().and_then(Option::as_ref)).await {
        return refused(e, &meta);
    }
    run(req, state, gql_request, meta, principal).await
}

async fn run(
    req: &HttpRequest,
    state: &ServerState,
    gql_request: async_graphql::Request,
    meta: RequestMeta,
    principal: Result<Option<tenfold_app::Principal>, AppError>,
) -> HttpResponse {
    // Admitted by the caller (an upload is admitted before its body is read).
    let settings = state.app.settings();
    if let Err(e) = &principal
        && e.code == ErrorCode::Internal
    {
        // The credential could not be checked at all: say so as INTERNAL.
        let err = to_graphql_error(AppError::internal(anyhow::anyhow!("{e}")), Some(&meta.request_id));
        return respond(req, Response::from_errors(vec![err.into_server_error(Default::default())]), Outcome::NotRun);
    }
    let request_id_text = meta.request_id.clone();
    let gql_request = gql_request.data(RequestAuth { meta, principal });
    let budget = Duration::from_secs(settings.graphql.timeout_seconds);
    let (response, outcome) = match tokio::time::timeout(budget, state.schema.execute(gql_request)).await {
        Ok(response) => (response, Outcome::Executed),
        Err(_) => {
            tracing::warn!(request_id = %request_id_text, "graphql operation timed out");
            let mut ext = ErrorExtensionValues::default();
            ext.set("code", ErrorCode::Internal.as_str());
            let mut err = async_graphql::ServerError::new(
                format!("the operation took longer than {} seconds and was stopped", budget.as_secs()),
                None,
            );
            err.extensions = Some(ext);
            (Response::from_errors(vec![err]), Outcome::NotRun)
        }
    };
    respond(req, response, outcome)
}

/// Whether the schema ran the request (its errors may be request errors),
/// or the server answered for it (a timeout, a credential check).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Executed,
    NotRun,
}

fn respond(req: &HttpRequest, response: Response, outcome: Outcome) -> HttpResponse {
    let retry_after = response
        .errors
        .iter()
        .filter_map(|e| e.extensions.as_ref()?.get("retryAfter").cloned())
        .filter_map(|v| match v {
            Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    for e in &response.errors {
        let code = e.extensions.as_ref().and_then(|x| x.get("code")).map(|v| v.to_string()).unwrap_or_else(|| "\"VALIDATION\"".into());
        metrics::counter!("tenfold_graphql_errors_total", "code" => code.trim_matches('"').to_owned()).increment(1);
    }
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(secs) = retry_after {
        builder.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    let wants_graphql_json =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/graphql-response+json"));
    // A request error (the document does not parse or validate, variables
    // do not coerce) ran nothing: no error has a path and there is no data.
    // GraphQL over HTTP: with the newer media type that is a 400 without a
    // `data` entry; with application/json it stays a 200 for older clients.
    let request_error = outcome == Outcome::Executed
        && response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if wants_graphql_json && request_error {
        builder.status(StatusCode::BAD_REQUEST);
        builder.content_type("application/graphql-response+json");
        return builder.json(json!({ "errors": response.errors }));
    }
    builder.content_type(if wants_graphql_json { "application/graphql-response+json" } else { "application/json" });
    builder.json(response)
}
