//! The image capabilities on Jimeng (Volcengine visual API): submit a task (or resume the
//! recorded one), record its id, poll it to the end. The upstream model is the `req_key`.
//! Jimeng has no cancel call: at our deadline the job fails `timed_out` and the task is left
//! to expire upstream.

use atelier_worker::{EngineError, OutputFile};
use tokio::sync::Notify;

use super::{Call, image::finish, missing, timed_out};
use crate::jimeng::JimengRequest;
use crate::poll::{PollError, PollPolicy};
use crate::provider::Capability;
use crate::task::UpstreamTaskId;

pub(super) async fn run(
    call: Call<'_>,
    capability: Capability,
    policy: &PollPolicy,
) -> Result<Vec<OutputFile>, EngineError> {
    let jimeng = call
        .providers
        .jimeng
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
            let request = request(&call, capability).await?;
            call.submitting().await?;
            let submitted = jimeng.submit(&request).await;
            let id = call.settle(submitted.map_err(EngineError::from)).await?;
            // Recorded before anything else: a later attempt resumes this task.
            call.record(Some(id.0.clone()), None).await;
            id
        }
    };
    call.job.progress.report(30, "generating upstream");
    let wake = Notify::new();
    match jimeng
        .wait_images(&call.model, &id, policy, call.poll_deadline(), &wake)
        .await
    {
        Ok(images) => finish(&call, images).await,
        Err(PollError::Deadline { .. }) => Err(timed_out()),
        Err(err) => Err(err.into()),
    }
}

/// The submit body from the job's parameters and fetched inputs (in order: the image, then
/// the mask).
async fn request(call: &Call<'_>, capability: Capability) -> Result<JimengRequest, EngineError> {
    let req_key = call.model.clone();
    Ok(match capability {
        Capability::ImageInpaint => JimengRequest::Inpaint {
            req_key,
            prompt: call.text("prompt").unwrap_or_default(),
            image: call.read_input(0, capability, "an image").await?,
            mask: call.read_input(1, capability, "a mask").await?,
            seed: call.param("seed").and_then(|v| v.as_i64()),
        },
        Capability::ImageUpscale => JimengRequest::Upscale {
            req_key,
            image: call.read_input(0, capability, "an image").await?,
            resolution: call.text("resolution"),
            scale: call
                .param("scale")
                .and_then(|v| v.as_f64())
                .map(|s| s.round() as u32),
        },
        _ => JimengRequest::TextToImage {
            req_key,
            prompt: call.text("prompt").unwrap_or_default(),
            // Jimeng fetches references itself, so only URLs given as such are passed on.
            image_urls: call
                .param("imageUrls")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|u| u.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            width: call
                .param("width")
                .and_then(|v| v.as_u64())
                .map(|w| w as u32),
            height: call
                .param("height")
                .and_then(|v| v.as_u64())
                .map(|h| h as u32),
            // The native API's text influence is 0–100; Jimeng's `scale` is [0, 1].
            scale: call
                .param("scale")
                .and_then(|v| v.as_f64())
                .map(|s| s / 100.0),
            // Unless the partner asked otherwise: several images would be billed.
            force_single: call
                .param("force_single")
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
        },
    })
}
