//! Cancel on every face: a queued job ends at once with its credits back and a signed
//! `generation.cancelled` webhook; a running video stops (its worker is free for the next job
//! within seconds and its uploads are gone); cancelling again answers the same; a job that
//! already ended is a 409 with the state that won, nothing refunded.

use std::time::Duration;

use atelier_tests::{
    peer::Peer,
    sandbox::{Client, Sandbox, Settings},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(sandbox: &Sandbox, client: &Client, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = sandbox
        .http
        .post(sandbox.url(path))
        .bearer_auth(&client.key)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn balance(sandbox: &Sandbox, client: &Client) -> i64 {
    let (_, credits) = sandbox.get(client, "/api/v1/credits").await;
    credits["balance"].as_i64().unwrap()
}

/// `-video_size WxH` of the clip the job's settings ask for, as the video engine passes it.
fn ffmpeg_size(job: &Value) -> String {
    let settings = &job["params"]["settings"];
    let (ratio, resolution) = (
        settings["ratio"].as_str().unwrap(),
        settings["resolution"].as_str().unwrap(),
    );
    let config = atelier_video::settings::ClipSettings::from_params(&json!({"settings": {
        "ratio": ratio, "resolution": resolution, "duration": 4}}))
    .expect("clip settings");
    let (width, height) = config.dimensions(None);
    format!("{width}x{height}")
}

/// Whether an ffmpeg encoding frames of `size` is in the process table.
fn ffmpeg_running(size: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"ffmpeg")) && args.contains(&size.as_bytes())
    })
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_on_the_native_and_tasks_faces() {
    // No workers: every job stays queued.
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let (alpha, beta) = (sandbox.alpha.clone(), sandbox.beta.clone());
    let peer = Peer::start().await;
    let body = json!({"capability": "image.generate", "prompt": "a quiet harbour",
                      "webhookUrl": peer.hook_url()});
    let (status, created) = sandbox.post_job(&alpha, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/jobs/{job_id}/cancel");

    assert_eq!(
        post(&sandbox, &beta, &path, &json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, cancelled) = post(&sandbox, &alpha, &path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["job"]["status"], "cancelled");
    assert_eq!(cancelled["job"]["billing"]["outcome"], "free");
    let (status, again) = post(&sandbox, &alpha, &path, &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["job"]["status"], "cancelled");
    assert_eq!(again["reused"], true);
    // One signed webhook for the one terminal transition.
    let hooks = atelier_tests::wait_until("the cancelled webhook", Duration::from_secs(30), || {
        let received = peer.for_job(&job_id);
        async move { (!received.is_empty()).then_some(received) }
    })
    .await;
    assert_eq!(hooks[0].json()["event"], "generation.cancelled");
    assert!(!hooks[0].header("webhook-signature").is_empty());

    // The tasks face: charged at accept, refunded in full by the cancel, once.
    atelier_api::credits::grant(&sandbox.pool, alpha.id, 100, "test")
        .await
        .unwrap();
    let (_, task) = post(
        &sandbox,
        &alpha,
        "/api/v1/tasks/create",
        &json!({"model_id": "gpt-image-2", "prompt": "a lighthouse"}),
    )
    .await;
    let task_id = task["data"]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&sandbox, &alpha).await, 85);
    for _ in 0..2 {
        let (status, answer) = post(
            &sandbox,
            &alpha,
            &format!("/api/v1/tasks/{task_id}/cancel"),
            &json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["code"], 200);
        assert_eq!(answer["data"]["task_status"], 4);
        let billing = &answer["data"]["billing"];
        assert_eq!(
            (billing["charged"].as_i64(), billing["refunded"].as_i64()),
            (Some(15), Some(15))
        );
        assert_eq!(billing["outcome"], "refunded_in_full");
        assert_eq!(billing["reason"], "cancelled");
    }
    assert_eq!(balance(&sandbox, &alpha).await, 100);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test]
