use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// JSON logs (one object per line, request ids included) unless `pretty`.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "pretty" {
        builder.with_span_events(FmtSpan::NONE).try_init()
    } else {
        // A closing event per span gives an access log: each request's span
        // (tracing-actix-web) with its request id, status and duration.
        builder.json().flatten_event(true).with_current_span(true).with_span_events(FmtSpan::CLOSE).try_init()
    };
    // Already initialised (tests start several servers in one process).
    let _ = result;
}
