//! Customer-service chat: OpenAI chat fine-tuning JSONL
//! (`{"messages": [{"role", "content"}], "intent"?}` per line) and intent
//! tables (`text,intent[,response]` CSV).

use crate::ProblemCode;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use serde::Serialize;
use serde_json::Value;

use crate::splits::{DEFAULT_SEED, plan};
use crate::text::{BoundedLines, Line, LineCapReader, RecordStep, next_record};
use crate::{Limits, Problems, Report};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatStats {
    pub conversations: u64,
    pub messages: u64,
    /// Messages per role.
    pub roles: BTreeMap<String, u64>,
    /// A rough token count (words and punctuation marks); the chat family's
    /// tokenizer gives exact counts.
    pub approx_tokens: u64,
    /// Conversations (or rows) per intent.
    pub intents: BTreeMap<String, u64>,
    pub with_response: u64,
}

const ROLES: [&str; 3] = ["system", "user", "assistant"];
const FIX_JSONL: &str = "write one JSON object per line: {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}, {\"role\": \"assistant\", \"content\": \"…\"}]}";
const FIX_ROLE: &str = "use the roles system, user and assistant";
const FIX_ENCODING: &str = "save the file as UTF-8";

fn approx_tokens(text: &str) -> u64 {
    text.split_whitespace().map(|w| 1 + w.chars().filter(|c| c.is_ascii_punctuation()).count() as u64).sum()
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Validates chat JSONL line by line; memory stays bounded by one line.
pub fn validate_chat_jsonl(reader: impl BufRead, limits: &Limits) -> Report<ChatStats> {
    let mut errors = Problems::default();
    let mut stats = ChatStats::default();
    let mut lines = BoundedLines::new(reader, limits.max_line_bytes);
    let mut preview = Vec::new();
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                errors.push(
                    format!("line {}", lines.number + 1),
                    ProblemCode::Unreadable,
                    format!("the file could not be read: {e}"),
                    FIX_JSONL,
                );
                break;
            }
        };
        let at = format!("line {}", lines.number);
        let text = match line {
            Line::Text(t) => t,
            Line::TooLong => {
                errors.push(
                    at,
                    ProblemCode::LineTooLong,
                    format!("the line is longer than {} bytes", limits.max_line_bytes),
                    "split long conversations; one conversation per line",
                );
                continue;
            }
            Line::NotUtf8 { valid_up_to } => {
                errors.push(format!("{at}, column {}", valid_up_to + 1), ProblemCode::NotUtf8, "the line is not valid UTF-8", FIX_ENCODING);
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) if e.to_string().contains("recursion limit") => {
                errors.push(
                    at,
                    ProblemCode::JsonTooDeep,
                    format!("the JSON is nested more than {} levels deep", limits.max_json_depth),
                    FIX_JSONL,
                );
                continue;
            }
            Err(e) => {
                errors.push(
                    format!("{at}, column {}", e.column()),
                    ProblemCode::InvalidJson,
                    format!("the line is not valid JSON: {e}"),
                    FIX_JSONL,
                );
                continue;
            }
        };
        if depth(&value) > limits.max_json_depth {
            errors.push(
                at,
                ProblemCode::JsonTooDeep,
                format!("the JSON is nested more than {} levels deep", limits.max_json_depth),
                FIX_JSONL,
            );
            continue;
        }
        let before = stats.conversations;
        check_conversation(&value, &at, limits, &mut errors, &mut stats);
        if stats.conversations > before && preview.len() < 5 {
            preview.push(truncated(&value));
        }
    }
    if stats.conversations == 0 && errors.total() == 0 {
        errors.push("line 1", ProblemCode::NoConversations, "the file has no conversations", FIX_JSONL);
    }
    finish(stats, errors, preview)
}

fn check_conversation(value: &Value, at: &str, limits: &Limits, errors: &mut Problems, stats: &mut ChatStats) {
    let Some(messages) = value.get("messages").and_then(Value::as_array) else {
        errors.push(at, ProblemCode::MissingMessages, "the object has no \"messages\" array", FIX_JSONL);
        return;
    };
    if messages.is_empty() {
        errors.push(at, ProblemCode::EmptyConversation, "\"messages\" is empty", FIX_JSONL);
        return;
    }
    let before = errors.total();
    let mut has_assistant = false;
    let mut tokens = 0;
    let mut roles = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let where_ = format!("{at}, message {}", i + 1);
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").and_then(Value::as_str);
        match role {
            Some(r) if ROLES.contains(&r) => roles.push(r),
            Some(r) => {
                errors.push(where_.clone(), ProblemCode::UnknownRole, format!("the role {r:?} is unknown"), FIX_ROLE);
                continue;
            }
            None => {
                errors.push(where_.clone(), ProblemCode::MissingRole, "the message has no \"role\" string", FIX_ROLE);
                continue;
            }
        }
        has_assistant |= role == Some("assistant");
        match content {
            Some(c) if c.trim().is_empty() => {
                errors.push(where_, ProblemCode::EmptyContent, "the message content is empty", "give every message some text")
            }
            Some(c) if c.len() > limits.max_message_bytes => errors.push(
                where_,
                ProblemCode::ContentTooLong,
                format!("the message is longer than {} bytes", limits.max_message_bytes),
                "shorten the message",
            ),
            Some(c) => tokens += approx_tokens(c),
            None => errors.push(where_, ProblemCode::MissingContent, "the message has no \"content\" string", FIX_JSONL),
        }
    }
    if !has_assistant && errors.total() == before {
        errors.push(
            at,
            ProblemCode::NoAssistantMessage,
            "the conversation has no assistant message to learn from",
            "end each conversation with the reply the model should give",
        );
    }
    let intent = match value.get("intent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push(
                at,
                ProblemCode::InvalidIntent,
                "\"intent\" must be a non-empty string",
                "write the intent as a string, e.g. \"refund\"",
            );
            return;
        }
    };
    if errors.total() == before {
        stats.conversations += 1;
        stats.messages += roles.len() as u64;
        stats.approx_tokens += tokens;
        for r in roles {
            *stats.roles.entry(r.to_owned()).or_default() += 1;
        }
        if let Some(intent) = intent {
            *stats.intents.entry(intent).or_default() += 1;
        }
    }
}

