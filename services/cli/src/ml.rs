//! `tenfold train | eval | predict`: the ML engine from the command line.
//! Synchronous (no runtime, no database): the same calls the worker makes.
//!
//! Exit status: 0 success, 2 bad input (the message says what to fix),
//! 1 anything else.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tenfold_ml::MlError;
use tenfold_ml::device::parse_device;
use tenfold_ml::image::data::{Augment, SplitSpec};
use tenfold_ml::image::{Teacher, TrainRequest};
use tenfold_ml::optim::OptimizerConfig;
use tenfold_ml::schedule::Schedule;
use tenfold_ml::train::{Control, EarlyStopping, Event, TrainConfig};

#[derive(Clone, Copy, ValueEnum)]
pub enum Family {
    Image,
    Chat,
    Recommendation,
}

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    family: Family,
    /// The dataset ZIP (image: class folders, optionally under train/val/test).
    #[arg(long)]
    data: PathBuf,
    /// cnn-small, resnet-s or cnn-tiny; fine-tuning takes the base model's.
    #[arg(long)]
    arch: Option<String>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Learning rate (a positive number).
    #[arg(long, default_value = "0.001", allow_hyphen_values = true)]
    lr: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// adamw or sgd (momentum 0.9).
    #[arg(long, default_value = "adamw")]
    optimizer: String,
    /// constant, cosine or step.
    #[arg(long, default_value = "constant")]
    schedule: String,
    #[arg(long, default_value_t = 0)]
    warmup_steps: usize,
    /// Clip the global gradient norm to this value.
    #[arg(long, allow_hyphen_values = true)]
    clip_grad_norm: Option<String>,
    /// Stop after this many epochs without validation improvement.
    #[arg(long)]
    patience: Option<usize>,
    /// Train/validation/test percentages.
    #[arg(long, default_value = "80/10/10")]
    split: String,
    /// Training augmentation: none, crop, flip or crop,flip.
    #[arg(long, default_value = "none")]
    augment: String,
    /// Square input side in pixels (default: the data's, at most 64).
    #[arg(long)]
    image_size: Option<usize>,
    /// Fine-tune from this model directory.
    #[arg(long)]
    base: Option<PathBuf>,
    /// With --base: train only the new head.
    #[arg(long)]
    freeze_backbone: bool,
    /// Distil from this teacher model directory.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Distillation: weight of the label loss (the rest is the teacher's).
    #[arg(long, default_value = "0.5", allow_hyphen_values = true)]
    alpha: String,
    /// Distillation: softmax temperature.
    #[arg(long, default_value = "4", allow_hyphen_values = true)]
    temperature: String,
    /// cpu, or cuda:N in a build with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Continue from the last checkpoint in OUT/checkpoints.
    #[arg(long)]
    resume: bool,
    /// The model directory to write (model.safetensors, model.json, report.json).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn number(flag: &'static str, raw: &str, example: &str) -> Result<f64, MlError> {
    let value: f64 = raw.trim().parse().map_err(|_| MlError::arg(flag, format!("'{raw}' is not a number; give e.g. {example}")))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(MlError::arg(flag, format!("{raw} is not a positive number; give e.g. {example}")));
    }
    Ok(value)
}

fn request(a: &TrainArgs) -> Result<TrainRequest, MlError> {
    match a.family {
        Family::Image => {}
        Family::Chat | Family::Recommendation => {
            return Err(MlError::arg(
                "--family",
                "only the image family can be trained in this release; chat and recommendation come next",
            ));
        }
    }
    let lr = number("--lr", &a.lr, "0.001")?;
    let mut schedule = Schedule::parse(&a.schedule, lr, a.epochs).map_err(|e| MlError::arg("--schedule", e.to_string()))?;
    schedule.warmup_steps = a.warmup_steps;
    let teacher = match &a.teacher {
        Some(dir) => Some(Teacher {
            dir: dir.clone(),
            alpha: a.alpha.trim().parse().map_err(|_| MlError::arg("--alpha", format!("'{}' is not a number between 0 and 1", a.alpha)))?,
            temperature: number("--temperature", &a.temperature, "4")?,
        }),
        None => None,
    };
    Ok(TrainRequest {
        data: a.data.clone(),
        out: a.out.clone(),
        architecture: a.arch.clone(),
        config: TrainConfig {
            epochs: a.epochs,
            batch_size: a.batch_size,
            optimizer: OptimizerConfig::parse(&a.optimizer).map_err(|e| MlError::arg("--optimizer", e.to_string()))?,
            schedule,
            clip_grad_norm: a.clip_grad_norm.as_deref().map(|c| number("--clip-grad-norm", c, "1.0")).transpose()?,
            early_stopping: a.patience.map(|patience| EarlyStopping { patience, min_delta: 0.0 }),
            seed: a.seed,
        },
        split: SplitSpec::parse(&a.split).map_err(|e| MlError::arg("--split", e.to_string()))?,
        augment: Augment::parse(&a.augment).map_err(|e| MlError::arg("--augment", e.to_string()))?,
        image_size: a.image_size,
        base: a.base.clone(),
        freeze_backbone: a.freeze_backbone,
        teacher,
        device: parse_device(&a.device)?,
    })
}

