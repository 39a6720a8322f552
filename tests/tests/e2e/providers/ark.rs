//! Ark Seedance: resumed after a stopped worker, deadline and partner cancel upstream, the tasks face.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_workers_upstream_video_task_is_resumed_not_resubmitted() {
    let fake = FakeArk::start(ARK_KEY).await;
    // Long enough that the first worker is gone (drained, then abandoned) before it ends.
    fake.push_plan(ArkPlan {
        queued: Step::For(Duration::from_secs(1)),
        running: Step::For(Duration::from_secs(10)),
        outcome: ArkOutcome::Succeed,
    });
    let mut sandbox = Sandbox::start(ark_settings(&fake, Duration::from_secs(120))).await;
    let first = sandbox.spawn_routed_worker("video.generate");
    let body = json!({"capability": "video.generate", "prompt": "waves on a pebble beach",
                      "settings": {"ratio": "16:9", "duration": 5, "resolution": "720p"}});
    let (status, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();

    // The task id is in PostgreSQL as soon as the provider returned it.
    let task_id = wait_until("the upstream task id", Duration::from_secs(30), || async {
        upstream_task(&sandbox, &job_id).await
    })
    .await;
    first.cancel();

    // A new worker resumes the recorded task once the first one's lease went stale.
    sandbox.spawn_routed_worker("video.generate");
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(90),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["attempts"].as_i64().unwrap() >= 2,
        "resumed by a later attempt: {job}"
    );
    assert_eq!(
        fake.submits(),
        1,
        "the upstream task was created exactly once"
    );
    assert_eq!(
        upstream_task(&sandbox, &job_id).await.as_deref(),
        Some(task_id.as_str())
    );
    assert_eq!(job["engine"]["provider"], "ark");
    assert_eq!(job["engine"]["model"], SEEDANCE);
    let files = outputs(&sandbox, &job_id).await;
    assert_eq!(files.len(), 1);
    assert_eq!(&files[0][4..8], b"ftyp", "the provider's MP4 is in S3");

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_cancels_the_upstream_task_and_times_out() {
    let fake = FakeArk::start(ARK_KEY).await;
    fake.push_plan(ArkPlan {
        queued: Step::For(Duration::from_secs(300)),
        running: Step::For(Duration::from_secs(1)),
        outcome: ArkOutcome::Succeed,
    });
    let mut sandbox = Sandbox::start(ark_settings(&fake, Duration::from_secs(10))).await;
    sandbox.spawn_routed_worker("video.generate");
    let body = json!({"capability": "video.generate", "prompt": "a slow sunrise"});
    let (_, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "timed_out", "{job}");
    let task_id = upstream_task(&sandbox, &job_id)
        .await
        .expect("task recorded");
    assert_eq!(ark_status(&fake, &task_id).await, "cancelled");
    assert_eq!(fake.submits(), 1);

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_cancel_cancels_the_upstream_task() {
    let fake = FakeArk::start(ARK_KEY).await;
    fake.push_plan(ArkPlan {
        queued: Step::For(Duration::from_secs(300)),
        running: Step::For(Duration::from_secs(1)),
        outcome: ArkOutcome::Succeed,
    });
    let mut sandbox = Sandbox::start(ark_settings(&fake, Duration::from_secs(120))).await;
    sandbox.spawn_routed_worker("video.generate");
    let body = json!({"capability": "video.generate", "prompt": "a slow sunrise"});
    let (_, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let task_id = wait_until("the upstream task", Duration::from_secs(30), || {
        let (sandbox, job_id) = (&sandbox, &job_id);
        async move { upstream_task(sandbox, job_id).await }
    })
    .await;
    let response = sandbox
        .http
        .post(sandbox.url(&format!("/api/v1/jobs/{job_id}/cancel")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    // Ark is told: the queued task is cancelled upstream, not left to run and bill.
    wait_until("the upstream cancel", Duration::from_secs(10), || {
        let (fake, task_id) = (&fake, &task_id);
        async move { (ark_status(fake, task_id).await == "cancelled").then_some(()) }
    })
    .await;
    let (_, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{job_id}"))
        .await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(fake.submits(), 1);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seedance_through_the_tasks_face_is_charged_once() {
    let fake = FakeArk::start(ARK_KEY).await;
    let mut sandbox = Sandbox::start(ark_settings(&fake, Duration::from_secs(120))).await;
    sandbox.spawn_routed_worker("video.generate");
    grant(&sandbox, &sandbox.alpha, 100).await;
    let created = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "seedance-2", "prompt": "a kite over the dunes",
                "aspect_ratio": "9:16", "duration": 4, "resolution": "480p"}),
    )
    .await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    let charged = created["data"]["credits"].as_i64().unwrap();
    assert_eq!(charged, 8, "480p at 2 credits a second, 4 s");
    let task = wait_task(&sandbox, &sandbox.alpha, &task_id).await;
    assert_eq!(task["data"]["task_status"], 3, "{task}");
    assert!(task["data"]["video_url"].is_string(), "{task}");
    assert_eq!(balance(&sandbox, &sandbox.alpha).await, 100 - charged);
    // `seedance-2` has no route of its own: the capability's route, with the task's settings.
    let task_id_upstream = upstream_task(&sandbox, &task_id).await.unwrap();
    let sent = fake.task_body(&task_id_upstream).unwrap();
    assert_eq!(sent["model"], SEEDANCE);
    assert_eq!(sent["ratio"], "9:16");
    assert_eq!(sent["duration"], 4);
    assert_eq!(sent["resolution"], "480p");
    // Ark stops the task at our deadline, within its accepted range (at least an hour).
    assert_eq!(sent["execution_expires_after"], 3600);
    assert_eq!(fake.submits(), 1);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
