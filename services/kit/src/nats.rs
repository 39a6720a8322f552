//! NATS naming and stream definitions. Every role that touches a stream creates it
//! idempotently from these definitions at start-up, so all of them agree on its shape.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{
    self,
    stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType},
};

use crate::config::NatsConfig;

/// The capabilities Atelier knows; each has its own work stream and worker.
/// `video.slides` is created through the creations API (seed 000), not `POST /api/v1/jobs`.
pub const CAPABILITIES: [&str; 5] = [
    "image.generate",
    "image.inpaint",
    "image.upscale",
    "video.generate",
    "video.slides",
];

/// Subject and stream names under one deployment prefix.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
    /// Stream replicas: 1 on a single server, 3 on a production cluster.
    replicas: usize,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            replicas: 1,
        }
    }

    pub fn from_config(config: &NatsConfig) -> Self {
        Self {
            prefix: config.prefix.clone(),
            replicas: config.replicas,
        }
    }

    /// `image.upscale` -> `image_upscale`: subject tokens may not contain dots.
    fn capability_token(capability: &str) -> String {
        capability.replace('.', "_")
    }

    pub fn job_stream(&self, capability: &str) -> String {
        format!(
            "{}_JOBS_{}",
            self.prefix.to_uppercase().replace('-', "_"),
            Self::capability_token(capability).to_uppercase()
        )
    }

    pub fn job_subject(&self, capability: &str) -> String {
        format!(
            "{}.jobs.{}",
            self.prefix,
            Self::capability_token(capability)
        )
    }

    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_uppercase().replace('-', "_"))
    }

    pub fn event_subject(&self, job_id: &str) -> String {
        format!("{}.events.{job_id}", self.prefix)
    }

    pub fn webhooks_stream(&self) -> String {
        format!("{}_WEBHOOKS", self.prefix.to_uppercase().replace('-', "_"))
    }

    pub fn webhook_subject(&self, job_id: &str) -> String {
        format!("{}.webhooks.{job_id}", self.prefix)
    }

    /// Core NATS (not JetStream): workers announce themselves here every few seconds,
    /// so `/capabilities` can say which capabilities have a live worker.
    pub fn presence_subject(&self, capability: &str) -> String {
        format!(
            "{}.presence.{}",
            self.prefix,
            Self::capability_token(capability)
        )
    }

    pub fn presence_wildcard(&self) -> String {
        format!("{}.presence.*", self.prefix)
    }

    /// Request/reply subjects of the webhook-service (outside its stream's subjects).
    pub fn webhook_service_subject(&self, what: &str) -> String {
        format!("{}.webhook-service.{what}", self.prefix)
    }

    pub fn claim_subject(&self) -> String {
        format!("{}.claim", self.prefix)
    }

    /// Core NATS (no stream): the api announces a cancelled job here, and the worker running
    /// it stops. A worker subscribes before it claims, so no cancel can fall between the two.
    pub fn cancel_subject(&self, job_id: &str) -> String {
        format!("{}.cancel.{job_id}", self.prefix)
    }

    /// Durable consumer names must not contain dots either.
    pub fn durable(&self, what: &str) -> String {
        format!("{}_{}", self.prefix, what.replace('.', "_"))
    }

    /// A work queue: `discard: new` so a full stream refuses new messages instead of
    /// silently deleting old ones, no `max_age`, and a 5 minute dedupe window.
    fn work_queue(&self, name: String, subjects: String) -> StreamConfig {
        StreamConfig {
            name,
            subjects: vec![subjects],
            retention: RetentionPolicy::WorkQueue,
            discard: DiscardPolicy::New,
            storage: StorageType::File,
            duplicate_window: Duration::from_secs(300),
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// One work queue per capability.
    pub fn job_stream_config(&self, capability: &str) -> StreamConfig {
        self.work_queue(
            self.job_stream(capability),
            format!("{}.>", self.job_subject(capability)),
        )
    }

    pub fn events_stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.events_stream(),
            subjects: vec![format!("{}.events.>", self.prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(300),
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    pub fn webhooks_stream_config(&self) -> StreamConfig {
        self.work_queue(
            self.webhooks_stream(),
            format!("{}.webhooks.>", self.prefix),
        )
    }
}

/// The servers of `ATELIER_NATS_URL`: one URL, or several separated by commas (the seed
/// servers of a cluster, tried in turn, so that a role reaches the cluster while any is up).
pub fn server_urls(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Connects with unlimited reconnects: a NATS restart must never end a role.
pub async fn connect(config: &NatsConfig, name: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(server_urls(&config.url))
        .await
        .with_context(|| format!("connecting to nats at {}", config.url))
}

/// Creates the stream if missing; an existing stream is left as it is.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: StreamConfig,
) -> anyhow::Result<jetstream::stream::Stream> {
    let name = config.name.clone();
    js.get_or_create_stream(config)
        .await
        .with_context(|| format!("creating stream {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_no_dots_in_tokens() {
        let names = Names::new("t-1");
        assert_eq!(names.job_stream("image.upscale"), "T_1_JOBS_IMAGE_UPSCALE");
        assert_eq!(names.job_subject("image.upscale"), "t-1.jobs.image_upscale");
        assert_eq!(names.event_subject("job_x"), "t-1.events.job_x");
        assert_eq!(
            names.durable("worker.image.upscale"),
            "t-1_worker_image_upscale"
        );
    }

    #[test]
    fn a_cluster_is_given_as_comma_separated_seed_servers() {
        assert_eq!(server_urls("nats://a:4222"), ["nats://a:4222"]);
        assert_eq!(
            server_urls("nats://a:4222, nats://b:4222,,nats://c:4222"),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
    }
}
