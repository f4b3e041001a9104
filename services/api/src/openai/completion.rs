//! `POST /v1/chat/completions`: one conversation in, the model's reply out,
//! as one JSON body or as server-sent events.
//!
//! The body names the endpoint (`model`), so the credential is checked
//! before the body is read, and the endpoint routed after.

use std::time::Instant;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde_json::{Value, json};
use tenfold_app::{AppError, ErrorCode, Invocation};
use tenfold_domain::Family;
use tenfold_serving::ServeInput;
use tracing_actix_web::RequestId;

use super::wire::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice, Delta, IntentScore,
    MessageContent, OpenAiError, OpenAiErrorBody, Role, Routing, Usage,
};
use super::{MAX_BODY_BYTES, error};
use crate::{ServerState, gateway, request};

/// Messages a request may hold (the model reads its last few user turns).
const MAX_MESSAGES: usize = 256;

/// Answers a conversation with the endpoint's chat model: the approved
/// reply of the predicted intent most like the customer's message, or the
/// hand-over message (`tenfold.handoff`) when the model is unsure or
/// cannot read it. Counted once per `Idempotency-Key`.
#[utoipa::path(
    tag = "chat",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key is counted once")),
    request_body = ChatCompletionRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reply; with `stream: true`, server-sent `chat.completion.chunk` events ending with `data: [DONE]`", content(
            (ChatCompletion = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "The request is not a chat completion this endpoint can answer; the message says what to fix", body = OpenAiError),
        (status = 401, description = "No or a bad credential", body = OpenAiError),
        (status = 402, description = "Over the plan's or the customer key's monthly quota", body = OpenAiError),
        (status = 403, description = "The credential may not call this endpoint", body = OpenAiError),
        (status = 404, description = "No endpoint of that slug", body = OpenAiError),
        (status = 409, description = "The Idempotency-Key was used for another request", body = OpenAiError),
        (status = 413, description = "The body is over 1 MiB", body = OpenAiError),
        (status = 429, description = "Over a rate limit, or the model's queue is full; `Retry-After` says when to retry", body = OpenAiError, headers(("Retry-After" = u64))),
        (status = 503, description = "Paused, loading too long, or metering unavailable", body = OpenAiError),
    )
)]
#[post("/v1/chat/completions")]
pub async fn chat_completions(req: HttpRequest, payload: web::Payload, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let started = Instant::now();
    let request_id = rid.to_string();
    // The credential first: an unauthenticated caller's bytes are never taken in.
    let meta = request::meta(&req, state.app.settings().server.trust_forwarded_for, request_id.clone());
    let checked = async {
        let credential = request::bearer(&req)?;
        state.app.check_caller(credential.as_deref(), meta).await
    };
    if let Err(e) = checked.await {
        return error(&e, &request_id);
    }
    let body = match request::read_body(&req, payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return body_error(&e),
    };
    let chat = match parse(&body) {
        Ok(chat) => chat,
        Err(e) => return error(&e, &request_id),
    };
    let (inv, idempotency_key) = match gateway::admit(&req, &state, &chat.model, &request_id, &[Family::Chat]).await {
        Ok(admitted) => admitted,
        Err(e) => return error(&not_found_as_model(e, &chat.model), &request_id),
    };
    let mut admission = None;
    let result = answer(&chat, &state, &inv, &mut admission).await;
    let outcome = gateway::Outcome { inv: &inv, idempotency_key: idempotency_key.as_deref(), started, admission };
    let answered = result
        .as_ref()
        .map(|a| (&a.answer, gateway::Used { images: 0, input_tokens: a.usage.prompt_tokens, output_tokens: a.usage.completion_tokens }));
    let recorded = outcome.record(&state, answered).await;
    let answered = match result {
        Ok(ok) => ok,
        Err(e) => return error(&e, &request_id),
    };
    // An answer that is not counted is not given.
    if let Err(e) = recorded {
        return error(&e, &request_id);
    }
    let reply =
        Reply { id: format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()), created: chrono::Utc::now().timestamp(), model: inv.slug };
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store")).insert_header(("Tenfold-Model-Version", inv.version.to_string()));
    if chat.stream.unwrap_or(false) {
        let include_usage = chat.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        let events = reply.events(answered, include_usage);
        res.insert_header(("X-Accel-Buffering", "no"))
            .content_type("text/event-stream")
            .streaming(futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>)))
    } else {
        res.json(reply.completion(answered))
    }
}

/// A missing endpoint in OpenAI's words, pointing at the listing.
fn not_found_as_model(e: AppError, slug: &str) -> AppError {
    if e.code != ErrorCode::NotFound {
        return e;
    }
    AppError { message: format!("the model {slug:?} does not exist; GET /v1/models lists the chat endpoints this key may call"), ..e }
}

/// A body too large (413) or unreadable (400), in OpenAI's shape.
fn body_error(e: &request::BodyError) -> HttpResponse {
    let message = match e {
        request::BodyError::TooLarge(_) => format!("{}; send the conversation's recent turns only", e.message()),
        request::BodyError::Unreadable(_) => e.message(),
    };
    HttpResponse::build(e.status())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(OpenAiError { error: OpenAiErrorBody { message, kind: "invalid_request_error", param: None, code: None } })
}

/// The request, its JSON checked against the shape.
fn parse(body: &[u8]) -> Result<ChatCompletionRequest, AppError> {
    serde_json::from_slice::<ChatCompletionRequest>(body)
        .map_err(|e| AppError::bad_input("body", format!("the body is not a chat completion request: {e}")))
}

