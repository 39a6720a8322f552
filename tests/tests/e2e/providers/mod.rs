//! Provider engines end to end, against the protocol-faithful fakes: a job that names an
//! upstream model runs through that provider's engine with the same pipeline (S3 outputs,
//! webhooks, credits), errors keep their class, an upstream task outlives the worker that
//! created it (resumed, submitted once), and the deadline cancels the upstream task.
//! One file per provider: `openai`, `ark` (Seedance video and its resume, deadline and
//! cancel), `jimeng`; the fakes' set-up and the shared reads are here.

mod ark;
mod jimeng;
mod openai;

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
