//! The Tenfold side of the Keras comparison (`scripts/bench-vs-keras`).
//!
//! `split`: loads the dataset ZIP, splits it (seeded, stratified) and writes
//! the manifest both engines train from (same images, same normalisation).
//! `train`: trains `cnn-small` exactly like the Keras script (Adam 1e-3,
//! no weight decay, ε 1e-7, batch 64, no augmentation), then prints one JSON
//! line: training samples/s, inference images/s at batch 1 and 64, accuracy.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use tenfold_datasets::splits::Split;
use tenfold_ml::image::data::{Augment, ImageSet, SplitSpec, Target};
use tenfold_ml::image::{LoadedModel, TrainRequest, train};
use tenfold_ml::optim::OptimizerConfig;
use tenfold_ml::schedule::Schedule;
use tenfold_ml::train::{Control, TrainConfig};

// The allocator the `tenfold` binary uses too: glibc's malloc maps and
// unmaps a fresh multi-megabyte buffer per tensor op.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(arg(&args, "--data").ok_or("--data FILE.zip is required")?);
    let split = SplitSpec::parse(&arg(&args, "--split").unwrap_or_else(|| "80/0/20".into()))?;
    let seed: u64 = arg(&args, "--seed").map_or(Ok(42), |s| s.parse())?;
    match args.get(1).map(String::as_str) {
        Some("split") => {
            let out = PathBuf::from(arg(&args, "--out").ok_or("--out manifest.json is required")?);
            let set = ImageSet::load(&data, Target::Infer { side: None, max_side: 64 }, split, seed)?;
            let prep = set.fit_preprocess(&set.indices(Split::Train));
            let items = |s: Split| -> Vec<(String, usize)> {
                set.indices(s).into_iter().map(|i| (set.examples[i].name.clone(), set.examples[i].label)).collect()
            };
            let manifest = serde_json::json!({
                "classes": set.classes,
                "image_size": [prep.height, prep.width],
                "channels": prep.channels,
                "mean": prep.mean,
                "std": prep.std,
                "train": items(Split::Train),
                "test": items(Split::Test),
            });
            std::fs::write(out, serde_json::to_vec(&manifest)?)?;
        }
        Some("train") => {
            let epochs: usize = arg(&args, "--epochs").map_or(Ok(10), |s| s.parse())?;
            let batch_size: usize = arg(&args, "--batch-size").map_or(Ok(64), |s| s.parse())?;
            let out = tempfile_dir()?;
            let req = TrainRequest {
                data: data.clone(),
                out: out.clone(),
                architecture: Some("cnn-small".into()),
                config: TrainConfig {
                    epochs,
                    batch_size,
                    // Keras' Adam: no weight decay, ε = 1e-7.
                    optimizer: OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 },
                    schedule: Schedule::constant(1e-3),
                    clip_grad_norm: None,
                    early_stopping: None,
                    seed,
                },
                split,
                split_seed: seed,
                augment: Augment::default(),
                image_size: None,
                base: None,
                freeze_backbone: false,
                teacher: None,
                device: Device::Cpu,
            };
            let mut quiet = |_: tenfold_ml::train::Event<'_>| {};
            let report = train(&req, Control { on_event: &mut quiet, cancel: None, checkpoint_dir: None, resume: false })?;
            let rates: Vec<f64> = report.training.history.iter().map(|e| e.samples_per_s).collect();
            let mut steady: Vec<f64> = rates.iter().skip(1).copied().collect();
            steady.sort_by(f64::total_cmp);
            let steady = steady.get(steady.len() / 2).copied().unwrap_or(rates[0]);

            // Inference on the real test images, like the Keras side.
            let model = LoadedModel::load(&out, &Device::Cpu)?;
            let set = ImageSet::load(&data, Target::Fixed(model.preprocess.shape()), split, seed)?;
            let test = set.indices(Split::Test);
            let rate = |batch: usize, passes: usize| -> Result<f64, Box<dyn std::error::Error>> {
                let batches: Vec<_> = test.chunks(batch).take(if batch == 1 { 200 } else { usize::MAX }).collect();
                let inputs = batches.iter().map(|b| set.batch(b, &model.preprocess, None, &Device::Cpu)).collect::<Result<Vec<_>, _>>()?;
                for x in inputs.iter().take(10) {
                    model.probabilities(x)?;
                }
                let mut runs = Vec::new();
                for _ in 0..passes {
                    let start = Instant::now();
                    let mut n = 0;
                    for x in &inputs {
                        n += model.probabilities(x)?.dim(0)?;
                    }
                    runs.push(n as f64 / start.elapsed().as_secs_f64());
                }
                runs.sort_by(f64::total_cmp);
                Ok(runs[runs.len() / 2])
            };
            let line = serde_json::json!({
                "engine": "tenfold",
                "threads": candle_core::utils::get_num_threads(),
                "epochs": epochs,
                "batch_size": batch_size,
                "train_samples_per_s": steady,
                "train_samples_per_s_first_epoch": rates[0],
                "infer_b1_images_per_s": rate(1, 3)?,
                "infer_b64_images_per_s": rate(64, 5)?,
                "test_accuracy": report.evaluation.map(|e| e.metrics.accuracy),
                "train_images": report.dataset.split.train,
                "test_images": report.dataset.split.test,
            });
            println!("{line}");
            let _ = std::fs::remove_dir_all(out);
        }
        _ => return Err("usage: keras_parity split|train --data FILE.zip [--split 80/0/20] [--seed N] ...".into()),
    }
    Ok(())
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new().prefix("tenfold-parity-").tempdir()?.keep())
}
