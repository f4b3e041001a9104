//! The wire shapes of the REST routes' bodies, for the OpenAPI document.
//! Handlers write these shapes (most with `json!`); schemathesis in the
//! test suite checks every answer against them, so they cannot drift
//! unnoticed. The inference request's own types (`v2::tensor`) carry
//! their schemas themselves.

use serde::Serialize;
use serde_json::Value;
use tenfold_app::ErrorCode;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// `ErrorCode` as a string enum, from the one error table.
pub fn error_code() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.map(ErrorCode::as_str)))
        .description(Some("The error table's code (GraphQL `extensions.code`)"))
}

/// Liveness and readiness.
#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (alive), `ready`, or `unavailable`.
    #[schema(pattern = "^(ok|ready|unavailable)$")]
    pub status: String,
}

/// A `/v1` error: `{"error": {…}}`.
#[derive(Serialize, ToSchema)]
pub struct RestError {
    pub error: RestErrorBody,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestErrorBody {
    #[schema(schema_with = error_code)]
    pub code: String,
    /// What went wrong and what to change.
    pub message: String,
    /// Quote it to support; absent when refused before the request had one.
    pub request_id: Option<String>,
    /// The kind of CONFLICT (`CHECKSUM_MISMATCH`, `UPLOAD_OFFSET_MISMATCH`, …).
    pub reason: Option<String>,
    /// The input at fault, for BAD_USER_INPUT.
    pub field: Option<String>,
}

/// An Open Inference Protocol error: `{"error": "…"}`.
#[derive(Serialize, ToSchema)]
pub struct InferenceError {
    pub error: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServerLive {
    pub live: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ServerReady {
    pub ready: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

/// A tensor a model takes or gives.
#[derive(Serialize, ToSchema)]
pub struct TensorMetadata {
    pub name: String,
    /// `BYTES`, `FP32`, `UINT8`, …
    pub datatype: String,
    /// -1 for a dimension of any size.
    pub shape: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelMetadata {
    /// The endpoint's slug.
    pub name: String,
    /// The version it serves now.
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
    /// The family's facts: architecture, classes in output order.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

/// One output of an answer: `data` inline, or `parameters.binary_data_size`
/// bytes of the binary section.
#[derive(Serialize, ToSchema)]
pub struct InferOutput {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<u64>,
    /// Row-major values: numbers, or strings for BYTES.
    #[schema(value_type = Option<Vec<Value>>)]
    pub data: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: Option<String>,
    pub outputs: Vec<InferOutput>,
}

/// A GraphQL request over HTTP (GraphQL over HTTP, application/json).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequest {
    /// The GraphQL document.
    pub query: String,
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    pub operation_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct GraphqlError {
    pub message: String,
    #[schema(value_type = Option<Vec<Object>>)]
    pub locations: Option<Value>,
    /// Field names and list indices.
    #[schema(value_type = Option<Vec<Value>>)]
    pub path: Option<Value>,
    /// `code` from the error table, and `reason`, `field`, `retryAfter` where they apply.
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Value>,
}

/// A GraphQL answer; the schema itself is GraphQL's (introspection, `schema.graphql`).
#[derive(Serialize, ToSchema)]
pub struct GraphqlResponse {
    #[schema(value_type = Option<Value>)]
    pub data: Option<Value>,
    pub errors: Option<Vec<GraphqlError>>,
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Value>,
}

/// A GraphQL request refused before it ran.
#[derive(Serialize, ToSchema)]
pub struct GraphqlErrors {
    pub errors: Vec<GraphqlError>,
}
