//! Job reads and the accepting write: the job row, its admission and its charge in one
//! transaction, with Idempotency-Key reuse decided by the database's unique constraint.

use atelier_kit::{
    ids::{ClientId, JobId},
    metrics::metrics,
    telemetry,
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use std::sync::LazyLock;
use tracing::Instrument;

use super::{
    request::CreateJobRequest,
    view::{JOB_COLUMNS, JobRow},
};
use crate::{
    AppState, credits,
    error::ApiError,
    limits::{self, Quota},
};
use axum::http::HeaderMap;

pub enum Created {
    /// A new job, and the client's create quota after it.
    New(JobRow, Quota),
    Reused(JobRow),
}

impl Created {
    /// The `RateLimit-*` headers of the answer; a reused job took nothing from the quota.
    pub fn quota_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Self::New(_, quota) = self {
            quota.write(&mut headers);
        }
        headers
    }
}

/// SHA-256 of the request as parsed; serde_json maps keep keys sorted, so the same
/// fields in another order or spacing hash the same.
pub fn request_hash(body: &serde_json::Value) -> Vec<u8> {
    Sha256::digest(body.to_string().as_bytes()).to_vec()
}

/// Everything that defines a job being accepted, whichever face it came through.
pub struct NewJob {
    pub client: ClientId,
    pub capability: String,
    /// The validated request, defaults filled in: what the worker receives.
    pub params: serde_json::Value,
    pub webhook_url: Option<String>,
    /// Hash of the request body, for Idempotency-Key reuse.
    pub hash: Vec<u8>,
    pub idempotency_key: Option<String>,
    /// The tasks API's model, when the job came through that face.
    pub model_id: Option<String>,
    /// The price, charged in the accepting transaction (0: free).
    pub credits: i64,
    pub request_id: String,
    /// The content type, for a job created through the creations face: its `creations` row
    /// is written in the accepting transaction.
    pub creation: Option<String>,
}

impl NewJob {
    /// A free job for a native request.
    pub fn native(
        client: ClientId,
        request: &CreateJobRequest,
        hash: Vec<u8>,
        idempotency_key: Option<String>,
        request_id: String,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            client,
            capability: request.capability.clone(),
            params: serde_json::to_value(request).map_err(anyhow::Error::from)?,
            webhook_url: request.webhook_url.clone(),
            hash,
            idempotency_key,
            model_id: None,
            credits: 0,
            request_id,
            creation: None,
        })
    }
}

/// Inserts the job and (for a priced job) its charge atomically, within the
/// client's limits, or returns the job an earlier request with the same Idempotency-Key created.
pub async fn create(state: &AppState, new: &NewJob) -> Result<Created, ApiError> {
    let id = JobId::generate();
    let span = tracing::info_span!("job.accept", job.id = %id, client.id = %new.client,
        capability = %new.capability);
    let created = accept(state, new, id).instrument(span).await?;
    if let Created::New(job, _) = &created {
        metrics().job_created(&job.capability);
    }
    Ok(created)
}

/// The accepting statement: the job row, queued; its first dispatch is the dispatcher's to
/// release. When the Idempotency-Key is already taken it writes nothing and returns no row.
static ACCEPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO jobs (id, client_id, capability, status, params, webhook_url,
                           idempotency_key, request_hash, max_attempts, expires_at,
                           model_id, credits, request_id, trace_id, traceparent)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, now() + $9, $10, $11, $12,
                 $13, $14)
         ON CONFLICT (client_id, idempotency_key) DO NOTHING
         RETURNING {JOB_COLUMNS}"
    )
});

