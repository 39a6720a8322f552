//! Killing the platform (SIGKILL, the real binary) with a job in flight loses nothing:
//! after a restart the job reaches a terminal state once and its webhook arrives once.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    process::{free_port, start},
    sandbox::{Sandbox, Settings},
    wait_until,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_platform_finishes_its_job_exactly_once_after_restart() {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    let peer = Peer::start().await;
    // The input answers slowly, so the job is still running when the platform dies.
    let slow = File {
        delay: Duration::from_secs(3),
        ..File::plain(gradient_png(64, 64))
    };
    let input = peer.serve("slow.png", slow);

    let body = json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k",
                      "webhookUrl": peer.hook_url()});
    let mut platform = start(&sandbox, "all", port).await;
    let (_, created) = sandbox
        .post_job(&sandbox.alpha, &body, Some("restart-1"))
        .await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["running"],
            Duration::from_secs(30),
        )
        .await;
    platform.kill().await.expect("SIGKILL");
    platform.wait().await.ok();

    let mut platform = start(&sandbox, "all", port).await;
    // A client retrying with its Idempotency-Key gets the same job.
    let (_, retried) = sandbox
        .post_job(&sandbox.alpha, &body, Some("restart-1"))
        .await;
    assert_eq!(retried["job"]["id"], job_id.as_str());
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["attempts"].as_i64().unwrap() >= 2,
        "the killed attempt was retried: {job}"
    );
    wait_until("the webhook", Duration::from_secs(30), || async {
        (!peer.for_job(&job_id).is_empty()).then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    assert_eq!(peer.for_job(&job_id).len(), 1, "exactly one webhook");
    platform.kill().await.ok();
    sandbox.teardown().await;
}
