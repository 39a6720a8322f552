//! The api-service's configuration, read once at start-up.

use std::time::Duration;

use anyhow::{Context, bail};
use atelier_kit::{
    config::{self, NatsConfig, S3Config, Secret},
    ids::ClientId,
};

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub database_url: String,
    pub database_pool_size: u32,
    pub nats: NatsConfig,
    pub s3: S3Config,
    /// Keys from `ATELIER_API_KEYS`, installed (hashed) at start-up.
    pub bootstrap_keys: Vec<(ClientId, Secret)>,
    pub allow_private_networks: bool,
    /// Largest JSON request body accepted.
    pub max_body_bytes: usize,
    /// How long a job may wait in `queued` before it expires.
    pub job_ttl: Duration,
    /// How long one attempt may run before it is failed.
    pub run_timeout: Duration,
    pub max_attempts: u32,
    /// A running job whose last heartbeat is older than this may be claimed again.
    pub lease_stale_after: Duration,
    /// A queued job not claimed within this (doubling per re-dispatch) is dispatched again.
    pub redispatch_after: Duration,
    /// How often the reconciler and sweeper run.
    pub reconcile_interval: Duration,
    /// Largest upload (all files of one request together).
    pub max_upload_bytes: u64,
    /// Largest file fetched when registering a URL.
    pub max_register_bytes: u64,
    /// Image caps, checked from the header before anything is stored.
    pub max_image_dimension: u32,
    pub max_image_pixels: u64,
    /// Inputs and outputs are deleted this long after they were stored.
    pub asset_retention: Duration,
    /// Events of the feed (`GET /api/v1/events`) are kept this long.
    pub event_retention: Duration,
    /// The tasks API's models and the capability each runs on.
    pub task_models: Vec<(String, String)>,
    /// `ATELIER_ROUTES`, the same table the workers use: which models a request may name.
    pub routes: atelier_providers::RouteTable,
    pub prices: crate::credits::Prices,
    /// The creations face's prices by content type: per scene for slides, per image.
    pub creation_prices: std::collections::HashMap<String, i64>,
    /// Credits granted once per client at start-up (`client:credits,...`), for local use.
    pub bootstrap_credits: Vec<(ClientId, i64)>,
    /// The speech synthesiser and fonts the creations catalog is read from: the same ones the
    /// slides worker uses, as both run from one image.
    pub espeak: String,
    pub font_path: Option<String>,
    /// Bounds on the HTTP edge: header and request deadlines, requests and uploads in flight.
    pub http: HttpLimits,
    /// Each client's create rate and queued cap, concurrency cap and weight (issue #16).
    pub limits: crate::limits::Limits,
    /// Dispatches of one capability released to its work stream and not yet claimed, at
    /// most: the rest wait in PostgreSQL for the fair dispatcher.
    pub dispatch_ahead: u32,
}

/// What one client's connection or request may cost the api (issue #14, M6).
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// A connection must send a whole request head within this, or it is closed: idle and
    /// slowloris connections cannot pile up (also applies between keep-alive requests).
    pub header_timeout: Duration,
    /// An ordinary request must be answered within this (503 after). Uploads and URL
    /// registrations are exempt: their pace is the body's or the remote file's.
    pub request_timeout: Duration,
    /// An upload whose body sends nothing for this long is cut.
    pub body_idle_timeout: Duration,
    /// Requests in flight at once; beyond, a 503 with `Retry-After` at once, never a queue.
    pub max_requests: usize,
    /// Uploads and URL registrations in flight at once (each holds a part buffer of 8-16 MiB).
    pub max_uploads: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(30),
            max_requests: 1024,
            max_uploads: 16,
        }
    }
}

