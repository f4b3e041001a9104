//! The HTTP face of Tenfold (actix-web): `/graphql`, health, metrics.
//! `Application::build` binds (port 0 in tests) and `run_until_stopped`
//! serves until SIGINT/SIGTERM, letting in-flight requests finish.

mod access_log;
mod graphql_http;
mod graphql_ws;
mod health;
mod metrics_http;
mod request;
mod uploads;
mod uploads_rest;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App as ActixApp, HttpServer, web};
use tenfold_app::App;
use tenfold_graphql::TenfoldSchema;
use tracing_actix_web::TracingLogger;

pub use metrics_http::install_metrics;

/// Everything a request handler needs, shared by all workers.
#[derive(Clone)]
pub struct ServerState {
    pub app: App,
    pub schema: TenfoldSchema,
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(app: App) -> anyhow::Result<Self> {
        let settings = app.settings().clone();
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))?;
        let port = listener.local_addr()?.port();
        let schema = tenfold_graphql::build_schema(Some(app.clone()), &settings.graphql);
        let state = ServerState { app, schema };
        let metrics = install_metrics();
        let workers = if settings.server.workers == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            settings.server.workers
        };
        let server = HttpServer::new(move || {
            ActixApp::new()
                .wrap(metrics_http::RequestMetrics)
                .wrap(TracingLogger::<access_log::AccessLogSpan>::new())
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(metrics.clone()))
                .configure(graphql_http::routes)
                .configure(health::routes)
                .configure(uploads_rest::routes)
                .route("/metrics", web::get().to(metrics_http::render))
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_grace_seconds)
        .client_request_timeout(Duration::from_secs(30))
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle to stop the server from elsewhere (tests, `tenfold dev`).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
