//! Every state transition of a job after it is accepted. Each is one fenced `UPDATE`:
//! the `WHERE` clause states which jobs may move, so a stale or duplicate event, a
//! second sweeper or a racing replica changes nothing. Terminal states absorb; the
//! transaction that commits a terminal state also records the outputs and queues the
//! webhook, so neither can exist without the other.

use std::time::Duration;

use atelier_kit::{
    ids::{AssetId, JobId},
    nats::Names,
};
use atelier_proto::jobs::v1::Output;
use serde_json::json;
use sqlx::AssertSqlSafe;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    credits, dispatch,
    jobs::view::{JOB_COLUMNS, Job, JobRow},
};

/// Which jobs a terminal transition may apply to.
#[derive(Clone, Copy, Debug)]
pub enum Fence<'a> {
    /// An event from the worker holding this lease.
    Lease(&'a str),
    /// A job still queued past its time-to-live.
    QueuedPastTtl,
    /// A running attempt whose deadline had passed at this instant (a PostgreSQL timestamp,
    /// as text): the reconciler's mark, so that a result published before the deadline and
    /// still on its way through the projector is applied rather than overtaken, see `recovery`.
    RunningPastDeadline(&'a str),
    /// A running job on its last attempt whose last heartbeat is older than this instant (a
    /// PostgreSQL timestamp, as text): the reconciler's cutoff, see `recovery`.
    StaleOnLastAttempt(&'a str),
    /// A job not yet terminal, queued or running on any lease (a partner's cancel).
    NotTerminal,
    /// A queued job whose dispatch can never be published (docs/hardening.md, H2).
    Queued,
}

impl Fence<'_> {
    /// The condition, with `$5` bound to [`Fence::bind_value`].
    pub fn condition(&self) -> &'static str {
        match self {
            Fence::Lease(_) => "status = 'running' AND lease_token = $5",
            Fence::QueuedPastTtl => "status = 'queued' AND expires_at < now() AND $5::text IS NULL",
            Fence::RunningPastDeadline(_) => {
                "status = 'running' AND run_deadline_at < $5::text::timestamptz"
            }
            Fence::NotTerminal => "status IN ('queued', 'running') AND $5::text IS NULL",
            Fence::Queued => "status = 'queued' AND $5::text IS NULL",
            Fence::StaleOnLastAttempt(_) => {
                "status = 'running' AND attempt >= max_attempts
                 AND heartbeat_at < $5::text::timestamptz"
            }
        }
    }

    pub fn bind_value(&self) -> Option<String> {
        match self {
            Fence::Lease(token) => Some((*token).to_owned()),
            Fence::StaleOnLastAttempt(cutoff) | Fence::RunningPastDeadline(cutoff) => {
                Some((*cutoff).to_owned())
            }
            _ => None,
        }
    }
}

/// How a job ends.
#[derive(Clone, Debug)]
pub enum Outcome {
    Succeeded(Vec<Output>),
    Failed { code: String, message: String },
    Expired,
    Cancelled,
}

impl Outcome {
    fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::Expired => "expired",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn error(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Outcome::Succeeded(_) => (None, None),
            Outcome::Failed { code, message } => (Some(code), Some(message)),
            Outcome::Expired => (
                Some("expired"),
                Some("the job was not started before its time-to-live ran out"),
            ),
            Outcome::Cancelled => (Some("cancelled"), Some("cancelled by the client")),
        }
    }
}

