//! Delivery: takes due rows, sends each with both signatures through the SSRF-guarded
//! client (no redirects, 30 s timeout), records the attempt, and schedules the next one.
//! It sleeps until the earliest due delivery or until intake wakes it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use atelier_kit::{metrics::metrics, telemetry};
use atelier_netguard::{FetchError, GuardedClient, Sent};
use chrono::Utc;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    WebhookConfig,
    hosts::{self, Hosts},
    schedule::{self, Verdict},
    secrets,
    store::{self, AttemptRecord, Due},
};

/// Longest sleep between looks at the table: covers rows another replica made due.
const MAX_IDLE: Duration = Duration::from_secs(10);
/// Longer than any attempt can take, so a leased row is never sent twice at once.
const LEASE: Duration = Duration::from_secs(120);
/// How long a delivery whose host is at its share waits before it is taken again.
const HOST_BUSY: Duration = Duration::from_secs(1);
/// Bytes of a receiver's answer kept for the log.
const MAX_RESPONSE: u64 = 4096;

#[derive(Clone)]
pub struct Sender {
    pub pool: PgPool,
    pub guard: GuardedClient,
    pub config: Arc<WebhookConfig>,
    pub wake: Arc<Notify>,
    /// Wakes the attempt reporter: an attempt was recorded.
    pub recorded: Arc<Notify>,
    /// One semaphore per destination, so one slow receiver cannot take every slot.
    pub hosts: Arc<Mutex<Hosts>>,
}

impl Sender {
    fn host_slots(&self, url: &str) -> Arc<Semaphore> {
        let mut map = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        map.slots(hosts::host_key(url), self.config.per_host)
    }
}

/// Delivers until cancelled.
///
/// On cancel: stops taking rows and waits for attempts in flight (each bounded by the
/// timeout). On error: a database failure is logged and retried after a pause.
pub async fn run(sender: Sender, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(sender.config.concurrency.max(1)));
    let tasks = TaskTracker::new();
    while !shutdown.is_cancelled() {
        let free = slots.available_permits() as i64;
        if free == 0 {
            // Every slot is busy: wait for one to free rather than polling the table.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => drop(permit),
            }
            continue;
        }
        let taken = store::take_due(&sender.pool, free, LEASE).await;
        match taken {
            Ok(due) if !due.is_empty() => {
                // A global slot is only ever taken with the host's slot in hand: a slow host
                // holds at most its own share, never the slots other partners' webhooks need.
                let mut deferred = Vec::new();
                for delivery in due {
                    let Ok(host) = sender.host_slots(&delivery.url).try_acquire_owned() else {
                        deferred.push(delivery.event_id);
                        continue;
                    };
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let sender = sender.clone();
                    tasks.spawn(async move {
                        attempt(&sender, delivery, host).await;
                        drop(permit);
                    });
                }
                if !deferred.is_empty()
                    && let Err(err) = store::defer(&sender.pool, &deferred, HOST_BUSY).await
                {
                    // Their lease runs out and they are taken again.
                    tracing::warn!(error = %err, "deferring webhooks of busy hosts failed");
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "taking due webhooks failed"),
        }
        let idle = match store::next_due(&sender.pool).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_IDLE),
            _ => MAX_IDLE,
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sender.wake.notified() => {},
            _ = tokio::time::sleep(idle.max(Duration::from_millis(20))) => {},
        }
    }
    tasks.close();
    tasks.wait().await;
}

/// A W3C `traceparent` in the job's trace with a fresh span id.
pub fn traceparent(trace_id: &str) -> String {
    let span: u64 = rand::rng().random_range(1..=u64::MAX);
    format!("00-{trace_id}-{span:016x}-01")
}

/// Sorts an attempt's result into delivered, give up, or retry.
pub fn judge(result: &Result<Sent, FetchError>) -> Verdict {
    match result {
        Ok(sent) => schedule::judge_status(sent.status.as_u16(), sent.retry_after()),
        Err(err) if err.is_blocked() || !err.is_retryable() => Verdict::GiveUp,
        Err(err) => Verdict::Retry {
            overloaded: err.is_timeout(),
            retry_after: None,
        },
    }
}

fn describe(result: &Result<Sent, FetchError>) -> Option<String> {
    match result {
        Ok(sent) if sent.status.is_success() => None,
        Ok(sent) if sent.status.is_redirection() => Some(format!(
            "redirects are not followed (status {}, location {})",
            sent.status.as_u16(),
            sent.headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
        )),
        Ok(sent) => Some(format!("receiver answered {}", sent.status.as_u16())),
        Err(err) => Some(err.to_string()),
    }
}

