//! The Prometheus metrics every role exports on `GET /metrics`, in one registry per process
//! (roles sharing a process under `atelier all` share it). Names are the public contract of
//! the dashboards and alert rules in `deploy/observability/` and the chart's PrometheusRule.
//!
//! Labels are bounded: routes are axum's matched templates, capabilities and outcomes are
//! fixed sets, consumers are the deployment's durable names.

use std::{sync::LazyLock, time::Duration};

use async_nats::jetstream::consumer::PullConsumer;
use axum::{http::header, response::IntoResponse};
use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio_util::sync::CancellationToken;

type Labels = Vec<(&'static str, String)>;

/// Histograms of seconds from 5 ms to about 20 min.
#[derive(Clone)]
struct Seconds;

impl MetricConstructor<Histogram> for Seconds {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.005, 2.0, 18))
    }
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram, Seconds>,
    jobs_created: Family<Labels, Counter>,
    jobs_finished: Family<Labels, Counter>,
    queue_wait: Family<Labels, Histogram, Seconds>,
    run_time: Family<Labels, Histogram, Seconds>,
    redeliveries: Family<Labels, Counter>,
    consumer_pending: Family<Labels, Gauge>,
    consumer_ack_pending: Family<Labels, Gauge>,
    consumer_redelivered: Family<Labels, Gauge>,
    consumer_ack_floor: Family<Labels, Gauge>,
    webhook_attempts: Family<Labels, Counter>,
    outbox_pending: Gauge,
    queued_oldest: Family<Labels, Gauge>,
    db_connections: Family<Labels, Gauge>,
    provider_requests: Family<Labels, Counter>,
    provider_request_duration: Family<Labels, Histogram, Seconds>,
    provider_jobs: Family<Labels, Counter>,
    provider_in_flight: Family<Labels, Gauge>,
    jobs_cancelled: Family<Labels, Counter>,
    outbox_parked: Counter,
    orphans_deleted: Family<Labels, Counter>,
    creates_refused: Family<Labels, Counter>,
    client_jobs: Family<Labels, Gauge>,
    dispatch_wait: Family<Labels, Histogram, Seconds>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let mut metrics = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(Seconds),
            jobs_created: Family::default(),
            jobs_finished: Family::default(),
            queue_wait: Family::new_with_constructor(Seconds),
            run_time: Family::new_with_constructor(Seconds),
            redeliveries: Family::default(),
            consumer_pending: Family::default(),
            consumer_ack_pending: Family::default(),
            consumer_redelivered: Family::default(),
            consumer_ack_floor: Family::default(),
            webhook_attempts: Family::default(),
            outbox_pending: Gauge::default(),
            queued_oldest: Family::default(),
            db_connections: Family::default(),
            provider_requests: Family::default(),
            provider_request_duration: Family::new_with_constructor(Seconds),
            provider_jobs: Family::default(),
            provider_in_flight: Family::default(),
            jobs_cancelled: Family::default(),
            outbox_parked: Counter::default(),
            orphans_deleted: Family::default(),
            creates_refused: Family::default(),
            client_jobs: Family::default(),
            dispatch_wait: Family::new_with_constructor(Seconds),
        };
        let r = &mut registry;
        r.register(
            "atelier_http_requests",
            "HTTP requests answered, by method, route and status",
            metrics.http_requests.clone(),
        );
        r.register(
            "atelier_http_request_duration_seconds",
            "HTTP request latency, by method and route",
            metrics.http_duration.clone(),
        );
        r.register(
            "atelier_jobs_created",
            "Jobs accepted, by capability",
            metrics.jobs_created.clone(),
        );
        r.register(
            "atelier_jobs_finished",
            "Jobs that reached a terminal state, by capability and status",
            metrics.jobs_finished.clone(),
        );
        r.register(
            "atelier_job_queue_wait_seconds",
            "Time from a job's dispatch being published to a worker receiving it",
            metrics.queue_wait.clone(),
        );
        r.register(
            "atelier_job_run_seconds",
            "Time a worker spent on one attempt, by capability and outcome",
            metrics.run_time.clone(),
        );
        r.register(
            "atelier_job_redeliveries",
            "Work messages a worker received more than once, by capability",
            metrics.redeliveries.clone(),
        );
        r.register(
            "atelier_consumer_pending_messages",
            "Messages of a JetStream consumer not yet delivered",
            metrics.consumer_pending.clone(),
        );
        r.register(
            "atelier_consumer_ack_pending_messages",
            "Messages of a JetStream consumer delivered and not yet acknowledged",
            metrics.consumer_ack_pending.clone(),
        );
        r.register(
            "atelier_consumer_redelivered_messages",
            "Messages of a JetStream consumer delivered more than once and not yet acknowledged",
            metrics.consumer_redelivered.clone(),
        );
        r.register(
            "atelier_consumer_ack_floor_sequence",
            "Stream sequence below which a JetStream consumer has acknowledged everything",
            metrics.consumer_ack_floor.clone(),
        );
        r.register(
            "atelier_webhook_attempts",
            "Webhook delivery attempts, by outcome",
            metrics.webhook_attempts.clone(),
        );
        r.register(
            "atelier_outbox_pending",
            "Outbox rows waiting to be published to NATS",
            metrics.outbox_pending.clone(),
        );
        r.register(
            "atelier_jobs_queued_oldest_age_seconds",
            "Age of the oldest job still queued, by capability",
            metrics.queued_oldest.clone(),
        );
        r.register(
            "atelier_db_connections",
            "Database pool connections, by pool and state (idle, in_use, max)",
            metrics.db_connections.clone(),
        );
        r.register(
            "atelier_provider_requests",
            "HTTP requests to upstream providers, by provider and status class (2xx, 4xx, 5xx, transport)",
            metrics.provider_requests.clone(),
        );
        r.register(
            "atelier_provider_request_duration_seconds",
            "Latency of HTTP requests to upstream providers, by provider",
            metrics.provider_request_duration.clone(),
        );
        r.register(
            "atelier_provider_jobs",
            "Job attempts routed to a provider, by provider and outcome (succeeded, or the error code: provider_unavailable, content_rejected, invalid_request, provider_retryable, upstream_error, upstream_outcome_unknown, timed_out)",
            metrics.provider_jobs.clone(),
        );
        r.register(
            "atelier_provider_in_flight",
            "Job attempts holding one of a provider's concurrency slots, by provider",
            metrics.provider_in_flight.clone(),
        );
        r.register(
            "atelier_jobs_cancelled",
            "Jobs a partner cancelled, by capability and the state they were in (queued, running)",
            metrics.jobs_cancelled.clone(),
        );
        r.register(
            "atelier_outbox_parked",
            "Outbox rows parked because NATS can never take them (larger than max_payload)",
            metrics.outbox_parked.clone(),
        );
        r.register(
            "atelier_orphans_deleted",
            "Objects (kind object) and multipart uploads (kind multipart_upload) no asset row accounted for, removed by the orphan sweep",
            metrics.orphans_deleted.clone(),
        );
        r.register(
            "atelier_creates_refused",
            "Job creations refused with a 429, by client and reason (rate, queued)",
            metrics.creates_refused.clone(),
        );
        r.register(
            "atelier_client_jobs",
            "Jobs queued or running, by client, capability and status",
            metrics.client_jobs.clone(),
        );
        r.register(
            "atelier_dispatch_wait_seconds",
            "From a job due (accepted, or its retry delay over) to its dispatch released to the work stream, by client and capability",
            metrics.dispatch_wait.clone(),
        );
        metrics.registry = registry;
        metrics
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&vec![
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&vec![
                ("method", method.to_owned()),
                ("route", route.to_owned()),
            ])
            .observe(elapsed.as_secs_f64());
    }

    pub fn job_created(&self, capability: &str) {
        self.jobs_created
            .get_or_create(&vec![("capability", capability.to_owned())])
            .inc();
    }

    pub fn job_finished(&self, capability: &str, status: &str) {
        self.jobs_finished
            .get_or_create(&vec![
                ("capability", capability.to_owned()),
                ("status", status.to_owned()),
            ])
            .inc();
    }

    pub fn queue_wait(&self, capability: &str, waited: Duration) {
        self.queue_wait
            .get_or_create(&vec![("capability", capability.to_owned())])
            .observe(waited.as_secs_f64());
    }

    /// `outcome`: `succeeded`, `released` (retry later) or `failed`.
    pub fn attempt_ran(&self, capability: &str, outcome: &str, took: Duration) {
        self.run_time
            .get_or_create(&vec![
                ("capability", capability.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .observe(took.as_secs_f64());
    }

    pub fn redelivered(&self, capability: &str) {
        self.redeliveries
            .get_or_create(&vec![("capability", capability.to_owned())])
            .inc();
    }

    /// `outcome`: `success`, `http_error` (any other status), `timeout`, `network` or
    /// `refused` (a blocked destination).
    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn outbox_parked(&self) {
        self.outbox_parked.inc();
    }

    /// A create refused for `reason`: `rate` (the token bucket) or `queued` (the cap). Clients
    /// are a bounded label: the deployment's API keys.
    pub fn create_refused(&self, client: &str, reason: &str) {
        self.creates_refused
            .get_or_create(&vec![
                ("client", client.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// How long a job waited for the fair dispatcher to release it.
    pub fn dispatch_waited(&self, client: &str, capability: &str, waited: Duration) {
        self.dispatch_wait
            .get_or_create(&vec![
                ("client", client.to_owned()),
                ("capability", capability.to_owned()),
            ])
            .observe(waited.as_secs_f64());
    }

    /// A client's jobs in `status` (`queued`, `running`) for `capability`.
    pub fn client_jobs(&self, client: &str, capability: &str, status: &str, count: i64) {
        self.client_jobs
            .get_or_create(&vec![
                ("client", client.to_owned()),
                ("capability", capability.to_owned()),
                ("status", status.to_owned()),
            ])
            .set(count);
    }

    /// `kind`: `object` (deleted) or `multipart_upload` (aborted).
    pub fn orphan_deleted(&self, kind: &str) {
        self.orphans_deleted
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    pub fn outbox_pending(&self, rows: i64) {
        self.outbox_pending.set(rows);
    }

    /// A partner's cancel ended a job that was `state` (`queued` or `running`).
    pub fn job_cancelled(&self, capability: &str, state: &str) {
        self.jobs_cancelled
            .get_or_create(&vec![
                ("capability", capability.to_owned()),
                ("state", state.to_owned()),
            ])
            .inc();
    }

    /// One HTTP request to a provider: `status` is its class (`2xx`, `4xx`, `5xx`) or
    /// `transport` when no answer came.
    pub fn provider_request(&self, provider: &str, status: &str, took: Duration) {
        self.provider_requests
            .get_or_create(&vec![
                ("provider", provider.to_owned()),
                ("status", status.to_owned()),
            ])
            .inc();
        self.provider_request_duration
            .get_or_create(&vec![("provider", provider.to_owned())])
            .observe(took.as_secs_f64());
    }

    /// A routed attempt ended: `outcome` is `succeeded` or its error code.
    pub fn provider_job(&self, provider: &str, outcome: &str) {
        self.provider_jobs
            .get_or_create(&vec![
                ("provider", provider.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// An attempt took (`1`) or released (`-1`) one of a provider's slots.
    pub fn provider_in_flight(&self, provider: &str, delta: i64) {
        self.provider_in_flight
            .get_or_create(&vec![("provider", provider.to_owned())])
            .inc_by(delta);
    }

    pub fn queued_oldest(&self, capability: &str, age_seconds: i64) {
        self.queued_oldest
            .get_or_create(&vec![("capability", capability.to_owned())])
            .set(age_seconds);
    }

    pub fn db_pool(&self, pool: &str, size: u32, idle: usize, max: u32) {
        let gauge = |state: &str, value: i64| {
            self.db_connections
                .get_or_create(&vec![
                    ("pool", pool.to_owned()),
                    ("state", state.to_owned()),
                ])
                .set(value);
        };
        gauge("idle", idle as i64);
        gauge("in_use", i64::from(size) - idle as i64);
        gauge("max", i64::from(max));
    }

    fn consumer(&self, name: &str, info: &async_nats::jetstream::consumer::Info) {
        let labels = vec![("consumer", name.to_owned())];
        let as_gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.consumer_pending
            .get_or_create(&labels)
            .set(as_gauge(info.num_pending));
        self.consumer_ack_pending
            .get_or_create(&labels)
            .set(as_gauge(info.num_ack_pending as u64));
        self.consumer_redelivered
            .get_or_create(&labels)
            .set(as_gauge(info.num_redelivered as u64));
        self.consumer_ack_floor
            .get_or_create(&labels)
            .set(as_gauge(info.ack_floor.stream_sequence));
    }
}

/// `GET /metrics`.
pub async fn handler() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().render(),
    )
}

/// How often gauges read from NATS and the database are refreshed.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Calls `sample` every [`SAMPLE_EVERY`] until cancelled (gauges read from memory, such as a
/// connection pool's counts).
pub async fn sample_every(mut sample: impl FnMut() + Send, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => sample(),
        }
    }
}

/// Refreshes a consumer's gauges every [`SAMPLE_EVERY`] until cancelled.
///
/// On error: keeps the last values and tries again on the next tick.
pub async fn sample_consumer(mut consumer: PullConsumer, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {},
        }
        if let Ok(info) = consumer.info().await {
            let name = info.name.clone();
            metrics().consumer(&name, info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_what_the_alert_rules_use() {
        let m = metrics();
        m.http_request("POST", "/api/v1/jobs", 201, Duration::from_millis(12));
        m.job_created("image.upscale");
        m.job_finished("image.upscale", "succeeded");
        m.webhook_attempt("success");
        m.outbox_pending(3);
        m.queued_oldest("image.upscale", 42);
        let text = m.render();
        for expected in [
            "atelier_http_requests_total{method=\"POST\",route=\"/api/v1/jobs\",status=\"201\"} 1",
            "atelier_http_request_duration_seconds_bucket{",
            "atelier_jobs_created_total{capability=\"image.upscale\"} 1",
            "atelier_jobs_finished_total{capability=\"image.upscale\",status=\"succeeded\"} 1",
            "atelier_webhook_attempts_total{outcome=\"success\"} 1",
            "atelier_outbox_pending 3",
            "atelier_jobs_queued_oldest_age_seconds{capability=\"image.upscale\"} 42",
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }
}