/// The conversation as the chat model takes it: each message's text.
fn conversation(chat: &ChatCompletionRequest) -> Result<Value, AppError> {
    if chat.messages.is_empty() || chat.messages.len() > MAX_MESSAGES {
        return Err(AppError::bad_input(
            "messages",
            format!("send 1–{MAX_MESSAGES} messages (the model reads the last user turns), got {}", chat.messages.len()),
        ));
    }
    if let Some(n) = chat.n
        && n != 1
    {
        return Err(AppError::bad_input("n", format!("this model gives one reply per request; set n to 1 (got {n})")));
    }
    if chat.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(AppError::bad_input(
            "tools",
            "this model answers with the team's approved replies and calls no tools; leave tools out",
        ));
    }
    let mut messages = Vec::with_capacity(chat.messages.len());
    for (i, message) in chat.messages.iter().enumerate() {
        messages.push(json!({ "role": role_name(message.role), "content": text_of(i, message)? }));
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return Err(AppError::bad_input("messages", "the conversation has no user message; add the customer's message with role \"user\""));
    }
    Ok(json!({ "messages": messages }))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// A message's text: its content, or its text parts joined.
fn text_of(i: usize, message: &ChatMessage) -> Result<String, AppError> {
    let text = match &message.content {
        None => String::new(),
        Some(MessageContent::Text(text)) => text.clone(),
        Some(MessageContent::Parts(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for part in parts {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(text)) => texts.push(text.as_str()),
                    ("text", None) => return Err(AppError::bad_input("messages", format!("messages[{i}]: a text part needs its text"))),
                    (other, _) => {
                        return Err(AppError::bad_input(
                            "messages",
                            format!("messages[{i}]: this model reads text only, not {other:?} parts; send the message as text"),
                        ));
                    }
                }
            }
            texts.join("\n")
        }
    };
    if message.role == Role::User && text.trim().is_empty() {
        return Err(AppError::bad_input("messages", format!("messages[{i}] is an empty user message; send the customer's words")));
    }
    Ok(text)
}

/// The model's answer to a conversation.
struct Answered {
    /// The approved reply, or the hand-over message.
    reply: String,
    routing: Routing,
    usage: Usage,
    answer: tenfold_serving::Answer,
}

/// Runs the conversation through the endpoint's model.
async fn answer(
    chat: &ChatCompletionRequest,
    state: &ServerState,
    inv: &Invocation,
    admission: &mut Option<tenfold_app::Admission>,
) -> Result<Answered, AppError> {
    let conversation = conversation(chat)?;
    *admission = Some(state.app.reserve_quotas(inv, 0).await?);
    let served = state.app.served_version(inv.org, inv.version).await?;
    let answer = state.runtime.infer(&gateway::target(inv), vec![ServeInput::Json(conversation)]).await.map_err(gateway::serve_error)?;
    let [output] = answer.outputs.as_slice() else {
        return Err(AppError::internal(anyhow::anyhow!("the chat model gave {} answers to one conversation", answer.outputs.len())));
    };
    let routing = routing(output, &served.number.to_string())?;
    let count = |key: &str| output[key].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    let (prompt_tokens, completion_tokens) = (count("tokens"), count("reply_tokens"));
    let usage = Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens.saturating_add(completion_tokens) };
    let reply = output["reply"].as_str().unwrap_or_default().to_owned();
    Ok(Answered { reply, routing, usage, answer })
}

/// The chat family's answer (`tenfold_ml::chat::Answer`) as our field.
fn routing(output: &Value, version: &str) -> Result<Routing, AppError> {
    let broken = || AppError::internal(anyhow::anyhow!("the chat model's answer lacks its fields: {output}"));
    let intents = output["intents"]
        .as_array()
        .ok_or_else(broken)?
        .iter()
        .filter_map(|pair| Some(IntentScore { intent: pair[0].as_str()?.to_owned(), probability: pair[1].as_f64()? }))
        .collect();
    Ok(Routing {
        intent: output["intent"].as_str().ok_or_else(broken)?.to_owned(),
        confidence: output["confidence"].as_f64().ok_or_else(broken)?,
        handoff: output["handoff"].as_bool().ok_or_else(broken)?,
        unreadable: output["unreadable"].as_bool().unwrap_or(false),
        intents,
        candidates: output["candidates"]
            .as_array()
            .map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        model_version: version.to_owned(),
    })
}

/// The reply's identity, shared by its JSON and its events.
struct Reply {
    id: String,
    created: i64,
    model: String,
}

impl Reply {
    fn completion(self, answered: Answered) -> ChatCompletion {
        ChatCompletion {
            id: self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage { role: "assistant", content: answered.reply },
                finish_reason: "stop",
            }],
            usage: answered.usage,
            tenfold: answered.routing,
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            tenfold: None,
        }
    }

    /// The reply as server-sent events: the role, the text word by word,
    /// the end (with the routing), the usage if asked, then `[DONE]`.
    fn events(self, answered: Answered, include_usage: bool) -> Vec<Bytes> {
        let delta = |role: Option<&'static str>, content: Option<String>, finish: Option<&'static str>| ChunkChoice {
            index: 0,
            delta: Delta { role, content },
            finish_reason: finish,
        };
        let mut chunks = vec![self.chunk(vec![delta(Some("assistant"), Some(String::new()), None)])];
        chunks.extend(answered.reply.split_inclusive(' ').map(|word| self.chunk(vec![delta(None, Some(word.to_owned()), None)])));
        let mut end = self.chunk(vec![delta(None, None, Some("stop"))]);
        end.tenfold = Some(answered.routing);
        chunks.push(end);
        if include_usage {
            let mut last = self.chunk(Vec::new());
            last.usage = Some(answered.usage);
            chunks.push(last);
        }
        let mut events: Vec<Bytes> =
            chunks.iter().map(|c| Bytes::from(format!("data: {}\n\n", serde_json::to_string(c).unwrap_or_else(|_| "{}".into())))).collect();
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events
    }
}
