//! The inpaint capability as a worker-runtime [`Engine`]: takes `[original, mask]`, fills off
//! the async threads, and classifies every failure.

use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile};

use crate::engine::{self, InpaintError, Inpainted, Limits, Which};

/// The local `image.inpaint` engine. The job's `prompt` is not read: this engine continues the
/// surroundings into the hole and cannot follow instructions (see the crate documentation).
#[derive(Clone, Debug, Default)]
pub struct InpaintEngine {
    pub limits: Limits,
}

/// Names the input a failure is about by its URL, so the partner sees which file to fix.
fn classify(original: &str, mask: &str, err: InpaintError) -> EngineError {
    let message = match err.input() {
        Some(Which::Original) => format!("{original}: {err}"),
        Some(Which::Mask) => format!("{mask}: {err}"),
        None => err.to_string(),
    };
    EngineError {
        code: err.code().to_owned(),
        message,
        retryable: err.is_retryable(),
    }
}

impl Engine for InpaintEngine {
    fn capability(&self) -> &'static str {
        "image.inpaint"
    }

    async fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        // The api checks for exactly two; a job that got here otherwise is malformed for good.
        let [original, mask]: [Input; 2] = inputs.try_into().map_err(|inputs: Vec<Input>| {
            EngineError::fatal(
                "bad_input",
                format!(
                    "image.inpaint needs two input images, [original, mask], got {}",
                    inputs.len()
                ),
            )
        })?;
        job.progress.report(30, "inpainting");
        let limits = self.limits.clone();
        let span = tracing::Span::current();
        let inpainted = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let (image, mask_image) = (original.read_blocking()?, mask.read_blocking()?);
                engine::inpaint(&image, &mask_image, &limits)
                    .map_err(|err| classify(&original.source, &mask.source, err))
            })
        })
        .await
        .map_err(|err| {
            EngineError::retryable("engine_crashed", format!("inpaint task: {err}"))
        })??;
        tracing::info!(
            width = inpainted.width,
            height = inpainted.height,
            "inpainted"
        );
        Ok(vec![OutputFile {
            bytes: inpainted.bytes,
            content_type: Inpainted::CONTENT_TYPE.to_owned(),
            extension: Inpainted::EXTENSION.to_owned(),
            width: inpainted.width,
            height: inpainted.height,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_input_they_are_about() {
        let (original, mask) = ("https://example.com/o.png", "https://example.com/m.png");
        let err = engine::inpaint(b"\x89PNG\r\n\x1a\n", b"words", &Limits::default()).unwrap_err();
        let err = classify(original, mask, err);
        assert_eq!(err.code, "decode_failed");
        assert!(!err.retryable);
        assert!(
            err.message
                .starts_with("https://example.com/o.png: original: "),
            "{}",
            err.message
        );

        let err = classify(original, mask, InpaintError::EmptyMask);
        assert_eq!(err.code, "empty_mask");
        assert!(!err.retryable);
        assert!(
            err.message.starts_with("mask selects no pixels"),
            "{}",
            err.message
        );
    }
}
