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

/// A result the database refuses (here an output name holding a NUL byte, which PostgreSQL
/// text cannot store) fails its job at once with the reason and a webhook: the event is not
/// redelivered forever, and the job does not sit running until its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_database_refuses_fails_the_job_with_the_reason() {
    use atelier_kit::nats::Names;
    use atelier_proto::{
        Message,
        jobs::v1::{
            ClaimReply, ClaimRequest, JobEvent, Output, Succeeded, claim_reply, job_event::Kind,
        },
    };

    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.generate", "prompt": "refused",
                    "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();

    // No worker runs: the test claims the job as one would, then reports its result.
    sandbox.wait_released(&job_id, 1).await;
    let names = Names::new(&sandbox.prefix);
    let nats = async_nats::connect(&sandbox.nats_url).await.unwrap();
    let claim = ClaimRequest {
        job_id: job_id.clone(),
        worker_id: "test-worker".to_owned(),
        dispatch_seq: 1,
    };
    let reply = nats
        .request(names.claim_subject(), claim.encode_to_vec().into())
        .await
        .expect("claim answered");
    let Some(claim_reply::Outcome::Granted(spec)) =
        ClaimReply::decode(reply.payload.as_ref()).unwrap().outcome
    else {
        panic!("the claim was not granted");
    };
    let event = JobEvent {
        job_id: job_id.clone(),
        lease_token: spec.lease_token,
        attempt: spec.attempt,
        kind: Some(Kind::Succeeded(Succeeded {
            outputs: vec![Output {
                name: "out\0.png".to_owned(),
                s3_key: format!("{}out.png", spec.output_prefix),
                content_type: "image/png".to_owned(),
                size: 1,
                sha256: "00".repeat(32),
                width: 1,
                height: 1,
            }],
            inputs: Vec::new(),
        })),
    };
    async_nats::jetstream::new(nats)
        .publish(names.event_subject(&job_id), event.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .expect("event stored");

    let job = sandbox
        .wait_for_job(&sandbox.alpha, &job_id, &["succeeded", "failed"], WAIT)
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "result_rejected", "{job}");
    // The partner learns the result was refused, never the database's text (issue #14, L10).
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("could not be recorded"), "{message}");
    assert!(
        !message.contains("invalid byte sequence") && !message.contains("UTF8"),
        "{message}"
    );
    let hook = wait_until("the failure webhook", WAIT, || async {
        peer.for_job(&job_id).pop()
    })
    .await;
    assert_eq!(hook.json()["event"], "generation.failed");
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
