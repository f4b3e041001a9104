//! The image classification family in the Open Inference Protocol.
//!
//! Inputs (one tensor): `image`, BYTES `[N]` (or `[N, 1]`) of encoded PNG or
//! JPEG files; or `pixels`, FP32 in [0, 1] or UINT8 `[N, C, H, W]` at the
//! model's input size. Outputs: `probabilities`, FP32 `[N, classes]` in the
//! model's class order (the metadata lists it), and `labels`, BYTES
//! `[N, k]`, the k likeliest class names, best first (`k` from the output's
//! `classification` parameter, 1 by default).

use std::collections::HashMap;

use serde_json::{Value, json};
use tenfold_app::ServedVersion;
use tenfold_serving::ServeInput;

use super::tensor::{InferRequest, Output, OutputData, Requested, TensorData, requested_outputs};

/// Inputs one request may carry (more: split it into several requests).
pub const MAX_IMAGES: usize = 256;
pub const OUTPUTS: [&str; 2] = ["probabilities", "labels"];

/// Channels, height and width the model takes, from its card.
pub fn input_shape(served: &ServedVersion) -> Option<[usize; 3]> {
    let p = &served.card["preprocessing"];
    let dim = |k: &str| p[k].as_u64().and_then(|v| usize::try_from(v).ok());
    Some([dim("channels")?, dim("height")?, dim("width")?])
}

pub fn metadata(slug: &str, served: &ServedVersion) -> Value {
    let shape = input_shape(served).map_or_else(|| json!([-1, -1, -1, -1]), |[c, h, w]| json!([-1, c, h, w]));
    json!({
        "name": slug,
        "versions": [served.number.to_string()],
        "platform": "tenfold_image_classification",
        "inputs": [
            { "name": "image", "datatype": "BYTES", "shape": [-1] },
            { "name": "pixels", "datatype": "FP32", "shape": shape },
        ],
        "outputs": [
            { "name": "probabilities", "datatype": "FP32", "shape": [-1, served.classes.len()] },
            { "name": "labels", "datatype": "BYTES", "shape": [-1, -1] },
        ],
        "parameters": { "architecture": served.architecture, "classes": served.classes },
    })
}

/// The request's images as the model's inputs.
pub fn inputs(req: &InferRequest, served: &ServedVersion) -> Result<Vec<ServeInput>, String> {
    let [tensor] = req.inputs.as_slice() else {
        return Err(format!("an image classifier takes one input tensor (image or pixels), got {}", req.inputs.len()));
    };
    let n = tensor.shape.first().copied().unwrap_or(0);
    if n == 0 || n > MAX_IMAGES {
        return Err(format!("input {:?}: send 1–{MAX_IMAGES} images per request (the first dimension), got {n}", tensor.name));
    }
    match &tensor.data {
        TensorData::Bytes(items) => {
            if !(tensor.shape.len() == 1 || tensor.shape == [n, 1]) {
                return Err(format!("input {:?}: BYTES images have shape [N] or [N, 1], got {:?}", tensor.name, tensor.shape));
            }
            Ok(items.iter().enumerate().map(|(i, bytes)| ServeInput::Bytes { name: format!("image {i}"), bytes: bytes.clone() }).collect())
        }
        TensorData::F32(_) | TensorData::U8(_) => {
            let expected = input_shape(served);
            let [_, c, h, w] = tensor.shape.as_slice() else {
                let want = expected.map_or_else(|| "[N, C, H, W]".into(), |[c, h, w]| format!("[N, {c}, {h}, {w}]"));
                return Err(format!("input {:?}: pixel tensors have shape {want}, got {:?}", tensor.name, tensor.shape));
            };
            if let Some(e) = expected
                && e != [*c, *h, *w]
            {
                return Err(format!(
                    "input {:?}: this model takes pixels of shape [N, {}, {}, {}], got {:?}",
                    tensor.name, e[0], e[1], e[2], tensor.shape
                ));
            }
            let values: Vec<f32> = match &tensor.data {
                TensorData::F32(v) => v.clone(),
                TensorData::U8(v) => v.iter().map(|b| f32::from(*b) / 255.0).collect(),
                TensorData::Bytes(_) => Vec::new(),
            };
            let each = c * h * w;
            Ok(values
                .chunks(each.max(1))
                .enumerate()
                .map(|(i, chunk)| ServeInput::Pixels { name: format!("image {i}"), shape: [*c, *h, *w], values: chunk.to_vec() })
                .collect())
        }
    }
}

/// The requested outputs (all by default) from the model's answers.
pub fn outputs(req: &InferRequest, served: &ServedVersion, answers: &[Value]) -> Result<Vec<(Output, bool)>, String> {
    let requested = requested_outputs(req, &OUTPUTS)?;
    let index: HashMap<&str, usize> = served.classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let classes = served.classes.len();
    let n = answers.len();
    let ranked = |answer: &Value| -> Vec<(String, f32)> {
        answer
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| (c["class"].as_str().unwrap_or_default().to_owned(), c["probability"].as_f64().unwrap_or_default() as f32))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(requested.len());
    for Requested { name, binary, parameters } in requested {
        let k = parameters.and_then(|p| p.get("classification")).and_then(Value::as_u64).and_then(|k| usize::try_from(k).ok());
        match name {
            "probabilities" => {
                let mut values = vec![0f32; n * classes];
                for (row, answer) in answers.iter().enumerate() {
                    for (class, p) in ranked(answer) {
                        if let Some(&i) = index.get(class.as_str()) {
                            values[row * classes + i] = p;
                        }
                    }
                }
                out.push((Output { name: "probabilities", shape: vec![n, classes], data: OutputData::F32(values) }, binary));
            }
            "labels" => {
                let k = k.unwrap_or(1);
                if k == 0 || k > classes {
                    return Err(format!("output \"labels\": classification is 1–{classes} (the model's classes), got {k}"));
                }
                let labels: Vec<String> = answers.iter().flat_map(|a| ranked(a).into_iter().take(k).map(|(c, _)| c)).collect();
                out.push((Output { name: "labels", shape: vec![n, k], data: OutputData::Bytes(labels) }, binary));
            }
            _ => return Err(format!("output {name:?} has no encoder")),
        }
    }
    Ok(out)
}
