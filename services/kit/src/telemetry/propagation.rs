//! W3C trace context across process boundaries: `traceparent` in NATS headers, in HTTP
//! headers and in database rows (for work resumed later: outbox rows, pending webhooks).

use std::time::SystemTime;

use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{SpanKind, TraceContextExt, Tracer, TracerProvider as _},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A parent to continue from: the context of a span in another process or another time.
pub type Parent = Context;

struct NatsHeaders<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct ReadNats<'a>(&'a async_nats::HeaderMap);

impl Extractor for ReadNats<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

struct ReadHttp<'a>(&'a axum::http::HeaderMap);

impl Extractor for ReadHttp<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// One `traceparent` line; a map keeps the propagator's interface.
struct Line(Option<String>);

impl Injector for Line {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Line {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent")
            .then_some(self.0.as_deref())
            .flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// Adds the current span's context to outgoing NATS headers.
pub fn inject_nats(headers: &mut async_nats::HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut NatsHeaders(headers));
}

/// New NATS headers carrying the current span's context.
pub fn nats_headers() -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    inject_nats(&mut headers);
    headers
}

/// The context a NATS message carries (an empty context when it carries none).
pub fn extract_nats(headers: Option<&async_nats::HeaderMap>) -> Parent {
    match headers {
        Some(headers) => TraceContextPropagator::new().extract(&ReadNats(headers)),
        None => Context::new(),
    }
}

/// The context an HTTP request carries (a partner's own trace, if it sends one).
pub fn extract_http(headers: &axum::http::HeaderMap) -> Parent {
    TraceContextPropagator::new().extract(&ReadHttp(headers))
}

/// The current span's W3C `traceparent`, to store with work that resumes later.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut line = Line(None);
    TraceContextPropagator::new().inject_context(&cx, &mut line);
    line.0
}

/// The current span's trace id (32 hex digits), when tracing is installed.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// The context a stored `traceparent` names (empty when it is absent or malformed).
pub fn context_from_traceparent(traceparent: Option<&str>) -> Parent {
    let line = Line(traceparent.map(str::to_owned));
    TraceContextPropagator::new().extract(&line)
}

/// Makes `span` a child of `parent` when `parent` names a span. Call it before the span is
/// first entered.
pub fn follow(span: &tracing::Span, parent: Parent) {
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Records a span that already happened, such as the time a message waited in its queue.
pub fn record_span(
    name: &'static str,
    parent: &Parent,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
) {
    let tracer = opentelemetry::global::tracer_provider().tracer(super::SCOPE);
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Consumer)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    opentelemetry::trace::Span::end_with_timestamp(&mut span, end);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_stored_traceparent_round_trips_through_nats_headers() {
        let parent = context_from_traceparent(Some(LINE));
        assert!(parent.span().span_context().is_valid());
        let mut headers = async_nats::HeaderMap::new();
        TraceContextPropagator::new().inject_context(&parent, &mut NatsHeaders(&mut headers));
        assert_eq!(headers.get("traceparent").unwrap().as_str(), LINE);
        let back = extract_nats(Some(&headers));
        assert_eq!(
            back.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(back.span().span_context().is_remote());
    }

    #[test]
    fn malformed_or_missing_contexts_are_empty() {
        for line in [None, Some(""), Some("00-zz-yy-01"), Some("garbage")] {
            let cx = context_from_traceparent(line);
            assert!(!cx.span().span_context().is_valid(), "{line:?}");
        }
        assert!(!extract_nats(None).span().span_context().is_valid());
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("traceparent", LINE.parse().unwrap());
        assert!(extract_http(&headers).span().span_context().is_valid());
    }
}
