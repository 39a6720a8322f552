//! Provider engines: one [`Routed`] engine per capability picks the job's route from its
//! `model` parameter through the [`RouteTable`], runs the local engine for `local`, and calls
//! the provider otherwise, holding one concurrency permit from submit to result.
//!
//! Never submitting twice: an asynchronous provider's task id is recorded (through the
//! worker runtime, into PostgreSQL) as soon as it is returned; an attempt that finds one
//! recorded resumes polling it. A submit whose outcome is unknown fails the job
//! (`upstream_outcome_unknown`, never retried). See `docs/providers.md`.

mod image;
mod jimeng;
#[cfg(test)]
mod tests;
mod video;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use atelier_kit::metrics::metrics;
use atelier_worker::{Attempt, Engine, EngineError, Input, JobContext, OutputFile, Upstream};

use crate::clients::Providers;
use crate::poll::PollPolicy;
use crate::provider::{Capability, Provider};
use crate::routes::Route;

/// The capability's engine: the local one, or a provider by route.
pub struct Routed<L> {
    local: L,
    capability: Capability,
    providers: Arc<Providers>,
    image_poll: PollPolicy,
    video_poll: PollPolicy,
}

impl<L: Engine> Routed<L> {
    /// Refuses (at start-up) a route this engine cannot drive.
    pub fn new(local: L, providers: Arc<Providers>) -> Result<Self, String> {
        let capability: Capability = local.capability().parse()?;
        for (routed, provider) in providers.routes.providers() {
            if routed == capability && !drives(capability, provider) {
                return Err(format!(
                    "ATELIER_ROUTES routes {capability} to {provider}: no engine drives it yet"
                ));
            }
        }
        Ok(Self {
            local,
            capability,
            providers,
            image_poll: PollPolicy::image(),
            video_poll: PollPolicy::video(),
        })
    }

    /// Polling schedules (tests shorten them).
    pub fn with_poll_policies(mut self, image: PollPolicy, video: PollPolicy) -> Self {
        self.image_poll = image;
        self.video_poll = video;
        self
    }

    /// Which route serves the job: a recorded upstream task wins over the table, so a resumed
    /// attempt polls the provider that holds its task even if the routes changed since.
    fn route(&self, job: &JobContext, attempt: &Attempt) -> Result<Route, EngineError> {
        if let Some(recorded) = attempt.upstream.as_ref().filter(|u| u.task_id.is_some()) {
            let provider: Provider = recorded
                .provider
                .parse()
                .map_err(|e: String| EngineError::fatal("provider_unavailable", e))?;
            return Ok(Route::Provider {
                provider,
                upstream_model: recorded.upstream_model.clone(),
            });
        }
        let model = job.params.get("model").and_then(|m| m.as_str());
        Ok(self.providers.routes.resolve(self.capability, model))
    }
}

/// The combinations with an engine here; the clients support a few more.
fn drives(capability: Capability, provider: Provider) -> bool {
    matches!(
        (capability, provider),
        (
            Capability::ImageGenerate,
            Provider::OpenAi | Provider::Ark | Provider::Gemini
        ) | (
            Capability::ImageGenerate | Capability::ImageInpaint | Capability::ImageUpscale,
            Provider::Jimeng
        ) | (Capability::ImageInpaint, Provider::OpenAi)
            | (Capability::VideoGenerate, Provider::Ark)
    )
}

impl<L: Engine> Engine for Routed<L> {
    fn capability(&self) -> &'static str {
        self.local.capability()
    }

    async fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let far = SystemTime::now() + Duration::from_secs(24 * 3600);
        self.run_attempt(job, Attempt::detached(far), inputs).await
    }

    async fn run_attempt(
        &self,
        job: JobContext,
        attempt: Attempt,
        inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let (provider, model) = match self.route(&job, &attempt)? {
            Route::Local => return self.local.run_attempt(job, attempt, inputs).await,
            Route::Provider {
                provider,
                upstream_model,
            } => (provider, upstream_model),
        };
        tracing::info!(%provider, upstream.model = %model, "routed upstream");
        let unanswered = attempt.upstream.as_ref();
        if unanswered.is_some_and(|u| u.submitted && u.task_id.is_none()) {
            return Err(EngineError::fatal(
                "upstream_outcome_unknown",
                format!(
                    "an earlier attempt sent this job to {provider} and stopped before its \
                     answer was kept; it is not sent again"
                ),
            ));
        }
        // One permit per job, held from submit to result (polls included).
        let _permit = self.providers.concurrency.acquire(provider).await;
        let _in_flight = InFlight::enter(provider);
        job.progress
            .report(20, &format!("submitting to {provider}"));
        let call = Call {
            providers: &self.providers,
            provider,
            model,
            job: &job,
            attempt: &attempt,
            inputs,
        };
        let result = match (self.capability, provider) {
            (Capability::VideoGenerate, _) => video::run(call, &self.video_poll).await,
            (_, Provider::Jimeng) => jimeng::run(call, self.capability, &self.image_poll).await,
            _ => image::run(call, self.capability).await,
        };
        let outcome = result
            .as_ref()
            .map_or_else(|e| e.code.as_str(), |_| "succeeded");
        metrics().provider_job(provider.as_str(), outcome);
        result
    }
}

