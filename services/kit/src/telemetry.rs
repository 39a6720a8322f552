//! Logging set-up in one place: JSON lines by default (for collectors), text for
//! local use (`ATELIER_LOG_FORMAT=text`), filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let text = crate::config::var("ATELIER_LOG_FORMAT").as_deref() == Some("text");
    let registry = tracing_subscriber::registry().with(filter);
    let result = if text {
        registry.with(fmt::layer().with_target(true)).try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    };
    // Already installed (several roles in one test process): keep the first.
    drop(result);
}
