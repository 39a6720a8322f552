//! OpenAI Images through both faces, error classes, unknown outcomes.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_images_through_the_native_and_tasks_faces() {
    let fake = FakeOpenAi::start(OPENAI_KEY).await;
    let mut sandbox = Sandbox::start(openai_settings(&fake)).await;
    sandbox.spawn_routed_worker("image.generate");
    let peer = Peer::start().await;

    // The native face, naming a routed model.
    let body = json!({"capability": "image.generate", "model": "gpt-image-2",
                      "prompt": "a lighthouse at dusk", "width": 1536, "height": 1024,
                      "webhookUrl": peer.hook_url()});
    let (status, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["engine"]["provider"], "openai", "engine shown: {job}");
    assert_eq!(job["engine"]["model"], "gpt-image-2");
    let files = outputs(&sandbox, &job_id).await;
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with(b"\x89PNG"),
        "the provider's PNG is in S3"
    );
    let sent = fake.received();
    assert_eq!(sent[0].fields["model"], "gpt-image-2");
    assert_eq!(sent[0].fields["size"], "1536x1024");
    wait_until("the webhook", Duration::from_secs(30), || async {
        let hooks = peer.for_job(&job_id);
        (!hooks.is_empty()).then_some(hooks)
    })
    .await;

    // An unknown model is refused, naming the models there are.
    let bad = json!({"capability": "image.generate", "model": "dall-e-9", "prompt": "x"});
    let (status, refused) = sandbox.post_job(&sandbox.alpha, &bad, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = refused.to_string();
    assert!(
        message.contains("gpt-image-2") && message.contains("gpt-image-1"),
        "{refused}"
    );

    // The tasks face: model_id resolves through the same table; charged once, kept.
    grant(&sandbox, &sandbox.alpha, 100).await;
    let created = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "gpt-image-2", "prompt": "a serene zen garden", "aspect_ratio": "1:1"}),
    )
    .await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    let task = wait_task(&sandbox, &sandbox.alpha, &task_id).await;
    assert_eq!(task["data"]["task_status"], 3, "{task}");
    assert!(task["data"]["image_url"].is_string(), "{task}");
    assert_eq!(
        balance(&sandbox, &sandbox.alpha).await,
        85,
        "charged, not refunded"
    );
    assert_eq!(fake.received()[1].fields["model"], "gpt-image-2");
    assert_eq!(fake.submits(), 2, "one upstream call per job");

    // The capability lists its models.
    let (_, capabilities) = sandbox.get(&sandbox.alpha, "/api/v1/capabilities").await;
    let image = capabilities["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["capability"] == "image.generate")
        .cloned()
        .unwrap();
    let models: Vec<&str> = image["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"gpt-image-2"), "{image}");
    assert_eq!(image["models"][0]["provider"], "openai");

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_keep_their_class_and_refund() {
    let fake = FakeOpenAi::start(OPENAI_KEY).await;
    let mut sandbox = Sandbox::start(openai_settings(&fake)).await;
    sandbox.spawn_routed_worker("image.generate");
    grant(&sandbox, &sandbox.alpha, 100).await;

    // A content refusal: failed at once, the provider's reason kept, the credits refunded.
    fake.fail_next(Fault::ContentRejected);
    let created = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "gpt-image-2", "prompt": "something refused"}),
    )
    .await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    wait_task(&sandbox, &sandbox.alpha, &task_id).await;
    let (_, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{task_id}"))
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "content_rejected", "{job}");
    assert_eq!(job["attempts"], 1, "a refusal is not retried");
    wait_until("the refund", Duration::from_secs(10), || async {
        (balance(&sandbox, &sandbox.alpha).await == 100).then_some(())
    })
    .await;

    // The operator's account is out of balance: not the partner's fault, not retried.
    fake.fail_next(Fault::InsufficientBalance);
    let body = json!({"capability": "image.generate", "prompt": "a quiet harbour"});
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
    assert_eq!(job["error"]["code"], "provider_unavailable", "{job}");
    assert_eq!(job["attempts"], 1);
    // The capability's default route served the job without a model.
    assert_eq!(job["engine"]["model"], "gpt-image-1", "{job}");
    assert_eq!(fake.submits(), 2);
    // The operator sees it: the outcome the alert AtelierProviderUnavailable watches, the
    // requests by status class, and no slot left taken.
    let exposed = atelier_kit::metrics::metrics().render();
    for sample in [
        r#"atelier_provider_jobs_total{provider="openai",outcome="provider_unavailable"}"#,
        r#"atelier_provider_jobs_total{provider="openai",outcome="content_rejected"}"#,
        r#"atelier_provider_requests_total{provider="openai",status="4xx"}"#,
        r#"atelier_provider_request_duration_seconds_count{provider="openai"}"#,
    ] {
        assert!(exposed.contains(sample), "{sample} in\n{exposed}");
    }

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_submit_answer_fails_without_resending() {
    let fake = FakeOpenAi::start(OPENAI_KEY).await;
    let mut sandbox = Sandbox::start(openai_settings(&fake)).await;
    sandbox.spawn_routed_worker("image.generate");
    grant(&sandbox, &sandbox.alpha, 100).await;
    // The request is read in full, then the connection closes with no answer.
    fake.fail_next(Fault::DropConnection);
    let created = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "gpt-image-2", "prompt": "a paper boat"}),
    )
    .await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    wait_task(&sandbox, &sandbox.alpha, &task_id).await;
    let (_, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{task_id}"))
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "upstream_outcome_unknown", "{job}");
    assert_eq!(job["attempts"], 1, "never resent: {job}");
    assert_eq!(fake.submits(), 1);
    wait_until("the refund", Duration::from_secs(10), || async {
        (balance(&sandbox, &sandbox.alpha).await == 100).then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_call_cut_by_a_stopped_worker_is_not_sent_again() {
    let fake = FakeOpenAi::start(OPENAI_KEY).await;
    // The model answers after the first worker has drained and given up.
    fake.set_latency(Duration::from_secs(8));
    let mut sandbox = Sandbox::start(openai_settings(&fake)).await;
    let first = sandbox.spawn_routed_worker("image.generate");
    grant(&sandbox, &sandbox.alpha, 100).await;
    let created = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "gpt-image-2", "prompt": "a slow sunset"}),
    )
    .await;
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    // The mark is stored before the request leaves; then the request is in flight.
    wait_until("the call to be sent", Duration::from_secs(30), || async {
        (fake.submits() == 1).then_some(())
    })
    .await;
    // The worker waits for the event stream to store the mark; the projector applies it to
    // the job row right after, which a loaded machine can make visible a moment later.
    wait_until(
        "the mark in the job row",
        Duration::from_secs(10),
        || async {
            let submitted: Option<bool> = sqlx::query_scalar(
                "SELECT (upstream->>'submitted')::boolean FROM jobs WHERE id = $1",
            )
            .bind(&task_id)
            .fetch_one(&sandbox.pool)
            .await
            .ok()?;
            (submitted == Some(true)).then_some(())
        },
    )
    .await;
    first.cancel();

    // The next attempt finds the mark without an answer and does not call again.
    sandbox.spawn_routed_worker("image.generate");
    wait_task(&sandbox, &sandbox.alpha, &task_id).await;
    let (_, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{task_id}"))
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "upstream_outcome_unknown", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(fake.submits(), 1, "sent exactly once");
    wait_until("the refund", Duration::from_secs(10), || async {
        (balance(&sandbox, &sandbox.alpha).await == 100).then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
