//! The seed's minimal integration flow with a real image: create, webhook with both
//! signatures, poll, download a real upscaled PNG of the requested size.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Sandbox, Settings, WEBHOOK_KEY},
    verify, wait_until,
};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upscale_job_succeeds_with_a_signed_webhook_and_a_real_output() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let input = peer.serve("input.png", File::plain(gradient_png(64, 48)));

    // Workers announce themselves; the upscale worker shows up, the others stay absent.
    let capabilities = wait_until(
        "the upscale worker to announce itself",
        Duration::from_secs(15),
        || async {
            let (status, list) = sandbox.get(&sandbox.alpha, "/api/v1/capabilities").await;
            assert_eq!(status, StatusCode::OK);
            let served = |name: &str| {
                list["capabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["capability"] == name && c["available"] == true)
            };
            served("image.upscale").then_some(list)
        },
    )
    .await;
    let unavailable: Vec<_> = capabilities["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["available"] == false)
        .map(|c| c["capability"].as_str().unwrap())
        .collect();
    assert_eq!(
        unavailable,
        [
            "image.generate",
            "image.inpaint",
            "video.generate",
            "video.slides"
        ]
    );

    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({
                "capability": "image.upscale",
                "imageUrls": [input],
                "resolution": "2k",
                "webhookUrl": peer.hook_url(),
            }),
            Some("demo-job-001"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["reused"], false);
    assert_eq!(created["job"]["status"], "queued");
    assert_eq!(created["job"]["outputAssetIds"], json!([]));
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    assert!(job_id.starts_with("job_"));

    let webhook = wait_until("the webhook", Duration::from_secs(30), || async {
        peer.for_job(&job_id).into_iter().next()
    })
    .await;
    let body = webhook.json();
    assert_eq!(body["event"], "generation.succeeded");
    assert_eq!(body["job"]["status"], "succeeded");
    assert!(verify::zhinian(
        WEBHOOK_KEY,
        &webhook.body,
        webhook.header("x-zhinian-signature")
    ));
    assert!(verify::standard(
        WEBHOOK_KEY,
        webhook.header("webhook-id"),
        webhook.header("webhook-timestamp"),
        &webhook.body,
        webhook.header("webhook-signature"),
    ));
    assert!(
        webhook
            .header("user-agent")
            .starts_with("Atelier-Webhooks/")
    );
    // The job's trace continues into the webhook: `00-<traceId>-<span>-01`.
    let trace_id = body["job"]["traceId"].as_str().expect("traceId").to_owned();
    let traceparent = webhook.header("traceparent").to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", trace_id.as_str(), "01")
    );
    assert!(parts[2].len() == 16 && parts[2].chars().all(|c| c.is_ascii_hexdigit()));

    // The state a partner reads after the webhook is the state the webhook announced.
    let (status, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{job_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["outputAssetIds"], body["job"]["outputAssetIds"]);
    let asset_id = job["outputAssetIds"][0].as_str().unwrap().to_owned();

    let (status, asset) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/assets/{asset_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (asset["width"].as_i64(), asset["height"].as_i64()),
        (Some(2048), Some(1536))
    );
    // The list holds the output and the input the worker fetched and kept for the job.
    let (_, list) = sandbox.get(&sandbox.alpha, "/api/v1/assets").await;
    let mut roles: Vec<(&str, &str)> = list["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["role"].as_str().unwrap(), a["id"].as_str().unwrap()))
        .collect();
    roles.sort();
    assert_eq!(roles.len(), 2, "{list}");
    assert_eq!(roles[1], ("output", asset_id.as_str()));
    assert_eq!(roles[0].0, "input");

    let download = sandbox
        .http
        .get(sandbox.url(&format!("/api/v1/assets/{asset_id}/download")))
        .header("X-Zhinian-Api-Key", &sandbox.alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    let bytes = download.bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).expect("the output is a real image");
    assert_eq!((image.width(), image.height()), (2048, 1536));
    assert_eq!(bytes.len() as i64, asset["size"].as_i64().unwrap());

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_scale_upscales_by_that_factor() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let input = peer.serve("small.png", File::plain(gradient_png(50, 30)));
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputUrls": [input], "scale": 3}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap();
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            job_id,
            &["succeeded", "failed"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let asset_id = job["outputAssetIds"][0].as_str().unwrap();
    let (_, asset) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/assets/{asset_id}"))
        .await;
    assert_eq!(
        (asset["width"].as_i64(), asset["height"].as_i64()),
        (Some(150), Some(90))
    );
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
