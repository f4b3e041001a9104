//! Open Inference Protocol (KServe v2) tensors over REST: the JSON form and
//! the binary data extension (Triton's), which real clients such as
//! `tritonclient[http]` use by default for BYTES inputs. Parsing is
//! bounded: element counts are checked against the shape and the body
//! before anything is allocated.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Elements one request may carry (over all inputs).
pub const MAX_ELEMENTS: usize = 64 << 20;

/// An inference request's JSON (the whole body, or the header before the
/// binary tensors).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = InferRequest)]
pub struct RequestHeader {
    pub id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    pub inputs: Vec<InputHeader>,
    #[serde(default)]
    pub outputs: Option<Vec<OutputHeader>>,
}

/// An input tensor: `data` inline (nested or flat, row-major), or
/// `parameters.binary_data_size` bytes of the binary section.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = InferInput)]
pub struct InputHeader {
    pub name: String,
    pub shape: Vec<i64>,
    /// `BYTES`, `FP32` or `UINT8`.
    pub datatype: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// Nested or flat row-major values: numbers, or strings for BYTES.
    #[schema(value_type = Option<Vec<Value>>)]
    pub data: Option<Value>,
}

/// An output asked for: `parameters.binary_data` for the binary form,
/// `parameters.classification` for the top k labels.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = InferRequestedOutput)]
pub struct OutputHeader {
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
}

/// A decoded input tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bytes(Vec<Vec<u8>>),
    F32(Vec<f32>),
    U8(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// A parsed inference request.
#[derive(Debug)]
pub struct InferRequest {
    pub id: Option<String>,
    pub parameters: Map<String, Value>,
    pub inputs: Vec<Tensor>,
    pub outputs: Option<Vec<OutputHeader>>,
}

/// One output a request asks for.
pub struct Requested<'a> {
    pub name: &'static str,
    pub binary: bool,
    /// The output's own parameters (e.g. `classification`), when it was named.
    pub parameters: Option<&'a Map<String, Value>>,
}

/// The outputs a request asks for among a model's `known` ones (all of
/// them, in order, when it names none), each binary when it or the
/// request's `binary_data_output` says so; an unknown name is an error
/// that lists the known ones.
pub fn requested_outputs<'a>(req: &'a InferRequest, known: &[&'static str]) -> Result<Vec<Requested<'a>>, String> {
    let binary_default = req.parameters.get("binary_data_output").and_then(Value::as_bool).unwrap_or(false);
    let Some(list) = &req.outputs else {
        return Ok(known.iter().map(|&name| Requested { name, binary: binary_default, parameters: None }).collect());
    };
    list.iter()
        .map(|o| {
            let Some(&name) = known.iter().find(|k| **k == o.name) else {
                return Err(format!("unknown output {:?}; this model has {}", o.name, known.join(", ")));
            };
            let binary = o.parameters.get("binary_data").and_then(Value::as_bool).unwrap_or(binary_default);
            Ok(Requested { name, binary, parameters: Some(&o.parameters) })
        })
        .collect()
}

/// Splits the body into the JSON header and the binary section (present
/// when `Inference-Header-Content-Length` is), and decodes every input.
pub fn parse(body: &[u8], header_length: Option<&str>) -> Result<InferRequest, String> {
    let (json, mut binary) = match header_length {
        Some(raw) => {
            let n: usize = raw.trim().parse().map_err(|_| format!("Inference-Header-Content-Length {raw:?} is not a byte count"))?;
            if n > body.len() {
                return Err(format!("Inference-Header-Content-Length {n} is longer than the body ({} bytes)", body.len()));
            }
            body.split_at(n)
        }
        None => (body, &[][..]),
    };
    let header: RequestHeader =
        serde_json::from_slice(json).map_err(|e| format!("the request is not an inference request in the protocol's JSON: {e}"))?;
    if header.inputs.is_empty() {
        return Err("the request has no inputs; send one tensor in \"inputs\"".into());
    }
    let mut total = 0usize;
    let mut inputs = Vec::with_capacity(header.inputs.len());
    for input in header.inputs {
        let shape = check_shape(&input.name, &input.shape)?;
        let count = shape
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d))
            .filter(|c| *c <= MAX_ELEMENTS)
            .ok_or_else(|| format!("input {:?}: shape {:?} has more than {MAX_ELEMENTS} elements", input.name, input.shape))?;
        total = total.saturating_add(count);
        if total > MAX_ELEMENTS {
            return Err(format!("the inputs have more than {MAX_ELEMENTS} elements together"));
        }
        let size = match input.parameters.get("binary_data_size") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("input {:?}: binary_data_size must be a byte count", input.name))?,
            ),
        };
        let data = match size {
            Some(size) => {
                if size > binary.len() {
                    return Err(format!(
                        "input {:?}: binary_data_size {size} is more than the {} bytes left after the JSON header",
                        input.name,
                        binary.len()
                    ));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                from_binary(&input.name, &input.datatype, mine, count)?
            }
            None => {
                let data = input.data.as_ref().ok_or_else(|| format!("input {:?} has no \"data\" and no binary_data_size", input.name))?;
                from_json(&input.name, &input.datatype, data, count)?
            }
        };
        inputs.push(Tensor { name: input.name, shape, data });
    }
    if !binary.is_empty() {
        return Err(format!("{} bytes after the JSON header belong to no input (check binary_data_size)", binary.len()));
    }
    Ok(InferRequest { id: header.id, parameters: header.parameters, inputs, outputs: header.outputs })
}