impl HttpLimits {
    fn from_env() -> anyhow::Result<Self> {
        let default = Self::default();
        let limits = Self {
            header_timeout: config::duration(
                "ATELIER_HTTP_HEADER_TIMEOUT",
                default.header_timeout,
            )?,
            request_timeout: config::duration(
                "ATELIER_HTTP_REQUEST_TIMEOUT",
                default.request_timeout,
            )?,
            body_idle_timeout: config::duration(
                "ATELIER_HTTP_BODY_IDLE_TIMEOUT",
                default.body_idle_timeout,
            )?,
            max_requests: config::parsed("ATELIER_HTTP_MAX_REQUESTS", default.max_requests)?,
            max_uploads: config::parsed("ATELIER_HTTP_MAX_UPLOADS", default.max_uploads)?,
        };
        if limits.max_requests == 0 || limits.max_uploads == 0 {
            bail!("ATELIER_HTTP_MAX_REQUESTS and ATELIER_HTTP_MAX_UPLOADS must be at least 1");
        }
        if [
            limits.header_timeout,
            limits.request_timeout,
            limits.body_idle_timeout,
        ]
        .contains(&Duration::ZERO)
        {
            bail!("the ATELIER_HTTP_*_TIMEOUT settings must be longer than zero");
        }
        Ok(limits)
    }
}

impl ApiConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let config = Self {
            database_url: config::database_url(),
            database_pool_size: config::parsed("ATELIER_DATABASE_POOL_SIZE", 16)?,
            nats: NatsConfig::from_env()?,
            s3: S3Config::from_env()?,
            bootstrap_keys: parse_api_keys(&config::string("ATELIER_API_KEYS", ""))
                .context("ATELIER_API_KEYS")?,
            allow_private_networks: config::flag("ATELIER_ALLOW_PRIVATE_NETWORKS", false)?,
            max_body_bytes: config::parsed("ATELIER_MAX_JSON_BODY_BYTES", 1024 * 1024)?,
            job_ttl: config::duration("ATELIER_JOB_TTL", Duration::from_secs(24 * 3600))?,
            run_timeout: config::duration("ATELIER_JOB_RUN_TIMEOUT", Duration::from_secs(3600))?,
            max_attempts: config::parsed("ATELIER_JOB_MAX_ATTEMPTS", 6)?,
            lease_stale_after: config::duration(
                "ATELIER_LEASE_STALE_AFTER",
                Duration::from_secs(45),
            )?,
            redispatch_after: config::duration(
                "ATELIER_REDISPATCH_AFTER",
                Duration::from_secs(120),
            )?,
            reconcile_interval: config::duration(
                "ATELIER_RECONCILE_INTERVAL",
                Duration::from_secs(10),
            )?,
            max_upload_bytes: config::parsed("ATELIER_MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)?,
            max_register_bytes: config::parsed("ATELIER_MAX_REGISTER_BYTES", 512 * 1024 * 1024)?,
            max_image_dimension: config::parsed("ATELIER_MAX_IMAGE_DIMENSION", 16384)?,
            max_image_pixels: config::parsed("ATELIER_MAX_IMAGE_PIXELS", 100_000_000)?,
            asset_retention: config::duration(
                "ATELIER_ASSET_RETENTION",
                Duration::from_secs(30 * 24 * 3600),
            )?,
            event_retention: config::duration(
                "ATELIER_EVENT_RETENTION",
                Duration::from_secs(7 * 24 * 3600),
            )?,
            task_models: parse_task_models(&config::string(
                "ATELIER_TASK_MODELS",
                "seedance-2=video.generate,gpt-image-2=image.generate,nano-banana-2=image.generate",
            ))
            .context("ATELIER_TASK_MODELS")?,
            routes: atelier_providers::RouteTable::parse(&config::string("ATELIER_ROUTES", ""))?,
            prices: crate::credits::Prices::parse(
                &config::string("ATELIER_MODEL_PRICES", "gpt-image-2=15,nano-banana-2=10"),
                &config::string("ATELIER_VIDEO_CREDITS_PER_SECOND", "480p=2,720p=3,1080p=5"),
            )?,
            creation_prices: crate::credits::price_list(&config::string(
                "ATELIER_CREATION_PRICES",
                "slides_video=10,slide_deck=4,image=10",
            ))
            .context("ATELIER_CREATION_PRICES")?,
            bootstrap_credits: parse_bootstrap_credits(&config::string(
                "ATELIER_BOOTSTRAP_CREDITS",
                "",
            ))
            .context("ATELIER_BOOTSTRAP_CREDITS")?,
            espeak: config::string("ATELIER_ESPEAK", "espeak-ng"),
            font_path: config::var("ATELIER_FONT_PATH"),
            http: HttpLimits::from_env()?,
            limits: crate::limits::Limits::from_env()?,
            dispatch_ahead: config::parsed("ATELIER_DISPATCH_AHEAD", 8)?,
        };
        if config.max_attempts == 0 {
            bail!("ATELIER_JOB_MAX_ATTEMPTS must be at least 1");
        }
        if config.dispatch_ahead == 0 {
            bail!("ATELIER_DISPATCH_AHEAD must be at least 1");
        }
        Ok(config)
    }
}

