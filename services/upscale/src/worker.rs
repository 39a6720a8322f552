//! The upscale capability as a worker-runtime [`Engine`]: reads the target from the job's
//! parameters, resamples off the async threads, and classifies every failure.

use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile};

use crate::engine::{self, Limits, Preset, Target, UpscaleError};

#[derive(Clone, Debug, Default)]
pub struct UpscaleEngine {
    pub limits: Limits,
}

/// `resolution` (`2k`/`4k`) wins; otherwise `scale`; the api fills in `scale: 2` when
/// neither was given.
pub fn target_from_params(params: &serde_json::Value) -> Result<Target, EngineError> {
    match params.get("resolution").and_then(|v| v.as_str()) {
        Some("2k") => return Ok(Target::Resolution(Preset::TwoK)),
        Some("4k") => return Ok(Target::Resolution(Preset::FourK)),
        Some(other) => {
            return Err(EngineError::fatal(
                "invalid_target",
                format!("resolution {other:?} is not 2k or 4k"),
            ));
        }
        None => {}
    }
    let scale = params.get("scale").and_then(|v| v.as_f64()).unwrap_or(2.0);
    Ok(Target::Scale(scale as f32))
}

fn classify(source: &str, err: UpscaleError) -> EngineError {
    EngineError {
        code: err.code().to_owned(),
        message: format!("{source}: {err}"),
        retryable: err.is_retryable(),
    }
}

impl Engine for UpscaleEngine {
    fn capability(&self) -> &'static str {
        "image.upscale"
    }

    async fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let target = target_from_params(&job.params)?;
        let input = inputs.into_iter().next().ok_or_else(|| {
            EngineError::fatal("bad_input", "image.upscale needs one input image")
        })?;
        job.progress.report(30, "resampling");
        let limits = self.limits.clone();
        let span = tracing::Span::current();
        let upscaled = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let bytes = input.read_blocking()?;
                engine::upscale(&bytes, &target, &limits)
                    .map_err(|err| classify(&input.source, err))
            })
        })
        .await
        .map_err(|err| {
            EngineError::retryable("engine_crashed", format!("upscale task: {err}"))
        })??;
        tracing::info!(width = upscaled.width, height = upscaled.height, "upscaled");
        Ok(vec![OutputFile {
            bytes: upscaled.bytes,
            content_type: upscaled.content_type.to_owned(),
            extension: upscaled.extension.to_owned(),
            width: upscaled.width,
            height: upscaled.height,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_come_from_resolution_or_scale() {
        assert!(matches!(
            target_from_params(&json!({"resolution": "4k"})),
            Ok(Target::Resolution(Preset::FourK))
        ));
        assert!(matches!(
            target_from_params(&json!({"scale": 3})),
            Ok(Target::Scale(s)) if s == 3.0
        ));
        let err = target_from_params(&json!({"resolution": "8k"})).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.code, "invalid_target");
    }

    #[test]
    fn bad_images_are_fatal_and_name_their_source() {
        let err = classify(
            "https://example.com/a.png",
            engine::upscale(b"hello", &Target::Scale(2.0), &Limits::default()).unwrap_err(),
        );
        assert!(!err.retryable);
        assert_eq!(err.code, "unsupported_format");
        assert!(err.message.starts_with("https://example.com/a.png: "));
    }
}
