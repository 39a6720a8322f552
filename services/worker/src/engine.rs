//! What a capability implements: one [`Engine`] that turns a job's parameters and
//! fetched inputs into output files. Engines classify every failure they return, and read
//! only the inputs they use ([`Input`] is a handle to a spooled file, not its bytes).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use tokio::sync::watch;

pub use crate::input::Input;

/// Why an attempt failed, and whether trying again could help.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EngineError {
    /// Machine-readable, e.g. `unsupported_format`, `input_fetch_failed`.
    pub code: String,
    /// For the partner: what was wrong, naming the input where there is one.
    pub message: String,
    /// Transient (network, storage, overload): retried while attempts remain.
    /// Fatal (bad input, unsupported request): fails the job at once.
    pub retryable: bool,
}

impl EngineError {
    pub fn fatal(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: true,
        }
    }
}

/// One file an engine produced; the runtime uploads it and records its hash.
#[derive(Clone, Debug)]
pub struct OutputFile {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub extension: String,
    pub width: u32,
    pub height: u32,
}

/// Lets an engine report progress from any thread (including blocking ones); the runtime
/// forwards the latest value with each heartbeat.
#[derive(Clone, Debug)]
pub struct ProgressReporter(watch::Sender<(u32, String)>);

impl ProgressReporter {
    /// A reporter and the receiving end the runtime (or a benchmark running an engine on its
    /// own) reads the latest value from.
    pub fn new() -> (Self, watch::Receiver<(u32, String)>) {
        let (tx, rx) = watch::channel((0, "starting".to_owned()));
        (Self(tx), rx)
    }

    pub fn report(&self, percent: u32, step: &str) {
        self.0.send_replace((percent.min(100), step.to_owned()));
    }
}

/// What an engine is told about the attempt it runs.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub job_id: String,
    pub attempt: u32,
    /// The validated request parameters (the native API's field names).
    pub params: serde_json::Value,
    pub progress: ProgressReporter,
}

/// The provider engine serving a job and, for asynchronous providers, the task it created
/// upstream. Recorded in PostgreSQL through the api so that no attempt submits twice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Upstream {
    pub provider: String,
    pub upstream_model: String,
    /// The provider's task id; `None` for synchronous providers.
    pub task_id: Option<String>,
    /// The provider's usage report, as it gave it.
    pub usage: Option<serde_json::Value>,
    /// A request that may have made the provider work was sent (see the proto's `Upstream`).
    pub submitted: bool,
}

/// Publishes one `Upstream` event of an attempt; built by the runtime, which owns NATS.
pub type RecordFn = dyn Fn(Upstream) -> BoxFuture<'static, Result<(), EngineError>> + Send + Sync;

/// What an attempt knows beyond its parameters: the upstream record an earlier attempt left,
/// its deadline, and the way to record an upstream task. Kept apart from [`JobContext`] so
/// engines that call no provider never see it.
#[derive(Clone)]
pub struct Attempt {
    /// What an earlier attempt recorded; a task id here must be resumed, never resubmitted.
    pub upstream: Option<Upstream>,
    /// When the api fails the attempt; an engine that can cancel upstream work stops a
    /// little before it.
    pub deadline: SystemTime,
    recorder: Option<Arc<RecordFn>>,
    /// Fired when the partner cancels the job; the runtime then gives the engine a moment to
    /// stop upstream work before it drops the attempt.
    cancel: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("upstream", &self.upstream)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Attempt {
    /// `record` stores an [`Upstream`] durably and returns once it is stored.
    pub fn new(upstream: Option<Upstream>, deadline: SystemTime, recorder: Arc<RecordFn>) -> Self {
        Self {
            upstream,
            deadline,
            recorder: Some(recorder),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Fires [`Attempt::cancelled`] when `token` is cancelled.
    pub fn with_cancel(self, token: tokio_util::sync::CancellationToken) -> Self {
        Self {
            cancel: token,
            ..self
        }
    }

    /// Resolves when the partner cancels the job. An engine with work elsewhere (a provider's
    /// task) stops it and returns; the rest need not listen, the runtime drops them.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// An attempt outside the runtime (benchmarks, unit tests): nothing is recorded.
    pub fn detached(deadline: SystemTime) -> Self {
        Self {
            upstream: None,
            deadline,
            recorder: None,
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Records `upstream` and returns once the event stream has stored it (the api applies
    /// it fenced by this attempt's lease). An error means it may not be recorded: the engine
    /// must not go on as if a later attempt could resume.
    pub async fn record_upstream(&self, upstream: Upstream) -> Result<(), EngineError> {
        match &self.recorder {
            Some(record) => record(upstream).await,
            None => Ok(()),
        }
    }
}

pub trait Engine: Send + Sync + 'static {
    /// The capability served, e.g. `image.upscale`.
    fn capability(&self) -> &'static str;

    /// Runs one attempt. CPU-heavy work must leave the async threads
    /// (`spawn_blocking` or a dedicated pool).
    fn run(
        &self,
        job: JobContext,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<OutputFile>, EngineError>> + Send;

    /// Runs one attempt knowing its [`Attempt`]. Provider engines override this to resume a
    /// recorded upstream task and to honour the deadline; the default is [`Engine::run`].
    fn run_attempt(
        &self,
        job: JobContext,
        attempt: Attempt,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<OutputFile>, EngineError>> + Send {
        let _ = attempt;
        self.run(job, inputs)
    }
}