/// A routed attempt holding a provider slot, counted in `atelier_provider_in_flight` for as long
/// as it lives.
struct InFlight(Provider);

impl InFlight {
    fn enter(provider: Provider) -> Self {
        metrics().provider_in_flight(provider.as_str(), 1);
        Self(provider)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics().provider_in_flight(self.0.as_str(), -1);
    }
}

/// One routed call's inputs.
pub(crate) struct Call<'a> {
    pub providers: &'a Providers,
    pub provider: Provider,
    pub model: String,
    pub job: &'a JobContext,
    pub attempt: &'a Attempt,
    pub inputs: Vec<Input>,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&serde_json::Value> {
        self.job.params.get(name).filter(|v| !v.is_null())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.param(name).and_then(|v| v.as_str()).map(str::to_owned)
    }

    /// Reads every input, for providers that are sent them all (inline, in the request body).
    /// Inputs stay in their files until this moment, and only a routed call that sends them
    /// reads them.
    async fn read_inputs(&self) -> Result<Vec<bytes::Bytes>, EngineError> {
        let mut read = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            read.push(input.read().await?);
        }
        Ok(read)
    }

    /// Reads input `n`, or says the capability needs it.
    async fn read_input(
        &self,
        n: usize,
        capability: impl std::fmt::Display,
        what: &str,
    ) -> Result<bytes::Bytes, EngineError> {
        match self.inputs.get(n) {
            Some(input) => input.read().await,
            None => Err(EngineError::fatal(
                "invalid_request",
                format!("{capability} needs {what}"),
            )),
        }
    }

    fn upstream(&self, task_id: Option<String>, usage: Option<serde_json::Value>) -> Upstream {
        Upstream {
            provider: self.provider.to_string(),
            upstream_model: self.model.clone(),
            task_id,
            usage,
            submitted: true,
        }
    }

    /// Marks the job as sent upstream before the request leaves. Nothing is sent when the
    /// mark cannot be stored: a later attempt would not know to hold back.
    async fn submitting(&self) -> Result<(), EngineError> {
        self.attempt
            .record_upstream(self.upstream(None, None))
            .await
    }

    /// Records what the provider answered (its task id, its usage). A record that cannot be
    /// stored is logged, not fatal: this attempt can still finish the job.
    async fn record(&self, task_id: Option<String>, usage: Option<serde_json::Value>) {
        let upstream = self.upstream(task_id, usage);
        if let Err(err) = self.attempt.record_upstream(upstream).await {
            tracing::warn!(error = %err, "upstream record not stored");
        }
    }

    /// A retryable failure means the provider did no work: the mark is cleared, so the next
    /// attempt may send again. Any other outcome keeps it.
    async fn settle<T>(&self, result: Result<T, EngineError>) -> Result<T, EngineError> {
        if result.as_ref().is_err_and(|err| err.retryable) {
            let cleared = Upstream {
                submitted: false,
                ..self.upstream(None, None)
            };
            if let Err(err) = self.attempt.record_upstream(cleared).await {
                tracing::warn!(error = %err, "upstream record not cleared");
            }
        }
        result
    }

    /// When polling stops: shortly before the attempt's deadline, so there is time left to
    /// cancel upstream and report `timed_out` before the runtime cuts the attempt off.
    fn poll_deadline(&self) -> tokio::time::Instant {
        let left = self
            .attempt
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let margin = (left / 10).min(Duration::from_secs(5));
        tokio::time::Instant::now() + left.saturating_sub(margin)
    }
}

fn missing(provider: Provider) -> EngineError {
    EngineError::fatal(
        "provider_unavailable",
        format!("the upstream provider {provider} is not configured on this worker"),
    )
}

fn timed_out() -> EngineError {
    EngineError::fatal(
        "timed_out",
        "the upstream task did not finish before the job's deadline",
    )
}
