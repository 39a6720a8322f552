//! A sandboxed Atelier: its own database, NATS subject prefix and S3 bucket on the
//! shared local servers, and roles running in this process (or as a child process). Its
//! role configurations are in `roles`, the invariant checks of DESIGN §11 in `invariants`.

use std::{str::FromStr, time::Duration};

use atelier_kit::{config::S3Config, storage::Storage};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The raw key bytes behind [`WEBHOOK_SECRET`] (`whsec_` + base64 of these).
pub const WEBHOOK_KEY: &[u8] = b"atelier-test-webhook-key-0123456";
pub const WEBHOOK_SECRET: &str = "whsec_YXRlbGllci10ZXN0LXdlYmhvb2sta2V5LTAxMjM0NTY=";

/// An API client of the sandbox: its id and key.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: &'static str,
    pub key: String,
}

/// Knobs a scenario may turn; the defaults are fast versions of production's.
#[derive(Clone, Debug)]
pub struct Settings {
    pub job_ttl: Duration,
    pub max_attempts: u32,
    pub retry_schedule: Vec<Duration>,
    pub worker_retry_base: Duration,
    pub allow_private_networks: bool,
    /// Run the upscale worker (off: jobs wait queued).
    pub upscale_worker: bool,
    /// Run the image, inpaint and video workers too.
    pub engines: bool,
    /// Run the webhook-service in-process (off: a scenario runs it as a process).
    pub webhook_service: bool,
    /// Deliveries in flight at once, in all and per destination host.
    pub webhook_concurrency: (usize, usize),
    pub max_upload_bytes: u64,
    pub asset_retention: Duration,
    /// `model=capability,...` for the tasks API.
    pub task_models: String,
    /// `model=credits,...`.
    pub model_prices: String,
    /// `type=credits,...` for the creations API.
    pub creation_prices: String,
    /// Run the slides worker (`video.slides`, the creations API's engine) with these settings.
    pub slides: Option<atelier_slides::SlidesConfig>,
    /// Provider credentials (the fakes' URLs) and `ATELIER_ROUTES`: the api validates `model`
    /// against the routes; a scenario starts routing workers with `spawn_routed_worker`.
    pub providers: Option<atelier_providers::ProvidersConfig>,
    /// How long an attempt may run (the job's deadline).
    pub run_timeout: Duration,
    /// Each client's create rate and queued cap, concurrency cap and weight.
    pub limits: atelier_api::limits::Limits,
    /// Unclaimed dispatches per work stream, at most (the fair dispatcher's window).
    pub dispatch_ahead: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            job_ttl: Duration::from_secs(600),
            max_attempts: 4,
            retry_schedule: vec![Duration::from_millis(300); 3],
            worker_retry_base: Duration::from_millis(300),
            allow_private_networks: true,
            upscale_worker: true,
            engines: false,
            webhook_service: true,
            webhook_concurrency: (8, 4),
            max_upload_bytes: 8 * 1024 * 1024,
            asset_retention: Duration::from_secs(3600),
            task_models: "seedance-2=video.generate,gpt-image-2=image.generate,\
                          nano-banana-2=image.generate,upscaler=image.upscale"
                .to_owned(),
            model_prices: "gpt-image-2=15,nano-banana-2=10,upscaler=7".to_owned(),
            creation_prices: "slides_video=10,slide_deck=4,image=10".to_owned(),
            slides: None,
            providers: None,
            run_timeout: Duration::from_secs(120),
            limits: atelier_api::limits::Limits::default(),
            dispatch_ahead: 8,
        }
    }
}

pub struct Sandbox {
    pub base: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub database_url: String,
    pub prefix: String,
    pub storage: Storage,
    pub s3: S3Config,
    pub nats_url: String,
    pub alpha: Client,
    pub beta: Client,
    pub settings: Settings,
    roles: CancellationToken,
    tasks: TaskTracker,
}

fn server_url() -> String {
    std::env::var("ATELIER_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/atelier".to_owned())
}

/// The same server, another database.
fn url_for(database: &str) -> String {
    let server = server_url();
    let (base, _) = server.rsplit_once('/').expect("database url has a path");
    format!("{base}/{database}")
}