/// A conversation for the preview, each message cut to 200 characters.
fn truncated(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(messages) = v.get_mut("messages").and_then(Value::as_array_mut) {
        for m in messages {
            if let Some(Value::String(c)) = m.get_mut("content")
                && c.chars().count() > 200
            {
                *c = c.chars().take(200).collect::<String>() + "…";
            }
        }
    }
    v
}

/// Stratified by intent (conversations without one form their own group).
fn finish(stats: ChatStats, errors: Problems, preview: Vec<Value>) -> Report<ChatStats> {
    let untagged = stats.conversations - stats.intents.values().sum::<u64>().min(stats.conversations);
    let groups: Vec<u64> = stats.intents.values().copied().chain((untagged > 0).then_some(untagged)).collect();
    let splits = Some(plan(DEFAULT_SEED, "stratified", groups.into_iter()));
    Report { stats, errors, warnings: Problems::default(), preview: serde_json::json!({ "conversations": preview }), splits }
}

/// Validates an intent table in JSONL: `{"text", "intent", "response"?}` per line.
pub fn validate_intents_jsonl(reader: impl BufRead, limits: &Limits) -> Report<ChatStats> {
    let fix = "write one object per line: {\"text\": \"…\", \"intent\": \"…\", \"response\": \"…\"}";
    let mut errors = Problems::default();
    let mut stats = ChatStats::default();
    let mut preview = Vec::new();
    let mut lines = BoundedLines::new(reader, limits.max_line_bytes);
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                errors.push(format!("line {}", lines.number + 1), ProblemCode::Unreadable, format!("the file could not be read: {e}"), fix);
                break;
            }
        };
        let at = format!("line {}", lines.number);
        let text = match line {
            Line::Text(t) if t.trim().is_empty() => continue,
            Line::Text(t) => t,
            Line::TooLong => {
                errors.push(at, ProblemCode::LineTooLong, format!("the line is longer than {} bytes", limits.max_line_bytes), fix);
                continue;
            }
            Line::NotUtf8 { valid_up_to } => {
                errors.push(format!("{at}, column {}", valid_up_to + 1), ProblemCode::NotUtf8, "the line is not valid UTF-8", FIX_ENCODING);
                continue;
            }
        };
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) if depth(&v) <= limits.max_json_depth => v,
            Ok(_) => {
                errors.push(
                    at,
                    ProblemCode::JsonTooDeep,
                    format!("the JSON is nested more than {} levels deep", limits.max_json_depth),
                    fix,
                );
                continue;
            }
            Err(e) => {
                let code = if e.to_string().contains("recursion limit") { ProblemCode::JsonTooDeep } else { ProblemCode::InvalidJson };
                errors.push(at, code, format!("the line is not valid JSON: {e}"), fix);
                continue;
            }
        };
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let (Some(text), Some(intent)) = (field("text"), field("intent")) else {
            errors.push(at, ProblemCode::EmptyField, "\"text\" and \"intent\" must be non-empty strings", fix);
            continue;
        };
        stats.conversations += 1;
        stats.messages += 1;
        stats.approx_tokens += approx_tokens(text);
        *stats.intents.entry(intent.to_owned()).or_default() += 1;
        if field("response").is_some() {
            stats.with_response += 1;
        }
        if preview.len() < 5 {
            preview.push(value.clone());
        }
    }
    if stats.conversations == 0 && errors.total() == 0 {
        errors.push("line 1", ProblemCode::NoRows, "the file has no rows", fix);
    }
    finish(stats, errors, preview)
}

