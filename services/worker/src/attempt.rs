//! One work message, start to finish: claim, heartbeat, fetch, run, upload, report, and
//! only then ack. The ack policy, in one place:
//! - claim denied (terminal, leased elsewhere, unknown): ack and drop;
//! - claim unanswered (api down): nak with a short delay;
//! - success: terminal event published and its ack awaited, then the message acked;
//! - retryable failure with attempts left: `Released` event (the api re-dispatches the job
//!   after the delay), then ack;
//! - fatal failure or last attempt: `Failed` event, then term.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{AckKind, Message};
use atelier_kit::{
    metrics::metrics,
    telemetry::{self, KeyValue},
};
use atelier_proto::{
    Message as _,
    jobs::v1::{
        self as pb, ClaimReply, ClaimRequest, Failed, JobDispatch, JobEvent, JobSpec, Released,
        Succeeded, claim_reply, job_event::Kind,
    },
};
use tracing::Instrument;

use crate::{
    consumer::Runtime,
    engine::{Attempt, Engine, EngineError, JobContext, ProgressReporter, RecordFn, Upstream},
    events::{heartbeat, publish, publish_once},
    io, retry,
};

const CLAIM_RETRY: Duration = Duration::from_secs(5);
/// How long a cancelled attempt's engine may take to stop its upstream work.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