/// `client:credits,...`.
pub fn parse_bootstrap_credits(raw: &str) -> anyhow::Result<Vec<(ClientId, i64)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (client, amount) = pair.split_once(':').context("expected client:credits")?;
            let client = ClientId::parse(client.trim())
                .with_context(|| format!("{client:?} is not a client id"))?;
            let amount: i64 = amount.trim().parse().with_context(|| format!("{pair:?}"))?;
            anyhow::ensure!(amount > 0, "{pair:?}: a grant must be positive");
            Ok((client, amount))
        })
        .collect()
}

/// Parses the seed's `client:key,client:key` format.
pub fn parse_api_keys(raw: &str) -> anyhow::Result<Vec<(ClientId, Secret)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (client, key) = pair
                .split_once(':')
                .context("each entry must be client:key")?;
            let client = ClientId::parse(client.trim()).with_context(|| {
                format!("client id {client:?} must be 1-64 letters, digits, '-' or '_'")
            })?;
            let key = key.trim();
            if key.len() < 8 {
                bail!("the key for client {client} is shorter than 8 characters");
            }
            Ok((client, Secret::new(key)))
        })
        .collect()
}

/// The model names a request may give for `capability`: the routes named per model, and the
/// upstream model of the capability's default route.
pub fn models_for(routes: &atelier_providers::RouteTable, capability: &str) -> Vec<String> {
    let Ok(capability) = capability.parse::<atelier_providers::Capability>() else {
        return Vec::new();
    };
    let mut models: Vec<String> = routes
        .models(capability)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let atelier_providers::Route::Provider { upstream_model, .. } =
        routes.resolve(capability, None)
        && !models.contains(&upstream_model)
    {
        models.push(upstream_model);
    }
    models
}

/// Parses `model=capability,...`; every capability must be one Atelier knows.
pub fn parse_task_models(raw: &str) -> anyhow::Result<Vec<(String, String)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (model, capability) = pair
                .split_once('=')
                .context("each entry must be model=capability")?;
            let capability = capability.trim();
            if !atelier_kit::nats::CAPABILITIES.contains(&capability) {
                bail!("{capability:?} is not a capability");
            }
            Ok((model.trim().to_owned(), capability.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_may_name_the_routed_models_and_the_default_upstream_model() {
        let routes = atelier_providers::RouteTable::parse(
            "image.generate=openai:gpt-image-1,\
             image.generate:nano-banana-2=gemini:gemini-2.5-flash-image,\
             image.generate:gpt-image-2=openai:gpt-image-2,\
             image.upscale:fast=local",
        )
        .unwrap();
        assert_eq!(
            models_for(&routes, "image.generate"),
            ["gpt-image-2", "nano-banana-2", "gpt-image-1"]
        );
        assert_eq!(models_for(&routes, "image.upscale"), ["fast"]);
        assert!(models_for(&routes, "video.generate").is_empty());
        assert!(models_for(&routes, "video.slides").is_empty());
    }

    #[test]
    fn the_seed_key_format_parses() {
        let keys = parse_api_keys("partner-a:key-a-123,partner-b:key-b-456").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0.as_str(), "partner-a");
        assert_eq!(keys[1].1.expose(), "key-b-456");
        assert!(parse_api_keys("").unwrap().is_empty());
        assert!(parse_api_keys("no-colon").is_err());
        assert!(parse_api_keys("bad client:key-12345").is_err());
        assert!(parse_api_keys("a:short").is_err());
    }
}
