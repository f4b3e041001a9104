use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter};

use tenfold_api::ACCESS_LOG_TARGET;

/// JSON logs (one object per line, request ids included) unless `pretty`.
///
/// Every event carries the spans it happened in (the request, the use case
/// with its organization and ids, the job), so an error line says where it
/// came from. Only the request span also logs its close (the access log):
/// a closing line per use case would double the volume for nothing.
pub fn init(format: &str, level: &str) {
    let filter = || EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let result = if format == "pretty" {
        tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).with_span_events(FmtSpan::NONE).try_init().is_ok()
    } else {
        let events = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_filter(filter());
        let access_log = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .with_filter(filter::filter_fn(|meta| meta.is_span() && meta.target() == ACCESS_LOG_TARGET))
            .with_filter(filter());
        tracing_subscriber::registry().with(events).with(access_log).try_init().is_ok()
    };
    // Already initialised (tests start several servers in one process).
    let _ = result;
}
