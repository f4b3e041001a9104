//! `tenfold train | eval | predict`: the ML engine from the command line.
//! Synchronous (no runtime, no database): the same calls the worker makes.
//!
//! Exit status: 0 success, 2 bad input (the message says what to fix),
//! 1 anything else.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use tenfold_domain::{Family, JobKind};
use tenfold_ml::MlError;
use tenfold_ml::artifact::read_card;
use tenfold_ml::device::parse_device;
use tenfold_ml::family::{Registry, ServeInput, TrainJob};
use tenfold_ml::train::{Control, Event};

fn family(name: &str) -> Result<Family, String> {
    Family::from_short_name(name).map_err(|e| e.message().to_owned())
}

/// The hyperparameter flags of the image family's habits, by the name the
/// family's schema gives them; any family's others go through `--param`.
/// Ranges and defaults are the family's, not the command line's.
const FLAGS: [(&str, &str); 15] = [
    ("epochs", "--epochs"),
    ("batchSize", "--batch-size"),
    ("learningRate", "--lr"),
    ("seed", "--seed"),
    ("optimizer", "--optimizer"),
    ("schedule", "--schedule"),
    ("warmupSteps", "--warmup-steps"),
    ("clipGradNorm", "--clip-grad-norm"),
    ("patience", "--patience"),
    ("split", "--split"),
    ("augment", "--augment"),
    ("imageSize", "--image-size"),
    ("freezeBackbone", "--freeze-backbone"),
    ("alpha", "--alpha"),
    ("temperature", "--temperature"),
];