/// Commits a terminal state if the fence allows it; returns the job if this call made
/// the transition, `None` if the job had already moved on.
pub async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    names: &Names,
    retention: Duration,
    job_id: &str,
    fence: Fence<'_>,
    outcome: &Outcome,
    inputs: &[Output],
) -> sqlx::Result<Option<Job>> {
    let (code, message) = outcome.error();
    // The row comes back as the webhook shows it, so no second read is needed: outputs are
    // only recorded by this transition, so its outputs are the ones recorded below.
    let moved: Option<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE jobs SET status = $2, error_code = $3, error_message = $4,
                finished_at = now(), updated_at = now(), lease_token = NULL,
                progress_pct = CASE WHEN $2 = 'succeeded' THEN 100 ELSE progress_pct END,
                current_step = $2
         WHERE id = $1 AND {}
         RETURNING {JOB_COLUMNS}",
        fence.condition()
    )))
    .bind(job_id)
    .bind(outcome.status())
    .bind(code)
    .bind(message)
    .bind(fence.bind_value())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(mut row) = moved else {
        return Ok(None);
    };
    let client = row.client_id.clone();
    record_assets(tx, job_id, &client, "input", inputs, retention).await?;
    match outcome {
        Outcome::Succeeded(outputs) => {
            row.output_asset_ids =
                record_assets(tx, job_id, &client, "output", outputs, retention).await?;
        }
        Outcome::Failed { .. } | Outcome::Expired | Outcome::Cancelled => {
            // The row was read before the refund: the webhook shows what was given back.
            if credits::refund(tx, job_id).await? {
                row.refunded = row.credits;
            }
        }
    }
    let webhook_url = row.webhook_url.clone();
    let job = Job::from(row);
    if let Some(url) = webhook_url {
        let payload = json!({
            "event": format!("generation.{}", outcome.status()),
            "job": &job,
        });
        let job_id = JobId::from_trusted(job_id.to_owned());
        dispatch::enqueue_webhook(
            tx,
            names,
            &job_id,
            &client,
            &url,
            payload.to_string(),
            job.trace_id.as_deref(),
        )
        .await?;
    }
    Ok(Some(job))
}

/// Records a job's files: its outputs, or the inputs its worker fetched from URLs and kept.
/// Returns the new assets' ids, in the files' order.
async fn record_assets(
    tx: &mut Transaction<'_, Postgres>,
    job_id: &str,
    client: &str,
    role: &str,
    files: &[Output],
    retention: Duration,
) -> sqlx::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(files.len());
    for (position, output) in files.iter().enumerate() {
        let id = AssetId::generate().to_string();
        let kind = asset_kind(&output.content_type);
        let positive = |v: u32| (v > 0).then_some(v as i32);
        sqlx::query(
            "INSERT INTO assets (id, client_id, job_id, position, role, kind, name, s3_key,
                                 content_type, size_bytes, sha256, width, height, expires_at)
             VALUES ($1, $2, $3, $4, $14, $5, $6, $7, $8, $9, $10, $11, $12, now() + $13)",
        )
        .bind(&id)
        .bind(client)
        .bind(job_id)
        .bind(position as i32)
        .bind(kind)
        .bind(&output.name)
        .bind(&output.s3_key)
        .bind(&output.content_type)
        .bind(output.size as i64)
        .bind(&output.sha256)
        .bind(positive(output.width))
        .bind(positive(output.height))
        .bind(retention)
        .bind(role)
        .execute(&mut **tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// The asset kind the schema records for a file's content type.
pub fn asset_kind(content_type: &str) -> &'static str {
    match content_type.split('/').next() {
        Some("video") => "video",
        Some("audio") => "audio",
        Some("image") => "image",
        Some("text") => "text",
        _ if content_type == "application/json" || content_type == "application/x-subrip" => "text",
        _ => "document",
    }
}

/// What a granted claim hands to the worker.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    /// The attempt's lease: fresh, or the one already granted to this worker for this
    /// dispatch when it asks again.
    pub lease_token: String,
    pub client_id: String,
    pub capability: String,
    pub params: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    /// What a provider engine recorded in an earlier attempt (`record_upstream`).
    pub upstream: Option<serde_json::Value>,
    pub deadline_ms: i64,
}

/// Who asks for an attempt: the worker and the dispatch message it holds.
#[derive(Clone, Copy, Debug)]
pub struct Claimant<'a> {
    pub worker_id: &'a str,
    pub dispatch_seq: i32,
}

