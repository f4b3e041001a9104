//! Prometheus metrics: `tenfold_` prefix, base units, routes by pattern
//! (never raw paths, which would explode cardinality).

use std::future::{Ready, ready};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{HttpResponse, get, web};
use futures::future::LocalBoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Inputs per batch: powers of two up to the largest batch an endpoint takes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the process-wide recorder once and returns its handle; later
/// calls (several servers in one test process) share it.
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("tenfold_endpoint_batch_size".into()), BATCH_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then our
            // handle renders nothing, which the metrics test would catch.
            let _ = metrics::set_global_recorder(recorder);
            metrics::describe_counter!("tenfold_http_requests_total", "HTTP requests by method, route pattern and status");
            metrics::describe_histogram!("tenfold_http_request_duration_seconds", metrics::Unit::Seconds, "HTTP request latency");
            metrics::describe_counter!("tenfold_graphql_errors_total", "GraphQL errors returned, by extensions.code");
            metrics::describe_gauge!("tenfold_build_info", "Build information");
            metrics::describe_counter!("tenfold_endpoint_requests_total", "Inference requests by endpoint id and status");
            metrics::describe_histogram!(
                "tenfold_endpoint_request_seconds",
                metrics::Unit::Seconds,
                "Inference latency through the gateway"
            );
            metrics::describe_histogram!("tenfold_endpoint_batch_size", "Inputs per model call (dynamic batching)");
            metrics::describe_gauge!("tenfold_endpoint_queue_depth", "Requests waiting for an endpoint's model");
            metrics::describe_gauge!("tenfold_models_loaded", "Models loaded for serving in this process");
            metrics::gauge!("tenfold_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The bearer token `/metrics` requires; empty: none.
#[derive(Clone)]
pub struct MetricsToken(pub String);

/// Prometheus text exposition; on the API's listener only when
/// `metrics.port` is unset, and then behind `metrics.token` when set.
#[utoipa::path(
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "The metrics token is required", content_type = "text/plain", body = String),
    )
)]
#[get("/metrics")]
pub async fn render(req: actix_web::HttpRequest, handle: web::Data<PrometheusHandle>, token: web::Data<MetricsToken>) -> HttpResponse {
    if !token.0.is_empty() {
        let given =
            req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time: the token guards every tenant's traffic figures.
        let ok = given.is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), token.0.as_bytes()).into());
        if !ok {
            return HttpResponse::Unauthorized()
                .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .body("send the metrics token as Authorization: Bearer <token>");
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(render);
}

/// Counts and times every request by its matched route pattern.
pub struct RequestMetrics;

impl<S, B> Transform<S, ServiceRequest> for RequestMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestMetricsService { service }))
    }
}

pub struct RequestMetricsService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = req.method().to_string();
        let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let fut = self.service.call(req);
        Box::pin(async move {
            let res = fut.await?;
            let status = res.status().as_u16().to_string();
            metrics::counter!("tenfold_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
                .increment(1);
            metrics::histogram!("tenfold_http_request_duration_seconds", "method" => method, "route" => route)
                .record(started.elapsed().as_secs_f64());
            Ok(res)
        })
    }
}