#[derive(Args)]
pub struct TrainArgs {
    /// image, chat or recommendation.
    #[arg(long, value_parser = family)]
    family: Family,
    /// The dataset file (image: a ZIP of class folders, optionally under train/val/test).
    #[arg(long)]
    data: PathBuf,
    /// The architecture (`tenfold families` lists them); fine-tuning takes the base model's.
    #[arg(long)]
    arch: Option<String>,
    /// Passes over the training split (default 10).
    #[arg(long, allow_hyphen_values = true)]
    epochs: Option<String>,
    /// Examples per step (default 64).
    #[arg(long, allow_hyphen_values = true)]
    batch_size: Option<String>,
    /// Learning rate (default 0.001).
    #[arg(long, allow_hyphen_values = true)]
    lr: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    seed: Option<String>,
    /// adamw (default) or sgd (momentum 0.9).
    #[arg(long)]
    optimizer: Option<String>,
    /// constant (default), cosine or step.
    #[arg(long)]
    schedule: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    warmup_steps: Option<String>,
    /// Clip the global gradient norm to this value.
    #[arg(long, allow_hyphen_values = true)]
    clip_grad_norm: Option<String>,
    /// Stop after this many epochs without validation improvement.
    #[arg(long, allow_hyphen_values = true)]
    patience: Option<String>,
    /// Train/validation/test percentages (default 80/10/10).
    #[arg(long)]
    split: Option<String>,
    /// Training augmentation: none (default), crop, flip or crop,flip.
    #[arg(long)]
    augment: Option<String>,
    /// Square input side in pixels (default: the data's, at most 64).
    #[arg(long, allow_hyphen_values = true)]
    image_size: Option<String>,
    /// Distillation: weight of the label loss (default 0.5).
    #[arg(long, allow_hyphen_values = true)]
    alpha: Option<String>,
    /// Distillation: softmax temperature (default 4).
    #[arg(long, allow_hyphen_values = true)]
    temperature: Option<String>,
    /// Any hyperparameter of the family by its API name, e.g. `--param warmupSteps=100`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Fine-tune from this model directory.
    #[arg(long)]
    base: Option<PathBuf>,
    /// With --base: train only the new head.
    #[arg(long)]
    freeze_backbone: bool,
    /// Distil from this teacher model directory.
    #[arg(long)]
    teacher: Option<PathBuf>,
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
pub struct ReportArgs {
    /// A model directory with model.json and report.json (as `tenfold train` writes it).
    #[arg(long)]
    model: PathBuf,
    /// Where to write the self-contained HTML report.
    #[arg(long)]
    html: PathBuf,
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// How many classes to show per image, or items to recommend.
    #[arg(long, default_value_t = 3)]
    top: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
    /// A recommendation model: the user to recommend items for (`--top` of them;
    /// an unknown user gets the most popular items, flagged as a cold start).
    #[arg(long)]
    user: Option<String>,
    /// A recommendation model: list the items most like this one instead.
    #[arg(long, conflicts_with = "user")]
    similar_to: Option<String>,
    /// Image files for an image model; the customer's messages for a chat model.
    #[arg(required_unless_present_any = ["user", "similar_to"])]
    images: Vec<PathBuf>,
}

/// A value as typed: a number or a boolean when it reads as one, else text,
/// so that the family's schema checks it as the user wrote it.
fn typed(raw: &str) -> Value {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(x) = raw.parse::<f64>()
        && x.is_finite()
    {
        return Value::from(x);
    }
    match raw {
        "true" => Value::from(true),
        "false" => Value::from(false),
        _ => Value::from(raw),
    }
}

/// The hyperparameters given on the command line, by the family's names.
fn given(a: &TrainArgs) -> Result<Map<String, Value>, MlError> {
    let flags = [
        &a.epochs,
        &a.batch_size,
        &a.lr,
        &a.seed,
        &a.optimizer,
        &a.schedule,
        &a.warmup_steps,
        &a.clip_grad_norm,
        &a.patience,
        &a.split,
        &a.augment,
        &a.image_size,
        &None,
        &a.alpha,
        &a.temperature,
    ];
    let mut map = Map::new();
    for ((name, _), value) in FLAGS.iter().zip(flags) {
        if let Some(v) = value {
            map.insert((*name).to_owned(), typed(v));
        }
    }
    if a.freeze_backbone {
        map.insert("freezeBackbone".into(), Value::from(true));
    }
    for p in &a.params {
        let Some((name, value)) = p.split_once('=') else {
            return Err(MlError::arg("--param", format!("'{p}' is not NAME=VALUE; give e.g. --param warmupSteps=100")));
        };
        map.insert(name.trim().to_owned(), typed(value));
    }
    Ok(map)
}

/// The flag a hyperparameter came from, for messages.
fn flag_of(field: &str) -> &'static str {
    let name = field.trim_start_matches("hyperparameters.");
    FLAGS.iter().find(|(n, _)| *n == name).map_or("--param", |(_, flag)| flag)
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

pub fn train(families: &Registry, args: &TrainArgs) -> Result<(), MlError> {
    let family = families.get(args.family)?;
    let hyperparameters = family.normalise(&given(args)?).map_err(|problems| {
        let first = problems.first().map_or("--param", |p| flag_of(p.field()));
        let all: Vec<String> = problems.iter().map(|p| format!("{}: {}", flag_of(p.field()), p.message())).collect();
        // The first flag names the error; the rest follow in its message.
        let message = all.join("; ");
        MlError::arg(first, message.strip_prefix(&format!("{first}: ")).unwrap_or(&message).to_owned())
    })?;
    if family.needs_base() && args.base.is_none() && args.teacher.is_none() {
        return Err(MlError::arg(
            "--base",
            format!(
                "{} models are fine-tuned from a pretrained model: give a base model folder with --base (a Hugging Face BERT folder such as all-MiniLM-L6-v2)",
                args.family.short_name()
            ),
        ));
    }
    if let Some(arch) = &args.arch {
        family.architecture(arch).map_err(|e| MlError::arg("--arch", e.message().to_owned()))?;
    } else if args.base.is_none() {
        let names: Vec<&str> = family.architectures().iter().map(|a| a.name).collect();
        return Err(MlError::arg("--arch", format!("choose an architecture: {}", names.join(", "))));
    }
    let device = parse_device(&args.device)?;
    let job = TrainJob {
        kind: if args.teacher.is_some() { JobKind::Distill } else { JobKind::FineTune },
        data: &args.data,
        out: &args.out,
        architecture: args.arch.as_deref(),
        hyperparameters: &hyperparameters,
        base: args.base.as_deref(),
        teacher: args.teacher.as_deref(),
        device: &device,
    };
    let mut progress = Progress::new();
    let mut on_event = |e: Event<'_>| progress.on_event(e);
    let result = family.train(&job, Control { on_event: &mut on_event, cancel: None, checkpoint_dir: None, resume: args.resume });
    progress.finish();
    print(&result?.text)
}

/// The family a model directory belongs to, from its `model.json`.
fn family_of(model: &std::path::Path) -> Result<Family, MlError> {
    let card = read_card(model)?;
    Family::from_short_name(&card.family).map_err(|e| MlError::InvalidModel { path: model.to_path_buf(), reason: e.message().to_owned() })
}

pub fn eval(families: &Registry, args: &EvalArgs) -> Result<(), MlError> {
    let device = parse_device(&args.device)?;
    let evaluated = families.get(family_of(&args.model)?)?.evaluate(&args.model, &args.data, &device)?;
    let json = serde_json::to_string_pretty(&evaluated.report).map_err(|e| MlError::Incompatible(e.to_string()))?;
    print(&format!("{json}\n"))
}

/// Renders a model directory's report as the same HTML page the platform serves.
pub fn report(families: &Registry, args: &ReportArgs) -> Result<(), MlError> {
    let card = read_card(&args.model)?;
    let family = family_of(&args.model)?;
    let path = args.model.join("report.json");
    let json = std::fs::read(&path).map_err(|_| MlError::InvalidModel {
        path: args.model.clone(),
        reason: "report.json is missing; `tenfold train` writes one next to model.json".into(),
    })?;
    let size = tenfold_ml::artifact::size_on_disk(&args.model);
    let report = families
        .get(family)?
        .model_report(&json, size)
        .map_err(|e| MlError::InvalidModel { path: path.clone(), reason: e.message().to_owned() })?;
    let training = &card.training;
    let mut facts = vec![
        ("Model folder".to_owned(), args.model.display().to_string()),
        ("Family".to_owned(), family.to_string()),
        ("Architecture".to_owned(), card.architecture.clone()),
        ("Dataset".to_owned(), format!("{} ({} examples)", card.dataset.file, card.dataset.examples)),
        ("Dataset SHA-256".to_owned(), card.dataset.sha256.clone()),
        ("Engine".to_owned(), card.engine.clone()),
    ];
    if let Some(seed) = training.get("seed") {
        facts.push(("Seed".to_owned(), seed.to_string()));
    }
    if let Some(config) = training.get("config") {
        facts.push(("Training configuration".to_owned(), config.to_string()));
    }
    let name = args.model.file_name().map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
    let page = tenfold_report::html::Page {
        title: format!("{name} — evaluation report"),
        subtitle: format!("{family} · {} · tested on {} {} examples", card.architecture, report.examples, report.split),
        facts,
        report: &report,
    };
    let html = tenfold_report::html::render(&page);
    std::fs::write(&args.html, html).map_err(MlError::io(&args.html))?;
    print(&format!("report written to {}\n{}\n", args.html.display(), report.summary))
}

pub fn predict(families: &Registry, args: &PredictArgs) -> Result<(), MlError> {
    let device = parse_device(&args.device)?;
    let family = family_of(&args.model)?;
    let served = families.get(family)?.load_for_serving(&args.model, &device)?;
    if family == Family::Chat {
        return predict_chat(served.as_ref(), args);
    }
    if family == Family::Recommendation {
        return predict_recommendation(served.as_ref(), args);
    }
    if args.user.is_some() || args.similar_to.is_some() {
        return Err(MlError::arg("--user", format!("--user and --similar-to are for recommendation models; this is a {family} model")));
    }
    let mut inputs = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let bytes = std::fs::read(path).map_err(MlError::io(path))?;
        inputs.push(ServeInput::Bytes { name: path.display().to_string(), bytes });
    }
    let outputs = served.predict(&inputs)?;
    let top = |ranked: &Value| -> Vec<(String, f64)> {
        let list = ranked.as_array().map(Vec::as_slice).unwrap_or_default();
        list.iter()
            .take(args.top.max(1))
            .map(|c| (c["class"].as_str().unwrap_or_default().to_owned(), c["probability"].as_f64().unwrap_or_default()))
            .collect()
    };
    let text = if args.json {
        let rows: Vec<Value> = args.images.iter().zip(&outputs).map(|(p, o)| serde_json::json!({ "file": p, "top": top(o) })).collect();
        serde_json::to_string_pretty(&rows).map_err(|e| MlError::Incompatible(e.to_string()))? + "\n"
    } else {
        args.images
            .iter()
            .zip(&outputs)
            .map(|(p, o)| {
                let cols: Vec<String> = top(o).iter().map(|(c, prob)| format!("{c} {prob:.4}")).collect();
                format!("{}\t{}\n", p.display(), cols.join("\t"))
            })
            .collect()
    };
    print(&text)
}

