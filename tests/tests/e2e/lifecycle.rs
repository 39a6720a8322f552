//! A job's life beyond the happy path: transient failures retried, fatal ones failing at
//! once, expiry, and refused webhook destinations.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Sandbox, Settings},
    wait_until,
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_input_failures_are_retried_until_the_job_succeeds() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let flaky = File {
        fail_first: 2,
        ..File::plain(gradient_png(40, 40))
    };
    let input = peer.serve("flaky.png", flaky);
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input]}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let job_id = created["job"]["id"].as_str().unwrap();
    let job = sandbox
        .wait_for_job(&sandbox.alpha, job_id, &["succeeded", "failed"], WAIT)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 3, "two 503s, then success: {job}");
    // The fetched input is kept once, under the job, as an input asset.
    assert_eq!(peer.served("flaky.png"), 1);
    let kept: (String, String, i64) = sqlx::query_as(
        "SELECT s3_key, sha256, size_bytes FROM assets WHERE job_id = $1 AND role = 'input'",
    )
    .bind(job_id)
    .fetch_one(&sandbox.pool)
    .await
    .expect("the kept input");
    let original = gradient_png(40, 40);
    assert_eq!(kept.2, original.len() as i64);
    assert_eq!(sandbox.read_object(&kept.0).await, original);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_at_once_with_a_clear_error_and_a_webhook() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let input = peer.serve(
        "notes.png",
        File::plain(b"just some text, not an image".to_vec()),
    );
    let (_, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input], "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    let job_id = created["job"]["id"].as_str().unwrap();
    let job = sandbox
        .wait_for_job(&sandbox.alpha, job_id, &["succeeded", "failed"], WAIT)
        .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"], 1, "a fatal error is not retried");
    assert_eq!(job["error"]["code"], "unsupported_format");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("notes.png")
    );
    let hook = wait_until("the failure webhook", WAIT, || async {
        peer.for_job(job_id).pop()
    })
    .await;
    assert_eq!(hook.json()["event"], "generation.failed");
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_nobody_serves_expires_on_schedule() {
    let sandbox = Sandbox::start(Settings {
        job_ttl: Duration::from_secs(1),
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let (_, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "video.generate", "prompt": "a cat", "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    let job_id = created["job"]["id"].as_str().unwrap();
    let job = sandbox
        .wait_for_job(&sandbox.alpha, job_id, &["expired"], WAIT)
        .await;
    assert_eq!(job["error"]["code"], "expired");
    let hook = wait_until("the expiry webhook", WAIT, || async {
        peer.for_job(job_id).pop()
    })
    .await;
    assert_eq!(hook.json()["event"], "generation.expired");
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_loopback_are_refused_without_private_networks() {
    let sandbox = Sandbox::start(Settings {
        allow_private_networks: false,
        job_ttl: Duration::from_secs(1),
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    // A host name passes validation; its loopback address is refused at connect time.
    let hook = peer.hook_url().replace("127.0.0.1", "localhost");
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.generate", "prompt": "x", "webhookUrl": hook}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap();
    sandbox
        .wait_for_job(&sandbox.alpha, job_id, &["expired"], WAIT)
        .await;
    let error: String = wait_until("the refused delivery", WAIT, || async {
        sqlx::query_scalar(
            "SELECT last_error FROM webhook.deliveries WHERE job_id = $1 AND status = 'failed'",
        )
        .bind(job_id)
        .fetch_optional(&sandbox.pool)
        .await
        .ok()
        .flatten()
    })
    .await;
    assert!(error.contains("loopback"), "the log says why: {error}");
    assert!(
        peer.received().is_empty(),
        "the receiver was never contacted"
    );
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