/// A progress bar on a terminal; plain log lines (one per epoch, and a step
/// line every ~10 s) when the output is a file or a CI log.
struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Progress {
    fn new() -> Self {
        Self { bar: None, last_line: Instant::now() }
    }

    fn on_event(&mut self, event: Event<'_>) {
        let terminal = std::io::stderr().is_terminal();
        match event {
            Event::Step(s) if terminal => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new((s.steps_per_epoch * s.epochs) as u64);
                    let style =
                        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar
                });
                bar.set_position(((s.epoch - 1) * s.steps_per_epoch + s.step) as u64);
                bar.set_message(format!(
                    "epoch {}/{}  loss {:.4}  {:.0} samples/s  ETA {}",
                    s.epoch,
                    s.epochs,
                    s.loss,
                    s.samples_per_s,
                    eta(s.eta_seconds)
                ));
            }
            Event::Step(s) => {
                if self.last_line.elapsed() >= Duration::from_secs(10) {
                    self.last_line = Instant::now();
                    eprintln!(
                        "epoch {}/{} step {}/{} loss {:.4} {:.0} samples/s ETA {}",
                        s.epoch,
                        s.epochs,
                        s.step,
                        s.steps_per_epoch,
                        s.loss,
                        s.samples_per_s,
                        eta(s.eta_seconds)
                    );
                }
            }
            Event::Epoch(e) => {
                let val: Vec<String> = e.val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                let line = format!("epoch {} train_loss {:.4} {} {:.0} samples/s", e.epoch, e.train_loss, val.join(" "), e.samples_per_s);
                match &self.bar {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::Checkpoint { .. } => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn eta(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn print(text: &str) -> Result<(), MlError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(MlError::io("stdout"))
}

pub fn train(args: &TrainArgs) -> Result<(), MlError> {
    let req = request(args)?;
    let mut progress = Progress::new();
    let mut on_event = |e: Event<'_>| progress.on_event(e);
    let result =
        tenfold_ml::image::train(&req, Control { on_event: &mut on_event, cancel: None, checkpoint_dir: None, resume: args.resume });
    progress.finish();
    let report = result?;
    let mut summary = format!("model written to {}\n", req.out.display());
    if let Some(e) = &report.evaluation {
        summary.push_str(&format!(
            "{} accuracy {:.4} on {} images (macro F1 {:.4}, ECE {:.4}); {:.3} ms/image at batch 1, {:.3} at batch 64\n",
            e.split,
            e.metrics.accuracy,
            e.metrics.examples,
            e.metrics.macro_f1,
            e.metrics.ece,
            e.latency_ms_per_image.batch_1_ms,
            e.latency_ms_per_image.batch_64_ms
        ));
    }
    if let Some(d) = &report.distillation {
        summary.push_str(&format!("distillation: {}\n", d.verdict));
    }
    summary.push_str(&format!("report: {}\n", req.out.join("report.json").display()));
    print(&summary)
}

pub fn eval(args: &EvalArgs) -> Result<(), MlError> {
    let device = parse_device(&args.device)?;
    let evaluation = tenfold_ml::image::evaluate(&args.model, &args.data, &device)?;
    let json = serde_json::to_string_pretty(&evaluation).map_err(|e| MlError::Incompatible(e.to_string()))?;
    print(&format!("{json}\n"))
}

pub fn predict(args: &PredictArgs) -> Result<(), MlError> {
    let device = parse_device(&args.device)?;
    let predictions = tenfold_ml::image::predict(&args.model, &args.images, args.top, &device)?;
    let text = if args.json {
        serde_json::to_string_pretty(&predictions).map_err(|e| MlError::Incompatible(e.to_string()))? + "\n"
    } else {
        predictions
            .iter()
            .map(|p| {
                let top: Vec<String> = p.top.iter().map(|(c, prob)| format!("{c} {prob:.4}")).collect();
                format!("{}\t{}\n", p.file.display(), top.join("\t"))
            })
            .collect()
    };
    print(&text)
}

/// Prints the error and returns the exit status.
pub fn report_error(err: &MlError) -> i32 {
    eprintln!("error: {err}");
    if err.is_permanent() { 2 } else { 1 }
}
