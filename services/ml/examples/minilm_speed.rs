//! all-MiniLM-L6-v2 in Tenfold, measured beside a reference runtime by
//! `scripts/bench-minilm` (TensorFlow runs the same weights on the same
//! token ids in `bench/keras/minilm.py`):
//!
//!   minilm_speed ids --base DIR --out ids.json
//!       64 sequences of 32 tokens ([CLS], 30 vocabulary ids, [SEP]) from a
//!       fixed seed, their labels, and the pooled embeddings of the first 4
//!       by the model that serves (the reference checks it computes the same)
//!   minilm_speed bench --base DIR --ids ids.json [--steps 20]
//!       one JSON line: forward at batch 1 (median ms) and batch 32
//!       (sequences/s) with the serving model, fine-tuning at batch 16
//!       (sequences/s: dropout, backward, AdamW) with the training copy

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tenfold_ml::chat::base::BertFolder;
use tenfold_ml::chat::encoder::{Encoder, mean_pool};
use tenfold_ml::chat::text::Batch;
use tenfold_ml::optim::{Optimizer, OptimizerConfig};
use tenfold_ml::params::{Params, Part, Role};

const SEQUENCES: usize = 64;
const TOKENS: usize = 32;
const CLASSES: usize = 4;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn batch(folder: &BertFolder, ids: &[Vec<u32>]) -> Result<Batch, Box<dyn std::error::Error>> {
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    Ok(folder.text.batch(&seqs, &Device::Cpu)?)
}

fn stock(folder: &BertFolder) -> Result<BertModel, Box<dyn std::error::Error>> {
    let tensors = folder.weights.clone().into_iter().collect();
    Ok(BertModel::load(VarBuilder::from_tensors(tensors, candle_core::DType::F32, &Device::Cpu), &folder.config.stock())?)
}

fn pooled(model: &BertModel, b: &Batch) -> Result<Tensor, Box<dyn std::error::Error>> {
    Ok(mean_pool(&model.forward(&b.ids, &b.type_ids, Some(&b.mask))?, &b.mask)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let base = PathBuf::from(arg(&args, "--base").ok_or("--base MINILM_DIR is required")?);
    let folder = BertFolder::open(&base, TOKENS, &Device::Cpu)?;
    match args.get(1).map(String::as_str) {
        Some("ids") => {
            let out = PathBuf::from(arg(&args, "--out").ok_or("--out ids.json is required")?);
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let ids: Vec<Vec<u32>> = (0..SEQUENCES)
                .map(|_| {
                    let mut s = vec![101u32];
                    s.extend((0..TOKENS - 2).map(|_| rng.random_range(1000..30000u32)));
                    s.push(102);
                    s
                })
                .collect();
            let labels: Vec<u32> = (0..SEQUENCES).map(|_| rng.random_range(0..CLASSES as u32)).collect();
            let first = pooled(&stock(&folder)?, &batch(&folder, &ids[..4])?)?.to_vec2::<f32>()?;
            let json = serde_json::json!({ "ids": ids, "labels": labels, "classes": CLASSES, "pooled": first });
            std::fs::write(out, serde_json::to_vec(&json)?)?;
        }
        Some("bench") => {
            let path = PathBuf::from(arg(&args, "--ids").ok_or("--ids ids.json is required")?);
            let steps: usize = arg(&args, "--steps").map_or(Ok(20), |s| s.parse())?;
            let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
            let ids: Vec<Vec<u32>> = serde_json::from_value(json["ids"].clone())?;
            let labels: Vec<u32> = serde_json::from_value(json["labels"].clone())?;

            let model = stock(&folder)?;
            let singles: Vec<Batch> = ids.iter().map(|s| batch(&folder, std::slice::from_ref(s))).collect::<Result<_, _>>()?;
            for b in singles.iter().take(3) {
                pooled(&model, b)?;
            }
            let mut times = Vec::with_capacity(50);
            for i in 0..50 {
                let start = Instant::now();
                pooled(&model, &singles[i % SEQUENCES])?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            let forward_b1_ms = median(times);
            let b32 = [batch(&folder, &ids[..32])?, batch(&folder, &ids[32..])?];
            pooled(&model, &b32[0])?;
            let start = Instant::now();
            for i in 0..10 {
                pooled(&model, &b32[i % 2])?;
            }
            let forward_b32_seq_per_s = 320.0 / start.elapsed().as_secs_f64();

            let mut params = Params::new(1, &Device::Cpu);
            let encoder = Encoder::adopt(&mut params, &folder.weights, &folder.config)?;
            let head = params.normal("classifier.weight", &[CLASSES, folder.config.hidden_size], 0.02, Part::Head)?;
            let bias = params.constant("classifier.bias", &[CLASSES], 0.0, Role::Weight, Part::Head)?;
            let mut optimizer = Optimizer::new(OptimizerConfig::adamw(), params.trainable())?;
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let batches: Vec<(Batch, Tensor)> = (0..SEQUENCES / 16)
                .map(|k| -> Result<_, Box<dyn std::error::Error>> {
                    let rows = k * 16..(k + 1) * 16;
                    Ok((batch(&folder, &ids[rows.clone()])?, Tensor::new(&labels[rows], &Device::Cpu)?))
                })
                .collect::<Result<_, _>>()?;
            let mut step = |k: usize| -> Result<(), Box<dyn std::error::Error>> {
                let (b, y) = &batches[k % batches.len()];
                let hidden = encoder.forward(b, Some(&mut rng))?;
                let logits = mean_pool(&hidden, &b.mask)?.matmul(&head.t()?)?.broadcast_add(&bias)?;
                let grads = candle_nn::loss::cross_entropy(&logits, y)?.backward()?;
                optimizer.step(&grads, 1e-4, 1.0)?;
                Ok(())
            };
            step(0)?;
            step(1)?;
            let start = Instant::now();
            for k in 0..steps {
                step(k)?;
            }
            let finetune_seq_per_s = (16 * steps) as f64 / start.elapsed().as_secs_f64();
            let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<usize>().ok());
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::json!({
                    "engine": "tenfold",
                    "forward_b1_ms": forward_b1_ms,
                    "forward_b32_seq_per_s": forward_b32_seq_per_s,
                    "finetune_seq_per_s": finetune_seq_per_s,
                    "threads": threads,
                })
            )?;
        }
        _ => return Err("usage: minilm_speed ids|bench --base DIR …".into()),
    }
    Ok(())
}
