//! Benchmark: webhook deliveries per second to 64 local destinations (distinct loopback
//! hosts), and the delay from a job's terminal commit to its first delivery attempt.
//!
//! `cargo run --release -p atelier-tests --bin webhook-bench -- [EVENTS] [JOBS]` (defaults
//! 2000 and 200), with the local services up (`deploy/local/deps.sh`, `. .local/env`).
//! Roles run in this process with production delivery settings (64 in flight, 8 per host).

use std::time::{Duration, Instant};

use atelier_kit::{ids::EventId, nats::Names};
use atelier_proto::{Message, jobs::v1::WebhookRequest};
use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    percentile,
    sandbox::{Sandbox, Settings},
    wait_until,
};
use serde_json::json;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let events = args.next().flatten().unwrap_or(2000);
    let jobs = args.next().flatten().unwrap_or(200);
    let sandbox = Sandbox::start(Settings {
        webhook_concurrency: (64, 8),
        ..Settings::default()
    })
    .await;
    let mut peers = Vec::new();
    for n in 1..=64 {
        peers.push(Peer::start_on(&format!("127.0.0.{n}")).await);
    }

    // Throughput: events published straight onto the webhook stream, spread over 64 hosts.
    let nats = async_nats::connect(&sandbox.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let names = Names::new(&sandbox.prefix);
    let started = Instant::now();
    for i in 0..events {
        let request = WebhookRequest {
            event_id: EventId::generate().to_string(),
            job_id: format!("bench-{i}"),
            client_id: "alpha".to_owned(),
            url: peers[i % peers.len()].hook_url(),
            payload_json:
                json!({"event": "generation.succeeded", "job": {"id": format!("bench-{i}")}})
                    .to_string(),
            redeliver: false,
            trace_id: String::new(),
        };
        js.publish(
            names.webhook_subject(&format!("bench-{i}")),
            request.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    }
    wait_until(
        "every event delivered",
        Duration::from_secs(600),
        || async {
            let delivered: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM webhook.deliveries WHERE status = 'delivered'",
            )
            .fetch_one(&sandbox.pool)
            .await
            .ok()?;
            (delivered as usize >= events).then_some(())
        },
    )
    .await;
    let throughput = events as f64 / started.elapsed().as_secs_f64();

    // Delay: real upscale jobs, from the committed terminal state to the first attempt.
    let input = peers[0].serve("in.png", File::plain(gradient_png(16, 16)));
    let mut ids = Vec::new();
    for i in 0..jobs {
        let body = json!({"capability": "image.upscale", "imageUrls": [input],
                          "webhookUrl": peers[i % peers.len()].hook_url()});
        let (_, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
        ids.push(created["job"]["id"].as_str().expect("job id").to_owned());
    }
    wait_until("every job's webhook", Duration::from_secs(600), || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook.deliveries d JOIN jobs j ON j.id = d.job_id
             WHERE d.status = 'delivered'",
        )
        .fetch_one(&sandbox.pool)
        .await
        .ok()?;
        (done as usize >= jobs).then_some(())
    })
    .await;
    let mut delays: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM (a.started_at - j.finished_at))::float8 * 1000
         FROM jobs j JOIN webhook.deliveries d ON d.job_id = j.id
         JOIN webhook.attempts a ON a.event_id = d.event_id AND a.attempt = 1",
    )
    .fetch_all(&sandbox.pool)
    .await
    .expect("delays");
    delays.sort_by(f64::total_cmp);

    println!("webhook-bench: {events} events to 64 hosts (64 in flight, 8 per host)");
    println!("  deliveries      {throughput:>8.0} /s");
    println!("webhook-bench: {jobs} upscale jobs, terminal commit -> first attempt");
    println!(
        "  delay           p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0.0)
    );
    sandbox.teardown().await;
}
