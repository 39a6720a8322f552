//! The review's LOW webhook findings: a redirecting receiver (L2), concurrent secret
//! rotations (L3), and a redelivery asked while an attempt is in flight (L9). The per-host
//! map (L7) is a unit test beside it (`services/webhook/src/hosts.rs`).

use super::*;

const WAIT: Duration = Duration::from_secs(40);

/// A webhook receiver that answers 200 to everything, but holds the first request it gets
/// until [`HeldReceiver::release`]: an attempt kept in flight for as long as a test needs.
struct HeldReceiver {
    url: String,
    arrivals: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl HeldReceiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let arrivals = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (seen, held) = (arrivals.clone(), gate.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (seen, held) = (seen.clone(), held.clone());
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _ = held.acquire().await;
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            arrivals,
            gate,
        }
    }

    fn arrivals(&self) -> usize {
        self.arrivals.load(Ordering::SeqCst)
    }

    fn release(&self) {
        self.gate.add_permits(1);
    }
}

async fn redeliver(sandbox: &Sandbox, job_id: &str) -> (StatusCode, serde_json::Value) {
    let response = sandbox
        .http
        .post(sandbox.url(&format!("/api/v1/jobs/{job_id}/webhooks/redeliver")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .expect("redeliver");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// L9: a partner asks for a redelivery while the job's webhook attempt is in flight (the
/// delivery is leased). Before: `202 {"redelivered": true}`, but the webhook-service skipped
/// the leased delivery, so no attempt followed. After: the ask is kept on the delivery and
/// the attempt's record makes it due again, so a second attempt follows at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_asked_during_an_attempt_is_carried_out() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let input = peer.serve("in.png", File::plain(gradient_png(16, 16)));
    let receiver = HeldReceiver::start().await;
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input],
                    "webhookUrl": receiver.url}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    wait_until("the first attempt in flight", WAIT, || async {
        (receiver.arrivals() == 1).then_some(())
    })
    .await;

    let (status, answer) = redeliver(&sandbox, &job_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["redelivered"], true);
    // The ask reaches the webhook-service through the outbox and its stream, a work queue: it
    // is taken once the outbox row is published and the stream holds nothing unacked.
    let names = atelier_kit::nats::Names::new(&sandbox.prefix);
    let js =
        async_nats::jetstream::new(async_nats::connect(&sandbox.nats_url).await.expect("nats"));
    wait_until("the ask taken by the webhook-service", WAIT, || async {
        let published: Option<bool> = sqlx::query_scalar(
            "SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE msg_id LIKE $1",
        )
        .bind(format!("{job_id}:redeliver:%"))
        .fetch_one(&sandbox.pool)
        .await
        .ok()?;
        let mut stream = js.get_stream(names.webhooks_stream()).await.ok()?;
        let waiting = stream.info().await.ok()?.state.messages;
        (published == Some(true) && waiting == 0).then_some(())
    })
    .await;
    let in_flight = receiver.arrivals();
    receiver.release();

    let after = wait_until("an attempt after the one in flight", WAIT, || async {
        (receiver.arrivals() >= 2).then(|| receiver.arrivals())
    })
    .await;
    sandbox.check_invariants().await;
    let codes: Vec<Option<i32>> = sqlx::query_scalar(
        "SELECT a.status_code FROM webhook.attempts a JOIN webhook.deliveries d USING (event_id)
         WHERE d.job_id = $1 ORDER BY a.id",
    )
    .bind(&job_id)
    .fetch_all(&sandbox.pool)
    .await
    .expect("the attempt log");
    println!(
        "l9: {in_flight} attempt in flight when the ask was taken; {after} attempts received, \
         logged {codes:?}"
    );
    // The held attempt was answered (not timed out and retried), so the second attempt is
    // the redelivery's.
    assert_eq!(codes, [Some(200), Some(200)]);
    sandbox.teardown().await;
}

/// L3 (a): concurrent rotations of one client's secret. Each webhook-service answers secret
/// requests one at a time, so they race only across replicas, as in a deployment with
/// several. Before: a rotation whose insert met another's live secret violated
/// `secrets_one_live_per_client` and the api answered 500. After: rotations of one client
/// run one after another; every one answers 200 and one secret is live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_all_answer_and_leave_one_live_secret() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let replicas = CancellationToken::new();
    let mut running = Vec::new();
    for _ in 0..3 {
        let health = TcpListener::bind("127.0.0.1:0").await.expect("health");
        let ready = format!("http://{}/readyz", health.local_addr().expect("address"));
        running.push(tokio::spawn(atelier_webhook::run(
            sandbox.webhook_config(),
            Some(health),
            replicas.child_token(),
        )));
        wait_until("a webhook-service replica ready", WAIT, || async {
            let response = sandbox.http.get(&ready).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }
    wait_until("the webhook-service to answer", WAIT, || async {
        let (status, _) = sandbox.get(&sandbox.alpha, "/api/v1/webhooks/secret").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;

    let rotate = || async {
        let response = sandbox
            .http
            .post(sandbox.url("/api/v1/webhooks/secret/rotate"))
            .bearer_auth(&sandbox.alpha.key)
            .send()
            .await
            .expect("rotate");
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (status, body["secret"].as_str().map(str::to_owned))
    };
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut answered = Vec::new();
    for _ in 0..4 {
        let round = futures::future::join_all((0..12).map(|_| rotate())).await;
        for (status, secret) in round {
            *statuses.entry(status.as_u16()).or_default() += 1;
            answered.extend(secret);
        }
    }
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT secret FROM webhook.secrets WHERE client_id = 'alpha' AND retired_at IS NULL",
    )
    .fetch_all(&sandbox.pool)
    .await
    .expect("live secrets");
    let (status, read) = sandbox.get(&sandbox.alpha, "/api/v1/webhooks/secret").await;
    println!(
        "l3: 48 concurrent rotations over 4 webhook-services answered {statuses:?}; \
         {} live secret(s)",
        live.len()
    );
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [200]);
    assert_eq!(live.len(), 1);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["secret"], live[0].as_str());
    assert!(
        answered.contains(&live[0]),
        "the live secret was some rotation's answer"
    );
    replicas.cancel();
    for replica in running {
        replica
            .await
            .expect("replica task")
            .expect("replica stopped cleanly");
    }
    sandbox.teardown().await;
}

/// L2: a receiver that answers with a redirect. The docs said a redirect gives up; the
/// sender retried it. Both now say the same: a 3xx is a failed attempt, retried on the
/// schedule, never followed (the classification is unit-tested in `schedule.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failed_attempt_retried_not_followed() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    peer.script_hook(&[308]);
    let input = peer.serve("in.png", File::plain(gradient_png(16, 16)));
    let (_, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input],
                    "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    wait_until("the retry after the redirect", WAIT, || async {
        (peer.for_job(&job_id).len() == 2).then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    let (_, log) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{job_id}/webhooks"))
        .await;
    let attempts = log["deliveries"][0]["attempts"].as_array().cloned();
    let attempts = attempts.unwrap_or_default();
    let codes: Vec<i64> = attempts
        .iter()
        .filter_map(|a| a["statusCode"].as_i64())
        .collect();
    println!(
        "l2: attempts {codes:?}, first error {}",
        attempts[0]["error"]
    );
    assert_eq!(codes, [308, 200]);
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("redirects are not followed")),
        "{log}"
    );
    assert_eq!(log["deliveries"][0]["status"], "delivered");
    sandbox.teardown().await;
}