fn check_shape(name: &str, shape: &[i64]) -> Result<Vec<usize>, String> {
    if shape.is_empty() || shape.len() > 8 {
        return Err(format!("input {name:?}: a shape has 1–8 dimensions, got {shape:?}"));
    }
    shape.iter().map(|d| usize::try_from(*d).map_err(|_| format!("input {name:?}: shape {shape:?} has a negative dimension"))).collect()
}

fn accepted(name: &str, datatype: &str) -> String {
    format!("input {name:?}: datatype {datatype:?} is not accepted here; send BYTES (encoded images), FP32 or UINT8 (pixels)")
}

fn from_binary(name: &str, datatype: &str, raw: &[u8], count: usize) -> Result<TensorData, String> {
    let size_error =
        |each: usize| format!("input {name:?}: {} bytes of {datatype} data for {count} elements ({each} bytes each)", raw.len());
    match datatype {
        "BYTES" => {
            let mut items = Vec::with_capacity(count.min(4096));
            let mut rest = raw;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(format!("input {name:?}: a BYTES element's 4-byte length is cut off"));
                }
                let (len, tail) = rest.split_at(4);
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len > tail.len() {
                    return Err(format!("input {name:?}: a BYTES element says {len} bytes but {} are left", tail.len()));
                }
                let (item, tail) = tail.split_at(len);
                items.push(item.to_vec());
                rest = tail;
            }
            if items.len() != count {
                return Err(format!("input {name:?}: {} BYTES elements for a shape of {count}", items.len()));
            }
            Ok(TensorData::Bytes(items))
        }
        "FP32" => {
            if raw.len() != count * 4 {
                return Err(size_error(4));
            }
            Ok(TensorData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
        }
        "UINT8" => {
            if raw.len() != count {
                return Err(size_error(1));
            }
            Ok(TensorData::U8(raw.to_vec()))
        }
        other => Err(accepted(name, other)),
    }
}

/// Flattens nested JSON arrays (the protocol allows both forms), row-major.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>, depth: usize, limit: usize) -> Result<(), String> {
    if depth > 9 {
        return Err("tensor data is nested deeper than its shape".into());
    }
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, out, depth + 1, limit)?;
            }
            Ok(())
        }
        other => {
            if out.len() >= limit {
                return Err("more data elements than the shape has".into());
            }
            out.push(other);
            Ok(())
        }
    }
}

fn from_json(name: &str, datatype: &str, data: &Value, count: usize) -> Result<TensorData, String> {
    let mut flat = Vec::with_capacity(count.min(1 << 16));
    flatten(data, &mut flat, 0, count).map_err(|e| format!("input {name:?}: {e}"))?;
    if flat.len() != count {
        return Err(format!("input {name:?}: {} data elements for a shape of {count}", flat.len()));
    }
    let wrong = |i: usize, what: &str| format!("input {name:?}: element {i} is not {what}");
    match datatype {
        "BYTES" => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| wrong(i, "a string")))
            .collect::<Result<_, _>>()
            .map(TensorData::Bytes),
        "FP32" => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_f64().map(|f| f as f32).ok_or_else(|| wrong(i, "a number")))
            .collect::<Result<_, _>>()
            .map(TensorData::F32),
        "UINT8" => flat
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_u64().and_then(|n| u8::try_from(n).ok()).ok_or_else(|| wrong(i, "an integer 0–255")))
            .collect::<Result<_, _>>()
            .map(TensorData::U8),
        other => Err(accepted(name, other)),
    }
}

