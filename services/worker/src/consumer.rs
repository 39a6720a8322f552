//! The pull loop: one durable consumer per capability, one message fetched per free slot
//! (never the 200-message prefetch of `messages()`), each message handled in its own
//! tracked task. Survives NATS restarts and a deleted consumer by recreating it.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, PullConsumer, pull},
};
use atelier_kit::{health::Readiness, nats::Names, storage::Storage};
use atelier_netguard::GuardedClient;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{WorkerConfig, attempt, engine::Engine};

/// Everything an attempt needs, shared by all of a worker's tasks.
pub struct Runtime<E> {
    pub worker_id: String,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub names: Names,
    pub storage: Storage,
    pub guard: GuardedClient,
    pub config: Arc<WorkerConfig>,
    pub engine: Arc<E>,
    pub readiness: Readiness,
}

impl<E> Clone for Runtime<E> {
    fn clone(&self) -> Self {
        Self {
            worker_id: self.worker_id.clone(),
            nats: self.nats.clone(),
            js: self.js.clone(),
            names: self.names.clone(),
            storage: self.storage.clone(),
            guard: self.guard.clone(),
            config: self.config.clone(),
            engine: self.engine.clone(),
            readiness: self.readiness.clone(),
        }
    }
}

/// Pulls and runs jobs until cancelled, then drains.
///
/// On cancel: stops pulling, lets running attempts finish for `drain_timeout`, then
/// abandons the rest (their messages are redelivered and the reconciler re-queues them).
/// On error: a pull failure is logged and the consumer recreated after a pause.
pub async fn run<E: Engine>(
    runtime: Runtime<E>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let capability = runtime.engine.capability();
    let slots = Arc::new(Semaphore::new(runtime.config.slots));
    let tasks = TaskTracker::new();
    let attempts_token = CancellationToken::new();
    tasks.spawn(announce(runtime.clone(), shutdown.clone()));
    tracing::info!(capability, worker = %runtime.worker_id, "worker started");
    while !shutdown.is_cancelled() {
        match pull_loop(&runtime, &slots, &tasks, &attempts_token, &shutdown).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    capability,
                    "pull loop restarting"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                }
            }
        }
    }
    tasks.close();
    if tokio::time::timeout(runtime.config.drain_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            capability,
            "drain deadline passed, abandoning running attempts"
        );
        attempts_token.cancel();
        tasks.wait().await;
    }
    Ok(())
}

async fn consumer<E: Engine>(runtime: &Runtime<E>) -> anyhow::Result<PullConsumer> {
    let capability = runtime.engine.capability();
    let stream =
        atelier_kit::nats::ensure_stream(&runtime.js, runtime.names.job_stream_config(capability))
            .await?;
    // The events stream is where results go; make sure it exists before taking work.
    atelier_kit::nats::ensure_stream(&runtime.js, runtime.names.events_stream_config()).await?;
    let durable = runtime.names.durable(&format!("worker.{capability}"));
    let config = &runtime.config;
    stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: config.max_deliver,
                max_ack_pending: config.max_ack_pending,
                // No BackOff (it silently replaces ack_wait) and no inactive_threshold
                // (it deletes durables): retries are delayed naks.
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating consumer {durable}"))
}

async fn pull_loop<E: Engine>(
    runtime: &Runtime<E>,
    slots: &Arc<Semaphore>,
    tasks: &TaskTracker,
    attempts_token: &CancellationToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let consumer = consumer(runtime).await?;
    let sampling = shutdown.child_token();
    tokio::spawn(atelier_kit::metrics::sample_consumer(
        consumer.clone(),
        sampling.clone(),
    ));
    let _stop_sampling = sampling.drop_guard();
    runtime.readiness.set_ready();
    // Announce at once rather than at the next presence tick.
    let subject = runtime.names.presence_subject(runtime.engine.capability());
    let _ = runtime
        .nats
        .publish(subject, runtime.worker_id.clone().into_bytes().into())
        .await;
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            permit = slots.clone().acquire_owned() => permit.context("slots closed")?,
        };
        let mut batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages() => {
                batch.map_err(|err| anyhow::anyhow!("fetching: {err}"))?
            }
        };
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = batch.next() => message,
        };
        let Some(message) = message else { continue };
        let message = message.map_err(|err| anyhow::anyhow!("fetching: {err}"))?;
        let runtime = runtime.clone();
        let abandon = attempts_token.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = abandon.cancelled() => {},
                _ = attempt::handle(&runtime, message) => {},
            }
            drop(permit);
        });
    }
}

/// Tells the api this capability has a live worker (see `/capabilities`).
///
/// On cancel: stops. On error: skips a beat; presence is advisory.
async fn announce<E: Engine>(runtime: Runtime<E>, shutdown: CancellationToken) {
    let subject = runtime.names.presence_subject(runtime.engine.capability());
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {},
        }
        if runtime.readiness.is_ready() {
            let payload = runtime.worker_id.clone().into_bytes();
            let _ = runtime.nats.publish(subject.clone(), payload.into()).await;
        }
    }
}
