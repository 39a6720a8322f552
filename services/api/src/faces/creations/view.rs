//! The face's JSON views of a creation and its job, and the creation's own row: what a create
//! answers, a list shows and a poll returns, read from the shared job row.

use atelier_kit::ids::ClientId;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::error::CreationError;
use crate::{AppState, jobs::store, jobs::view::JobRow};

/// A creation's own row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CreationRow {
    pub id: i64,
    pub job_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

impl CreationRow {
    pub async fn of_job(
        pool: &PgPool,
        client: &ClientId,
        job_id: &str,
    ) -> sqlx::Result<Option<Self>> {
        if atelier_kit::ids::JobId::parse(job_id).is_none() {
            return Ok(None);
        }
        sqlx::query_as(
            "SELECT id, job_id, type, created_at FROM creations WHERE job_id = $1 AND client_id = $2",
        )
        .bind(job_id)
        .bind(client.as_str())
        .fetch_optional(pool)
        .await
    }

    pub async fn by_id(pool: &PgPool, client: &ClientId, id: i64) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, job_id, type, created_at FROM creations WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.as_str())
        .fetch_optional(pool)
        .await
    }
}

/// The job states this face shows: `expired` reads as `failed` (with its error code), as the
/// seed's poller stops on `failed` and `cancelled` only.
fn job_status(status: &str) -> &str {
    match status {
        "expired" => "failed",
        other => other,
    }
}

/// A creation's state: `queued`, `processing`, `ready`, `failed` or `cancelled`.
fn creation_status(job_status: &str) -> &'static str {
    match job_status {
        "queued" => "queued",
        "running" => "processing",
        "succeeded" => "ready",
        "cancelled" => "cancelled",
        _ => "failed",
    }
}

/// The job object of this face.
pub fn job_view(creation: &CreationRow, job: &JobRow) -> Value {
    let step = match job.status.as_str() {
        "queued" => "queued".to_owned(),
        "succeeded" => "done".to_owned(),
        "running" => job
            .current_step
            .clone()
            .unwrap_or_else(|| "starting".to_owned()),
        other => other.to_owned(),
    };
    let error = job
        .error_code
        .as_ref()
        .filter(|_| job.status != "succeeded")
        .map(
            |code| json!({"code": code, "message": job.error_message.clone().unwrap_or_default()}),
        );
    json!({
        "job_id": job.id,
        "creation_id": creation.id,
        "type": creation.kind,
        "kind": "create",
        "status": job_status(&job.status),
        "progress_pct": if job.status == "succeeded" { 100 } else { job.progress_pct },
        "current_step": step,
        "attempt": job.attempt,
        "error": error,
        "credits": job.credits,
        "billing": crate::jobs::view::Billing::of(job),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "trace_id": job.trace_id,
        "poll_after_ms": if matches!(job.status.as_str(), "queued" | "running") { Some(2000) } else { None },
    })
}

/// `{"creation_id", "type", "status", "job": {...}}`: what a create answers and a list shows.
pub fn summary(creation: &CreationRow, job: &JobRow) -> Value {
    json!({
        "creation_id": creation.id,
        "type": creation.kind,
        "status": creation_status(&job.status),
        "title": job.params.get("prompt").and_then(Value::as_str).map(|p| p.chars().take(80).collect::<String>()),
        "created_at": creation.created_at,
        "job": job_view(creation, job),
    })
}

pub async fn job_of(
    state: &AppState,
    client: &ClientId,
    creation: &CreationRow,
) -> Result<JobRow, CreationError> {
    store::get(&state.pool, client, &creation.job_id)
        .await?
        .ok_or_else(|| CreationError::not_found("job"))
}
