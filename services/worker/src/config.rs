//! A worker's configuration, read once at start-up.

use std::time::Duration;

use atelier_kit::config::{self, NatsConfig, S3Config};

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub nats: NatsConfig,
    pub s3: S3Config,
    pub allow_private_networks: bool,
    /// Jobs run at once by this process.
    pub slots: usize,
    /// The shared consumer's `max_ack_pending`: the slots of every replica together. Set on
    /// creation by the first worker; a change needs the consumer deleted (it is recreated).
    pub max_ack_pending: i64,
    /// Progress ack + progress event period; it must stay well under `ack_wait`.
    pub heartbeat_interval: Duration,
    pub ack_wait: Duration,
    pub max_deliver: i64,
    /// Largest input file fetched.
    pub max_input_bytes: u64,
    /// Largest sum of one job's inputs. They are spooled to temporary files, so this bounds
    /// the disk (and fetch time) a job takes, not memory.
    pub max_job_input_bytes: u64,
    /// First retry delay; doubles per attempt (see [`crate::retry`]).
    pub retry_base: Duration,
    /// How long in-flight jobs may finish after shutdown is requested.
    pub drain_timeout: Duration,
    /// How long to wait for a claim answer before the message is retried.
    pub claim_timeout: Duration,
}

impl WorkerConfig {
    /// Video attempts (clips and slide videos) are long: one slot, a longer `ack_wait` and
    /// fewer deliveries (DESIGN §3).
    pub fn from_env(capability: &str) -> anyhow::Result<Self> {
        let video = capability.starts_with("video.");
        let slots = config::parsed("ATELIER_WORKER_SLOTS", if video { 1 } else { 2 })?;
        Ok(Self {
            nats: NatsConfig::from_env()?,
            s3: S3Config::from_env()?,
            allow_private_networks: config::flag("ATELIER_ALLOW_PRIVATE_NETWORKS", false)?,
            slots,
            max_ack_pending: config::parsed("ATELIER_WORKER_MAX_ACK_PENDING", slots as i64)?,
            heartbeat_interval: config::duration(
                "ATELIER_WORKER_HEARTBEAT",
                Duration::from_secs(15),
            )?,
            ack_wait: config::duration(
                "ATELIER_WORKER_ACK_WAIT",
                Duration::from_secs(if video { 90 } else { 60 }),
            )?,
            max_deliver: config::parsed("ATELIER_WORKER_MAX_DELIVER", if video { 4 } else { 6 })?,
            max_input_bytes: config::parsed("ATELIER_MAX_INPUT_BYTES", 50 * 1024 * 1024)?,
            max_job_input_bytes: config::parsed("ATELIER_MAX_JOB_INPUT_BYTES", 200 * 1024 * 1024)?,
            retry_base: config::duration("ATELIER_WORKER_RETRY_BASE", Duration::from_secs(5))?,
            drain_timeout: config::duration(
                "ATELIER_WORKER_DRAIN_TIMEOUT",
                Duration::from_secs(30),
            )?,
            claim_timeout: Duration::from_secs(10),
        })
    }
}
