//! Webhooks: retries with a stable id and a visible delivery log, redelivery, per-client
//! secrets with rotation checked by the reference Standard Webhooks library, and retries
//! that survive a restart of the webhook-service.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    process::{free_port, start},
    sandbox::{Sandbox, Settings, WEBHOOK_KEY},
    verify, wait_until,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

/// Verifies a received webhook with the `standardwebhooks` package from PyPI, run by
/// `ATELIER_TEST_PYTHON` (deploy/test.sh installs it into `.local/venv`).
fn reference_verify(secret: &str, hook: &atelier_tests::peer::Received) -> Result<(), String> {
    let python = std::env::var("ATELIER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let input = json!({
        "secret": secret,
        "body": String::from_utf8_lossy(&hook.body),
        "headers": {
            "webhook-id": hook.header("webhook-id"),
            "webhook-timestamp": hook.header("webhook-timestamp"),
            "webhook-signature": hook.header("webhook-signature"),
        },
    });
    let script = "import json, sys\n\
                  from standardwebhooks.webhooks import Webhook\n\
                  d = json.loads(sys.argv[1])\n\
                  Webhook(d['secret']).verify(d['body'].encode(), d['headers'])\n";
    let output = std::process::Command::new(&python)
        .args(["-c", script, &input.to_string()])
        .output()
        .map_err(|err| {
            format!("running {python}: {err} (deploy/test.sh sets ATELIER_TEST_PYTHON)")
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn key_bytes(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("whsec_ base64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt_and_the_log_shows_all() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    peer.script_hook(&[500, 503]);
    let input = peer.serve("in.png", File::plain(gradient_png(32, 32)));
    let (_, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input], "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    let job_id = created["job"]["id"].as_str().unwrap();
    let hooks = wait_until("three webhook attempts", WAIT, || async {
        let hooks = peer.for_job(job_id);
        (hooks.len() >= 3).then_some(hooks)
    })
    .await;
    let ids: Vec<&str> = hooks.iter().map(|h| h.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "webhook-id is stable: {ids:?}"
    );
    for hook in &hooks {
        assert_eq!(hook.body, hooks[0].body, "the same event every time");
        assert!(verify::standard(
            WEBHOOK_KEY,
            hook.header("webhook-id"),
            hook.header("webhook-timestamp"),
            &hook.body,
            hook.header("webhook-signature")
        ));
        assert!(verify::zhinian(
            WEBHOOK_KEY,
            &hook.body,
            hook.header("x-zhinian-signature")
        ));
    }
    // The receiver has the third attempt; its record may still be on the way. The invariants
    // wait for every delivery to settle, so afterwards the log is complete.
    sandbox.check_invariants().await;
    let statuses: Vec<Option<i32>> = sqlx::query_scalar(
        "SELECT a.status_code FROM webhook.attempts a JOIN webhook.deliveries d USING (event_id)
         WHERE d.job_id = $1 ORDER BY a.attempt",
    )
    .bind(job_id)
    .fetch_all(&sandbox.pool)
    .await
    .unwrap();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert_eq!(peer.for_job(job_id).len(), 3, "nothing after the success");

    // The delivery log, through the API.
    let (status, log) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{job_id}/webhooks"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["eventId"], ids[0]);
    let attempts = delivery["attempts"].as_array().unwrap();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    assert!(attempts[0]["nextAttemptAt"].is_string() && attempts[2]["nextAttemptAt"].is_null());
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    assert!(
        attempts
            .iter()
            .all(|a| a["at"].is_string() && a["latencyMs"].is_u64())
    );

    // Redelivery: the same event once more, same webhook-id.
    let response = sandbox
        .http
        .post(sandbox.url(&format!("/api/v1/jobs/{job_id}/webhooks/redeliver")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let again = wait_until("the redelivery", WAIT, || async {
        let hooks = peer.for_job(job_id);
        (hooks.len() == 4).then(|| hooks[3].clone())
    })
    .await;
    assert_eq!(again.header("webhook-id"), ids[0]);
    // Received first, recorded a moment later.
    wait_until("the redelivery in the log", WAIT, || async {
        let (_, log) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/jobs/{job_id}/webhooks"))
            .await;
        let attempts = log["deliveries"][0]["attempts"].as_array().map(Vec::len);
        (attempts == Some(4)).then_some(())
    })
    .await;
    // Another client sees neither the log nor can redeliver.
    let (status, _) = sandbox
        .get(&sandbox.beta, &format!("/api/v1/jobs/{job_id}/webhooks"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secrets_sign_and_rotate_with_an_overlap() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let input = peer.serve("in.png", File::plain(gradient_png(16, 16)));

    // 503 (with Retry-After) until the webhook-service has subscribed.
    let first = wait_until("the webhook-service to answer", WAIT, || async {
        let (status, body) = sandbox.get(&sandbox.alpha, "/api/v1/webhooks/secret").await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    let first_secret = first["secret"].as_str().unwrap().to_owned();
    assert!(first_secret.starts_with("whsec_"));
    let (_, again) = sandbox.get(&sandbox.alpha, "/api/v1/webhooks/secret").await;
    assert_eq!(
        again["secret"],
        first_secret.as_str(),
        "reading does not rotate"
    );

    // Signed with the client's own secret now, not the deployment's.
    let id = upscale_with_webhook(&sandbox, &peer, &input).await;
    let hook = wait_until("a webhook", WAIT, || async { peer.for_job(&id).pop() }).await;
    let key = key_bytes(&first_secret);
    assert!(verify::zhinian(
        &key,
        &hook.body,
        hook.header("x-zhinian-signature")
    ));
    assert!(!verify::zhinian(
        WEBHOOK_KEY,
        &hook.body,
        hook.header("x-zhinian-signature")
    ));
    reference_verify(&first_secret, &hook).expect("standardwebhooks verifies");

    // Rotation: both secrets sign during the overlap.
    let rotated: Value = sandbox
        .http
        .post(sandbox.url("/api/v1/webhooks/secret/rotate"))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second_secret, first_secret);
    assert_eq!(rotated["previousSecret"], first_secret.as_str());
    assert!(rotated["previousExpiresAt"].is_string());
    let id = upscale_with_webhook(&sandbox, &peer, &input).await;
    let hook = wait_until("a webhook after rotation", WAIT, || async {
        peer.for_job(&id).pop()
    })
    .await;
    assert_eq!(hook.header("webhook-signature").split(' ').count(), 2);
    reference_verify(&second_secret, &hook).expect("the new secret verifies");
    reference_verify(&first_secret, &hook).expect("the old secret still verifies");
    assert!(verify::zhinian(
        &key_bytes(&second_secret),
        &hook.body,
        hook.header("x-zhinian-signature")
    ));
    // A wrong secret and a tampered body do not verify.
    let mut tampered = hook.clone();
    tampered.body = bytes::Bytes::from(hook.body.iter().rev().copied().collect::<Vec<u8>>());
    assert!(reference_verify(&second_secret, &tampered).is_err());
    assert!(reference_verify(&super_secret_other(), &hook).is_err());
    // Beta's secret is its own.
    let (_, beta) = sandbox.get(&sandbox.beta, "/api/v1/webhooks/secret").await;
    assert_ne!(beta["secret"], second_secret.as_str());
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

async fn upscale_with_webhook(sandbox: &Sandbox, peer: &Peer, input: &str) -> String {
    let body =
        json!({"capability": "image.upscale", "imageUrls": [input], "webhookUrl": peer.hook_url()});
    let (_, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    created["job"]["id"].as_str().unwrap().to_owned()
}

fn super_secret_other() -> String {
    format!("whsec_{}", STANDARD.encode([7u8; 32]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_webhook_service_keeps_its_pending_retry() {
    let sandbox = Sandbox::start(Settings {
        webhook_service: false,
        retry_schedule: vec![Duration::from_secs(3)],
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    peer.script_hook(&[503]);
    let input = peer.serve("in.png", File::plain(gradient_png(16, 16)));
    let port = free_port();
    let mut service = start(&sandbox, "webhook", port).await;
    let body =
        json!({"capability": "image.upscale", "imageUrls": [input], "webhookUrl": peer.hook_url()});
    let (_, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    // Recorded, not only received: a kill between the answer and its record would leave the
    // delivery leased (taken again when the lease runs out, minutes later).
    wait_until("the first, failing attempt recorded", WAIT, || async {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook.attempts a
             JOIN webhook.deliveries d USING (event_id) WHERE d.job_id = $1",
        )
        .bind(&job_id)
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
        (peer.for_job(&job_id).len() == 1 && recorded == 1).then_some(())
    })
    .await;
    // Killed between attempts; the retry lives in PostgreSQL, not in the process.
    service.kill().await.expect("SIGKILL");
    service.wait().await.ok();
    let mut service = start(&sandbox, "webhook", port).await;
    let hooks = wait_until("the retry after the restart", WAIT, || async {
        let hooks = peer.for_job(&job_id);
        (hooks.len() == 2).then_some(hooks)
    })
    .await;
    assert_eq!(hooks[0].header("webhook-id"), hooks[1].header("webhook-id"));
    assert_ne!(
        hooks[0].header("webhook-timestamp"),
        hooks[1].header("webhook-timestamp")
    );
    sandbox.check_invariants().await;
    service.kill().await.ok();
    sandbox.teardown().await;
}
