//! A sandbox's role configurations: typed, for roles run in this process, and as
//! environment variables, for the `atelier` binary.

use std::time::Duration;

use atelier_api::ApiConfig;
use atelier_kit::{
    config::{NatsConfig, Secret},
    ids::ClientId,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    sandbox::{Sandbox, WEBHOOK_SECRET},
    wait_until,
};

impl Sandbox {
    fn nats(&self) -> NatsConfig {
        NatsConfig {
            url: self.nats_url.clone(),
            prefix: self.prefix.clone(),
            replicas: 1,
        }
    }

    pub fn api_config(&self) -> ApiConfig {
        ApiConfig {
            database_url: self.database_url.clone(),
            database_pool_size: 8,
            nats: self.nats(),
            s3: self.s3.clone(),
            bootstrap_keys: [&self.alpha, &self.beta]
                .iter()
                .map(|c| {
                    (
                        ClientId::parse(c.id).expect("client id"),
                        Secret::new(&c.key),
                    )
                })
                .collect(),
            allow_private_networks: self.settings.allow_private_networks,
            max_body_bytes: 1024 * 1024,
            job_ttl: self.settings.job_ttl,
            run_timeout: self.settings.run_timeout,
            max_attempts: self.settings.max_attempts,
            lease_stale_after: Duration::from_secs(3),
            redispatch_after: Duration::from_secs(5),
            reconcile_interval: Duration::from_millis(500),
            max_upload_bytes: self.settings.max_upload_bytes,
            max_register_bytes: 16 * 1024 * 1024,
            max_image_dimension: 16384,
            max_image_pixels: 100_000_000,
            asset_retention: self.settings.asset_retention,
            event_retention: Duration::from_secs(7 * 24 * 3600),
            routes: self
                .settings
                .providers
                .as_ref()
                .map(|p| p.routes.clone())
                .unwrap_or_default(),
            task_models: atelier_api::config::parse_task_models(&self.settings.task_models)
                .expect("task models"),
            prices: atelier_api::credits::Prices::parse(
                &self.settings.model_prices,
                "480p=2,720p=3,1080p=5",
            )
            .expect("prices"),
            creation_prices: atelier_api::credits::price_list(&self.settings.creation_prices)
                .expect("creation prices"),
            bootstrap_credits: Vec::new(),
            espeak: "espeak-ng".to_owned(),
            font_path: None,
            http: atelier_api::config::HttpLimits::default(),
            limits: self.settings.limits.clone(),
            dispatch_ahead: self.settings.dispatch_ahead,
        }
    }

    pub fn worker_config(&self) -> atelier_worker::WorkerConfig {
        atelier_worker::WorkerConfig {
            nats: self.nats(),
            s3: self.s3.clone(),
            allow_private_networks: self.settings.allow_private_networks,
            slots: 2,
            max_ack_pending: 2,
            heartbeat_interval: Duration::from_millis(500),
            ack_wait: Duration::from_secs(4),
            max_deliver: 6,
            max_input_bytes: 10 * 1024 * 1024,
            max_job_input_bytes: 64 * 1024 * 1024,
            retry_base: self.settings.worker_retry_base,
            drain_timeout: Duration::from_secs(5),
            claim_timeout: Duration::from_secs(5),
        }
    }

    pub fn webhook_config(&self) -> atelier_webhook::WebhookConfig {
        atelier_webhook::WebhookConfig {
            database_url: self.database_url.clone(),
            nats: self.nats(),
            signing_key: Some(
                atelier_webhook::signing::SigningKey::parse(WEBHOOK_SECRET).expect("secret"),
            ),
            retry_schedule: self.settings.retry_schedule.clone(),
            timeout: Duration::from_secs(5),
            allow_private_networks: self.settings.allow_private_networks,
            concurrency: self.settings.webhook_concurrency.0,
            per_host: self.settings.webhook_concurrency.1,
            secret_overlap: Duration::from_secs(3600),
        }
    }

    /// The same settings as environment variables, for running the `atelier` binary.
    pub fn env(&self) -> Vec<(String, String)> {
        let api = self.api_config();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let schedule: Vec<String> = self
            .settings
            .retry_schedule
            .iter()
            .map(|d| ms(*d))
            .collect();
        [
            ("ATELIER_DATABASE_URL", self.database_url.clone()),
            ("ATELIER_NATS_URL", self.nats_url.clone()),
            ("ATELIER_NATS_PREFIX", self.prefix.clone()),
            ("ATELIER_S3_BUCKET", self.s3.bucket.clone()),
            (
                "ATELIER_API_KEYS",
                format!("alpha:{},beta:{}", self.alpha.key, self.beta.key),
            ),
            ("ATELIER_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
            ("ATELIER_WEBHOOK_RETRY_SCHEDULE", schedule.join(",")),
            (
                "ATELIER_ALLOW_PRIVATE_NETWORKS",
                self.settings.allow_private_networks.to_string(),
            ),
            ("ATELIER_JOB_MAX_ATTEMPTS", api.max_attempts.to_string()),
            ("ATELIER_LEASE_STALE_AFTER", ms(api.lease_stale_after)),
            ("ATELIER_REDISPATCH_AFTER", ms(api.redispatch_after)),
            ("ATELIER_RECONCILE_INTERVAL", ms(api.reconcile_interval)),
            ("ATELIER_MAX_UPLOAD_BYTES", api.max_upload_bytes.to_string()),
            ("ATELIER_ASSET_RETENTION", ms(api.asset_retention)),
            ("ATELIER_TASK_MODELS", self.settings.task_models.clone()),
            ("ATELIER_MODEL_PRICES", self.settings.model_prices.clone()),
            ("ATELIER_WORKER_HEARTBEAT", "500ms".to_owned()),
            ("ATELIER_WORKER_ACK_WAIT", "4s".to_owned()),
            (
                "ATELIER_WORKER_RETRY_BASE",
                ms(self.settings.worker_retry_base),
            ),
            ("ATELIER_LOG_FORMAT", "text".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// An api run in this process with a configuration of the scenario's own, stopped (and
/// restarted) by the scenario, on the sandbox's database, streams and bucket: a second
/// replica beside the sandbox's, or an api with other settings.
pub struct ApiReplica {
    pub base: String,
    shutdown: CancellationToken,
    role: JoinHandle<()>,
}

impl ApiReplica {
    pub async fn start(config: ApiConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the api");
        let base = format!("http://{}", listener.local_addr().expect("api address"));
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let role = tokio::spawn(async move {
            atelier_api::run(config, listener, token)
                .await
                .expect("the api role");
        });
        let http = reqwest::Client::new();
        wait_until("the api to be ready", Duration::from_secs(30), || {
            let (http, url) = (http.clone(), format!("{base}/readyz"));
            async move {
                let ready = http.get(url).send().await;
                ready.is_ok_and(|r| r.status().is_success()).then_some(())
            }
        })
        .await;
        Self {
            base,
            shutdown,
            role,
        }
    }

    /// Stops the api as a deploy does (graceful shutdown) and waits for it to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.role)
            .await
            .expect("the api stops within 30 s")
            .expect("the api role ended cleanly");
    }
}
