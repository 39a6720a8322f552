//! `video.generate` as a worker-runtime [`Engine`]: picks the images to animate, makes the
//! clip, and returns the MP4 and its poster; every failure leaves classified.

use std::sync::Arc;
use std::time::Duration;

use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile};
use tokio::process::Command;

use crate::clip::{self, VideoRequest};
use crate::materials;
use crate::settings::ClipSettings;
use crate::source::SourceImage;
use crate::{VideoConfig, VideoError};

/// How long the start-up probe waits for `ffmpeg -encoders`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, Default)]
pub struct VideoEngine {
    pub config: VideoConfig,
}

impl VideoEngine {
    pub fn new(config: VideoConfig) -> Self {
        Self { config }
    }

    /// Checks at start-up that the configured ffmpeg runs and has libx264, so a misconfigured
    /// worker refuses to start instead of failing every job. Returns ffmpeg's version line.
    pub async fn check(&self) -> Result<String, VideoError> {
        let program = &self.config.encoder.program;
        let missing = |reason: String| VideoError::FfmpegMissing {
            program: program.display().to_string(),
            reason,
        };
        let run = Command::new(program)
            .args(["-hide_banner", "-nostdin", "-version"])
            .kill_on_drop(true)
            .output();
        let version = tokio::time::timeout(PROBE_TIMEOUT, run)
            .await
            .map_err(|_| missing("`ffmpeg -version` did not answer".to_owned()))?
            .map_err(|err| missing(err.to_string()))?;
        let encoders = Command::new(program)
            .args(["-hide_banner", "-nostdin", "-encoders"])
            .kill_on_drop(true)
            .output();
        let encoders = tokio::time::timeout(PROBE_TIMEOUT, encoders)
            .await
            .map_err(|_| missing("`ffmpeg -encoders` did not answer".to_owned()))?
            .map_err(|err| missing(err.to_string()))?;
        if !String::from_utf8_lossy(&encoders.stdout).contains("libx264") {
            return Err(missing(
                "this ffmpeg build has no libx264 encoder".to_owned(),
            ));
        }
        let text = String::from_utf8_lossy(&version.stdout);
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }
}

/// The request a job's parameters and inputs describe; inputs that are not animated are
/// dropped here (and their files with them), and every animated one passes the format and
/// size gate. It reads files: run it on a blocking thread.
pub fn request_from_job(
    params: &serde_json::Value,
    inputs: Vec<Input>,
    config: &VideoConfig,
) -> Result<VideoRequest, VideoError> {
    let settings = ClipSettings::from_params(params)?;
    let selection = materials::select(params, inputs.len(), settings.seconds)?;
    if selection.skipped_non_images > 0 || selection.left_out > 0 {
        tracing::info!(
            skipped_non_images = selection.skipped_non_images,
            left_out = selection.left_out,
            "some inputs are not animated"
        );
    }
    let mut inputs: Vec<Option<Input>> = inputs.into_iter().map(Some).collect();
    let images = selection
        .order
        .iter()
        .filter_map(|&i| inputs.get_mut(i).and_then(Option::take))
        .map(|input| SourceImage::from_input(input, &config.limits))
        .collect::<Result<Vec<_>, _>>()?;
    let prompt = params
        .get("prompt")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(VideoRequest {
        prompt,
        settings,
        images,
    })
}

fn classify(err: VideoError) -> EngineError {
    if matches!(err, VideoError::FfmpegMissing { .. }) {
        tracing::error!(error = %err, "ffmpeg is unavailable; video jobs cannot run here");
    }
    EngineError {
        code: err.code().to_owned(),
        message: err.to_string(),
        retryable: err.is_retryable(),
    }
}

impl Engine for VideoEngine {
    fn capability(&self) -> &'static str {
        "video.generate"
    }

    async fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let (params, config) = (job.params.clone(), self.config.clone());
        let span = tracing::Span::current();
        let request = tokio::task::spawn_blocking(move || {
            span.in_scope(|| request_from_job(&params, inputs, &config))
        })
        .await
        .map_err(|err| EngineError::retryable("engine_crashed", format!("input check: {err}")))?
        .map_err(classify)?;
        let reporter = job.progress.clone();
        let progress: clip::Progress =
            Arc::new(move |percent, step| reporter.report(percent, step));
        let clip = clip::generate(request, &self.config, progress)
            .await
            .map_err(classify)?;
        tracing::info!(
            width = clip.width,
            height = clip.height,
            frames = clip.frames,
            bytes = clip.mp4.len(),
            "clip encoded"
        );
        Ok(vec![
            OutputFile {
                bytes: clip.mp4,
                content_type: "video/mp4".to_owned(),
                extension: "mp4".to_owned(),
                width: clip.width,
                height: clip.height,
            },
            OutputFile {
                bytes: clip.poster,
                content_type: "image/jpeg".to_owned(),
                extension: "jpg".to_owned(),
                width: clip.width,
                height: clip.height,
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn input(source: &str, bytes: &'static [u8]) -> Input {
        Input::from_bytes(source, Bytes::from_static(bytes))
    }

    #[test]
    fn a_bad_image_is_fatal_and_named() {
        let params = json!({
            "prompt": "x",
            "materials": [{"type": "image", "url": "https://example.com/a.png", "label": "@图片1"}],
        });
        let err = request_from_job(
            &params,
            vec![input("https://example.com/a.png", b"not an image")],
            &VideoConfig::default(),
        )
        .map_err(classify)
        .unwrap_err();
        assert_eq!(err.code, "unsupported_format");
        assert!(!err.retryable);
        assert!(err.message.starts_with("https://example.com/a.png: "));
    }

    #[test]
    fn skipped_materials_are_not_checked() {
        let params = json!({
            "prompt": "x",
            "materials": [{"type": "audio", "url": "https://example.com/a.mp3"}],
        });
        let request = request_from_job(
            &params,
            vec![input("https://example.com/a.mp3", b"ID3\x04\0\0\0\0\0\0")],
            &VideoConfig::default(),
        )
        .unwrap();
        assert!(request.images.is_empty());
        assert_eq!(request.prompt, "x");
    }

    #[test]
    fn environment_failures_retry_and_job_failures_do_not() {
        let missing = classify(VideoError::FfmpegMissing {
            program: "ffmpeg".to_owned(),
            reason: "No such file or directory".to_owned(),
        });
        assert!(missing.retryable);
        assert_eq!(missing.code, "encoder_unavailable");
        assert!(classify(VideoError::TimedOut { seconds: 1 }).retryable);
        assert!(!classify(VideoError::NothingToAnimate).retryable);
    }
}
