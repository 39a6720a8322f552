//! The api-service: the native HTTP API, and the database-side machinery of a job's life
//! (outbox relay, claim responder, event projector, reconciler and sweeper). It owns the
//! PostgreSQL schema.

pub mod assets;
pub mod auth;
pub mod capabilities;
pub mod claim;
pub mod config;
pub mod credits;
pub mod db;
pub mod dispatch;
pub mod dispatcher;
pub mod edge;
pub mod error;
pub mod events;
pub mod faces;
pub mod gauges;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod limits;
pub mod openapi;
pub mod outbox;
pub mod presence;
pub mod projector;
pub mod recovery;
pub mod serve;
pub mod tasks;
pub mod webhooks;

use std::sync::Arc;

use anyhow::Context;
use atelier_kit::{nats::Names, startup::retry, storage::Storage};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::ApiConfig;

/// What every handler and background task of the api shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ApiConfig>,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub names: Names,
    pub storage: Storage,
    pub presence: presence::Presence,
    /// The SSRF-guarded client for URLs partners give us (asset registration).
    pub guard: atelier_netguard::GuardedClient,
    /// What the creations face offers: voices and fonts found at start-up, prices.
    pub offer: Arc<faces::creations::Offer>,
    /// Wakes this replica's dispatcher: work was accepted, or a place in flight came free.
    pub wake: dispatcher::Wake,
    /// Wakes this replica's open event streams when their clients' feeds move.
    pub feed: events::Pump,
}

/// Connects, migrates, installs bootstrap keys, then serves HTTP on `listener` and runs
/// the background tasks until `shutdown` fires.
pub async fn run(
    config: ApiConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let options = db::options(&config.database_url)?;
    let pool = retry("preparing the database", &shutdown, || {
        prepare_database(&config, options.clone())
    })
    .await?;
    let offer = probe_offer(&config).await;
    let nats = atelier_kit::nats::connect(&config.nats, "atelier-api").await?;
    let js = async_nats::jetstream::new(nats.clone());
    let names = Names::from_config(&config.nats);
    // The relay publishes into every work stream, so it makes sure they exist.
    retry("creating the streams", &shutdown, || async {
        for capability in atelier_kit::nats::CAPABILITIES {
            atelier_kit::nats::ensure_stream(&js, names.job_stream_config(capability)).await?;
        }
        atelier_kit::nats::ensure_stream(&js, names.webhooks_stream_config()).await?;
        atelier_kit::nats::ensure_stream(&js, names.events_stream_config()).await?;
        Ok(())
    })
    .await?;
    let storage = Storage::connect(&config.s3).await;
    retry("creating the bucket", &shutdown, || storage.ensure_bucket()).await?;

    let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
        allow_private_networks: config.allow_private_networks,
        request_timeout: std::time::Duration::from_secs(300),
        ..Default::default()
    })
    .context("building the guarded http client")?;
    let state = AppState {
        guard,
        config: Arc::new(config),
        pool: pool.clone(),
        nats: nats.clone(),
        js: js.clone(),
        names: names.clone(),
        storage,
        presence: presence::Presence::default(),
        offer: Arc::new(offer),
        wake: dispatcher::Wake::default(),
        feed: events::Pump::default(),
    };
    let tasks = TaskTracker::new();
    tasks.spawn(outbox::relay(
        pool.clone(),
        js.clone(),
        names.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(dispatcher::run(state.clone(), shutdown.clone()));
    tasks.spawn(state.feed.clone().run(pool.clone(), shutdown.clone()));
    tasks.spawn(projector::run(state.clone(), shutdown.clone()));
    tasks.spawn(recovery::run(state.clone(), shutdown.clone()));
    tasks.spawn(assets::retention(state.clone(), shutdown.clone()));
    tasks.spawn(gauges::sample(
        pool.clone(),
        state.config.database_pool_size,
        shutdown.clone(),
    ));
    tasks.spawn(presence::listen(
        nats.clone(),
        names.presence_wildcard(),
        state.presence.clone(),
        shutdown.clone(),
    ));
    {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(err) = claim::respond(state, shutdown.clone()).await {
                // Without claims no job can start: stop the role so it is restarted.
                tracing::error!(error = format!("{err:#}"), "claim responder stopped");
                shutdown.cancel();
            }
        });
    }
    tasks.close();
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    let header_timeout = state.config.http.header_timeout;
    serve::serve(
        listener,
        http::router(state),
        header_timeout,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    tasks.wait().await;
    pool.close().await;
    Ok(())
}

/// Reads the voices and fonts the creations catalog offers. A missing synthesiser or font is
/// not fatal: those types show as unavailable, with the reason, and the rest of the api runs.
pub async fn probe_offer(config: &ApiConfig) -> faces::creations::Offer {
    let fonts = atelier_image::Fonts::discover(config.font_path.as_deref()).unwrap_or_else(|err| {
        tracing::warn!(error = %err, "fonts for the creations catalog");
        atelier_image::Fonts::default()
    });
    // Narration routed to a speech model offers that model's voices instead of espeak-ng's.
    let speech = config
        .routes
        .resolve(atelier_providers::Capability::AudioSpeech, None);
    let installed = match speech {
        atelier_providers::Route::Provider {
            provider: atelier_providers::Provider::OpenAi,
            upstream_model,
        } => atelier_slides::catalog::provider_voices(&upstream_model, &fonts),
        _ => atelier_slides::catalog::probe(&config.espeak, &fonts).await,
    };
    if let Some(problem) = &installed.problem {
        tracing::warn!(problem = %problem, "slides videos are unavailable");
    }
    tracing::info!(
        voices = installed.voices.len(),
        languages = installed.languages.len(),
        "creations catalog"
    );
    let outliner = match config
        .routes
        .resolve(atelier_providers::Capability::TextGenerate, None)
    {
        atelier_providers::Route::Provider { upstream_model, .. } => {
            format!("openai:{upstream_model} (a chat model; send `script` for your own scenes)")
        }
        atelier_providers::Route::Local => {
            "template-v1 (a local template outliner; send `script` for your own scenes)".to_owned()
        }
    };
    faces::creations::Offer {
        installed,
        prices: config.creation_prices.clone(),
        outliner,
    }
}

/// Connects, migrates, and installs the bootstrap keys and credits: each step idempotent, so
/// the whole is tried again while PostgreSQL is unreachable.
async fn prepare_database(
    config: &ApiConfig,
    options: sqlx::postgres::PgConnectOptions,
) -> anyhow::Result<PgPool> {
    let pool = db::pool(options, config.database_pool_size).await?;
    db::migrate(&pool).await?;
    for (client, key) in &config.bootstrap_keys {
        let installed = auth::install_key(&pool, client, key, "ATELIER_API_KEYS")
            .await
            .context("installing ATELIER_API_KEYS")?;
        if installed == auth::KeyState::Revoked {
            tracing::warn!(client = %client,
                "a key in ATELIER_API_KEYS was revoked and stays revoked; remove it from the setting");
        }
    }
    for (client, amount) in &config.bootstrap_credits {
        let note = "ATELIER_BOOTSTRAP_CREDITS";
        if credits::grant_once(&pool, client.as_str(), *amount, note).await? {
            tracing::info!(client = %client, amount, "bootstrap credits granted");
        }
    }
    Ok(pool)
}

/// `atelier migrate`: applies the api's migrations and exits.
pub async fn migrate(config: &ApiConfig) -> anyhow::Result<()> {
    let pool = db::connect(&config.database_url, 2).await?;
    db::migrate(&pool).await
}
