//! The chat family's intent model in the Open Inference Protocol (its
//! conversations are answered by OpenAI's chat completions, `openai/`).
//!
//! Input (one tensor): `text`, BYTES `[N]` (or `[N, 1]`): UTF-8 messages,
//! a conversation's newest user turns joined by newlines. Outputs, one
//! element per message: `intent` BYTES, `confidence` FP32, `handoff` BOOL
//! (true: below the model's threshold, or unreadable to its vocabulary; a
//! person should answer) and `reply` BYTES (the approved reply, or the
//! hand-over message).

use serde_json::{Value, json};
use tenfold_app::ServedVersion;
use tenfold_serving::ServeInput;

use super::tensor::{InferRequest, Output, OutputData, Requested, TensorData, requested_outputs};

/// Messages one request may carry (more: split it into several requests).
pub const MAX_TEXTS: usize = 256;
pub const OUTPUTS: [&str; 4] = ["intent", "confidence", "handoff", "reply"];

pub fn metadata(slug: &str, served: &ServedVersion) -> Value {
    json!({
        "name": slug,
        "versions": [served.number.to_string()],
        "platform": "tenfold_chat",
        "inputs": [{ "name": "text", "datatype": "BYTES", "shape": [-1] }],
        "outputs": [
            { "name": "intent", "datatype": "BYTES", "shape": [-1] },
            { "name": "confidence", "datatype": "FP32", "shape": [-1] },
            { "name": "handoff", "datatype": "BOOL", "shape": [-1] },
            { "name": "reply", "datatype": "BYTES", "shape": [-1] },
        ],
        "parameters": { "architecture": served.architecture, "intents": served.classes },
    })
}

/// The request's messages as the model's inputs.
pub fn inputs(req: &InferRequest) -> Result<Vec<ServeInput>, String> {
    let [tensor] = req.inputs.as_slice() else {
        return Err(format!("a chat model takes one input tensor (text), got {}", req.inputs.len()));
    };
    let n = tensor.shape.first().copied().unwrap_or(0);
    if n == 0 || n > MAX_TEXTS {
        return Err(format!("input {:?}: send 1–{MAX_TEXTS} messages per request (the first dimension), got {n}", tensor.name));
    }
    if !(tensor.shape.len() == 1 || tensor.shape == [n, 1]) {
        return Err(format!("input {:?}: messages have shape [N] or [N, 1], got {:?}", tensor.name, tensor.shape));
    }
    let TensorData::Bytes(items) = &tensor.data else {
        return Err(format!("input {:?}: messages are BYTES (UTF-8 text)", tensor.name));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, bytes)| match std::str::from_utf8(bytes) {
            Ok(text) if !text.trim().is_empty() => Ok(ServeInput::Json(Value::String(text.to_owned()))),
            Ok(_) => Err(format!("message {i} is empty; send the customer's words")),
            Err(_) => Err(format!("message {i} is not UTF-8 text")),
        })
        .collect()
}

/// The requested outputs (all by default) from the model's answers
/// (`tenfold_ml::chat::Answer` each).
pub fn outputs(req: &InferRequest, answers: &[Value]) -> Result<Vec<(Output, bool)>, String> {
    let requested = requested_outputs(req, &OUTPUTS)?;
    let text = |key: &str| answers.iter().map(|a| a[key].as_str().unwrap_or_default().to_owned()).collect();
    let mut out = Vec::with_capacity(requested.len());
    for Requested { name, binary, .. } in requested {
        let data = match name {
            "intent" => OutputData::Bytes(text("intent")),
            "confidence" => OutputData::F32(answers.iter().map(|a| a["confidence"].as_f64().unwrap_or_default() as f32).collect()),
            "handoff" => OutputData::Bool(answers.iter().map(|a| a["handoff"].as_bool().unwrap_or(true)).collect()),
            _ => OutputData::Bytes(text("reply")),
        };
        out.push((Output { name, shape: vec![answers.len()], data }, binary));
    }
    Ok(out)
}

/// Tokens the model read and the replies' tokens, for metering.
pub fn tokens(answers: &[Value]) -> (u32, u32) {
    let sum = |key: &str| answers.iter().filter_map(|a| a[key].as_u64()).sum::<u64>();
    (u32::try_from(sum("tokens")).unwrap_or(u32::MAX), u32::try_from(sum("reply_tokens")).unwrap_or(u32::MAX))
}
