//! A recommender in the Open Inference Protocol (its own routes are
//! `/v1/endpoints/{slug}/recommendations`, `recommend/`).
//!
//! Input (one tensor): `user_id`, BYTES `[N]` (or `[N, 1]`), UTF-8 ids;
//! request parameters `num_results` (default 10, at most 500) and
//! `exclude_seen` (default true). Outputs: `item_ids` BYTES `[N, K]` and
//! `scores` FP32 `[N, K]`, best first (K = `num_results`; a shorter list —
//! a small or filtered catalogue — is padded with "" and 0), and
//! `cold_start` BOOL `[N]` (the user was unknown: the most popular items).

use crate::recommend::MAX_ID_CHARS;
use serde_json::{Value, json};
use tenfold_app::ServedVersion;
use tenfold_serving::ServeInput;

use super::tensor::{InferRequest, Output, OutputData, Requested, TensorData, requested_outputs};

/// Users one request may carry.
pub const MAX_USERS: usize = 256;
const DEFAULT_RESULTS: u64 = 10;
const MAX_RESULTS: u64 = 500;
pub const OUTPUTS: [&str; 3] = ["item_ids", "scores", "cold_start"];

pub fn metadata(slug: &str, served: &ServedVersion) -> Value {
    json!({
        "name": slug,
        "versions": [served.number.to_string()],
        "platform": "tenfold_recommendation",
        "inputs": [{ "name": "user_id", "datatype": "BYTES", "shape": [-1] }],
        "outputs": [
            { "name": "item_ids", "datatype": "BYTES", "shape": [-1, -1] },
            { "name": "scores", "datatype": "FP32", "shape": [-1, -1] },
            { "name": "cold_start", "datatype": "BOOL", "shape": [-1] },
        ],
        "parameters": { "architecture": served.architecture, "num_results": { "default": DEFAULT_RESULTS, "max": MAX_RESULTS } },
    })
}

fn num_results(req: &InferRequest) -> Result<u64, String> {
    match req.parameters.get("num_results") {
        None => Ok(DEFAULT_RESULTS),
        Some(v) => match v.as_u64() {
            Some(n @ 1..=MAX_RESULTS) => Ok(n),
            _ => Err(format!("parameter num_results is a whole number from 1 to {MAX_RESULTS}, got {v}")),
        },
    }
}

/// The request's users as the model's queries.
pub fn inputs(req: &InferRequest) -> Result<Vec<ServeInput>, String> {
    let [tensor] = req.inputs.as_slice() else {
        return Err(format!("a recommender takes one input tensor (user_id), got {}", req.inputs.len()));
    };
    let n = tensor.shape.first().copied().unwrap_or(0);
    if n == 0 || n > MAX_USERS {
        return Err(format!("input {:?}: send 1–{MAX_USERS} users per request (the first dimension), got {n}", tensor.name));
    }
    if !(tensor.shape.len() == 1 || tensor.shape == [n, 1]) {
        return Err(format!("input {:?}: user ids have shape [N] or [N, 1], got {:?}", tensor.name, tensor.shape));
    }
    let TensorData::Bytes(items) = &tensor.data else {
        return Err(format!("input {:?}: user ids are BYTES (UTF-8 text)", tensor.name));
    };
    let k = num_results(req)?;
    let exclude_seen = match req.parameters.get("exclude_seen") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| format!("parameter exclude_seen is true or false, got {v}"))?,
    };
    items
        .iter()
        .enumerate()
        .map(|(i, bytes)| match std::str::from_utf8(bytes) {
            Ok(id) if !id.trim().is_empty() && id.chars().count() <= MAX_ID_CHARS => {
                Ok(ServeInput::Json(json!({ "userId": id, "numResults": k, "excludeSeen": exclude_seen })))
            }
            Ok(_) => Err(format!("user id {i} is empty or over {MAX_ID_CHARS} characters")),
            Err(_) => Err(format!("user id {i} is not UTF-8 text")),
        })
        .collect()
}

/// The requested outputs (all by default) from the model's answers.
pub fn outputs(req: &InferRequest, answers: &[Value]) -> Result<Vec<(Output, bool)>, String> {
    let requested = requested_outputs(req, &OUTPUTS)?;
    let k = num_results(req)? as usize;
    let lists: Vec<&[Value]> = answers.iter().map(|a| a["itemList"].as_array().map(Vec::as_slice).unwrap_or_default()).collect();
    let padded = |f: &dyn Fn(&Value) -> Value, pad: Value| -> Vec<Value> {
        lists.iter().flat_map(|l| (0..k).map(|j| l.get(j).map_or(pad.clone(), f))).collect()
    };
    let mut out = Vec::with_capacity(requested.len());
    for Requested { name, binary, .. } in requested {
        let (shape, data) = match name {
            "item_ids" => (
                vec![answers.len(), k],
                OutputData::Bytes(
                    padded(&|s| s["itemId"].clone(), json!("")).iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect(),
                ),
            ),
            "scores" => (
                vec![answers.len(), k],
                OutputData::F32(
                    padded(&|s| s["score"].clone(), json!(0.0)).iter().map(|v| v.as_f64().unwrap_or_default() as f32).collect(),
                ),
            ),
            _ => (vec![answers.len()], OutputData::Bool(answers.iter().map(|a| a["coldStart"].as_bool().unwrap_or(false)).collect())),
        };
        out.push((Output { name, shape, data }, binary));
    }
    Ok(out)
}
