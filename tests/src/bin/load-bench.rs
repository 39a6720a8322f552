//! Load benchmark: how many jobs per second the platform accepts and completes through its real
//! HTTP API, and how that compares with the floor its dependencies set on the same machine.
//!
//! ```sh
//! cargo build --release -p atelier-cli -p atelier-tests --bin atelier --bin load-bench
//! target/release/load-bench --jobs 2000 --concurrency 64 [--roles] [--floor] [--capability image.upscale]
//! ```
//!
//! With the local services up (`deploy/local/deps.sh`, `. .local/env`). It provisions its own
//! database, NATS prefix and bucket, starts the real `atelier` binary (`all`, or with
//! `--roles` the api, one worker and the webhook-service as separate processes), runs a webhook
//! receiver, and sends N jobs at concurrency C, each with its own Idempotency-Key and webhook.
//! The capability should cost next to nothing (`image.generate` at 64×64, quality `low`, by
//! default; with
//! `image.upscale`, a 16×16 input at scale 1), so the figures are the platform's own.
//!
//! It prints one JSON line: accepted/s, completed/s, webhooks/s; p50/p95/p99 of accept latency,
//! dispatch latency (accepted → running, server clocks) and end to end (accepted → webhook
//! received); errors, lost jobs, and the peak RSS and CPU milliseconds per job of each role.
//! `--floor` first measures the
//! minimal pipeline the design needs per job on the same PostgreSQL and NATS at the same
//! concurrency (insert + commit, JetStream publish + ack, consume + ack, update + commit) and
//! prints the platform's completed/s as a ratio of it. `--otlp live|dead` makes the roles export
//! their spans to an OTLP receiver in this process, or to a port nobody listens on.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use async_nats::jetstream::{self, consumer::pull, stream};
use atelier_kit::config::S3Credentials;
use atelier_tests::{
    gradient_png,
    otlp::Collector,
    peer::{File, Peer},
    percentile,
    process::{cpu_time, free_port, peak_rss_kib, start_with},
    sandbox::{Sandbox, Settings},
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Semaphore;

struct Args {
    jobs: usize,
    concurrency: usize,
    roles: bool,
    floor: bool,
    capability: String,
    /// `live`: export spans to an OTLP receiver in this process; `dead`: to a port nobody
    /// listens on; unset: no export.
    otlp: Option<String>,
}

fn args() -> Args {
    let mut parsed = Args {
        jobs: 2000,
        concurrency: 64,
        roles: false,
        floor: false,
        capability: "image.generate".to_owned(),
        otlp: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--jobs" => parsed.jobs = value().parse().expect("--jobs N"),
            "--concurrency" => parsed.concurrency = value().parse().expect("--concurrency C"),
            "--capability" => parsed.capability = value(),
            "--otlp" => parsed.otlp = Some(value()),
            "--roles" => parsed.roles = true,
            "--floor" => parsed.floor = true,
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    parsed
}

/// id, status, created_at, started_at, finished_at.
type JobTimes = (
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn quantiles(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "p50": round(percentile(&samples, 0.50)),
        "p95": round(percentile(&samples, 0.95)),
        "p99": round(percentile(&samples, 0.99)),
    })
}

/// The minimal pipeline per job, at `concurrency`: insert + commit, publish + ack, consume +
/// ack, update + commit. Returns completed/s.
async fn floor(sandbox: &Sandbox, jobs: usize, concurrency: usize) -> f64 {
    let pool = PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .connect(&sandbox.database_url)
        .await
        .expect("floor pool");
    sqlx::query(
        "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, state text NOT NULL,
                                   created_at timestamptz NOT NULL DEFAULT now(),
                                   updated_at timestamptz)",
    )
    .execute(&pool)
    .await
    .expect("floor table");
    let nats = async_nats::connect(&sandbox.nats_url).await.expect("nats");
    let js = jetstream::new(nats);
    let name = format!("{}_FLOOR", sandbox.prefix.to_uppercase().replace('-', "_"));
    let subject = format!("{}.floor", sandbox.prefix);
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{subject}.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .expect("floor stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("floor".into()),
            max_ack_pending: concurrency as i64,
            ..Default::default()
        })
        .await
        .expect("floor consumer");

    let started = Instant::now();
    let consume = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut messages = consumer.messages().await.expect("floor messages");
            let slots = Arc::new(Semaphore::new(concurrency));
            let mut done = tokio::task::JoinSet::new();
            for _ in 0..jobs {
                let message = messages
                    .next()
                    .await
                    .expect("floor stream")
                    .expect("message");
                let permit = slots.clone().acquire_owned().await.unwrap();
                let pool = pool.clone();
                done.spawn(async move {
                    let id: i64 = std::str::from_utf8(&message.payload)
                        .unwrap()
                        .parse()
                        .unwrap();
                    sqlx::query(
                        "UPDATE bench_floor SET state = 'done', updated_at = now() WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&pool)
                    .await
                    .expect("floor update");
                    message.ack().await.expect("floor ack");
                    drop(permit);
                });
            }
            while done.join_next().await.is_some() {}
        })
    };
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut produce = tokio::task::JoinSet::new();
    for i in 0..jobs {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (pool, js, subject) = (pool.clone(), js.clone(), subject.clone());
        produce.spawn(async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO bench_floor (state) VALUES ('queued') RETURNING id",
            )
            .fetch_one(&pool)
            .await
            .expect("floor insert");
            js.publish(format!("{subject}.{i}"), id.to_string().into())
                .await
                .expect("floor publish")
                .await
                .expect("floor publish ack");
            drop(permit);
        });
    }
    while produce.join_next().await.is_some() {}
    consume.await.expect("floor consumer task");
    let elapsed = started.elapsed();
    let _ = js.delete_stream(&name).await;
    jobs as f64 / elapsed.as_secs_f64()
}

