//! Fair-share benchmark (issue #16): does one client's backlog delay another client's jobs,
//! and what does fairness cost the backlog's throughput?
//!
//! ```sh
//! cargo build --release -p atelier-cli -p atelier-tests --bin atelier --bin fair-bench
//! target/release/fair-bench [--backlog 5000] [--seconds 60] [--slots 4]
//! ```
//!
//! With the local services up (`deploy/local/deps.sh`, `. .local/env`). Two runs, each with
//! its own database, NATS prefix and bucket and the real `atelier all` (`--slots` worker slots
//! for `image.generate`, at 64×64 quality `low` so that the platform, not the engine, is
//! measured):
//!
//! 1. `single`: client A submits `--backlog` jobs at once; A's throughput is its jobs
//!    divided by the time from the first accept to the last finish.
//! 2. `two_tenants`: the same backlog from A, and client B submits one job a second for
//!    `--seconds`. B's dispatch latency is accepted → running (`created_at` → `started_at`,
//!    the server's clock), reported for all of B's jobs and for those accepted while A still
//!    had jobs waiting.
//!
//! It prints one JSON line per run, then a summary with A's throughput ratio (two tenants /
//! single) and B's p50/p99. Rate limits are raised for the run: this measures dispatch, not
//! admission.

use std::time::{Duration, Instant};

use atelier_kit::config::S3Credentials;
use atelier_tests::{
    percentile,
    process::{free_port, start_with},
    sandbox::{Client, Sandbox, Settings},
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

struct Args {
    backlog: usize,
    seconds: u64,
    slots: usize,
}

fn args() -> Args {
    let mut parsed = Args {
        backlog: 5000,
        seconds: 60,
        slots: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--backlog" => parsed.backlog = value().parse().expect("--backlog N"),
            "--seconds" => parsed.seconds = value().parse().expect("--seconds S"),
            "--slots" => parsed.slots = value().parse().expect("--slots N"),
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    parsed
}

fn job(n: usize) -> Value {
    json!({"capability": "image.generate", "prompt": format!("fair {n}"),
           "width": 64, "height": 64, "quality": "low"})
}

/// Creates `count` jobs for `client` with 32 requests in flight.
async fn submit_all(http: &reqwest::Client, url: &str, client: &Client, count: usize) -> usize {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .map(|n| {
            let request = http.post(url).bearer_auth(&client.key).json(&job(n));
            async move {
                request
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED)
            }
        })
        .buffer_unordered(32)
        .filter(|created| std::future::ready(*created))
        .count()
        .await
}

/// id, client, created_at, started_at, finished_at.
type Row = (
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn quantiles(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({"n": samples.len(), "p50": round(percentile(&samples, 0.50)),
           "p99": round(percentile(&samples, 0.99)), "max": round(samples.last().copied().unwrap_or(f64::NAN))})
}

/// One run; returns its JSON line.
async fn run(args: &Args, two_tenants: bool) -> Value {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let slots = args.slots.to_string();
    let env: Vec<(String, String)> = [
        ("ATELIER_WORKER_SLOTS", slots.as_str()),
        ("ATELIER_WORKER_MAX_ACK_PENDING", slots.as_str()),
        ("ATELIER_WORKER_HEARTBEAT", "15s"),
        ("ATELIER_WORKER_ACK_WAIT", "60s"),
        ("ATELIER_DATABASE_POOL_SIZE", "32"),
        ("ATELIER_LIMIT_RATE", "100000"),
        ("ATELIER_LIMIT_BURST", "100000"),
        ("ATELIER_LIMIT_QUEUED", "100000"),
        ("ATELIER_LOG_FORMAT", "json"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    let mut all = start_with(&sandbox, &["all"], port, &env).await;
    let http = reqwest::Client::new();
    let url = sandbox.url("/api/v1/jobs");

    let started = Instant::now();
    let backlog = {
        let (http, url, alpha, count) = (
            http.clone(),
            url.clone(),
            Client {
                id: sandbox.alpha.id,
                key: sandbox.alpha.key.clone(),
            },
            args.backlog,
        );
        tokio::spawn(async move {
            let accepted = submit_all(&http, &url, &alpha, count).await;
            (accepted, started.elapsed())
        })
    };
    let mut b_sent = 0;
    if two_tenants {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..args.seconds {
            tick.tick().await;
            b_sent += submit_all(&http, &url, &sandbox.beta, 1).await;
        }
    }
    let (a_accepted, accepted_in) = backlog.await.expect("backlog task");

    let deadline = Instant::now() + Duration::from_secs(600);
    let rows: Vec<Row> = loop {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT id, client_id, created_at, started_at, finished_at FROM jobs")
                .fetch_all(&sandbox.pool)
                .await
                .expect("reading jobs");
        if rows.iter().all(|r| r.4.is_some()) || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = all.kill().await;
    fn of<'a>(rows: &'a [Row], client: &'a str) -> impl Iterator<Item = &'a Row> {
        rows.iter().filter(move |r| r.1 == client)
    }
    let a_first = of(&rows, "alpha").map(|r| r.2).min();
    let a_last = of(&rows, "alpha").filter_map(|r| r.4).max();
    let a_done = of(&rows, "alpha").filter(|r| r.4.is_some()).count();
    let a_per_s = match (a_first, a_last) {
        (Some(first), Some(last)) => a_done as f64 / ((last - first).as_seconds_f64()),
        _ => 0.0,
    };
    let a_drained = a_last;
    let latency = |r: &Row| Some((r.3? - r.2).as_seconds_f64());
    let b_all: Vec<f64> = of(&rows, "beta").filter_map(latency).collect();
    let b_during: Vec<f64> = of(&rows, "beta")
        .filter(|r| a_drained.is_some_and(|drained| r.2 < drained))
        .filter_map(latency)
        .collect();
    let line = json!({
        "mode": if two_tenants { "two_tenants" } else { "single" },
        "slots": args.slots,
        "a_jobs": a_accepted,
        "a_finished": a_done,
        "a_accept_s": (accepted_in.as_secs_f64() * 10.0).round() / 10.0,
        "a_per_s": (a_per_s * 10.0).round() / 10.0,
        "b_jobs": b_sent,
        "b_dispatch_s": quantiles(b_all),
        "b_dispatch_s_while_a_waits": quantiles(b_during),
        "unfinished": rows.iter().filter(|r| r.4.is_none()).count(),
    });
    println!("{line}");
    sandbox.teardown().await;
    line
}

#[tokio::main]
async fn main() {
    let args = args();
    if let Err(err) = S3Credentials::from_lookup(atelier_kit::config::var) {
        eprintln!("fair-bench: {err:#} (source .local/env, written by deploy/local/deps.sh)");
        std::process::exit(2);
    }
    let single = run(&args, false).await;
    let shared = run(&args, true).await;
    let ratio =
        shared["a_per_s"].as_f64().unwrap_or(0.0) / single["a_per_s"].as_f64().unwrap_or(1.0);
    println!(
        "{}",
        json!({"mode": "summary",
               "a_throughput_ratio": (ratio * 1000.0).round() / 1000.0,
               "b_dispatch_p50_s": shared["b_dispatch_s_while_a_waits"]["p50"],
               "b_dispatch_p99_s": shared["b_dispatch_s_while_a_waits"]["p99"]})
    );
}
