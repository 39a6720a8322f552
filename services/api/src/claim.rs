//! The claim responder: workers ask (NATS request/reply, one queue group across api
//! replicas) to start an attempt, and get the job spec or a denial. Workers never touch
//! PostgreSQL; this is where an attempt's lease is born.

use anyhow::Context;
use atelier_kit::{
    ids::{AssetId, JobId},
    metrics::metrics,
    telemetry,
};
use atelier_proto::{
    Message,
    jobs::v1::{ClaimDenied, ClaimReply, ClaimRequest, InputRef, JobSpec, claim_reply, input_ref},
};
use futures::StreamExt;
use sqlx::{Postgres, Transaction};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    AppState,
    lifecycle::{self, Claimant, Fence, Outcome},
};

/// Answers claims until cancelled.
///
/// On cancel: stops taking requests and waits for the claims in flight (each is one short
/// transaction). On error: a failed claim is answered as denied-for-now and logged; the
/// worker's message is redelivered later.
pub async fn respond(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let subject = state.names.claim_subject();
    let mut requests = state
        .nats
        .queue_subscribe(subject.clone(), format!("{subject}.api"))
        .await
        .context("subscribing to claims")?;
    let tracker = TaskTracker::new();
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            message = requests.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let state = state.clone();
        // Each claim runs in its own task so a slow database does not stall the others,
        // and a claim is never dropped half-way through its transaction.
        let span = tracing::info_span!(
            "claim",
            otel.kind = "server",
            job.id = tracing::field::Empty,
            worker = tracing::field::Empty,
        );
        telemetry::follow(&span, telemetry::extract_nats(message.headers.as_ref()));
        tracker.spawn(
            async move {
                let Some(reply_to) = message.reply.clone() else {
                    return;
                };
                let reply = match ClaimRequest::decode(message.payload.as_ref()) {
                    Ok(request) => answer(&state, request).await,
                    Err(err) => denied(format!("malformed claim request: {err}")),
                };
                if let Err(err) = state
                    .nats
                    .publish(reply_to, reply.encode_to_vec().into())
                    .await
                {
                    tracing::warn!(error = %err, "claim reply not sent; the worker will retry");
                }
            }
            .instrument(span),
        );
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

fn denied(reason: impl Into<String>) -> ClaimReply {
    ClaimReply {
        outcome: Some(claim_reply::Outcome::Denied(ClaimDenied {
            reason: reason.into(),
            retry_later: false,
        })),
    }
}

fn deferred(reason: impl Into<String>) -> ClaimReply {
    ClaimReply {
        outcome: Some(claim_reply::Outcome::Denied(ClaimDenied {
            reason: reason.into(),
            retry_later: true,
        })),
    }
}

async fn answer(state: &AppState, request: ClaimRequest) -> ClaimReply {
    let span = tracing::Span::current();
    span.record("job.id", request.job_id.as_str());
    span.record("worker", request.worker_id.as_str());
    match grant(state, &request).await {
        Ok(reply) => reply,
        Err(err) => {
            tracing::warn!(error = format!("{err:#}"), "claim failed");
            deferred("the claim could not be decided")
        }
    }
}

/// Claims the job and resolves its inputs in one transaction, so a claim is either granted
/// with everything the worker needs or not at all (a failure part-way leaves the job as it
/// was, and the worker's next try finds it claimable).
async fn grant(state: &AppState, request: &ClaimRequest) -> anyhow::Result<ClaimReply> {
    let Some(job_id) = JobId::parse(&request.job_id) else {
        return Ok(denied("no such job"));
    };
    let claimant = Claimant {
        worker_id: &request.worker_id,
        dispatch_seq: i32::try_from(request.dispatch_seq).unwrap_or(i32::MAX),
    };
    let fresh_lease = ulid::Ulid::new().to_string();
    let mut tx = state.pool.begin().await?;
    let claimed = lifecycle::claim(
        &mut tx,
        job_id.as_str(),
        &fresh_lease,
        claimant,
        state.config.run_timeout,
    )
    .await?;
    let Some(claimed) = claimed else {
        drop(tx);
        return refusal(state, &job_id, claimant).await;
    };
    let lease = claimed.lease_token.clone();
    let request: JobInputs =
        serde_json::from_value(claimed.params.clone()).context("stored params do not parse")?;
    let Some(inputs) = resolve_inputs(&mut tx, &claimed.client_id, &request).await? else {
        let outcome = Outcome::Failed {
            code: "input_missing".to_owned(),
            message: "an input asset no longer exists".to_owned(),
        };
        let finished = lifecycle::finish(
            &mut tx,
            &state.names,
            state.config.asset_retention,
            job_id.as_str(),
            Fence::Lease(&lease),
            &outcome,
            &[],
        )
        .await?;
        tx.commit().await?;
        if let Some(job) = finished {
            metrics().job_finished(&job.capability, &job.status);
        }
        return Ok(denied("an input asset no longer exists"));
    };
    tx.commit().await?;
    // Its place in the work stream is free for the next release.
    state.wake.now();
    tracing::info!(attempt = claimed.attempt, "claim granted");
    Ok(ClaimReply {
        outcome: Some(claim_reply::Outcome::Granted(JobSpec {
            job_id: job_id.to_string(),
            output_prefix: format!(
                "outputs/{}/{job_id}/{}/",
                claimed.client_id, claimed.attempt
            ),
            client_id: claimed.client_id,
            capability: claimed.capability,
            lease_token: lease,
            attempt: claimed.attempt as u32,
            max_attempts: claimed.max_attempts as u32,
            params_json: claimed.params.to_string(),
            inputs,
            deadline_unix_ms: claimed.deadline_ms,
            upstream: claimed.upstream.as_ref().and_then(upstream_spec),
        })),
    })
}

/// Why a claim was not granted. Only a job granted to another worker that has not reported
/// yet is "ask again later": if that worker never heard of its grant, the reconciler
/// re-queues the job once its heartbeat is judged stale, and this message then claims it.
/// Everything else drops the message: the job is finished, gone, out of attempts, running
/// elsewhere, or has a newer dispatch of its own.
async fn refusal(
    state: &AppState,
    job_id: &JobId,
    claimant: Claimant<'_>,
) -> anyhow::Result<ClaimReply> {
    // `current_step` is NULL until a job's first claim.
    let row: Option<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT status, dispatch_seq, current_step FROM jobs WHERE id = $1")
            .bind(job_id.as_str())
            .fetch_optional(&state.pool)
            .await?;
    let Some((status, seq, step)) = row else {
        return Ok(denied("no such job"));
    };
    Ok(match status.as_str() {
        _ if seq != claimant.dispatch_seq => denied("superseded by a newer dispatch"),
        "running" if step.as_deref() == Some("claimed") => {
            deferred("claimed by a worker that has not started")
        }
        "running" => denied("leased by another worker"),
        "queued" => denied("not released yet, not due yet, or no attempts left"),
        terminal => denied(format!("job is {terminal}")),
    })
}

/// The recorded upstream task as the worker receives it, so it resumes rather than resubmits.
fn upstream_spec(record: &serde_json::Value) -> Option<atelier_proto::jobs::v1::Upstream> {
    let text = |name: &str| record.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some(atelier_proto::jobs::v1::Upstream {
        provider: text("provider")?,
        upstream_model: text("model").unwrap_or_default(),
        task_id: text("taskId").unwrap_or_default(),
        usage_json: record
            .get("usage")
            .map(|u| u.to_string())
            .unwrap_or_default(),
        submitted: record
            .get("submitted")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// `…/api/v1/assets/<id>/download`: a link to one of Atelier's own assets, which the
/// worker reads from the bucket instead of fetching back through the public API.
pub fn own_asset(raw: &str) -> Option<AssetId> {
    let url = url::Url::parse(raw).ok()?;
    let segments: Vec<&str> = url.path_segments()?.collect();
    match segments.as_slice() {
        [.., "api", "v1", "assets", id, "download"] => AssetId::parse(id),
        _ => None,
    }
}

async fn asset_key(
    tx: &mut Transaction<'_, Postgres>,
    client: &str,
    id: &str,
) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT s3_key FROM assets WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(client)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The fields of a job's parameters that name its inputs, whatever else its capability
/// takes (a `video.slides` job has none of them).
#[derive(Debug, Default, serde::Deserialize)]
struct JobInputs {
    #[serde(rename = "imageUrls", default)]
    image_urls: Vec<String>,
    #[serde(rename = "inputUrls", default)]
    input_urls: Vec<String>,
    #[serde(rename = "inputAssetIds", default)]
    input_asset_ids: Vec<String>,
    #[serde(default)]
    materials: Vec<MaterialUrl>,
}

#[derive(Debug, serde::Deserialize)]
struct MaterialUrl {
    url: String,
}

/// Inputs in a fixed order: `imageUrls`, `inputUrls`, `inputAssetIds`, then materials.
/// Stored assets (by id, or by their own download URL) are handed over as bucket keys;
/// `None` when one of them no longer exists.
async fn resolve_inputs(
    tx: &mut Transaction<'_, Postgres>,
    client: &str,
    request: &JobInputs,
) -> anyhow::Result<Option<Vec<InputRef>>> {
    let urls = request.image_urls.iter().chain(&request.input_urls);
    let mut sources: Vec<input_ref::Source> = Vec::new();
    for url in urls {
        sources.push(match own_asset(url) {
            Some(id) => input_ref::Source::S3Key(id.to_string()),
            None => input_ref::Source::Url(url.clone()),
        });
    }
    sources.extend(
        request
            .input_asset_ids
            .iter()
            .map(|id| input_ref::Source::S3Key(id.clone())),
    );
    sources.extend(request.materials.iter().map(|m| match own_asset(&m.url) {
        Some(id) => input_ref::Source::S3Key(id.to_string()),
        None => input_ref::Source::Url(m.url.clone()),
    }));
    // Asset ids become their keys, scoped to the job's client.
    let mut inputs = Vec::with_capacity(sources.len());
    for source in sources {
        let source = match source {
            input_ref::Source::S3Key(id) => match asset_key(tx, client, &id).await? {
                Some(key) => input_ref::Source::S3Key(key),
                None => return Ok(None),
            },
            url => url,
        };
        inputs.push(InputRef {
            source: Some(source),
        });
    }
    Ok(Some(inputs))
}

#[cfg(test)]
mod tests {
    use super::own_asset;

    #[test]
    fn own_download_urls_are_recognised() {
        let id = "asset_01jabcdefghjkmnpqrstvwxyz0";
        let url = format!("https://atelier.example.com/api/v1/assets/{id}/download");
        assert_eq!(own_asset(&url).map(|a| a.to_string()).as_deref(), Some(id));
        assert!(own_asset("https://example.com/input.png").is_none());
        assert!(own_asset("https://example.com/api/v1/assets/not-an-id/download").is_none());
    }
}
