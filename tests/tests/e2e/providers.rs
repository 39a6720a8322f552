//! Provider engines end to end, against the protocol-faithful fakes: a job that names an
//! upstream model runs through that provider's engine with the same pipeline (S3 outputs,
//! webhooks, credits), errors keep their class, an upstream task outlives the worker that
//! created it (resumed, submitted once), and the deadline cancels the upstream task.

use std::time::Duration;

use atelier_providers::ProvidersConfig;
use atelier_providers::fake::ark::{ArkOutcome, ArkPlan, FakeArk};
use atelier_providers::fake::jimeng::FakeJimeng;
use atelier_providers::fake::openai::FakeOpenAi;
use atelier_providers::fake::{Fault, Step};
use atelier_tests::{
    peer::Peer,
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const OPENAI_KEY: &str = "sk-fake-openai-e2e";
const ARK_KEY: &str = "ark-fake-e2e";
const SEEDANCE: &str = "doubao-seedance-1-0-pro-250528";

fn providers(vars: &[(&str, String)]) -> ProvidersConfig {
    ProvidersConfig::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .expect("providers settings")
}

fn openai_settings(fake: &FakeOpenAi) -> Settings {
    Settings {
        upscale_worker: false,
        providers: Some(providers(&[
            ("ATELIER_OPENAI_API_KEY", OPENAI_KEY.to_owned()),
            ("ATELIER_OPENAI_BASE_URL", fake.base_url()),
            (
                "ATELIER_ROUTES",
                "image.generate=openai:gpt-image-1,image.generate:gpt-image-2=openai:gpt-image-2"
                    .to_owned(),
            ),
        ])),
        ..Settings::default()
    }
}

fn ark_settings(fake: &FakeArk, run_timeout: Duration) -> Settings {
    Settings {
        upscale_worker: false,
        run_timeout,
        providers: Some(providers(&[
            ("ATELIER_ARK_API_KEY", ARK_KEY.to_owned()),
            ("ATELIER_ARK_BASE_URL", fake.base_url()),
            ("ATELIER_ROUTES", format!("video.generate=ark:{SEEDANCE}")),
        ])),
        ..Settings::default()
    }
}

async fn grant(sandbox: &Sandbox, client: &Client, amount: i64) {
    atelier_api::credits::grant(&sandbox.pool, client.id, amount, "test")
        .await
        .expect("granting credits");
}

async fn balance(sandbox: &Sandbox, client: &Client) -> i64 {
    let (status, credits) = sandbox.get(client, "/api/v1/credits").await;
    assert_eq!(status, StatusCode::OK);
    credits["balance"].as_i64().unwrap()
}

async fn create_task(sandbox: &Sandbox, client: &Client, body: &Value) -> Value {
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/tasks/create"))
        .bearer_auth(&client.key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["code"], 200, "{created}");
    created
}

async fn wait_task(sandbox: &Sandbox, client: &Client, task_id: &str) -> Value {
    wait_until("the task to end", Duration::from_secs(60), || async {
        let (_, task) = sandbox
            .get(client, &format!("/api/v1/tasks/{task_id}"))
            .await;
        let status = task["data"]["task_status"].as_i64().unwrap_or(0);
        (status >= 3).then_some(task)
    })
    .await
}

/// The job's output objects in the bucket, read back.
async fn outputs(sandbox: &Sandbox, job_id: &str) -> Vec<Vec<u8>> {
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT s3_key FROM assets WHERE job_id = $1 AND role = 'output' ORDER BY position",
    )
    .bind(job_id)
    .fetch_all(&sandbox.pool)
    .await
    .unwrap();
    let mut files = Vec::new();
    for key in keys {
        files.push(sandbox.read_object(&key).await);
    }
    files
}

async fn upstream_task(sandbox: &Sandbox, job_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT upstream->>'taskId' FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(&sandbox.pool)
        .await
        .unwrap()
}

/// What the Ark fake says about a task, read like a client would.
async fn ark_status(fake: &FakeArk, task_id: &str) -> String {
    let task: Value = reqwest::Client::new()
        .get(format!(
            "{}/contents/generations/tasks/{task_id}",
            fake.base_url()
        ))
        .bearer_auth(ARK_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    task["status"].as_str().unwrap_or_default().to_owned()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jimeng_images_are_submitted_signed_and_polled() {
    let fake = FakeJimeng::start("AKfake", "SKfake").await;
    let mut sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        providers: Some(providers(&[
            ("ATELIER_JIMENG_ACCESS_KEY", "AKfake".to_owned()),
            ("ATELIER_JIMENG_SECRET_KEY", "SKfake".to_owned()),
            ("ATELIER_JIMENG_BASE_URL", fake.base_url()),
            (
                "ATELIER_ROUTES",
                "image.generate:jimeng-4=jimeng:jimeng_t2i_v40".to_owned(),
            ),
        ])),
        ..Settings::default()
    })
    .await;
    sandbox.spawn_routed_worker("image.generate");
    let body = json!({"capability": "image.generate", "model": "jimeng-4",
                      "prompt": "an ink painting of a crane", "scale": 50});
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
    assert_eq!(job["engine"]["provider"], "jimeng");
    let task_id = upstream_task(&sandbox, &job_id)
        .await
        .expect("task recorded");
    let sent = fake.task_body(&task_id).expect("the task");
    assert_eq!(sent["scale"], 0.5, "{sent}");
    assert_eq!(sent["force_single"], true);
    assert_eq!(fake.submits(), 1);
    assert_eq!(fake.signature_failures(), 0);
    assert!(outputs(&sandbox, &job_id).await[0].starts_with(b"\x89PNG"));
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
    let submitted: Option<bool> =
        sqlx::query_scalar("SELECT (upstream->>'submitted')::boolean FROM jobs WHERE id = $1")
            .bind(&task_id)
            .fetch_one(&sandbox.pool)
            .await
            .unwrap();
    assert_eq!(submitted, Some(true));
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