/// Drops sandbox databases left by runs that died more than an hour ago.
async fn sweep_old_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'atelier_t_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let stamp = name
            .trim_start_matches("atelier_t_")
            .to_uppercase()
            .parse::<ulid::Ulid>()
            .ok();
        let old = stamp.is_some_and(|u| {
            u.datetime().elapsed().unwrap_or_default() > Duration::from_secs(3600)
        });
        if old {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

impl Sandbox {
    /// Provisions the isolated resources and starts every role in this process.
    pub async fn start(settings: Settings) -> Self {
        let mut sandbox = Self::provision(settings).await;
        sandbox.start_roles().await;
        sandbox
    }

    /// Provisions the isolated resources only (for scenarios that run the binary).
    pub async fn provision(settings: Settings) -> Self {
        atelier_kit::telemetry::init("e2e-tests", "warn");
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let database = format!("atelier_t_{id}");
        let mut admin = PgConnection::connect(&url_for("postgres"))
            .await
            .expect("connecting to postgresql (run deploy/local/deps.sh)");
        sweep_old_databases(&mut admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .expect("creating the sandbox database");
        let database_url = url_for(&database);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(PgConnectOptions::from_str(&database_url).expect("database url"))
            .await
            .expect("connecting to the sandbox database");
        let s3 = S3Config {
            bucket: format!("t-{id}"),
            // Without keys this refuses, naming the variables: tests and tools never fall back
            // to the AWS SDK's chain (and its metadata service).
            ..S3Config::from_env().unwrap_or_else(|err| {
                panic!("{err:#} (source .local/env, written by deploy/local/deps.sh)")
            })
        };
        let storage = Storage::connect(&s3).await;
        storage
            .ensure_bucket()
            .await
            .expect("creating the sandbox bucket");
        let nats_url =
            std::env::var("ATELIER_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        Self {
            base: String::new(),
            http: reqwest::Client::new(),
            pool,
            database_url,
            prefix: format!("t{id}"),
            storage,
            s3,
            nats_url,
            alpha: Client {
                id: "alpha",
                key: format!("sk-alpha-{id}"),
            },
            beta: Client {
                id: "beta",
                key: format!("sk-beta-{id}"),
            },
            settings,
            roles: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Starts api, webhook-service and (unless disabled) the upscale worker in-process.
    async fn start_roles(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the api");
        let addr = listener.local_addr().expect("api address");
        let base = format!("http://{addr}");
        let api = self.api_config();
        let token = self.roles.clone();
        self.tasks.spawn(async move {
            if let Err(err) = atelier_api::run(api, listener, token).await {
                panic!("api role failed: {err:#}");
            }
        });
        if self.settings.webhook_service {
            let webhook = self.webhook_config();
            let token = self.roles.clone();
            self.tasks.spawn(async move {
                if let Err(err) = atelier_webhook::run(webhook, None, token).await {
                    panic!("webhook role failed: {err:#}");
                }
            });
        }
        if self.settings.upscale_worker {
            self.spawn_worker(atelier_upscale::UpscaleEngine::default());
        }
        if self.settings.engines {
            self.spawn_worker(atelier_image::ImageEngine::from_env().expect("image engine"));
            self.spawn_worker(atelier_inpaint::InpaintEngine::default());
            let video = atelier_video::VideoConfig::from_env().expect("video settings");
            self.spawn_worker(atelier_video::VideoEngine::new(video));
        }
        if let Some(slides) = self.settings.slides.clone() {
            let mut engine = atelier_slides::SlidesEngine::new(slides).expect("slides engine");
            // With providers configured, prompts are outlined by the routed chat model.
            if let Some(config) = &self.settings.providers {
                let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
                    allow_private_networks: true,
                    ..Default::default()
                })
                .expect("guarded client");
                let providers =
                    atelier_providers::Providers::new(config, guard).expect("provider clients");
                let outliner =
                    atelier_slides::Outliner::from_providers(&providers).expect("outliner");
                let narrator = atelier_slides::Narrator::from_providers(&providers, "espeak-ng")
                    .expect("narrator");
                engine = engine.with_outliner(outliner).with_narrator(narrator);
            }
            self.spawn_worker(engine);
        }
        let http = reqwest::Client::new();
        crate::wait_until("the api to be ready", Duration::from_secs(30), || {
            let http = http.clone();
            let url = format!("{base}/readyz");
            async move {
                let ok = http
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                ok.then_some(())
            }
        })
        .await;
        self.base = base;
    }

    fn spawn_worker<E: atelier_worker::Engine>(&mut self, engine: E) {
        self.spawn_worker_until(engine, self.roles.clone());
    }

    /// Starts a worker for `capability` behind the routing engine (its local engine for
    /// `local` routes, the configured providers otherwise), with polls shortened for tests.
    /// Cancel the returned token to stop this worker alone; it drains like a real one.
    pub fn spawn_routed_worker(&mut self, capability: &str) -> CancellationToken {
        let config = self.settings.providers.clone().expect("providers settings");
        let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
            allow_private_networks: true,
            ..Default::default()
        })
        .expect("guarded client");
        let providers = std::sync::Arc::new(
            atelier_providers::Providers::new(&config, guard).expect("provider clients"),
        );
        let fast = atelier_providers::PollPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(500),
            factor: 1.5,
            jitter: 0.1,
        };
        let token = self.roles.child_token();
        let policies = (fast.clone(), fast);
        match capability {
            "image.generate" => {
                let local = atelier_image::ImageEngine::from_env().expect("image engine");
                self.spawn_routed(local, providers, policies, token.clone());
            }
            "image.inpaint" => {
                let local = atelier_inpaint::InpaintEngine::default();
                self.spawn_routed(local, providers, policies, token.clone());
            }
            "image.upscale" => {
                let local = atelier_upscale::UpscaleEngine::default();
                self.spawn_routed(local, providers, policies, token.clone());
            }
            "video.generate" => {
                let video = atelier_video::VideoConfig::from_env().expect("video settings");
                let local = atelier_video::VideoEngine::new(video);
                self.spawn_routed(local, providers, policies, token.clone());
            }
            other => panic!("no routed worker for {other}"),
        }
        token
    }

    fn spawn_routed<E: atelier_worker::Engine>(
        &mut self,
        local: E,
        providers: std::sync::Arc<atelier_providers::Providers>,
        (image, video): (atelier_providers::PollPolicy, atelier_providers::PollPolicy),
        token: CancellationToken,
    ) {
        let engine = atelier_providers::Routed::new(local, providers)
            .expect("routing engine")
            .with_poll_policies(image, video);
        self.spawn_worker_until(engine, token);
    }

    /// Starts a worker for `engine` now (a scenario that needs the job queued first), until
    /// the returned token is cancelled or the roles stop.
    pub fn spawn_worker_now<E: atelier_worker::Engine>(&mut self, engine: E) -> CancellationToken {
        let token = self.roles.child_token();
        self.spawn_worker_until(engine, token.clone());
        token
    }

    fn spawn_worker_until<E: atelier_worker::Engine>(
        &mut self,
        engine: E,
        token: CancellationToken,
    ) {
        let worker = self.worker_config();
        self.tasks.spawn(async move {
            let capability = engine.capability();
            if let Err(err) = atelier_worker::run(worker, engine, None, token).await {
                panic!("{capability} worker failed: {err:#}");
            }
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/v1/jobs`; returns the status and the JSON body.
    pub async fn post_job(
        &self,
        client: &Client,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url("/api/v1/jobs"))
            .bearer_auth(&client.key)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("posting a job");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with a client's key; returns the status and the JSON body.
    pub async fn get(&self, client: &Client, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&client.key)
            .send()
            .await
            .expect("get");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the fair dispatcher has released dispatch `seq` of a job (for scenarios
    /// that claim it themselves, as a worker that received the message would).
    pub async fn wait_released(&self, job_id: &str, seq: i32) {
        crate::wait_until(
            &format!("dispatch {seq} of {job_id} to be released"),
            Duration::from_secs(10),
            || async {
                let released: i32 =
                    sqlx::query_scalar("SELECT released_seq FROM jobs WHERE id = $1")
                        .bind(job_id)
                        .fetch_one(&self.pool)
                        .await
                        .ok()?;
                (released >= seq).then_some(())
            },
        )
        .await;
    }

    /// Waits until the job reaches one of `statuses`; returns the job.
    pub async fn wait_for_job(
        &self,
        client: &Client,
        job_id: &str,
        statuses: &[&str],
        timeout: Duration,
    ) -> Value {
        let path = format!("/api/v1/jobs/{job_id}");
        let what = format!("job {job_id} to reach {statuses:?}");
        crate::wait_until(&what, timeout, || async {
            let (status, job) = self.get(client, &path).await;
            let reached = status == StatusCode::OK && statuses.iter().any(|s| job["status"] == *s);
            reached.then_some(job)
        })
        .await
    }

    /// Stops the in-process roles and waits for them to drain.
    pub async fn stop_roles(&self) {
        self.roles.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Stops everything and removes the sandbox's database, streams and bucket contents.
    pub async fn teardown(self) {
        self.stop_roles().await;
        self.pool.close().await;
        if let Ok(nats) = async_nats::connect(&self.nats_url).await {
            let js = async_nats::jetstream::new(nats);
            let names = atelier_kit::nats::Names::new(&self.prefix);
            let mut streams: Vec<String> = atelier_kit::nats::CAPABILITIES
                .iter()
                .map(|c| names.job_stream(c))
                .collect();
            streams.push(names.events_stream());
            streams.push(names.webhooks_stream());
            for stream in streams {
                let _ = js.delete_stream(stream).await;
            }
        }
        if let Ok(listed) = self
            .storage
            .client
            .list_objects_v2()
            .bucket(&self.storage.bucket)
            .send()
            .await
        {
            for object in listed.contents() {
                if let Some(key) = object.key() {
                    let _ = self
                        .storage
                        .client
                        .delete_object()
                        .bucket(&self.storage.bucket)
                        .key(key)
                        .send()
                        .await;
                }
            }
        }
        let _ = self
            .storage
            .client
            .delete_bucket()
            .bucket(&self.storage.bucket)
            .send()
            .await;
        if let Ok(mut admin) = PgConnection::connect(&url_for("postgres")).await {
            let database = self.database_url.rsplit('/').next().unwrap_or_default();
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

impl Drop for Sandbox {
    /// A failed test still stops its roles; its database is swept by a later run.
    fn drop(&mut self) {
        self.roles.cancel();
    }
}