/// An output tensor of the answer.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub data: OutputData,
}

#[derive(Debug, Clone)]
pub enum OutputData {
    F32(Vec<f32>),
    Bytes(Vec<String>),
    Bool(Vec<bool>),
}

impl Output {
    pub fn datatype(&self) -> &'static str {
        match self.data {
            OutputData::F32(_) => "FP32",
            OutputData::Bytes(_) => "BYTES",
            OutputData::Bool(_) => "BOOL",
        }
    }

    /// The binary form: little-endian values, length-prefixed strings, a byte per BOOL.
    pub fn to_binary(&self) -> Vec<u8> {
        match &self.data {
            OutputData::F32(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            OutputData::Bool(values) => values.iter().map(|b| u8::from(*b)).collect(),
            OutputData::Bytes(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend((item.len() as u32).to_le_bytes());
                    out.extend(item.as_bytes());
                }
                out
            }
        }
    }

    pub fn to_json_data(&self) -> Value {
        match &self.data {
            OutputData::F32(values) => Value::Array(values.iter().map(|v| Value::from(f64::from(*v))).collect()),
            OutputData::Bytes(items) => Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()),
            OutputData::Bool(values) => Value::Array(values.iter().map(|b| Value::Bool(*b)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_and_binary_forms_decode_to_the_same_tensor() {
        let body = json!({ "inputs": [{ "name": "pixels", "shape": [1, 2], "datatype": "FP32", "data": [[0.5, 1.0]] }] }).to_string();
        let parsed = parse(body.as_bytes(), None).unwrap();
        assert_eq!(parsed.inputs[0].data, TensorData::F32(vec![0.5, 1.0]));

        let header =
            json!({ "inputs": [{ "name": "pixels", "shape": [1, 2], "datatype": "FP32", "parameters": { "binary_data_size": 8 } }] })
                .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(0.5f32.to_le_bytes());
        body.extend(1.0f32.to_le_bytes());
        let parsed = parse(&body, Some(&header.len().to_string())).unwrap();
        assert_eq!(parsed.inputs[0].data, TensorData::F32(vec![0.5, 1.0]));
    }

    #[test]
    fn bytes_elements_are_length_prefixed() {
        let header =
            json!({ "inputs": [{ "name": "image", "shape": [2], "datatype": "BYTES", "parameters": { "binary_data_size": 11 } }] })
                .to_string();
        let mut body = header.clone().into_bytes();
        body.extend(3u32.to_le_bytes());
        body.extend(b"abc");
        body.extend(0u32.to_le_bytes());
        let parsed = parse(&body, Some(&header.len().to_string())).unwrap();
        assert_eq!(parsed.inputs[0].data, TensorData::Bytes(vec![b"abc".to_vec(), vec![]]));
    }

    #[test]
    fn every_mismatch_is_named() {
        let cases = [
            (json!({ "inputs": [] }), "no inputs"),
            (json!({ "inputs": [{ "name": "x", "shape": [3], "datatype": "FP32", "data": [1.0] }] }), "1 data elements for a shape of 3"),
            (json!({ "inputs": [{ "name": "x", "shape": [1], "datatype": "INT64", "data": [1] }] }), "INT64"),
            (json!({ "inputs": [{ "name": "x", "shape": [-1], "datatype": "FP32", "data": [1.0] }] }), "negative"),
            (json!({ "inputs": [{ "name": "x", "shape": [1], "datatype": "UINT8", "data": [300] }] }), "0–255"),
            (json!({ "inputs": [{ "name": "x", "shape": [1], "datatype": "FP32" }] }), "no \"data\""),
            (json!({ "inputs": [{ "name": "x", "shape": [1000000, 1000000, 1000], "datatype": "FP32", "data": [] }] }), "more than"),
        ];
        for (body, needle) in cases {
            let err = parse(body.to_string().as_bytes(), None).unwrap_err();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
        assert!(parse(b"{\"inputs\": [", None).unwrap_err().contains("JSON"));
        assert!(parse(b"{}", Some("99")).unwrap_err().contains("longer than the body"));
    }
}
