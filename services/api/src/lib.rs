//! The HTTP face of Tenfold (actix-web): `/graphql`, health, metrics.
//! `Application::build` binds (port 0 in tests) and `run_until_stopped`
//! serves until SIGINT/SIGTERM, letting in-flight requests finish.

mod access_log;
mod dashboard;
mod downloads;
mod gateway;
mod graphql_http;
mod graphql_ws;
mod health;
mod metrics_http;
mod openai;
pub mod openapi;
mod recommend;
mod request;
mod tus;
mod uploads;
mod usage_csv;
mod v2;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App as ActixApp, HttpServer, web};
use tenfold_app::App;
use tenfold_config::ExposeSecret;
use tenfold_graphql::TenfoldSchema;
use tenfold_serving::{Device, Registry, Runtime, RuntimeOptions};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

pub use access_log::ACCESS_LOG_TARGET;
pub use metrics_http::{MetricsToken, install_metrics};

/// Everything a request handler needs, shared by all workers.
#[derive(Clone)]
pub struct ServerState {
    pub app: App,
    pub schema: TenfoldSchema,
    /// The models this process serves (hosted endpoints).
    pub runtime: Runtime,
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener, when `metrics.port` is set.
    metrics: Option<(u16, Server)>,
}

impl Application {
    /// Builds the server, serving every family this build ships on the CPU.
    pub fn build(app: App) -> anyhow::Result<Self> {
        let runtime = Self::runtime(&app, Registry::standard());
        Self::build_with(app, runtime)
    }

    /// The serving runtime for `families`, reading models from `app`'s storage.
    pub fn runtime(app: &App, families: Registry) -> Runtime {
        let files = std::sync::Arc::new(v2::BlobModelFiles { app: app.clone() });
        Runtime::new(families, Device::Cpu, files, RuntimeOptions::default())
    }

    pub fn build_with(app: App, runtime: Runtime) -> anyhow::Result<Self> {
        let settings = app.settings().clone();
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))?;
        let port = listener.local_addr()?.port();
        let schema = tenfold_graphql::build_schema(Some(app.clone()), &settings.graphql);
        tokio::spawn(v2::sweep(app.clone(), runtime.clone()));
        let state = ServerState { app, schema, runtime };
        let metrics = install_metrics();
        let token = MetricsToken(settings.metrics.token.expose_secret().to_owned());
        let on_api_listener = settings.metrics.port.is_none();
        let metrics_server = match settings.metrics.port {
            Some(port) => {
                let listener = TcpListener::bind((settings.metrics.host.as_str(), port))?;
                let port = listener.local_addr()?.port();
                let (metrics, token) = (metrics.clone(), token.clone());
                let server = HttpServer::new(move || {
                    ActixApp::new()
                        .app_data(web::Data::new(metrics.clone()))
                        .app_data(web::Data::new(token.clone()))
                        .service(metrics_http::render)
                })
                .workers(1)
                .shutdown_timeout(settings.server.shutdown_grace_seconds)
                .listen(listener)?
                .run();
                Some((port, server))
            }
            None => None,
        };
        let workers = if settings.server.workers == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            settings.server.workers
        };
        let register = move |cfg: &mut ServiceConfig| api_routes(cfg, on_api_listener);
        let document = openapi::Rendered(serde_json::to_string(&openapi::document(register))?);
        let server = HttpServer::new(move || {
            ActixApp::new()
                .wrap(metrics_http::RequestMetrics)
                .wrap(TracingLogger::<access_log::AccessLogSpan>::new())
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(metrics.clone()))
                .app_data(web::Data::new(token.clone()))
                .app_data(web::Data::new(document.clone()))
                .app_data(web::QueryConfig::default().error_handler(|e, req| request::refuse_extractor("query", &e.to_string(), req)))
                .app_data(web::PathConfig::default().error_handler(|e, req| request::refuse_extractor("path", &e.to_string(), req)))
                .default_service(web::to(dashboard::serve))
                .into_utoipa_app()
                .configure(register)
                .into_app()
        })
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_grace_seconds)
        .client_request_timeout(Duration::from_secs(30))
        .listen(listener)?
        .run();
        Ok(Self { port, server, metrics: metrics_server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when it has its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics {
            Some((_, metrics)) => {
                let api = self.server.handle();
                // Whichever stops first (a signal stops both) ends the other.
                tokio::select! {
                    r = self.server => r,
                    r = metrics => { api.stop(true).await; r }
                }
            }
            None => self.server.await,
        }
    }

    /// A handle to stop the server from elsewhere (tests, `tenfold dev`).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Every route of the API's listener; what it mounts is what
/// `/v1/openapi.json` documents.
fn api_routes(cfg: &mut ServiceConfig, metrics_on_api_listener: bool) {
    cfg.configure(graphql_http::routes)
        .configure(health::routes)
        .configure(tus::routes)
        .configure(downloads::routes)
        .configure(v2::routes)
        .configure(openai::routes)
        .configure(recommend::routes)
        .configure(usage_csv::routes)
        .configure(openapi::routes);
    if metrics_on_api_listener {
        cfg.configure(metrics_http::routes);
    }
}