/// Validates an intent table: CSV with a header `text,intent[,response]`.
pub fn validate_intents_csv(reader: impl Read, limits: &Limits) -> Report<ChatStats> {
    let mut errors = Problems::default();
    let mut stats = ChatStats::default();
    let mut csv =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(LineCapReader::new(reader, limits.max_line_bytes));
    let mut record = csv::ByteRecord::new();
    let fix = "start with the header text,intent[,response] and give each row those columns";
    let header: Vec<String> = match csv.read_byte_record(&mut record) {
        Ok(true) => record.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase()).collect(),
        _ => {
            errors.push("line 1", ProblemCode::EmptyFile, "the file is empty or unreadable", fix);
            return finish(stats, errors, Vec::new());
        }
    };
    let (Some(text_col), Some(intent_col)) = (header.iter().position(|h| h == "text"), header.iter().position(|h| h == "intent")) else {
        errors.push(
            "line 1",
            ProblemCode::MissingColumns,
            format!("the header must name text and intent; it has: {}", header.join(", ")),
            fix,
        );
        return finish(stats, errors, Vec::new());
    };
    let response_col = header.iter().position(|h| h == "response");
    let mut preview = Vec::new();
    loop {
        let line = match next_record(&mut csv, &mut record, header.len(), limits.max_line_bytes, &mut errors, fix) {
            RecordStep::Row(line) => line,
            RecordStep::Skip => continue,
            RecordStep::End => break,
        };
        let Ok(fields) = record.iter().map(std::str::from_utf8).collect::<Result<Vec<_>, _>>() else {
            errors.push(format!("line {line}"), ProblemCode::NotUtf8, "the row is not valid UTF-8", FIX_ENCODING);
            continue;
        };
        let (text, intent) = (fields[text_col].trim(), fields[intent_col].trim());
        if text.is_empty() || intent.is_empty() {
            errors.push(format!("line {line}"), ProblemCode::EmptyField, "text and intent must not be empty", fix);
            continue;
        }
        stats.conversations += 1;
        stats.messages += 1;
        stats.approx_tokens += approx_tokens(text);
        if preview.len() < 5 {
            preview.push(serde_json::json!({ "text": text, "intent": intent, "response": response_col.map(|c| fields[c].trim()) }));
        }
        *stats.intents.entry(intent.to_owned()).or_default() += 1;
        if response_col.is_some_and(|c| !fields[c].trim().is_empty()) {
            stats.with_response += 1;
        }
    }
    if stats.conversations == 0 && errors.total() == 0 {
        errors.push("line 2", ProblemCode::NoRows, "the table has a header but no rows", fix);
    }
    finish(stats, errors, preview)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(input: &str) -> Report<ChatStats> {
        validate_chat_jsonl(input.as_bytes(), &Limits::default())
    }

    #[test]
    fn counts_conversations_messages_and_intents() {
        let r = jsonl(concat!(
            r#"{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Where is my order?"},{"role":"assistant","content":"Let me check."}],"intent":"order_status"}"#,
            "\n",
            r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]}"#,
            "\n"
        ));
        assert!(r.is_valid(), "{:?}", r.errors);
        assert_eq!((r.stats.conversations, r.stats.messages), (2, 5));
        assert_eq!(r.stats.intents.get("order_status"), Some(&1));
        assert_eq!(r.stats.roles.get("assistant"), Some(&2));
    }

    #[test]
    fn unknown_roles_bad_json_and_deep_nesting_are_refused_with_places() {
        let r = jsonl("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}\n");
        assert_eq!(r.errors.first()[0].code, "unknown_role");
        assert_eq!(r.errors.first()[0].location, "line 1, message 1");
        let r = jsonl("{\"messages\": [\n");
        assert_eq!(r.errors.first()[0].code, "invalid_json");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(jsonl(&deep).errors.first()[0].code, "json_too_deep");
        let moderately_deep = format!("{{\"messages\":[], \"x\": {}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(jsonl(&moderately_deep).errors.first()[0].code, "json_too_deep");
        assert!(jsonl("{\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}").errors.has("no_assistant_message"));
        let bad = b"{\"messages\":[]}\n\xFF\xFF\n";
        assert!(validate_chat_jsonl(&bad[..], &Limits::default()).errors.has("not_utf8"));
    }

    #[test]
    fn intent_tables_in_jsonl() {
        let r = validate_intents_jsonl(
            "{\"text\":\"Where is my parcel?\",\"intent\":\"order_status\"}\n{\"text\":\"\",\"intent\":\"x\"}\n".as_bytes(),
            &Limits::default(),
        );
        assert_eq!(r.stats.intents.get("order_status"), Some(&1));
        assert!(r.errors.has("empty_field"));
    }

    #[test]
    fn intent_tables() {
        let r = validate_intents_csv(
            "text,intent,response\nWhere is my parcel?,order_status,Let me check\nHi,greeting,\n".as_bytes(),
            &Limits::default(),
        );
        assert!(r.is_valid(), "{:?}", r.errors);
        assert_eq!(r.stats.intents.len(), 2);
        assert_eq!(r.stats.with_response, 1);
        let r = validate_intents_csv("text,label\nx,y\n".as_bytes(), &Limits::default());
        assert!(r.errors.has("missing_columns"));
    }
}