/// `tenfold predict --model CHAT_MODEL "message" …`: the intent, confidence,
/// hand-over flag and reply of each message.
fn predict_chat(served: &dyn tenfold_ml::family::Served, args: &PredictArgs) -> Result<(), MlError> {
    let messages: Vec<String> = args.images.iter().map(|m| m.display().to_string()).collect();
    let inputs: Vec<ServeInput> = messages.iter().map(|m| ServeInput::Json(Value::String(m.clone()))).collect();
    let outputs = served.predict(&inputs)?;
    let text = if args.json {
        serde_json::to_string_pretty(&outputs).map_err(|e| MlError::Incompatible(e.to_string()))? + "\n"
    } else {
        messages
            .iter()
            .zip(&outputs)
            .map(|(m, o)| {
                let handoff = if o["handoff"].as_bool().unwrap_or(false) { " (hand-over)" } else { "" };
                format!(
                    "{m}\t{} {:.4}{handoff}\t{}\n",
                    o["intent"].as_str().unwrap_or_default(),
                    o["confidence"].as_f64().unwrap_or_default(),
                    o["reply"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    print(&text)
}

/// `tenfold predict --model RECOMMENDER --user ID [--top N]`: the user's
/// best items with their scores (`--similar-to ITEM`: the items most like it).
fn predict_recommendation(served: &dyn tenfold_ml::family::Served, args: &PredictArgs) -> Result<(), MlError> {
    let query = match (&args.user, &args.similar_to) {
        (Some(user), _) => serde_json::json!({ "userId": user, "numResults": args.top }),
        (None, Some(item)) => serde_json::json!({ "itemId": item, "numResults": args.top }),
        (None, None) => {
            return Err(MlError::arg("--user", "a recommendation model answers for a user: give --user ID (or --similar-to ITEM)"));
        }
    };
    let outputs = served.predict(&[ServeInput::Json(query)])?;
    let answer = outputs.into_iter().next().unwrap_or_default();
    let text = if args.json {
        serde_json::to_string_pretty(&answer).map_err(|e| MlError::Incompatible(e.to_string()))? + "\n"
    } else {
        let mut text = String::new();
        if answer["coldStart"].as_bool() == Some(true) {
            text.push_str("unknown user: the most popular items (cold start)\n");
        }
        for item in answer["itemList"].as_array().map(Vec::as_slice).unwrap_or_default() {
            text.push_str(&format!("{}\t{:.4}\n", item["itemId"].as_str().unwrap_or_default(), item["score"].as_f64().unwrap_or_default()));
        }
        text
    };
    print(&text)
}

/// Prints the error and returns the exit status.
pub fn report_error(err: &MlError) -> i32 {
    eprintln!("error: {err}");
    if err.is_permanent() { 2 } else { 1 }
}
