//! `atelier`: the one binary. It parses the command line, loads the role's typed
//! configuration and calls the role's `run`; it holds no logic of its own.

use anyhow::{Context, bail};
use atelier_kit::{config, ids::ClientId, shutdown};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

#[derive(Parser)]
#[command(name = "atelier", version, about = "Asynchronous AI-generation jobs")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// The HTTP API, outbox relay, claim responder, projector, reconciler and sweeper.
    Api,
    /// A worker for one capability: image, inpaint, upscale, video or slides.
    Worker { capability: String },
    /// The webhook-service.
    Webhook,
    /// Every role in one process (local use, small installs, tests).
    All,
    /// Apply database migrations and exit.
    Migrate,
    /// API key administration.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Credit administration.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
}

#[derive(Subcommand)]
enum CreditsCommand {
    /// Add credits to a client's balance (recorded in its ledger).
    Grant {
        #[arg(long)]
        client: String,
        #[arg(long)]
        amount: i64,
        #[arg(long, default_value = "granted by an operator")]
        note: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key for a client and print it once; only its SHA-256 is stored.
    Create {
        #[arg(long)]
        client: String,
    },
    /// Revoke every key of a client.
    Revoke {
        #[arg(long)]
        client: String,
    },
}

/// `image` -> `image.generate` and so on; the full names are accepted too.
fn capability_name(short: &str) -> anyhow::Result<&'static str> {
    Ok(match short {
        "image" | "image.generate" => "image.generate",
        "inpaint" | "image.inpaint" => "image.inpaint",
        "upscale" | "image.upscale" => "image.upscale",
        "video" | "video.generate" => "video.generate",
        "slides" | "video.slides" => "video.slides",
        other => {
            bail!("unknown capability {other:?}: use image, inpaint, upscale, video or slides")
        }
    })
}

async fn bind_http() -> anyhow::Result<TcpListener> {
    let addr = config::string("ATELIER_HTTP_ADDR", "127.0.0.1:8080");
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding ATELIER_HTTP_ADDR {addr}"))
}

async fn run_worker(
    capability: &str,
    health: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = atelier_worker::WorkerConfig::from_env(capability)?;
    let providers = providers(&config)?;
    match capability {
        "image.generate" => {
            let engine = atelier_image::ImageEngine::from_env()?;
            serve(config, engine, providers, health, shutdown).await
        }
        "image.inpaint" => {
            let engine = atelier_inpaint::InpaintEngine::default();
            serve(config, engine, providers, health, shutdown).await
        }
        "image.upscale" => {
            let engine = atelier_upscale::UpscaleEngine::default();
            serve(config, engine, providers, health, shutdown).await
        }
        "video.generate" => {
            let engine = atelier_video::VideoEngine::new(atelier_video::VideoConfig::from_env()?);
            // Refuse to start without a working ffmpeg rather than fail every job.
            let version = engine
                .check()
                .await
                .context("video.generate needs ffmpeg with libx264 (ATELIER_FFMPEG)")?;
            tracing::info!(ffmpeg = %version, "video engine ready");
            serve(config, engine, providers, health, shutdown).await
        }
        "video.slides" => {
            let mut engine =
                atelier_slides::SlidesEngine::new(atelier_slides::SlidesConfig::from_env()?)?;
            // Prompts are outlined by a chat model when `text.generate` is routed to one, and
            // narrated by a speech model when `audio.speech` is.
            if let Some(providers) = &providers {
                let routes = |err: String| anyhow::anyhow!("ATELIER_ROUTES: {err}");
                let outliner =
                    atelier_slides::Outliner::from_providers(providers).map_err(routes)?;
                let espeak = atelier_slides::SlidesConfig::from_env()?.espeak;
                let narrator =
                    atelier_slides::Narrator::from_providers(providers, &espeak).map_err(routes)?;
                engine = engine.with_outliner(outliner).with_narrator(narrator);
            }
            atelier_worker::run(config, engine, health, shutdown).await
        }
        other => bail!("unknown capability {other}"),
    }
}

/// The provider clients, when `ATELIER_ROUTES` routes anything upstream. A route to a
/// provider without credentials stops the worker here, at start-up.
fn providers(
    config: &atelier_worker::WorkerConfig,
) -> anyhow::Result<Option<std::sync::Arc<atelier_providers::Providers>>> {
    let settings = atelier_providers::ProvidersConfig::from_env()?;
    if settings.routes.is_empty() {
        return Ok(None);
    }
    let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
        allow_private_networks: config.allow_private_networks,
        ..Default::default()
    })?;
    let providers = atelier_providers::Providers::new(&settings, guard)?;
    Ok(Some(std::sync::Arc::new(providers)))
}

/// Runs `local`, behind the routing engine when its capability has routes.
async fn serve<E: atelier_worker::Engine>(
    config: atelier_worker::WorkerConfig,
    local: E,
    providers: Option<std::sync::Arc<atelier_providers::Providers>>,
    health: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let capability = local.capability();
    let routed = providers.filter(|p| p.routes.providers().any(|(c, _)| c.as_str() == capability));
    match routed {
        Some(providers) => {
            let engine = atelier_providers::Routed::new(local, providers)
                .map_err(|reason| anyhow::anyhow!(reason))?;
            atelier_worker::run(config, engine, health, shutdown).await
        }
        None => atelier_worker::run(config, local, health, shutdown).await,
    }
}