async fn a_running_video_stops_and_a_finished_job_cannot_be_cancelled() {
    let sandbox = Sandbox::start(Settings {
        engines: true,
        ..Settings::default()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    atelier_api::credits::grant(&sandbox.pool, alpha.id, 100, "test")
        .await
        .unwrap();
    // The longest clip the api accepts, through the tasks face (charged 5 × 15 credits): long
    // enough to be caught running. Its frame size is this scenario's alone.
    let long = json!({"model_id": "seedance-2", "prompt": "a slow sunrise over hills",
                      "aspect_ratio": "21:9", "duration": 15, "resolution": "1080p"});
    let (_, task) = post(&sandbox, &alpha, "/api/v1/tasks/create", &long).await;
    let job_id = task["data"]["task_id"].as_str().expect("a task").to_owned();
    assert_eq!(balance(&sandbox, &alpha).await, 25);
    atelier_tests::wait_until("the video to be encoding", Duration::from_secs(60), || {
        let (sandbox, alpha, job_id) = (&sandbox, &alpha, &job_id);
        async move {
            let (_, job) = sandbox.get(alpha, &format!("/api/v1/jobs/{job_id}")).await;
            (job["status"] == "running" && job["progress"]["percent"].as_i64() > Some(15))
                .then_some(())
        }
    })
    .await;
    let (status, cancelled) = post(
        &sandbox,
        &alpha,
        &format!("/api/v1/jobs/{job_id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["job"]["status"], "cancelled");
    assert_eq!(cancelled["job"]["billing"]["refunded"], 75);
    assert_eq!(
        balance(&sandbox, &alpha).await,
        100,
        "refunded once, in full"
    );
    let size = ffmpeg_size(&cancelled["job"]);
    atelier_tests::wait_until("its ffmpeg to be gone", Duration::from_secs(2), || {
        let running = ffmpeg_running(&size);
        async move { (!running).then_some(()) }
    })
    .await;

    // The one video slot is free again: a short clip runs to the end.
    let short = json!({"capability": "video.generate", "prompt": "a blink",
                       "settings": {"duration": 4, "resolution": "480p"}});
    let (_, next) = sandbox.post_job(&alpha, &short, None).await;
    let next_id = next["job"]["id"].as_str().unwrap().to_owned();
    let done = sandbox
        .wait_for_job(
            &alpha,
            &next_id,
            &["succeeded", "failed"],
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The cancelled job stayed cancelled and left nothing in the bucket.
    let (_, job) = sandbox.get(&alpha, &format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["outputAssetIds"], json!([]));
    let listed = sandbox
        .storage
        .client
        .list_objects_v2()
        .bucket(&sandbox.storage.bucket)
        .prefix(format!("outputs/{}/{job_id}/", alpha.id))
        .send()
        .await
        .unwrap();
    assert!(
        listed.contents.unwrap_or_default().is_empty(),
        "a cancelled attempt's uploads remain"
    );

    // Too late: the finished job says how it ended, and nothing changes.
    let (status, refused) = post(
        &sandbox,
        &alpha,
        &format!("/api/v1/jobs/{next_id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["status"], "succeeded");
    assert_eq!(refused["job"]["billing"]["refunded"], 0);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test]
async fn cancels_racing_completions_end_each_job_once() {
    let sandbox = Sandbox::start(Settings {
        engines: true,
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    atelier_api::credits::grant(&sandbox.pool, alpha.id, 100 * 15, "test")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let (_, task) = post(
            &sandbox,
            &alpha,
            "/api/v1/tasks/create",
            &json!({"model_id": "gpt-image-2", "prompt": format!("race {i}")}),
        )
        .await;
        tasks.push(task["data"]["task_id"].as_str().expect("a task").to_owned());
    }
    // Each cancel after its own delay, all at once: queued, running and finished jobs all get
    // one, and some cancels land while the worker is finishing.
    let cancels = tasks.iter().enumerate().map(|(i, task_id)| {
        let (sandbox, alpha) = (&sandbox, &alpha);
        async move {
            tokio::time::sleep(Duration::from_millis(i as u64 % 20 * 80)).await;
            let path = format!("/api/v1/tasks/{task_id}/cancel");
            let (status, answer) = post(sandbox, alpha, &path, &json!({})).await;
            (task_id.clone(), status, answer)
        }
    });
    let answers = futures::future::join_all(cancels).await;
    let mut cancelled = 0;
    for (task_id, status, answer) in &answers {
        let done = sandbox
            .wait_for_job(
                &alpha,
                task_id,
                &["succeeded", "cancelled"],
                Duration::from_secs(120),
            )
            .await;
        // The answer said which terminal state won, and it is the one that stayed.
        match status.as_u16() {
            200 => {
                assert_eq!(done["status"], "cancelled", "{answer}");
                cancelled += 1;
            }
            409 => assert_eq!(done["status"], "succeeded", "{answer}"),
            other => panic!("cancel answered {other}: {answer}"),
        }
    }
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE kind = 'refund' AND client_id = 'alpha'",
    )
    .fetch_one(&sandbox.pool)
    .await
    .unwrap();
    assert_eq!(
        refunds, cancelled,
        "one refund per cancelled job, none for the others"
    );
    assert_eq!(balance(&sandbox, &alpha).await, 15 * cancelled);
    assert!(
        cancelled > 0 && cancelled < 100,
        "both outcomes happened: {cancelled} cancelled"
    );
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
