//! A job as stored, and as the native API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The columns every job read selects.
pub const JOB_COLUMNS: &str = "id, client_id, capability, status, params, webhook_url, attempt, \
     max_attempts, progress_pct, current_step, error_code, error_message, created_at, \
     updated_at, started_at, finished_at, expires_at, model_id, credits, request_id, trace_id, upstream, \
     COALESCE((SELECT l.amount FROM credit_ledger l WHERE l.job_id = jobs.id AND l.kind = 'refund'), 0) \
         AS refunded, \
     ARRAY(SELECT a.id FROM assets a WHERE a.job_id = jobs.id AND a.role = 'output' \
           AND a.deleted_at IS NULL \
           ORDER BY a.position) AS output_asset_ids";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub client_id: String,
    pub capability: String,
    pub status: String,
    pub params: Value,
    pub webhook_url: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub progress_pct: i32,
    pub current_step: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub model_id: Option<String>,
    pub credits: i64,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// `{provider, model, taskId?, usage?}` once a provider engine took the job.
    pub upstream: Option<Value>,
    /// Credits given back (the ledger's refund row), 0 when none.
    pub refunded: i64,
    pub output_asset_ids: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobProgress {
    pub percent: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobError {
    /// Machine-readable, e.g. `input_fetch_failed`, `unsupported_format`, `expired`.
    pub code: String,
    pub message: String,
}

/// The job object of the native API.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub capability: String,
    /// `queued`, `running`, `succeeded`, `failed`, `expired` or `cancelled`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The request as validated, defaults filled in.
    #[schema(value_type = Object)]
    pub params: Value,
    pub output_asset_ids: Vec<String>,
    pub progress: JobProgress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub attempts: i32,
    pub max_attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// A job still queued at this time expires.
    pub expires_at: DateTime<Utc>,
    /// The tasks API's model, for jobs created through that face.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Credits charged (refunded if the job fails, expires or is cancelled).
    pub credits: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace id of the job: its webhooks carry it in `traceparent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The upstream provider that serves the job: `{provider, model}`, and `usage` as the
    /// provider reported it. Absent for the local engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Value>,
    pub billing: Billing,
}

/// What a job cost the partner, exactly: charged, given back, and why.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Billing {
    pub charged: i64,
    pub refunded: i64,
    /// `free` (nothing charged), `charged` (kept: the job succeeded or is still going),
    /// `refunded_in_full` (it failed, expired or was cancelled).
    pub outcome: &'static str,
    /// For a refund: the state that earned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Billing {
    pub fn of(row: &JobRow) -> Self {
        let (outcome, reason) = match (row.credits, row.refunded) {
            (0, _) => ("free", None),
            (_, 0) => ("charged", None),
            _ => ("refunded_in_full", Some(row.status.clone())),
        };
        Self {
            charged: row.credits,
            refunded: row.refunded,
            outcome,
            reason,
        }
    }
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        let billing = Billing::of(&row);
        let error = row.error_code.map(|code| JobError {
            code,
            message: row.error_message.unwrap_or_default(),
        });
        Job {
            billing,
            prompt: row
                .params
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_owned),
            id: row.id,
            capability: row.capability,
            status: row.status,
            params: row.params,
            output_asset_ids: row.output_asset_ids,
            progress: JobProgress {
                percent: row.progress_pct,
                step: row.current_step,
            },
            error,
            attempts: row.attempt,
            max_attempts: row.max_attempts,
            webhook_url: row.webhook_url,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            expires_at: row.expires_at,
            model_id: row.model_id,
            credits: row.credits,
            request_id: row.request_id,
            trace_id: row.trace_id,
            engine: row.upstream.map(engine_view),
        }
    }
}

/// The stored upstream record as partners see it: the provider and model, and the usage it
/// reported; the upstream task id stays internal.
fn engine_view(upstream: Value) -> Value {
    let mut engine = serde_json::Map::new();
    for (from, to) in [
        ("provider", "provider"),
        ("model", "model"),
        ("usage", "usage"),
    ] {
        if let Some(value) = upstream.get(from).filter(|v| !v.is_null()) {
            engine.insert(to.to_owned(), value.clone());
        }
    }
    Value::Object(engine)
}

/// `{"job": {...}, "reused": false}`, as the seed shows it.
#[derive(Serialize, ToSchema)]
pub struct JobEnvelope {
    pub job: Job,
    pub reused: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<Job>,
    /// Pass as `before` to get the next page (the last job's id: pages never skip a job);
    /// absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_engine_shows_provider_model_and_usage_but_not_the_task() {
        let stored = json!({"provider": "ark", "model": "seedance", "taskId": "cgt-1",
                            "submitted": true, "usage": {"completion_tokens": 108900}});
        assert_eq!(
            super::engine_view(stored),
            json!({"provider": "ark", "model": "seedance", "usage": {"completion_tokens": 108900}})
        );
    }
}
