//! The webhook-service: takes terminal-state events from JetStream into its own
//! PostgreSQL tables, then delivers each with both signatures, retrying on a schedule.
//! Every attempt is recorded; a restart loses no pending retry.

pub mod config;
mod deliver;
mod hosts;
mod intake;
mod report;
pub mod schedule;
pub mod secrets;
mod service;
pub mod signing;
mod store;

pub use config::WebhookConfig;

use std::sync::Arc;

use anyhow::Context;
use atelier_kit::metrics::metrics;
use atelier_kit::{health::Readiness, nats::Names};
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Runs intake and delivery until `shutdown`; `health` (when given) serves the probes.
pub async fn run(
    config: WebhookConfig,
    health: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = Readiness::default();
    let tasks = TaskTracker::new();
    if let Some(listener) = health {
        tasks.spawn(atelier_kit::health::serve(
            listener,
            readiness.clone(),
            shutdown.clone(),
        ));
    }
    let options = store::options(&config.database_url)?;
    let pool = atelier_kit::startup::retry("preparing the database", &shutdown, || async {
        let pool = store::connect(options.clone()).await?;
        store::migrate(&pool).await?;
        Ok(pool)
    })
    .await?;
    let nats = atelier_kit::nats::connect(&config.nats, "atelier-webhook").await?;
    let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
        allow_private_networks: config.allow_private_networks,
        request_timeout: config.timeout,
        user_agent: format!("Atelier-Webhooks/{}", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    })
    .context("building the webhook http client")?;
    if config.signing_key.is_none() {
        tracing::warn!("ATELIER_WEBHOOK_SECRET is not set: webhooks are sent unsigned");
    }
    let wake = Arc::new(Notify::new());
    let recorded = Arc::new(Notify::new());
    let shared_config = Arc::new(config.clone());
    let sender = deliver::Sender {
        pool: pool.clone(),
        guard,
        config: shared_config.clone(),
        wake: wake.clone(),
        recorded: recorded.clone(),
        hosts: Default::default(),
    };
    {
        let (pool, nats, names, shutdown) = (
            pool.clone(),
            nats.clone(),
            Names::from_config(&config.nats),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            if let Err(err) =
                service::respond(pool, nats, names, shared_config, shutdown.clone()).await
            {
                // Without it the api cannot show delivery logs or secrets: restart the role.
                tracing::error!(
                    error = format!("{err:#}"),
                    "webhook-service responder stopped"
                );
                shutdown.cancel();
            }
        });
    }
    tasks.spawn(intake::run(
        pool.clone(),
        async_nats::jetstream::new(nats.clone()),
        Names::from_config(&config.nats),
        wake,
        readiness,
        shutdown.clone(),
    ));
    tasks.spawn(deliver::run(sender, shutdown.clone()));
    tasks.spawn(report::run(
        pool.clone(),
        async_nats::jetstream::new(nats),
        Names::from_config(&config.nats),
        recorded,
        shutdown.clone(),
    ));
    {
        let pool = pool.clone();
        tasks.spawn(atelier_kit::metrics::sample_every(
            move || metrics().db_pool("webhook", pool.size(), pool.num_idle(), store::POOL_SIZE),
            shutdown.clone(),
        ));
    }
    tasks.close();
    tasks.wait().await;
    pool.close().await;
    Ok(())
}
