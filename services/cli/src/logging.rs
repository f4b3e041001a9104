use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// JSON logs (one object per line, request ids included) unless `pretty`.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "pretty" {
        builder.with_span_events(FmtSpan::NONE).try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    };
    // Already initialised (tests start several servers in one process).
    let _ = result;
}
