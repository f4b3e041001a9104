//! OpenAI's chat completions and models wire shapes, as the `openai`
//! clients read them, plus Tenfold's routing facts (`tenfold`) where the
//! OpenAI shape has no field for them: clients keep unknown fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/chat/completions`. Sampling settings (`temperature`,
/// `top_p`, `max_tokens`, `seed`, `user`, …) are accepted and have no
/// effect: the model answers with one of the team's approved replies,
/// word for word.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "model": "support", "messages": [{ "role": "user", "content": "Where is my order?" }] }))]
pub struct ChatCompletionRequest {
    /// The endpoint's slug (`GET /v1/models` lists them).
    pub model: String,
    /// The conversation so far; its newest user turns are answered.
    #[schema(min_items = 1, max_items = 256)]
    pub messages: Vec<ChatMessage>,
    /// Answer as server-sent events (`chat.completion.chunk`), ending with `data: [DONE]`.
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Choices per request; only 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    /// Refused when not empty: the model calls no tools.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the request's token usage (and no choices).
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    pub role: Role,
    /// Text, or a list of text parts.
    #[serde(default)]
    pub content: Option<MessageContent>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A part of a message; only `text` parts are read.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    /// `text` (other kinds are refused).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// A chat completion (`stream` false).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-…`
    pub id: String,
    /// `chat.completion`
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    /// The endpoint's slug.
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    pub tenfold: Routing,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop`
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// `assistant`
    pub role: &'static str,
    /// The approved reply, or the hand-over message.
    pub content: String,
}

/// Tokens by the model's own tokenizer: what it read of the conversation
/// (within its window), and the reply as written.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// How the model routed the conversation (Tenfold's own field).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Routing {
    /// The predicted intent.
    pub intent: String,
    /// Its probability.
    pub confidence: f64,
    /// True when the reply is the hand-over message: the model was unsure,
    /// or could not read the message; a person should answer.
    pub handoff: bool,
    /// True when the model's vocabulary cannot read the message (another
    /// language, gibberish).
    pub unreadable: bool,
    /// The likeliest intents, best first.
    pub intents: Vec<IntentScore>,
    /// The intent's approved replies most like the message, best first.
    pub candidates: Vec<String>,
    /// The model version that answered (1, 2, … within its model).
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntentScore {
    pub intent: String,
    pub probability: f64,
}

/// One server-sent event of a streamed completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// `chat.completion.chunk`
    pub object: &'static str,
    pub created: i64,
    pub model: String,
    /// Empty in the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Only in the last chunk, with `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// In the chunk that ends the reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenfold: Option<Routing>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// An endpoint as a model (`GET /v1/models`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelObject {
    /// The endpoint's slug: the `model` of a chat completion.
    pub id: String,
    /// `model`
    pub object: &'static str,
    /// Unix seconds the endpoint was deployed.
    pub created: i64,
    pub owned_by: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// `list`
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

/// OpenAI's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiError {
    pub error: OpenAiErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// What went wrong and what to change.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `insufficient_quota`, `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `invalid_api_key`, …).
    pub code: Option<String>,
}
