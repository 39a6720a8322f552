//! A failure mid-pipeline is refunded once; a queued creation can be cancelled.

use atelier_tests::sandbox::{Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::json;

use super::{balance, call, grant, poll, seed_body, slides_settings};

#[tokio::test]
async fn a_failure_mid_pipeline_refunds_once() {
    let sandbox = Sandbox::start(Settings {
        max_attempts: 2,
        slides: Some(atelier_slides::SlidesConfig {
            // ffmpeg "runs" and fails: outline, slides and narration happen, assembly fails.
            ffmpeg: "false".into(),
            ..atelier_slides::SlidesConfig::default()
        }),
        ..slides_settings()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let body =
        json!({"type": "slides_video", "prompt": "Tides", "language": "en", "scene_count": 2});
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(balance(&sandbox, &alpha).await, 80);
    let job_id = created["job"]["job_id"].as_str().unwrap().to_owned();
    let job = poll(&sandbox, &alpha, &job_id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "encode_failed");
    assert_eq!(job["attempt"], 2, "retried, as an environment failure");
    // Only assembly runs ffmpeg: the outline, the slides and the narration were done.
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("assembling the video failed")
    );
    assert_eq!(balance(&sandbox, &alpha).await, 100, "refunded");
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE job_id = $1 AND kind = 'refund'",
    )
    .bind(&job_id)
    .fetch_one(&sandbox.pool)
    .await
    .unwrap();
    assert_eq!(refunds, 1);
    sandbox.teardown().await;
}

#[tokio::test]
async fn a_queued_creation_can_be_cancelled_and_is_refunded() {
    // No slides worker: the creation stays queued.
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&seed_body())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&sandbox, &alpha).await, 40);
    for _ in 0..2 {
        let (status, job) = call(
            &sandbox,
            &alpha,
            "POST",
            &format!("/creations/jobs/{job_id}/cancel"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert_eq!(job["status"], "cancelled");
    }
    assert_eq!(balance(&sandbox, &alpha).await, 100);
    let (status, _) = call(
        &sandbox,
        &sandbox.beta,
        "POST",
        &format!("/creations/jobs/{job_id}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sandbox.teardown().await;
}
