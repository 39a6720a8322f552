//! The worker runtime: the one place that knows JetStream pull, ack / nak-with-delay /
//! term, progress heartbeats, claims, failure classification, input fetching and S3
//! output upload. A capability only implements [`Engine`].

mod attempt;
pub mod config;
mod consumer;
pub mod engine;
mod events;
mod input;
mod io;
pub mod retry;

pub use config::WorkerConfig;
pub use engine::{
    Attempt, Engine, EngineError, Input, JobContext, OutputFile, ProgressReporter, RecordFn,
    Upstream,
};

use std::sync::Arc;

use atelier_kit::{health::Readiness, nats::Names, storage::Storage};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs a worker for `engine`'s capability until `shutdown`, then drains in-flight jobs
/// up to the configured deadline. `health` (when given) serves `/healthz` and `/readyz`.
pub async fn run<E: Engine>(
    config: WorkerConfig,
    engine: E,
    health: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::default();
    let health_task = health.map(|listener| {
        tokio::spawn(atelier_kit::health::serve(
            listener,
            readiness.clone(),
            shutdown.clone(),
        ))
    });
    let capability = engine.capability();
    let nats =
        atelier_kit::nats::connect(&config.nats, &format!("atelier-worker-{capability}")).await?;
    let storage = Storage::connect(&config.s3).await;
    let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
        allow_private_networks: config.allow_private_networks,
        ..Default::default()
    })?;
    let runtime = consumer::Runtime {
        worker_id: format!("{}-{}", capability.replace('.', "-"), ulid::Ulid::new()),
        js: async_nats::jetstream::new(nats.clone()),
        names: Names::from_config(&config.nats),
        nats,
        storage,
        guard,
        config: Arc::new(config),
        engine: Arc::new(engine),
        readiness,
    };
    let result = consumer::run(runtime, shutdown.clone()).await;
    if let Some(task) = health_task {
        shutdown.cancel();
        let _ = task.await;
    }
    result
}