async fn accept(state: &AppState, new: &NewJob, id: JobId) -> Result<Created, ApiError> {
    let (client, hash) = (&new.client, &new.hash);
    let idempotency_key = new.idempotency_key.as_deref();
    // The job's trace is the accepting request's; without tracing installed it still gets one.
    let trace_id = telemetry::current_trace_id().unwrap_or_else(new_trace_id);
    let traceparent = telemetry::current_traceparent();
    let statement = sqlx::query_as::<_, JobRow>(AssertSqlSafe(ACCEPT.as_str()))
        .bind(id.as_str())
        .bind(client.as_str())
        .bind(&new.capability)
        .bind(&new.params)
        .bind(&new.webhook_url)
        .bind(idempotency_key)
        .bind(hash)
        .bind(state.config.max_attempts as i32)
        .bind(state.config.job_ttl)
        .bind(&new.model_id)
        .bind(new.credits)
        .bind(&new.request_id)
        .bind(&trace_id)
        .bind(&traceparent);

    // The job is admitted, charged if priced, and its creation recorded, in the transaction
    // that accepts it: a refusal anywhere writes nothing. The insert comes first so that a
    // reused Idempotency-Key answers its job even to a client over its limits.
    let mut tx = state.pool.begin().await?;
    let inserted = statement.fetch_optional(&mut *tx).await?;
    let inserted = match inserted {
        Some(job) => {
            let quota = limits::admit(&mut tx, &state.config.limits.of(client), client).await?;
            if new.credits > 0 {
                credits::charge(&mut tx, client.as_str(), id.as_str(), new.credits)
                    .await
                    .map_err(|err| match err {
                        credits::ChargeError::Insufficient { .. } => {
                            ApiError::InsufficientCredits(err.to_string())
                        }
                        credits::ChargeError::Database(err) => err.into(),
                    })?;
            }
            if let Some(kind) = &new.creation {
                sqlx::query("INSERT INTO creations (client_id, job_id, type) VALUES ($1, $2, $3)")
                    .bind(client.as_str())
                    .bind(id.as_str())
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Some((job, quota))
        }
        None => {
            tx.rollback().await?;
            None
        }
    };
    if let Some((job, quota)) = inserted {
        state.wake.now();
        return Ok(Created::New(job, quota));
    }

    let key = idempotency_key.unwrap_or_default();
    let existing: (String, Vec<u8>) = sqlx::query_as(
        "SELECT id, request_hash FROM jobs WHERE client_id = $1 AND idempotency_key = $2",
    )
    .bind(client.as_str())
    .bind(key)
    .fetch_one(&state.pool)
    .await?;
    if &existing.1 != hash {
        return Err(ApiError::Conflict(format!(
            "Idempotency-Key {key:?} was already used with a different request body."
        )));
    }
    let job = get(&state.pool, client, &existing.0)
        .await?
        .ok_or(ApiError::NotFound("Job not found."))?;
    Ok(Created::Reused(job))
}

/// A W3C trace id: 16 random bytes as 32 lowercase hex digits (never all zero).
pub fn new_trace_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes[15] |= 1;
    hex::encode(bytes)
}

/// Runs [`create`] in its own task: a client hanging up mid-request must not cancel the
/// transaction half-way (that would poison the pooled connection, sqlx #4393).
pub async fn create_detached(state: AppState, new: NewJob) -> Result<Created, ApiError> {
    // The task stays in the request's span, so the job's trace is the request's.
    tokio::spawn(async move { create(&state, &new).await }.instrument(tracing::Span::current()))
        .await
        .map_err(|err| ApiError::Internal(err.into()))?
}

pub async fn get(pool: &PgPool, client: &ClientId, id: &str) -> sqlx::Result<Option<JobRow>> {
    // Not an id we make: no row can have it, and it never reaches a bind (a NUL would be a 500).
    if JobId::parse(id).is_none() {
        return Ok(None);
    }
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND client_id = $2"
    )))
    .bind(id)
    .bind(client.as_str())
    .fetch_optional(pool)
    .await
}

/// Where a page starts: strictly after a row of the previous page (its id, which is what
/// `nextBefore` gives), or below a time written by hand. Rows created in one transaction
/// share a `created_at`, so only the row cursor `(created_at, id)` pages without skipping any
/// (issue #14, L10).
#[derive(Debug, PartialEq)]
pub enum Before {
    Row(String),
    Time(DateTime<Utc>),
}

impl Before {
    /// The two binds of the list queries: `created_at < $time`, `(created_at, id) < $row's`.
    pub fn binds(before: Option<&Before>) -> (Option<DateTime<Utc>>, Option<&str>) {
        match before {
            Some(Before::Time(time)) => (Some(*time), None),
            Some(Before::Row(id)) => (None, Some(id.as_str())),
            None => (None, None),
        }
    }
}

pub struct ListFilter {
    pub status: Option<String>,
    pub capability: Option<String>,
    pub before: Option<Before>,
    pub limit: i64,
}

/// Newest first; `before` pages backwards, from a row (an unknown id gives an empty page)
/// or a time.
pub async fn list(
    pool: &PgPool,
    client: &ClientId,
    filter: &ListFilter,
) -> sqlx::Result<Vec<JobRow>> {
    let (before_time, before_row) = Before::binds(filter.before.as_ref());
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE client_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR capability = $3)
           AND ($4::timestamptz IS NULL OR created_at < $4)
           AND ($6::text IS NULL OR (created_at, id) <
                (SELECT created_at, id FROM jobs WHERE id = $6 AND client_id = $1))
         ORDER BY created_at DESC, id DESC
         LIMIT $5"
    )))
    .bind(client.as_str())
    .bind(&filter.status)
    .bind(&filter.capability)
    .bind(before_time)
    .bind(filter.limit)
    .bind(before_row)
    .fetch_all(pool)
    .await
}