pub async fn handle<E: Engine>(runtime: &Runtime<E>, message: Message) {
    let dispatch = match JobDispatch::decode(message.payload.as_ref()) {
        Ok(dispatch) => dispatch,
        Err(err) => {
            tracing::error!(error = %err, subject = %message.subject, "undecodable work message terminated");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let span = tracing::info_span!(
        "job.attempt",
        otel.kind = "consumer",
        job.id = %dispatch.job_id,
        capability = %dispatch.capability,
        client.id = tracing::field::Empty,
        attempt = tracing::field::Empty,
        dispatch_seq = dispatch.dispatch_seq,
    );
    let parent = telemetry::extract_nats(message.headers.as_ref());
    if let Ok(info) = message.info() {
        let published = SystemTime::from(info.published);
        let waited = SystemTime::now()
            .duration_since(published)
            .unwrap_or_default();
        metrics().queue_wait(&dispatch.capability, waited);
        if info.delivered > 1 {
            metrics().redelivered(&dispatch.capability);
        }
        telemetry::record_span(
            "queue.wait",
            &parent,
            published,
            SystemTime::now(),
            vec![
                KeyValue::new("job.id", dispatch.job_id.clone()),
                KeyValue::new("capability", dispatch.capability.clone()),
                KeyValue::new("delivered", info.delivered),
            ],
        );
    }
    telemetry::follow(&span, parent);
    async {
        // Listen for a cancel before claiming, so none can fall between the claim and the run.
        let cancel = match runtime
            .nats
            .subscribe(runtime.names.cancel_subject(&dispatch.job_id))
            .await
        {
            Ok(subscriber) => Some(subscriber),
            Err(err) => {
                tracing::warn!(error = %err, "cancel subscription failed; the attempt runs to its end");
                None
            }
        };
        let spec = match claim(runtime, &message, &dispatch).await {
            Ok(Some(spec)) => spec,
            Ok(None) => {
                let _ = message.double_ack().await;
                return;
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "claim unanswered, retrying later"
                );
                let _ = message.ack_with(AckKind::Nak(Some(CLAIM_RETRY))).await;
                return;
            }
        };
        run_claimed(runtime, &message, spec, cancel).await;
    }
    .instrument(span)
    .await
}

/// How many times a worker asks for the same claim before it hands the message back.
const CLAIM_TRIES: u32 = 3;

/// `Ok(None)` when the api denied the claim.
///
/// An unanswered claim is asked again, as the same worker for the same dispatch: the api may
/// have granted it and lost the reply, and then only this worker's repeat gets the lease back
/// (with the same attempt) — another worker would be refused until the reconciler re-queued
/// the job (docs/hardening.md, M2). The message is kept alive meanwhile.
async fn claim<E: Engine>(
    runtime: &Runtime<E>,
    message: &Message,
    dispatch: &JobDispatch,
) -> anyhow::Result<Option<JobSpec>> {
    let request = ClaimRequest {
        job_id: dispatch.job_id.clone(),
        worker_id: runtime.worker_id.clone(),
        dispatch_seq: dispatch.dispatch_seq,
    };
    let mut tries = 0;
    let reply = loop {
        tries += 1;
        let asked = tokio::time::timeout(
            runtime.config.claim_timeout,
            runtime.nats.request_with_headers(
                runtime.names.claim_subject(),
                telemetry::nats_headers(),
                request.encode_to_vec().into(),
            ),
        )
        .await;
        let err = match asked {
            Ok(Ok(reply)) => break reply,
            Ok(Err(err)) => anyhow::anyhow!("claim request: {err}"),
            Err(_) => anyhow::anyhow!("claim timed out"),
        };
        if tries >= CLAIM_TRIES {
            return Err(err);
        }
        tracing::info!(error = %err, tries, "claim unanswered, asking again");
        let _ = message.ack_with(AckKind::Progress).await;
        tokio::time::sleep(retry::claim_pause(tries)).await;
    };
    let reply = ClaimReply::decode(reply.payload.as_ref())?;
    match reply.outcome {
        Some(claim_reply::Outcome::Granted(spec)) => Ok(Some(spec)),
        Some(claim_reply::Outcome::Denied(denied)) => {
            if denied.retry_later {
                anyhow::bail!("claim deferred: {}", denied.reason);
            }
            tracing::info!(reason = %denied.reason, "claim denied, message dropped");
            Ok(None)
        }
        None => anyhow::bail!("empty claim reply"),
    }
}

async fn run_claimed<E: Engine>(
    runtime: &Runtime<E>,
    message: &Message,
    spec: JobSpec,
    cancel: Option<async_nats::Subscriber>,
) {
    let span = tracing::Span::current();
    span.record("attempt", spec.attempt);
    span.record("client.id", spec.client_id.as_str());
    tracing::info!(attempt = spec.attempt, "attempt started");
    let started = Instant::now();
    let capability = runtime.engine.capability();
    let (reporter, progress) = ProgressReporter::new();
    let heartbeat = heartbeat(runtime, message, &spec, progress);
    let mut kept = Vec::new();
    // The whole attempt (fetch, engine, upload) is under the job's deadline: a call that
    // hangs past every other bound still ends here, so the slot is always given back.
    let stop = tokio_util::sync::CancellationToken::new();
    let cancelled = async move {
        match cancel {
            Some(mut subscriber) => {
                futures::StreamExt::next(&mut subscriber).await;
            }
            None => std::future::pending().await,
        }
    };
    let ended = {
        let work = tokio::time::timeout(
            budget(&spec),
            execute(runtime, &spec, reporter, &mut kept, stop.clone()),
        );
        tokio::pin!(work);
        // The heartbeat runs until the work ends; it never ends on its own.
        let ended = tokio::select! {
            () = cancelled => None,
            result = &mut work => Some(result),
            never = heartbeat => match never {},
        };
        if ended.is_none() {
            // An engine with work elsewhere (a provider's task) gets a moment to stop it; then
            // the attempt is dropped, and with it the engine's child processes (kill-on-drop).
            stop.cancel();
            let _ = tokio::time::timeout(CANCEL_GRACE, &mut work).await;
        }
        ended
    };
    let Some(result) = ended else {
        tracing::info!("attempt cancelled by the client");
        // The job is already cancelled (and refunded) in the database: nothing to report.
        io::delete_outputs(&runtime.storage, &spec).await;
        let _ = message.double_ack().await;
        metrics().attempt_ran(capability, "cancelled", started.elapsed());
        return;
    };
    let result = result.unwrap_or_else(|_| {
        Err(EngineError::fatal(
            "deadline_exceeded",
            "the attempt (inputs, engine, upload) ran past its deadline",
        ))
    });
    let event = |kind| JobEvent {
        job_id: spec.job_id.clone(),
        lease_token: spec.lease_token.clone(),
        attempt: spec.attempt,
        kind: Some(kind),
    };
    match result {
        Ok(outputs) => {
            if publish(
                runtime,
                &spec,
                event(Kind::Succeeded(Succeeded {
                    outputs,
                    inputs: kept,
                })),
            )
            .await
            {
                let _ = message.double_ack().await;
                tracing::info!("attempt succeeded");
            }
            metrics().attempt_ran(capability, "succeeded", started.elapsed());
        }
        Err(err) if err.retryable && spec.attempt < spec.max_attempts => {
            let delay = retry::delay_after(spec.attempt, runtime.config.retry_base);
            tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "attempt failed, will retry");
            let released = Released {
                code: err.code,
                message: err.message,
                retry_in_ms: delay.as_millis() as u32,
            };
            if publish(runtime, &spec, event(Kind::Released(released))).await {
                // The api schedules the retry as a fresh dispatch; this message is done.
                let _ = message.double_ack().await;
            }
            metrics().attempt_ran(capability, "released", started.elapsed());
        }
        Err(err) => {
            tracing::warn!(error = %err, "attempt failed for good");
            let failed = Failed {
                code: err.code,
                message: err.message,
                retryable: err.retryable,
                inputs: kept,
            };
            if publish(runtime, &spec, event(Kind::Failed(failed))).await {
                let _ = message.ack_with(AckKind::Term).await;
            }
            metrics().attempt_ran(capability, "failed", started.elapsed());
        }
    }
}

