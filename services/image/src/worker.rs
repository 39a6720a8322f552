//! `image.generate` as a worker-runtime [`Engine`]: parses the job, samples the reference,
//! renders off the async threads, and returns one PNG; every failure leaves classified.

use std::sync::Arc;

use atelier_kit::config;
use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile};
use sha2::{Digest, Sha256};

use crate::reference::{self, Limits};
use crate::request::GenerateRequest;
use crate::text::Fonts;
use crate::{ImageError, render};

#[derive(Clone, Debug, Default)]
pub struct ImageEngine {
    /// Loaded once at start-up and shared by every job.
    pub fonts: Arc<Fonts>,
    pub limits: Limits,
}

impl ImageEngine {
    pub fn new(fonts: Fonts, limits: Limits) -> Self {
        Self {
            fonts: Arc::new(fonts),
            limits,
        }
    }

    /// Reads `ATELIER_FONT_PATH` (colon-separated font files, tried before the well-known
    /// ones; each must load) and `ATELIER_MAX_INPUT_BYTES`. Finding no font at all is not an
    /// error: images are then drawn without their text, and a warning says so.
    pub fn from_env() -> anyhow::Result<Self> {
        let fonts = Fonts::discover(config::var("ATELIER_FONT_PATH").as_deref())?;
        if fonts.is_empty() {
            tracing::warn!(
                "no font found; image.generate draws prompts without text (install fonts-wqy-microhei or set ATELIER_FONT_PATH)"
            );
        } else if !fonts.covers('中') {
            tracing::warn!(fonts = %fonts.describe(), "no CJK font found; Chinese prompts draw as boxes");
        }
        let defaults = Limits::default();
        let limits = Limits {
            max_bytes: config::parsed("ATELIER_MAX_INPUT_BYTES", defaults.max_bytes)?,
            ..defaults
        };
        Ok(Self::new(fonts, limits))
    }
}

/// A job without a seed still gets a stable one, derived from its id, so its attempts agree
/// while different jobs differ.
fn seed_for(job_id: &str) -> u64 {
    let digest = Sha256::digest(job_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

fn classify(err: ImageError) -> EngineError {
    EngineError {
        code: err.code().to_owned(),
        message: err.to_string(),
        retryable: err.is_retryable(),
    }
}

impl Engine for ImageEngine {
    fn capability(&self) -> &'static str {
        "image.generate"
    }

    async fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let request =
            GenerateRequest::from_params(&job.params, seed_for(&job.job_id)).map_err(classify)?;
        job.progress.report(20, "rendering");
        let fonts = self.fonts.clone();
        let limits = self.limits;
        // Only the first reference is used; the others' files go with the rest of the list.
        let reference = inputs.into_iter().next();
        let span = tracing::Span::current();
        let generated = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                // The reference's bytes live only while it is sampled, not while rendering.
                let colours = match &reference {
                    Some(input) => {
                        let bytes = input.read_blocking()?;
                        Some(reference::sample(&input.source, &bytes, &limits).map_err(classify)?)
                    }
                    None => None,
                };
                render::render(&request, &fonts, colours.as_deref()).map_err(classify)
            })
        })
        .await
        .map_err(|err| EngineError::retryable("engine_crashed", format!("render task: {err}")))??;
        tracing::info!(
            width = generated.width,
            height = generated.height,
            bytes = generated.png.len(),
            "image rendered"
        );
        Ok(vec![OutputFile {
            bytes: generated.png,
            content_type: "image/png".to_owned(),
            extension: "png".to_owned(),
            width: generated.width,
            height: generated.height,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_from_job_ids_are_stable_and_distinct() {
        assert_eq!(seed_for("job_a"), seed_for("job_a"));
        assert_ne!(seed_for("job_a"), seed_for("job_b"));
    }

    #[test]
    fn request_errors_are_fatal() {
        let err = classify(
            GenerateRequest::from_params(&serde_json::json!({"prompt": "x", "width": 1}), 0)
                .unwrap_err(),
        );
        assert_eq!(err.code, "invalid_request");
        assert!(!err.retryable);
    }
}
