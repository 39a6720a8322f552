//! Fair share between clients when workers are the bottleneck (issue #16): a per-client
//! concurrency cap holds under a burst, and a second client's job is dispatched ahead of the
//! first client's backlog. Both read the truth from the database while the work runs.

use std::time::Duration;

use atelier_api::limits::{ClientLimits, Limits};
use atelier_tests::{
    gradient_png,
    roles::ApiReplica,
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile};
use reqwest::StatusCode;
use serde_json::json;

/// An `image.generate` engine that takes a fixed time per job, so that workers are the
/// bottleneck and a backlog builds up.
struct Paced(Duration);

impl Engine for Paced {
    fn capability(&self) -> &'static str {
        "image.generate"
    }

    async fn run(
        &self,
        _job: JobContext,
        _inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        tokio::time::sleep(self.0).await;
        Ok(vec![OutputFile {
            bytes: gradient_png(4, 4),
            content_type: "image/png".to_owned(),
            extension: "png".to_owned(),
            width: 4,
            height: 4,
        }])
    }
}

/// Creates `count` jobs for `client`, through each of `apis` (base URLs) in turn.
async fn submit(sandbox: &Sandbox, apis: &[&str], client: &Client, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = json!({"capability": "image.generate", "prompt": format!("job {n}"),
                          "width": 64, "height": 64});
        let response = sandbox
            .http
            .post(format!("{}/api/v1/jobs", apis[n % apis.len()]))
            .bearer_auth(&client.key)
            .json(&body)
            .send()
            .await
            .expect("creating a job");
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: serde_json::Value = response.json().await.expect("the created job");
        ids.push(created["job"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// `(queued, running)` jobs of a client.
async fn counts(sandbox: &Sandbox, client: &Client) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running')
         FROM jobs WHERE client_id = $1",
    )
    .bind(client.id)
    .fetch_one(&sandbox.pool)
    .await
    .unwrap()
}

async fn wait_all_succeeded(sandbox: &Sandbox, client: &Client, ids: &[String]) {
    for id in ids {
        let job = sandbox
            .wait_for_job(
                client,
                id,
                &["succeeded", "failed"],
                Duration::from_secs(120),
            )
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

/// alpha may run 2 image.generate jobs at once; three workers offer 6 slots, and two api
/// replicas release dispatches. A burst of 16 jobs through both: never more than 2 of
/// alpha's running (sampled from the database throughout), the cap reached, every job
/// succeeds (the rest waited queued, none was refused), and no dispatch was written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_holds_under_a_burst() {
    let mut sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        limits: Limits::parse(ClientLimits::default(), "alpha:running=2").unwrap(),
        ..Settings::default()
    })
    .await;
    let replica = ApiReplica::start(sandbox.api_config()).await;
    for _ in 0..3 {
        sandbox.spawn_worker_now(Paced(Duration::from_millis(200)));
    }
    let alpha = sandbox.alpha.clone();
    let apis = [sandbox.base.as_str(), replica.base.as_str()];
    let ids = submit(&sandbox, &apis, &alpha, 16).await;
    let mut most = 0;
    let mut samples = 0;
    loop {
        let (queued, running) = counts(&sandbox, &alpha).await;
        most = most.max(running);
        samples += 1;
        assert!(
            running <= 2,
            "{running} of alpha's jobs running at once (cap 2)"
        );
        if queued == 0 && running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("fairness: cap 2, most running at once {most} over {samples} samples");
    assert_eq!(most, 2, "the cap was never reached");
    wait_all_succeeded(&sandbox, &alpha, &ids).await;
    sandbox.check_invariants().await;
    replica.stop().await;
    sandbox.teardown().await;
}

/// One worker (2 slots): alpha submits 40 jobs of 150 ms; once they run, beta submits one.
/// With the work stream first in, first out, beta's job would wait behind alpha's whole
/// backlog (about 3 s). The dispatcher releases it at the next free place instead: when it
/// starts, most of alpha's backlog is still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_clients_job_goes_ahead_of_the_first_clients_backlog() {
    let mut sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        dispatch_ahead: 2,
        ..Settings::default()
    })
    .await;
    sandbox.spawn_worker_now(Paced(Duration::from_millis(150)));
    let (alpha, beta) = (sandbox.alpha.clone(), sandbox.beta.clone());
    let api = [sandbox.base.as_str()];
    let backlog = submit(&sandbox, &api, &alpha, 40).await;
    wait_until("alpha's jobs to run", Duration::from_secs(30), || async {
        (counts(&sandbox, &alpha).await.1 > 0).then_some(())
    })
    .await;
    let ahead = submit(&sandbox, &api, &beta, 1).await;
    let job = sandbox
        .wait_for_job(
            &beta,
            &ahead[0],
            &["running", "succeeded"],
            Duration::from_secs(60),
        )
        .await;
    let (alpha_waiting, _) = counts(&sandbox, &alpha).await;
    let waited: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM started_at - created_at)::float8 FROM jobs WHERE id = $1",
    )
    .bind(&ahead[0])
    .fetch_one(&sandbox.pool)
    .await
    .unwrap();
    println!(
        "fairness: beta's job {} after {waited:.2} s, with {alpha_waiting} of alpha's 40 still queued",
        job["status"]
    );
    assert!(
        alpha_waiting >= 25,
        "beta's job waited for alpha's backlog: only {alpha_waiting} of alpha's jobs were left"
    );
    wait_all_succeeded(&sandbox, &alpha, &backlog).await;
    wait_all_succeeded(&sandbox, &beta, &ahead).await;
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
