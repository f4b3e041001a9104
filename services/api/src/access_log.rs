//! The root span of every request: what the access log shows. Unlike
//! tracing-actix-web's default, it never records the query string, which
//! may carry secrets (a refused `?access_token=…`, a verification token in
//! a link): paths and route patterns only.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// The target of request spans: the logging setup logs their close (the
/// access log) and no other span's.
pub const ACCESS_LOG_TARGET: &str = "tenfold::access";

pub struct AccessLogSpan;

impl RootSpanBuilder for AccessLogSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let client_ip = request.connection_info().peer_addr().unwrap_or("-").to_owned();
        tracing::info_span!(
            target: ACCESS_LOG_TARGET,
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.path = %request.path(),
            http.client_ip = %client_ip,
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
            error = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(response) => {
                span.record("http.status_code", response.status().as_u16());
                if let Some(error) = response.response().error() {
                    span.record("error", tracing::field::display(error));
                }
            }
            Err(error) => {
                span.record("http.status_code", error.as_response_error().status_code().as_u16());
                span.record("error", tracing::field::display(error));
            }
        }
    }
}
