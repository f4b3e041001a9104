//! The job runner. Until the jobs feature lands it has nothing to run: it
//! checks that its backends answer, then waits for a shutdown signal, so
//! deployments and probes can already be wired up.

use std::future::Future;

use tenfold_app::App;
use tracing::info;

/// Runs until `shutdown` completes.
pub async fn run(app: App, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    app.ready().await.map_err(|e| anyhow::anyhow!("the worker's backends do not answer: {e}"))?;
    info!("worker started; no job kinds are registered yet");
    shutdown.await;
    info!("worker stopped");
    Ok(())
}