/// One attempt is one client span in the job's trace, child of the delivery's intake (for
/// rows written before spans were stored: a child of the job's trace id alone).
fn attempt_span(delivery: &Due) -> tracing::Span {
    let span = tracing::info_span!(
        "webhook.attempt",
        otel.name = "webhook.attempt",
        otel.kind = "client",
        job.id = %delivery.job_id,
        event.id = %delivery.event_id,
        client.id = %delivery.client_id,
        attempt = delivery.attempts + 1,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = match (&delivery.traceparent, &delivery.trace_id) {
        (Some(line), _) => Some(line.clone()),
        (None, Some(trace_id)) => Some(traceparent(trace_id)),
        (None, None) => None,
    };
    telemetry::follow(
        &span,
        telemetry::context_from_traceparent(parent.as_deref()),
    );
    span
}

async fn attempt(sender: &Sender, delivery: Due, host: OwnedSemaphorePermit) {
    let span = attempt_span(&delivery);
    attempt_in_span(sender, delivery).instrument(span).await;
    drop(host);
}

/// The outcome label of `atelier_webhook_attempts_total`.
fn outcome(result: &Result<Sent, FetchError>) -> &'static str {
    match result {
        Ok(sent) if sent.status.is_success() => "success",
        Ok(_) => "http_error",
        Err(err) if err.is_blocked() => "refused",
        Err(err) if err.is_timeout() => "timeout",
        Err(_) => "network",
    }
}

async fn attempt_in_span(sender: &Sender, delivery: Due) {
    let attempt = delivery.attempts + 1;
    let lease = delivery.locked_until;
    let keys = match secrets::signing_keys(
        &sender.pool,
        &delivery.client_id,
        sender.config.signing_key.as_ref(),
    )
    .await
    {
        Ok(keys) => keys,
        Err(err) => {
            // Not attempted: the lease runs out and the delivery is taken again.
            tracing::warn!(error = format!("{err:#}"), "signing keys unavailable");
            return;
        }
    };
    let started_at = Utc::now();
    let timestamp = started_at.timestamp();
    let body = delivery.payload.clone().into_bytes();
    let mut request = sender
        .guard
        .client()
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string());
    // The receiver's spans become children of this attempt.
    let line =
        telemetry::current_traceparent().or_else(|| delivery.trace_id.as_deref().map(traceparent));
    if let Some(line) = line {
        request = request.header("traceparent", line);
    }
    if let Some(newest) = keys.first() {
        // Standard Webhooks carries every live key's signature, space-separated, so a
        // receiver on either side of a rotation verifies. The seed's header has room for one
        // (`sha256=<hex>`; the seed knows no rotation): the newest key's, because a rotation
        // is often the answer to a leaked secret, and a receiver that drops the old secret
        // at once must not be made to keep trusting it. A seed receiver that has not switched
        // yet answers non-2xx and gets the event again on the retry schedule.
        let standard: Vec<String> = keys
            .iter()
            .map(|key| key.standard_signature(&delivery.event_id, timestamp, &body))
            .collect();
        request = request
            .header("x-zhinian-signature", newest.zhinian_signature(&body))
            .header("webhook-signature", standard.join(" "));
    }
    let clock = std::time::Instant::now();
    let result = sender.guard.send(request.body(body), MAX_RESPONSE).await;
    let latency = clock.elapsed();
    metrics().webhook_attempt(outcome(&result));
    if let Ok(sent) = &result {
        tracing::Span::current().record("http.response.status_code", sent.status.as_u16());
    }
    let verdict = judge(&result);
    let next_attempt_at = match verdict {
        Verdict::Retry {
            overloaded,
            retry_after,
        } => {
            let jitter = rand::rng().random_range(-1.0..=1.0);
            schedule::next_delay(
                &sender.config.retry_schedule,
                attempt as u32,
                overloaded,
                retry_after,
                jitter,
            )
            .and_then(|delay| chrono::Duration::from_std(delay).ok())
            .map(|delay| Utc::now() + delay)
        }
        Verdict::Delivered | Verdict::GiveUp => None,
    };
    let error = describe(&result);
    let record = AttemptRecord {
        event_id: &delivery.event_id,
        lease,
        attempt,
        started_at,
        status_code: result.as_ref().ok().map(|sent| sent.status.as_u16()),
        latency,
        error: error.clone(),
        next_attempt_at,
        delivered: verdict == Verdict::Delivered,
    };
    match (&error, next_attempt_at) {
        (None, _) => tracing::info!(latency_ms = latency.as_millis() as u64, "webhook delivered"),
        (Some(error), Some(next)) => {
            tracing::warn!(%error, next_attempt_at = %next, "webhook attempt failed")
        }
        (Some(error), None) => tracing::error!(%error, "webhook delivery failed for good"),
    }
    let recorded = store::record(&sender.pool, &record).await;
    if matches!(recorded, Ok(Some(_))) {
        sender.recorded.notify_one();
    }
    match recorded {
        // The loop may be asleep on this row's old lease: let it see the new due time.
        Ok(Some(true)) => sender.wake.notify_one(),
        Ok(Some(false)) => {}
        Ok(None) => tracing::warn!("webhook lease lost during the attempt; not recorded"),
        // The lease runs out and the attempt is made again: at-least-once delivery.
        Err(err) => tracing::warn!(error = %err, "webhook attempt not recorded"),
    }
}
