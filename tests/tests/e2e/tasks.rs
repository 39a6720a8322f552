//! The tasks API (seed 001) and its credits: the document's requests verbatim, charges in
//! the accepting transaction, refunds exactly once, and a balance that survives kills.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    process::{free_port, start},
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

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

async fn create_task(
    sandbox: &Sandbox,
    client: &Client,
    body: &Value,
) -> (StatusCode, String, Value) {
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/tasks/create"))
        .header("Authorization", format!("Bearer {}", client.key))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, request_id, response.json().await.unwrap())
}

/// Every job's ledger holds one charge and, when it did not succeed, exactly one refund;
/// every balance equals the sum of its ledger (I7).
async fn check_ledger(sandbox: &Sandbox) {
    let bad: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT j.id, j.status,
                count(*) FILTER (WHERE l.kind = 'charge'),
                count(*) FILTER (WHERE l.kind = 'refund')
         FROM jobs j LEFT JOIN credit_ledger l ON l.job_id = j.id
         WHERE j.credits > 0 GROUP BY j.id, j.status
         HAVING count(*) FILTER (WHERE l.kind = 'charge') <> 1
             OR count(*) FILTER (WHERE l.kind = 'refund')
                <> CASE WHEN j.status = 'succeeded' THEN 0 ELSE 1 END",
    )
    .fetch_all(&sandbox.pool)
    .await
    .unwrap();
    assert!(bad.is_empty(), "I7: jobs with a wrong ledger: {bad:?}");
    let unbalanced: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT a.client_id, a.balance, (SELECT sum(amount)::bigint FROM credit_ledger l
                                         WHERE l.client_id = a.client_id)
         FROM credit_accounts a",
    )
    .fetch_all(&sandbox.pool)
    .await
    .unwrap();
    for (client, balance, sum) in unbalanced {
        assert_eq!(
            balance, sum,
            "I7: {client}'s balance is not the sum of its ledger"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_requests_work_and_credits_are_charged_then_refunded_once() {
    let sandbox = Sandbox::start(Settings {
        job_ttl: Duration::from_secs(2),
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    grant(&sandbox, &sandbox.alpha, 100).await;

    // The document's create request, verbatim.
    let body = json!({"model_id": "gpt-image-2", "prompt": "a serene zen garden at sunrise", "aspect_ratio": "16:9"});
    let (status, request_id, created) = create_task(&sandbox, &sandbox.alpha, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["code"], 200, "{created}");
    assert_eq!(created["msg"], "提交成功,等待生成");
    assert_eq!(created["data"]["credits"], 15);
    assert_eq!(created["data"]["request_id"], request_id.as_str());
    let task_id = created["data"]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&sandbox, &sandbox.alpha).await, 85);

    // The document's query request, verbatim; every documented field is there.
    let (status, queried) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/tasks/{task_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (queried["code"].clone(), queried["msg"].clone()),
        (json!(200), json!("ok"))
    );
    let data = &queried["data"];
    assert_eq!(data["task_id"], task_id.as_str());
    assert_eq!(data["task_status"], 1);
    assert_eq!(data["task_type"], "image");
    assert_eq!(data["model_id"], "gpt-image-2");
    for field in ["image_url", "video_url", "audio_url"] {
        assert!(data[field].is_null(), "{field} before any output");
    }
    assert_eq!(data["credits"], 15);
    assert!(data["created_at"].as_i64().unwrap() > 1_700_000_000);

    // The task is a native job too, showing its credits and request id.
    let (_, job) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/jobs/{task_id}"))
        .await;
    assert_eq!(job["credits"], 15);
    assert_eq!(job["modelId"], "gpt-image-2");
    assert_eq!(job["requestId"], request_id.as_str());

    // No image.generate engine runs here: the task expires and is refunded, once.
    wait_until("the task to fail", Duration::from_secs(30), || async {
        let (_, task) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/tasks/{task_id}"))
            .await;
        (task["data"]["task_status"] == 4).then_some(())
    })
    .await;
    assert_eq!(balance(&sandbox, &sandbox.alpha).await, 100);

    // Too few credits: code 0, nothing created, balance unchanged.
    let (status, _, refused) = create_task(
        &sandbox,
        &sandbox.beta,
        &json!({"model_id": "nano-banana-2", "prompt": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refused["code"], 0);
    assert!(
        refused["msg"]
            .as_str()
            .unwrap()
            .contains("insufficient credits"),
        "{refused}"
    );
    assert_eq!(balance(&sandbox, &sandbox.beta).await, 0);
    let (_, jobs) = sandbox.get(&sandbox.beta, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));

    // Business failures and authentication.
    let (_, _, unknown) = create_task(
        &sandbox,
        &sandbox.alpha,
        &json!({"model_id": "dall-e-9", "prompt": "x"}),
    )
    .await;
    assert_eq!(unknown["code"], 0);
    assert!(unknown["msg"].as_str().unwrap().starts_with("model_id"));
    let anonymous = sandbox
        .http
        .post(sandbox.url("/api/v1/tasks/create"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, missing) = sandbox
        .get(&sandbox.beta, &format!("/api/v1/tasks/{task_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], 0);

    check_ledger(&sandbox).await;
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_hold_across_a_killed_platform_with_tasks_that_succeed_and_fail() {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    let peer = Peer::start().await;
    let good = peer.serve(
        "good.png",
        File {
            delay: Duration::from_millis(300),
            ..File::plain(gradient_png(24, 24))
        },
    );
    let bad = peer.serve("bad.png", File::plain(b"not an image".to_vec()));
    let start_balance = 10_000;
    // The platform migrates the database, so credits are granted once it runs.
    let mut platform = start(&sandbox, "all", port).await;
    grant(&sandbox, &sandbox.alpha, start_balance).await;
    let mut tasks = Vec::new();
    for i in 0..210 {
        let url = if i % 3 == 0 { &bad } else { &good };
        let body = json!({"model_id": "upscaler", "image_urls": [url]});
        let (_, _, created) = create_task(&sandbox, &sandbox.alpha, &body).await;
        assert_eq!(created["code"], 200, "{created}");
        tasks.push(created["data"]["task_id"].as_str().unwrap().to_owned());
        if i == 70 || i == 140 {
            platform.kill().await.expect("SIGKILL");
            platform.wait().await.ok();
            platform = start(&sandbox, "all", port).await;
        }
    }
    wait_until("every task to end", Duration::from_secs(300), || async {
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_one(&sandbox.pool)
                .await
                .ok()?;
        (active == 0).then_some(())
    })
    .await;
    // Read back through the tasks API, as a partner would.
    let mut statuses = Vec::new();
    for id in &tasks {
        let (_, task) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/tasks/{id}"))
            .await;
        statuses.push(task["data"]["task_status"] == 3);
    }
    let succeeded = statuses.iter().filter(|s| **s).count() as i64;
    assert_eq!(succeeded, 140, "the good inputs succeed, the bad ones fail");
    let (_, task) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/tasks/{}", tasks[1]))
        .await;
    assert!(
        task["data"]["image_url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature")
    );
    assert_eq!(
        balance(&sandbox, &sandbox.alpha).await,
        start_balance - 7 * succeeded
    );
    check_ledger(&sandbox).await;
    sandbox.check_invariants().await;
    platform.kill().await.ok();
    sandbox.teardown().await;
}
