//! Cancelling a job, for every face: one fenced transition from `queued` or `running` to
//! `cancelled` (refund and `generation.cancelled` webhook in its transaction, as every terminal
//! state), then a word to the worker holding it on its cancel subject, which stops the engine
//! (its child processes die with it) and deletes what it had uploaded.
//!
//! A cancel racing a completion: exactly one terminal transition commits. The loser learns
//! which state won — `Cancel::Finished` with the job as it ended, nothing refunded.

use atelier_kit::{ids::ClientId, metrics::metrics, telemetry};
use tracing::Instrument;

use super::{store, view::JobRow};
use crate::{
    AppState,
    error::ApiError,
    lifecycle::{self, Fence, Outcome},
};

pub enum Cancel {
    /// This request cancelled it.
    Now(JobRow),
    /// An earlier request had: the same answer again.
    Already(JobRow),
    /// It had reached another terminal state first.
    Finished(JobRow),
}

/// Cancels `job_id` of `client`; `None` when the client has no such job. Runs in its own task,
/// so a client hanging up cannot cut the transaction half-way (sqlx #4393).
pub async fn cancel(
    state: &AppState,
    client: &ClientId,
    job_id: &str,
) -> Result<Option<Cancel>, ApiError> {
    let (state, client, job_id) = (state.clone(), client.clone(), job_id.to_owned());
    let span = tracing::info_span!("job.cancel", job.id = %job_id, client.id = %client);
    // The cancel joins the job's own trace, beside its attempts and its webhooks.
    let traceparent: Option<String> =
        sqlx::query_scalar("SELECT traceparent FROM jobs WHERE id = $1 AND client_id = $2")
            .bind(&job_id)
            .bind(client.as_str())
            .fetch_optional(&state.pool)
            .await?
            .flatten();
    telemetry::follow(
        &span,
        telemetry::context_from_traceparent(traceparent.as_deref()),
    );
    tokio::spawn(async move { run(&state, &client, &job_id).await }.instrument(span))
        .await
        .map_err(|err| ApiError::Internal(err.into()))?
}

async fn run(
    state: &AppState,
    client: &ClientId,
    job_id: &str,
) -> Result<Option<Cancel>, ApiError> {
    let Some(before) = store::get(&state.pool, client, job_id).await? else {
        return Ok(None);
    };
    if before.status == "cancelled" {
        return Ok(Some(Cancel::Already(before)));
    }
    let mut tx = state.pool.begin().await?;
    let moved = lifecycle::finish(
        &mut tx,
        &state.names,
        state.config.asset_retention,
        job_id,
        Fence::NotTerminal,
        &Outcome::Cancelled,
        &[],
    )
    .await?;
    tx.commit().await?;
    let after = store::get(&state.pool, client, job_id)
        .await?
        .ok_or(ApiError::NotFound("Job not found."))?;
    let Some(job) = moved else {
        // Someone else ended it between the read and the transition.
        return Ok(Some(match after.status.as_str() {
            "cancelled" => Cancel::Already(after),
            _ => Cancel::Finished(after),
        }));
    };
    metrics().job_finished(&job.capability, &job.status);
    metrics().job_cancelled(&job.capability, &before.status);
    if before.status == "running" || after.attempt > 0 {
        // Best effort: a worker that misses it finds its events fenced off, and its outputs
        // are never recorded; the bucket's retention removes them.
        let subject = state.names.cancel_subject(job_id);
        let headers = telemetry::nats_headers();
        if let Err(err) = state
            .nats
            .publish_with_headers(subject, headers, bytes::Bytes::new())
            .await
        {
            tracing::warn!(error = %err, "cancel not announced to the worker");
        }
    }
    tracing::info!(was = %before.status, "job cancelled");
    Ok(Some(Cancel::Now(after)))
}