fn job_body(capability: &str, peer: &Peer, input: &str) -> Value {
    match capability {
        "image.upscale" => json!({"capability": "image.upscale", "imageUrls": [input], "scale": 1,
                                  "webhookUrl": peer.hook_url()}),
        // The cheapest render the engine offers (fast compression), so the run measures the
        // platform rather than the PNG encoder.
        "image.generate" => json!({"capability": "image.generate", "prompt": "load test",
                                   "width": 64, "height": 64, "quality": "low",
                                   "webhookUrl": peer.hook_url()}),
        other => panic!("--capability {other}: use image.generate or image.upscale"),
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    // Refuse before anything connects: without keys the S3 client would otherwise be built
    // from the AWS SDK's chain, whose last resort is the cloud metadata address.
    if let Err(err) = S3Credentials::from_lookup(atelier_kit::config::var) {
        eprintln!("load-bench: {err:#} (source .local/env, written by deploy/local/deps.sh)");
        std::process::exit(2);
    }
    let mut sandbox = Sandbox::provision(Settings {
        webhook_concurrency: (64, 64),
        ..Settings::default()
    })
    .await;
    let floor_rate = if args.floor {
        let rate = floor(&sandbox, args.jobs, args.concurrency).await;
        println!(
            "{}",
            json!({"mode": "floor", "jobs": args.jobs, "concurrency": args.concurrency,
                   "completed_per_s": (rate * 10.0).round() / 10.0})
        );
        Some(rate)
    } else {
        None
    };

    // Worker slots to match the offered load: the benchmark measures the platform's overhead,
    // not a worker pool sized for a heavy engine.
    let slots = args.concurrency.to_string();
    let mut env = vec![
        ("ATELIER_WORKER_SLOTS".to_owned(), slots.clone()),
        ("ATELIER_WORKER_MAX_ACK_PENDING".to_owned(), slots),
        ("ATELIER_WORKER_HEARTBEAT".to_owned(), "15s".to_owned()),
        ("ATELIER_WORKER_ACK_WAIT".to_owned(), "60s".to_owned()),
        ("ATELIER_DATABASE_POOL_SIZE".to_owned(), "32".to_owned()),
        // One receiver host takes every webhook.
        ("ATELIER_WEBHOOK_CONCURRENCY".to_owned(), "64".to_owned()),
        ("ATELIER_WEBHOOK_PER_HOST".to_owned(), "64".to_owned()),
        ("ATELIER_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    let collector = match args.otlp.as_deref() {
        Some("live") => {
            let collector = Collector::start().await;
            env.extend(collector.http_env());
            Some(collector)
        }
        Some("dead") => {
            let dead = format!("http://127.0.0.1:{}", free_port());
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), dead));
            None
        }
        None => None,
        Some(other) => panic!("--otlp {other}: use live or dead"),
    };
    let api_port = free_port();
    sandbox.base = format!("http://127.0.0.1:{api_port}");
    let short = args.capability.rsplit('.').next().unwrap().to_owned();
    let short = if short == "generate" { "image" } else { &short };
    let mut roles = Vec::new();
    if args.roles {
        roles.push(("api", start_with(&sandbox, &["api"], api_port, &env).await));
        let worker = start_with(&sandbox, &["worker", short], free_port(), &env).await;
        roles.push(("worker", worker));
        let webhook = start_with(&sandbox, &["webhook"], free_port(), &env).await;
        roles.push(("webhook", webhook));
    } else {
        roles.push(("all", start_with(&sandbox, &["all"], api_port, &env).await));
    }
    let peer = Peer::start().await;
    let input = peer.serve("in.png", File::plain(gradient_png(16, 16)));
    let body = job_body(&args.capability, &peer, &input);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    let started_wall = SystemTime::now();
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..args.jobs {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (http, url, key, body) = (
            http.clone(),
            sandbox.url("/api/v1/jobs"),
            sandbox.alpha.key.clone(),
            body.clone(),
        );
        sends.spawn(async move {
            let sent = Instant::now();
            let response = http
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", format!("load-{i}"))
                .json(&body)
                .send()
                .await;
            let accepted = Instant::now();
            drop(permit);
            let response = response.ok()?;
            if response.status() != reqwest::StatusCode::CREATED {
                return None;
            }
            let created: Value = response.json().await.ok()?;
            let id = created["job"]["id"].as_str()?.to_owned();
            Some((id, sent, accepted))
        });
    }
    let mut accepted = HashMap::new();
    let mut accept_ms = Vec::new();
    let mut errors = 0usize;
    while let Some(result) = sends.join_next().await {
        match result.ok().flatten() {
            Some((id, sent, at)) => {
                accept_ms.push((at - sent).as_secs_f64() * 1000.0);
                accepted.insert(id, at);
            }
            None => errors += 1,
        }
    }
    let accept_elapsed = started.elapsed();

    // Every accepted job must reach a terminal state and deliver its webhook.
    let deadline = Instant::now() + Duration::from_secs(120 + args.jobs as u64 / 10);
    loop {
        let hooks = peer.received().len();
        if hooks >= accepted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // CPU per job of each role: what the platform itself spends, beside its dependencies.
    let cpu: serde_json::Map<String, Value> = roles
        .iter()
        .map(|(name, child)| {
            let used = child.id().map(cpu_time).unwrap_or_default();
            let per_job = used.as_secs_f64() * 1000.0 / accepted.len().max(1) as f64;
            (name.to_string(), json!((per_job * 100.0).round() / 100.0))
        })
        .collect();
    let rss: serde_json::Map<String, Value> = roles
        .iter()
        .map(|(name, child)| {
            let kib = child.id().map(peak_rss_kib).unwrap_or(0);
            (name.to_string(), json!((kib as f64 / 1024.0).round()))
        })
        .collect();

    let rows: Vec<JobTimes> =
        sqlx::query_as("SELECT id, status, created_at, started_at, finished_at FROM jobs")
            .fetch_all(&sandbox.pool)
            .await
            .expect("reading jobs");
    let succeeded = rows.iter().filter(|r| r.1 == "succeeded").count();
    let failed = rows
        .iter()
        .filter(|r| r.1 != "succeeded" && r.4.is_some())
        .count();
    let lost = rows.iter().filter(|r| r.4.is_none()).count();
    let last_finish = rows.iter().filter_map(|r| r.4).max();
    let completed_per_s = last_finish
        .and_then(|at| SystemTime::from(at).duration_since(started_wall).ok())
        .map_or(0.0, |took| succeeded as f64 / took.as_secs_f64());
    let dispatch_ms: Vec<f64> = rows
        .iter()
        .filter_map(|r| Some((r.3? - r.2).num_microseconds()? as f64 / 1000.0))
        .collect();

    let hooks = peer.received();
    let mut first_hook: HashMap<String, Instant> = HashMap::new();
    for hook in &hooks {
        let id = hook.json()["job"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        first_hook.entry(id).or_insert(hook.at);
    }
    let duplicates = hooks.len() - first_hook.len();
    let end_to_end_ms: Vec<f64> = accepted
        .iter()
        .filter_map(|(id, at)| Some((*first_hook.get(id)? - *at).as_secs_f64() * 1000.0))
        .collect();
    let last_hook = hooks.iter().map(|h| h.at).max();
    let webhooks_per_s = last_hook.map_or(0.0, |at| {
        first_hook.len() as f64 / (at - started).as_secs_f64()
    });
    let missing_webhooks = accepted.len() - end_to_end_ms.len();
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let mut line = json!({
        "mode": if args.roles { "roles" } else { "all" },
        "otlp": args.otlp,
        "spans_received": collector.as_ref().map(Collector::span_count),
        "capability": args.capability,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
        "accepted_per_s": round(accepted.len() as f64 / accept_elapsed.as_secs_f64()),
        "completed_per_s": round(completed_per_s),
        "webhooks_per_s": round(webhooks_per_s),
        "accept_ms": quantiles(accept_ms),
        "dispatch_ms": quantiles(dispatch_ms),
        "end_to_end_ms": quantiles(end_to_end_ms),
        "errors": errors + failed + missing_webhooks,
        "rejected": errors,
        "failed": failed,
        "lost": lost,
        "missing_webhooks": missing_webhooks,
        "duplicate_webhooks": duplicates,
        "peak_rss_mib": rss,
        "cpu_ms_per_job": cpu,
    });
    if let Some(floor_rate) = floor_rate {
        line["floor_completed_per_s"] = json!(round(floor_rate));
        line["ratio_to_floor"] = json!((completed_per_s / floor_rate * 100.0).round() / 100.0);
    }
    println!("{line}");
    for (_, mut child) in roles {
        let _ = child.kill().await;
    }
    sandbox.teardown().await;
}