/// Every role as a supervised sibling: when one stops with an error, the others are
/// asked to stop too and are waited for, so nothing is cut off mid-job.
async fn run_all(shutdown: CancellationToken) -> anyhow::Result<()> {
    let api = atelier_api::ApiConfig::from_env()?;
    let webhook = atelier_webhook::WebhookConfig::from_env()?;
    let listener = bind_http().await?;
    let tasks = TaskTracker::new();
    let supervise = |name: &str, result: anyhow::Result<()>, token: &CancellationToken| {
        if let Err(err) = result {
            tracing::error!(role = name, error = format!("{err:#}"), "role stopped");
            token.cancel();
            return Err(err);
        }
        Ok(())
    };
    let api_task = {
        let token = shutdown.clone();
        tasks.spawn(async move {
            let result = atelier_api::run(api, listener, token.clone()).await;
            supervise("api", result, &token)
        })
    };
    let webhook_task = {
        let token = shutdown.clone();
        tasks.spawn(async move {
            let result = atelier_webhook::run(webhook, None, token.clone()).await;
            supervise("webhook", result, &token)
        })
    };
    let mut roles = vec![api_task, webhook_task];
    for capability in atelier_kit::nats::CAPABILITIES {
        let token = shutdown.clone();
        roles.push(tasks.spawn(async move {
            let result = run_worker(capability, None, token.clone()).await;
            supervise(capability, result, &token)
        }));
    }
    tasks.close();
    let mut first_error = None;
    for task in roles {
        if let Err(err) = task.await.context("role task panicked")? {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = atelier_kit::telemetry::init(
        &service_name(&cli.role)?,
        "info,sqlx=warn,aws_config=warn,async_nats=warn",
    );
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let result = run_role(cli.role, token).await;
    telemetry.shutdown().await;
    result
}

/// The OpenTelemetry `service.name` of a role.
fn service_name(role: &Role) -> anyhow::Result<String> {
    Ok(match role {
        Role::Api => "api-service".to_owned(),
        Role::Worker { capability } => {
            let capability = capability_name(capability)?;
            let short = capability.rsplit('.').next().unwrap_or(capability);
            // image.generate is served by the image-worker.
            let short = if short == "generate" { "image" } else { short };
            format!("{short}-worker")
        }
        Role::Webhook => "webhook-service".to_owned(),
        Role::All => "atelier".to_owned(),
        Role::Migrate | Role::Keys { .. } | Role::Credits { .. } => "atelier-cli".to_owned(),
    })
}

async fn run_role(role: Role, token: CancellationToken) -> anyhow::Result<()> {
    match role {
        Role::Api => {
            let config = atelier_api::ApiConfig::from_env()?;
            atelier_api::run(config, bind_http().await?, token).await
        }
        Role::Worker { capability } => {
            let capability = capability_name(&capability)?;
            run_worker(capability, Some(bind_http().await?), token).await
        }
        Role::Webhook => {
            let config = atelier_webhook::WebhookConfig::from_env()?;
            atelier_webhook::run(config, Some(bind_http().await?), token).await
        }
        Role::All => run_all(token).await,
        Role::Migrate => atelier_api::migrate(&atelier_api::ApiConfig::from_env()?).await,
        Role::Keys { command } => keys(command).await,
        Role::Credits { command } => credits(command).await,
    }
}

async fn credits(command: CreditsCommand) -> anyhow::Result<()> {
    let config = atelier_api::ApiConfig::from_env()?;
    let pool = atelier_api::db::connect(&config.database_url, 2).await?;
    atelier_api::db::migrate(&pool).await?;
    match command {
        CreditsCommand::Grant {
            client,
            amount,
            note,
        } => {
            let client = ClientId::parse(&client).context("--client is not a valid client id")?;
            if amount <= 0 {
                bail!("--amount must be positive");
            }
            let balance =
                atelier_api::credits::grant(&pool, client.as_str(), amount, &note).await?;
            println!("{balance}");
            eprintln!("granted {amount} credits to client {client}; balance {balance}");
        }
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let config = atelier_api::ApiConfig::from_env()?;
    let pool = atelier_api::db::connect(&config.database_url, 2).await?;
    atelier_api::db::migrate(&pool).await?;
    match command {
        KeysCommand::Create { client } => {
            let client = ClientId::parse(&client)
                .context("--client must be 1-64 letters, digits, '-' or '_'")?;
            let key = atelier_api::auth::generate_key();
            atelier_api::auth::install_key(&pool, &client, &config::Secret::new(&key), "cli")
                .await?;
            println!("{key}");
            eprintln!("created a key for client {client}; it is shown only once");
        }
        KeysCommand::Revoke { client } => {
            let client = ClientId::parse(&client).context("--client is not a valid client id")?;
            let revoked = atelier_api::auth::revoke_client_keys(&pool, &client).await?;
            eprintln!("revoked {revoked} key(s) of client {client}");
        }
    }
    Ok(())
}