/// Fetch, run under the attempt's deadline, upload.
async fn execute<E: Engine>(
    runtime: &Runtime<E>,
    spec: &JobSpec,
    progress: ProgressReporter,
    kept: &mut Vec<atelier_proto::jobs::v1::Output>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Vec<atelier_proto::jobs::v1::Output>, EngineError> {
    let params: serde_json::Value = serde_json::from_str(&spec.params_json)
        .map_err(|err| EngineError::fatal("bad_params", format!("job parameters: {err}")))?;
    progress.report(5, "fetching inputs");
    let inputs = io::fetch_inputs(
        &runtime.guard,
        &runtime.storage,
        spec,
        io::Budget {
            per_input: runtime.config.max_input_bytes,
            per_job: runtime.config.max_job_input_bytes,
        },
        kept,
    )
    .instrument(tracing::info_span!(
        "inputs.fetch",
        inputs = spec.inputs.len()
    ))
    .await?;
    progress.report(15, "running");
    let context = JobContext {
        job_id: spec.job_id.clone(),
        attempt: spec.attempt,
        params,
        progress: progress.clone(),
    };
    let budget = budget(spec);
    let deadline = UNIX_EPOCH + Duration::from_millis(spec.deadline_unix_ms.max(0) as u64);
    let attempt = Attempt::new(
        spec.upstream.as_ref().map(upstream_from_proto),
        deadline,
        recorder(runtime, spec),
    )
    .with_cancel(stop);
    let run = runtime
        .engine
        .run_attempt(context, attempt, inputs)
        .instrument(tracing::info_span!(
            "engine.run",
            engine = runtime.engine.capability()
        ));
    let files = tokio::time::timeout(budget, run).await.map_err(|_| {
        EngineError::fatal("deadline_exceeded", "the attempt ran past its deadline")
    })??;
    progress.report(90, "uploading outputs");
    io::upload_outputs(&runtime.storage, spec, files)
        .instrument(tracing::info_span!("outputs.upload"))
        .await
}

/// The time left until the job's deadline.
fn budget(spec: &JobSpec) -> Duration {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Duration::from_millis(spec.deadline_unix_ms.saturating_sub(now_ms).max(0) as u64)
}

fn upstream_from_proto(u: &pb::Upstream) -> Upstream {
    Upstream {
        provider: u.provider.clone(),
        upstream_model: u.upstream_model.clone(),
        task_id: (!u.task_id.is_empty()).then(|| u.task_id.clone()),
        usage: serde_json::from_str(&u.usage_json).ok(),
        submitted: u.submitted,
    }
}

/// Publishes an `Upstream` event of this attempt and waits for the stream's ack (retrying
/// briefly), so the record outlives this worker before the engine goes on.
fn recorder<E: Engine>(runtime: &Runtime<E>, spec: &JobSpec) -> std::sync::Arc<RecordFn> {
    let runtime = runtime.clone();
    let (job_id, lease_token, attempt) =
        (spec.job_id.clone(), spec.lease_token.clone(), spec.attempt);
    std::sync::Arc::new(move |upstream: Upstream| {
        let runtime = runtime.clone();
        let event = JobEvent {
            job_id: job_id.clone(),
            lease_token: lease_token.clone(),
            attempt,
            kind: Some(Kind::Upstream(pb::Upstream {
                provider: upstream.provider,
                upstream_model: upstream.upstream_model,
                task_id: upstream.task_id.unwrap_or_default(),
                usage_json: upstream.usage.map(|u| u.to_string()).unwrap_or_default(),
                submitted: upstream.submitted,
            })),
        };
        Box::pin(async move {
            let mut last = None;
            for n in 0..5u32 {
                match publish_once(&runtime, &event.job_id, &event).await {
                    Ok(()) => return Ok(()),
                    Err(err) => {
                        tracing::warn!(error = %err, "upstream record not stored yet");
                        last = Some(err);
                        tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(n))).await;
                    }
                }
            }
            Err(EngineError::retryable(
                "upstream_unrecorded",
                format!(
                    "the upstream task could not be recorded: {}",
                    last.map(|e| e.to_string()).unwrap_or_default()
                ),
            ))
        })
    })
}