/// Starts an attempt. Only the job's current dispatch, released by the dispatcher, can claim it (an
/// older duplicate left in the stream, or a retry's dispatch before its delay, changes
/// nothing), and only
/// while the job is queued with attempts left, or — the same claim asked again because
/// its reply was lost — while the job is running under a lease granted to this very worker
/// for this very dispatch and not yet reported on (`current_step` is still `claimed`). That
/// repeat gets the same lease and attempt: the lease is not left to a worker that never
/// heard of it, and no attempt is spent twice (docs/hardening.md, M2).
///
/// A running job whose worker went silent is never taken over here: whether its heartbeat
/// is stale can only be judged once the projector has applied every event sent before, and
/// the reconciler judges that (M3).
pub async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    job_id: &str,
    fresh_lease: &str,
    claimant: Claimant<'_>,
    run_timeout: Duration,
) -> sqlx::Result<Option<Claimed>> {
    // In an UPDATE's SET list every column names the row as it was, so `status = 'running'`
    // on the right-hand side means "this is the repeat of a granted claim".
    sqlx::query_as(
        "UPDATE jobs SET status = 'running',
                lease_token = CASE WHEN status = 'running' THEN lease_token ELSE $2 END,
                attempt = CASE WHEN status = 'running' THEN attempt ELSE attempt + 1 END,
                run_deadline_at = CASE WHEN status = 'running' THEN run_deadline_at
                                       ELSE now() + $5 END,
                lease_holder = $3, started_at = COALESCE(started_at, now()),
                heartbeat_at = now(), updated_at = now(),
                current_step = 'claimed', error_code = NULL, error_message = NULL
         WHERE id = $1 AND dispatch_seq = $4 AND released_seq = $4 AND dispatched_at <= now()
           AND ((status = 'queued' AND attempt < max_attempts)
                OR (status = 'running' AND lease_holder = $3 AND current_step = 'claimed'))
         RETURNING lease_token, client_id, capability, params, attempt, max_attempts, upstream,
                   (extract(epoch FROM run_deadline_at) * 1000)::bigint AS deadline_ms",
    )
    .bind(job_id)
    .bind(fresh_lease)
    .bind(claimant.worker_id)
    .bind(claimant.dispatch_seq)
    .bind(run_timeout)
    .fetch_optional(&mut **tx)
    .await
}

/// A provider engine's record of its upstream task (or of the provider serving a synchronous
/// job), merged into `jobs.upstream`, fenced by the lease. A task id once recorded is never
/// replaced by an empty one, so a later usage report cannot erase it. Also a heartbeat.
pub async fn record_upstream(
    pool: &PgPool,
    job_id: &str,
    lease_token: &str,
    upstream: &atelier_proto::jobs::v1::Upstream,
) -> sqlx::Result<bool> {
    let mut record = serde_json::json!({
        "provider": upstream.provider,
        "model": upstream.upstream_model,
        "submitted": upstream.submitted,
    });
    if !upstream.task_id.is_empty() {
        record["taskId"] = serde_json::json!(upstream.task_id);
    }
    if let Ok(usage) = serde_json::from_str::<serde_json::Value>(&upstream.usage_json) {
        record["usage"] = usage;
    }
    let done = sqlx::query(
        "UPDATE jobs SET upstream = COALESCE(upstream, '{}'::jsonb) || $3, heartbeat_at = now(),
                updated_at = now()
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(job_id)
    .bind(lease_token)
    .bind(record)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A progress event is also the attempt's heartbeat. Progress only moves forward, across
/// attempts too: a retried job shows where it got to, never a jump back to 0.
pub async fn progress(
    pool: &PgPool,
    job_id: &str,
    lease_token: &str,
    percent: u32,
    step: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET progress_pct = GREATEST(progress_pct, $3), current_step = $4, heartbeat_at = now(),
                updated_at = now()
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(job_id)
    .bind(lease_token)
    .bind(percent.min(100) as i32)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A retryable failure with attempts left: back to `queued` with a new dispatch, which the
/// dispatcher releases once the retry delay has passed. The worker acks its message, so
/// nothing sits in the work stream meanwhile and no delivery budget is spent on waiting.
pub async fn release(
    tx: &mut Transaction<'_, Postgres>,
    job_id: &str,
    lease_token: &str,
    code: &str,
    message: &str,
    retry_in: Duration,
) -> sqlx::Result<bool> {
    let released = sqlx::query(
        "UPDATE jobs SET status = 'queued', lease_token = NULL, heartbeat_at = NULL,
                error_code = $3, error_message = $4, current_step = 'retrying',
                dispatch_seq = dispatch_seq + 1, dispatched_at = now() + $5,
                updated_at = now()
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(job_id)
    .bind(lease_token)
    .bind(code)
    .bind(message)
    .bind(retry_in)
    .execute(&mut **tx)
    .await?;
    Ok(released.rows_affected() == 1)
}
