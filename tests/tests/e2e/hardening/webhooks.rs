//! H4: a tarpit receiver never delays another partner's webhooks.

use super::*;

/// H4: 200 of one partner's webhooks are due to a receiver that accepts and never answers;
/// then another partner's job finishes. Before: every global delivery slot was held by a
/// tarpit delivery waiting for its host's slot, so the other partner's webhook waited behind
/// all 200. After: a slow host only ever holds its own share, and the other partner's first
/// attempt starts within a second of its delivery being recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tarpit_receiver_never_delays_another_partners_webhooks() {
    let sandbox = Sandbox::start(Settings {
        webhook_concurrency: (8, 2),
        ..Settings::default()
    })
    .await;
    // The tarpit never passes anything through; its upstream is never dialled.
    let tarpit = Tarpit::start("127.0.0.1:9".to_owned()).await;
    let hook = format!("http://{}/hook", tarpit.addr);
    sqlx::query(
        "INSERT INTO webhook.deliveries
             (event_id, job_id, client_id, url, payload, status, next_attempt_at)
         SELECT 'evt_tarpit_' || n, 'job_tarpit_' || n, 'alpha', $1,
                '{\"event\":\"generation.succeeded\"}', 'pending', now() - interval '1 minute'
         FROM generate_series(1, 200) AS n",
    )
    .bind(&hook)
    .execute(&sandbox.pool)
    .await
    .expect("queueing 200 deliveries to the tarpit");
    wait_until(
        "the tarpit to hold its share of attempts",
        Duration::from_secs(15),
        || async { (tarpit.accepted.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;

    let other = Peer::start_on("127.0.0.2").await;
    let input = other.serve("input.png", File::plain(gradient_png(32, 24)));
    let (status, created) = sandbox
        .post_job(
            &sandbox.beta,
            &json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k",
                    "webhookUrl": other.hook_url()}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    wait_until(
        "the other partner's webhook past the tarpit",
        Duration::from_secs(20),
        || async { other.for_job(&job_id).into_iter().next() },
    )
    .await;
    let waited: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM min(a.started_at) - d.created_at)::float8
         FROM webhook.deliveries d JOIN webhook.attempts a USING (event_id)
         WHERE d.job_id = $1 GROUP BY d.created_at",
    )
    .bind(&job_id)
    .fetch_one(&sandbox.pool)
    .await
    .expect("the other partner's first attempt");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook.deliveries WHERE client_id = 'alpha' AND status = 'pending'",
    )
    .fetch_one(&sandbox.pool)
    .await
    .expect("counting the tarpit's backlog");
    println!(
        "h4: first attempt {waited:.3}s after the delivery was recorded, with {pending} \
         tarpit deliveries pending and {} tarpit connections open",
        tarpit.accepted.load(Ordering::SeqCst)
    );
    assert!(waited < 1.0, "the other partner waited {waited:.3}s");
    assert!(
        pending >= 190,
        "the tarpit's backlog is still there: {pending}"
    );
    sandbox.teardown().await;
}
