//! Logs and traces set up in one place.
//!
//! - Logs: JSON lines by default (for collectors) carrying `trace_id` and `span_id`, text for
//!   local use (`ATELIER_LOG_FORMAT=text`), filtered by `RUST_LOG`.
//! - Traces: every `tracing` span becomes an OpenTelemetry span. Ids are always assigned, so a
//!   job's `traceId` and its `traceparent` headers exist with or without a collector; spans are
//!   exported over OTLP only when the standard variables name one
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; protocol from
//!   `OTEL_EXPORTER_OTLP_PROTOCOL`, `grpc` or `http/protobuf`, the default). `OTEL_SDK_DISABLED`
//!   and `OTEL_TRACES_EXPORTER=none` turn export off; `OTEL_SERVICE_NAME` overrides the role's
//!   name.
//!
//! Export never slows a job: spans are queued (bounded, dropped when full) and sent in batches
//! from the SDK's own thread; a dead collector costs a failed request per batch, nothing more.

mod format;
pub mod propagation;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tracing_subscriber::{EnvFilter, filter::LevelFilter, fmt, prelude::*};

pub use opentelemetry::KeyValue;
pub use propagation::{
    Parent, context_from_traceparent, current_trace_id, current_traceparent, extract_http,
    extract_nats, follow, inject_nats, nats_headers, record_span,
};

/// The tracer name spans are recorded under.
const SCOPE: &str = "atelier";

/// Holds the tracer provider; [`Telemetry::shutdown`] flushes what is queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued (bounded by the exporter's timeout), then stops.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The final export runs on this runtime; wait for it off the async threads.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// Installs logging and tracing once per process; later calls (tests) keep the first.
///
/// `service` is the role's `service.name` (`api-service`, `upscale-worker`, ...). Call it from
/// inside the Tokio runtime: exports run on it.
pub fn init(service: &str, default_filter: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let text = crate::config::var("ATELIER_LOG_FORMAT").as_deref() == Some("text");
    let (provider, export_error) = tracer_provider(service);
    let tracer = provider.tracer(SCOPE);
    opentelemetry::global::set_tracer_provider(provider.clone());
    // Each layer has its own filter: `RUST_LOG` quietening the logs must not cut a job's
    // trace (spans carry the context that `traceparent` headers are made from).
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_filter(LevelFilter::INFO);
    let registry = tracing_subscriber::registry().with(otel);
    let result = if text {
        registry
            .with(fmt::layer().with_target(true).with_filter(filter))
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .fmt_fields(fmt::format::JsonFields::new())
                    .event_format(format::JsonLines)
                    .with_filter(filter),
            )
            .try_init()
    };
    if result.is_err() {
        // Already installed (several roles in one test process): keep the first.
        let _ = provider.shutdown();
        return Telemetry { provider: None };
    }
    if let Some(err) = export_error {
        tracing::error!(error = %err, "trace export is off: the OTLP exporter could not be built");
    }
    Telemetry {
        provider: Some(provider),
    }
}

/// Whether the `OTEL_*` variables ask for OTLP export.
pub fn export_requested(var: impl Fn(&str) -> Option<String>) -> bool {
    let is =
        |name: &str, value: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
        return false;
    }
    let named = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    named("OTEL_EXPORTER_OTLP_ENDPOINT")
        || named("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || is("OTEL_TRACES_EXPORTER", "otlp")
}

fn tracer_provider(service: &str) -> (SdkTracerProvider, Option<String>) {
    let mut resource = Resource::builder();
    if crate::config::var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    if !export_requested(|name| std::env::var(name).ok()) {
        return (builder.build(), None);
    }
    match opentelemetry_otlp::SpanExporter::builder().build() {
        Ok(exporter) => {
            let exporter = OnRuntime {
                inner: Arc::new(exporter),
                runtime: tokio::runtime::Handle::current(),
                last_complaint: AtomicU64::new(0),
            };
            (builder.with_batch_exporter(exporter).build(), None)
        }
        Err(err) => (builder.build(), Some(err.to_string())),
    }
}

/// Runs exports on the service's Tokio runtime.
///
/// The SDK's batch processor exports from a plain thread, but the OTLP clients (tonic, hyper)
/// need a Tokio reactor; without one the processor thread panics and every later span is
/// dropped (open-telemetry/opentelemetry-rust#2673). Spawning each export onto the runtime and
/// waiting for it there keeps the thread-based processor and its bounded queue.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: tokio::runtime::Handle,
    /// Unix seconds of the last logged export failure: one line a minute, not one a batch.
    last_complaint: AtomicU64,
}

impl OnRuntime {
    fn complain(&self, err: &OTelSdkError) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let last = self.last_complaint.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_complaint
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %err, "trace export failed; spans of this batch are dropped");
        }
    }
}

impl SpanExporter for OnRuntime {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = self.inner.clone();
        let result = match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(err) => Err(OTelSdkError::InternalFailure(format!("export task: {err}"))),
        };
        if let Err(err) = &result {
            self.complain(err);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before any export shares the exporter.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn export_needs_an_endpoint_and_honours_the_off_switches() {
        assert!(!export_requested(env(&[])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4317"
        )])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces"
        )])));
        assert!(export_requested(env(&[("OTEL_TRACES_EXPORTER", "otlp")])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])));
        assert!(!export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            " "
        )])));
    }
}
