//! The webhook-service's configuration, read once at start-up.

use std::time::Duration;

use anyhow::Context;
use atelier_kit::config::{self, NatsConfig};

use crate::signing::SigningKey;

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub database_url: String,
    pub nats: NatsConfig,
    /// `None`: deliveries go unsigned (the seed's behaviour without a secret).
    pub signing_key: Option<SigningKey>,
    /// Delays after the first attempt; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
    pub allow_private_networks: bool,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one destination host.
    pub per_host: usize,
    /// How long a rotated-out client secret keeps signing.
    pub secret_overlap: Duration,
}

impl WebhookConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let signing_key = config::var("ATELIER_WEBHOOK_SECRET")
            .map(|secret| SigningKey::parse(&secret))
            .transpose()
            .context("ATELIER_WEBHOOK_SECRET")?;
        let schedule = config::string("ATELIER_WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h");
        Ok(Self {
            database_url: config::database_url(),
            nats: NatsConfig::from_env()?,
            signing_key,
            retry_schedule: config::parse_duration_list(&schedule)
                .context("ATELIER_WEBHOOK_RETRY_SCHEDULE")?,
            timeout: config::duration("ATELIER_WEBHOOK_TIMEOUT", Duration::from_secs(30))?,
            allow_private_networks: config::flag("ATELIER_ALLOW_PRIVATE_NETWORKS", false)?,
            concurrency: config::parsed("ATELIER_WEBHOOK_CONCURRENCY", 64)?,
            per_host: config::parsed("ATELIER_WEBHOOK_PER_HOST", 8)?,
            secret_overlap: config::duration(
                "ATELIER_WEBHOOK_SECRET_OVERLAP",
                Duration::from_secs(24 * 3600),
            )?,
        })
    }
}
