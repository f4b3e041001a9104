//! `tenfold`: the one binary of the platform.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use migration::{Migrator, MigratorTrait};
use tenfold_cli::{boot, logging, ml};
use tenfold_config::{Mode, Settings};
use tenfold_domain::{OrgId, Plan};
use tenfold_ml::family::Registry;
use tenfold_worker::WorkerOptions;
use tracing::info;

#[derive(Parser)]
#[command(name = "tenfold", version, about = "Tenfold: turn your data into AI products")]
struct Cli {
    /// A TOML settings file; `TENFOLD_*` environment variables override it.
    #[arg(long, global = true, env = "TENFOLD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process on embedded backends (SQLite, in-process
    /// broker, local files, email outbox). Migrations run on start.
    Dev {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// The API server (scale out with replicas).
    Serve {
        /// Apply pending migrations before serving.
        #[arg(long)]
        migrate: bool,
    },
    /// A job worker: claims jobs from the queue and runs them.
    Worker(WorkerArgs),
    /// Database migrations.
    Migrate {
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
    },
    /// Prints the GraphQL schema (SDL).
    Schema,
    /// Trains a model from a dataset file (from scratch, `--base` to
    /// fine-tune, `--teacher` to distil) and writes it with its report.
    Train(Box<ml::TrainArgs>),
    /// Evaluates a model directory on a dataset file; prints the report.
    Eval(ml::EvalArgs),
    /// Prints the most probable classes of each image.
    Predict(ml::PredictArgs),
    /// Writes a model directory's report as one self-contained HTML page.
    Report(ml::ReportArgs),
    /// Platform operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// One job attempt, started by a worker (not for people: it speaks JSON
    /// lines with its worker on stdin and stdout).
    #[command(hide = true)]
    Attempt {
        #[arg(long)]
        spec: PathBuf,
    },
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    slots: usize,
    /// cpu, or cuda:N in a build with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Memory this worker offers its running jobs together, in MiB: a job is
    /// claimed only if its estimate fits what the running ones leave.
    #[arg(long, default_value_t = 8192)]
    memory_mb: i32,
}

#[derive(Clone, Copy, ValueEnum)]
enum MigrateAction {
    Up,
    Down,
    Status,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Moves an organization to another plan (FREE, PRO, ENTERPRISE).
    SetPlan {
        /// The organization's id (a UUID).
        #[arg(long)]
        org: String,
        #[arg(long)]
        plan: String,
    },
}

// glibc's malloc maps and unmaps a fresh multi-megabyte buffer for each
// tensor op; mimalloc keeps them (measured: docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Attempt { spec } = &cli.command {
        std::process::exit(tenfold_worker::attempt::child_main(&Registry::standard(), spec));
    }
    // The ML commands need no settings, database or runtime.
    let ml_result = match &cli.command {
        Command::Train(args) => Some(ml::train(&Registry::standard(), args)),
        Command::Eval(args) => Some(ml::eval(&Registry::standard(), args)),
        Command::Predict(args) => Some(ml::predict(&Registry::standard(), args)),
        Command::Report(args) => Some(ml::report(&Registry::standard(), args)),
        _ => None,
    };
    if let Some(result) = ml_result {
        let code = result.err().map_or(0, |e| ml::report_error(&e));
        std::process::exit(code);
    }
    if let Command::Schema = cli.command {
        // No settings, no I/O: the SDL is a property of the code.
        let sdl = tenfold_graphql::sdl();
        std::io::Write::write_all(&mut std::io::stdout(), sdl.as_bytes())?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = tenfold_config::load(cli.config.as_deref())?;
    if let Command::Dev { port, data_dir } = &cli.command {
        settings.server.port = *port;
        settings.server.public_url = format!("http://{}:{port}", settings.server.host);
        settings.storage.data_dir = data_dir.clone();
        if settings.log.format == "json" && std::env::var_os("TENFOLD_LOG__FORMAT").is_none() {
            settings.log.format = "pretty".into();
        }
    }
    logging::init(&settings.log.format, &settings.log.level);
    boot::resolve_defaults(&mut settings)?;
    match cli.command {
        Command::Dev { .. } => {
            settings.mode = if settings.mode == Mode::Production { Mode::Production } else { Mode::Dev };
            boot::migrate(&settings).await?;
            dev(settings).await
        }
        Command::Serve { migrate } => {
            if migrate {
                boot::migrate(&settings).await?;
            }
            serve(settings).await
        }
        Command::Worker(args) => {
            if args.slots == 0 || args.slots > 64 {
                anyhow::bail!("--slots must be 1 to 64");
            }
            tenfold_ml::device::parse_device(&args.device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
            let app = boot::build_app(settings).await?;
            let opts = worker_options(&app, args.slots, &args.device, args.memory_mb);
            tenfold_worker::run(app, opts, shutdown_signal()).await
        }
        Command::Migrate { action } => migrate(&settings, action).await,
        Command::Admin { command: AdminCommand::SetPlan { org, plan } } => {
            let org: OrgId = org.parse().context("--org must be the organization's id (a UUID)")?;
            let plan: Plan = plan.parse()?;
            let app = boot::build_app(settings).await?;
            let view = app.set_plan(org, plan).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            info!(org = %view.id, plan = %view.plan, "plan changed");
            Ok(())
        }
        Command::Schema | Command::Train(_) | Command::Eval(_) | Command::Predict(_) | Command::Report(_) | Command::Attempt { .. } => {
            Ok(())
        }
    }
}

/// SIGINT or SIGTERM (what Kubernetes sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn worker_options(app: &tenfold_app::App, slots: usize, device: &str, memory_mb: i32) -> WorkerOptions {
    WorkerOptions {
        id: boot::worker_id(),
        slots,
        device: device.to_owned(),
        memory_mb,
        work_dir: app.settings().storage.data_dir.join("work"),
    }
}

/// The API and one CPU worker in one process, sharing the embedded broker.
async fn dev(settings: Settings) -> anyhow::Result<()> {
    let app = boot::build_app(settings).await?;
    let application = tenfold_api::Application::build(app.clone())?;
    info!(url = %app.settings().server.public_url, port = application.port(), "Tenfold is listening; GraphQL at /graphql");
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(tenfold_worker::run(app.clone(), worker_options(&app, 1, "cpu", 8192), async move {
        let _ = stopped.await;
    }));
    application.run_until_stopped().await?;
    let _ = stop_worker.send(());
    worker.await??;
    info!("server stopped");
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = boot::build_app(settings).await?;
    let application = tenfold_api::Application::build(app.clone())?;
    info!(url = %app.settings().server.public_url, port = application.port(), "Tenfold is listening; GraphQL at /graphql");
    application.run_until_stopped().await?;
    info!("server stopped");
    Ok(())
}

async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let store = boot::connect_store(settings, true).await?;
    let db = store.connection();
    match action {
        MigrateAction::Up => Migrator::up(db, None).await?,
        MigrateAction::Down => Migrator::down(db, Some(1)).await?,
        MigrateAction::Status => {
            for m in Migrator::get_migration_with_status(db).await? {
                let line = format!("{}\t{}\n", m.name(), m.status());
                std::io::Write::write_all(&mut std::io::stdout(), line.as_bytes())?;
            }
        }
    }
    Ok(())
}
