//! `video.generate` on Volcengine Ark Seedance: create a task (or resume the recorded one),
//! record its id, poll it to the end, copy the video. On our deadline the task is cancelled
//! upstream (Ark allows it while queued) and the job fails `timed_out`.

use atelier_worker::{EngineError, OutputFile};
use tokio::sync::Notify;

use super::{Call, missing, timed_out};
use crate::ark::{ImageInput, VideoRequest};
use crate::poll::{PollError, PollPolicy};
use crate::provider::Provider;
use crate::task::UpstreamTaskId;

pub(super) async fn run(
    call: Call<'_>,
    policy: &PollPolicy,
) -> Result<Vec<OutputFile>, EngineError> {
    if call.provider != Provider::Ark {
        return Err(missing(call.provider));
    }
    let ark = call
        .providers
        .ark
        .as_ref()
        .ok_or_else(|| missing(call.provider))?;
    let recorded = call
        .attempt
        .upstream
        .as_ref()
        .and_then(|u| u.task_id.clone());
    let id = match recorded {
        Some(id) => {
            tracing::info!(upstream.id = %id, "resuming the recorded upstream task");
            UpstreamTaskId(id)
        }
        None => {
            // Inputs are read before the job is marked as sent: a read that fails leaves
            // nothing to resume.
            let request = request(&call).await?;
            call.submitting().await?;
            let created = ark.create_video_task(&request).await;
            let id = call.settle(created.map_err(EngineError::from)).await?;
            // Recorded before anything else: a later attempt resumes this task.
            call.record(Some(id.0.clone()), None).await;
            id
        }
    };
    call.job.progress.report(30, "generating upstream");
    // Callbacks are not received by workers yet; polling alone finds the end.
    let wake = Notify::new();
    let waited = tokio::select! {
        waited = ark.wait_video(&id, policy, call.poll_deadline(), &wake) => waited,
        () = call.attempt.cancelled() => {
            // The partner cancelled: Ark stops a task still queued (a running one finishes
            // upstream, and is not collected).
            match ark.cancel_video_task(&id).await {
                Ok(()) => tracing::info!(upstream.id = %id, "upstream task cancelled with the job"),
                Err(err) => tracing::warn!(error = %err, upstream.id = %id, "upstream task not cancelled"),
            }
            return Err(EngineError::fatal("cancelled", "cancelled by the client"));
        }
    };
    match waited {
        Ok((video, task)) => {
            if task.usage.is_some() {
                call.record(Some(id.0.clone()), task.usage.clone()).await;
            }
            Ok(vec![video.into_output_file()])
        }
        Err(PollError::Deadline { .. }) => {
            if let Err(err) = ark.cancel_video_task(&id).await {
                tracing::warn!(error = %err, upstream.id = %id, "upstream task not cancelled");
            } else {
                tracing::info!(upstream.id = %id, "upstream task cancelled at the deadline");
            }
            Err(timed_out())
        }
        Err(err) => Err(err.into()),
    }
}

/// Ark stops (and stops billing) a task that has not finished by then: our deadline, within
/// the range Ark accepts (one hour to three days).
fn expires_after(call: &Call<'_>) -> u64 {
    let left = call
        .attempt
        .deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    left.clamp(3600, 259_200)
}

/// The Seedance request from the job: images from `materials` (fetched inputs, in order)
/// become the first frame, first and last frames, or reference images.
async fn request(call: &Call<'_>) -> Result<VideoRequest, EngineError> {
    let settings = call.param("settings");
    let setting = |name: &str| settings.and_then(|s| s.get(name)).filter(|v| !v.is_null());
    let mut images: Vec<ImageInput> = call
        .read_inputs()
        .await?
        .into_iter()
        .map(ImageInput::Bytes)
        .collect();
    let mut request = VideoRequest {
        model: call.model.clone(),
        prompt: call.text("prompt").unwrap_or_default(),
        ratio: setting("ratio").and_then(|v| v.as_str()).map(str::to_owned),
        duration: setting("duration").and_then(|v| v.as_i64()),
        resolution: setting("resolution")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        execution_expires_after: Some(expires_after(call)),
        ..Default::default()
    };
    match images.len() {
        0 => {}
        1 | 2 => {
            request.first_frame = Some(images.remove(0));
            request.last_frame = images.pop();
        }
        _ => request.reference_images = images,
    }
    Ok(request)
}
