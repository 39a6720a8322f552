//! Claims and the reconciler (M2, M3, L6): a lease is only ever held by a worker that knows
//! it, a retry's back-off is kept, and a result that reached the api is never discarded
//! because the projector had not applied it yet.

use std::time::{Duration, Instant};

use atelier_kit::nats::Names;
use atelier_proto::{
    Message,
    jobs::v1::{
        ClaimReply, ClaimRequest, JobEvent, JobSpec, Progress, Released, claim_reply,
        job_event::Kind,
    },
};
use atelier_tests::{
    gradient_png,
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

async fn upload_png(sandbox: &Sandbox, client: &Client) -> String {
    let part = multipart::Part::bytes(gradient_png(32, 24))
        .file_name("input.png")
        .mime_str("image/png")
        .unwrap();
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&client.key)
        .multipart(multipart::Form::new().part("files", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["assets"][0]["id"].as_str().unwrap().to_owned()
}

async fn upscale_job(sandbox: &Sandbox) -> String {
    let asset = upload_png(sandbox, &sandbox.alpha).await;
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputAssetIds": [asset], "scale": 2}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["job"]["id"].as_str().unwrap().to_owned()
}

/// The job's row as the database has it: status, current step, attempt.
async fn row(sandbox: &Sandbox, job_id: &str) -> (String, String, i32) {
    sqlx::query_as("SELECT status, coalesce(current_step, ''), attempt FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(&sandbox.pool)
        .await
        .unwrap()
}

/// Lock waits in the sandbox's own database.
async fn lock_waits(sandbox: &Sandbox) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE NOT l.granted AND d.datname = current_database()",
    )
    .fetch_one(&sandbox.pool)
    .await
    .unwrap()
}

/// The review's M2 sequence with a real worker: the claim commits, its reply cannot be sent
/// in time (here: the inputs cannot be read while another transaction locks `assets`), the
/// worker's claim times out. Before: the worker handed its message back, the redelivery was
/// refused ("leased by another worker") and dropped, and the job sat `running` under a lease
/// nobody held until the reconciler gave up on it — with one attempt allowed, `worker_lost`
/// without ever having run. After: the worker asks again for the same dispatch and is granted
/// the same lease and attempt as soon as the api can answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_is_late_is_asked_again_and_runs_on_its_first_attempt() {
    let mut sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        max_attempts: 1,
        ..Settings::default()
    })
    .await;
    let job_id = upscale_job(&sandbox).await;

    let mut lock = sandbox.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE assets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    sandbox.spawn_worker_now(atelier_upscale::UpscaleEngine::default());
    // The first claim waits on the lock past the worker's claim timeout (5 s in tests),
    // then the worker's second ask waits too: two lock waits.
    let asked_twice = Instant::now();
    wait_until("the worker to ask for its claim twice", WAIT, || async {
        (lock_waits(&sandbox).await >= 2).then_some(())
    })
    .await;
    println!(
        "M2: worker asked again after {:.1} s",
        asked_twice.elapsed().as_secs_f64()
    );
    lock.commit().await.unwrap();
    let released = Instant::now();

    let job = sandbox
        .wait_for_job(&sandbox.alpha, &job_id, &["succeeded", "failed"], WAIT)
        .await;
    println!(
        "M2: {} {:.1} s after the api could answer, attempts {}",
        job["status"],
        released.elapsed().as_secs_f64(),
        job["attempts"]
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(released.elapsed() < Duration::from_secs(5));
    sandbox.teardown().await;
}

/// A worker that presents a dispatch; the reply, decoded.
struct Claimer {
    nats: async_nats::Client,
    names: Names,
    job_id: String,
}

impl Claimer {
    async fn ask(&self, worker: &str, seq: u32) -> claim_reply::Outcome {
        let request = ClaimRequest {
            job_id: self.job_id.clone(),
            worker_id: worker.to_owned(),
            dispatch_seq: seq,
        };
        let reply = self
            .nats
            .request(self.names.claim_subject(), request.encode_to_vec().into())
            .await
            .expect("claim answered");
        ClaimReply::decode(reply.payload.as_ref())
            .unwrap()
            .outcome
            .expect("an outcome")
    }

    async fn granted(&self, worker: &str, seq: u32) -> JobSpec {
        match self.ask(worker, seq).await {
            claim_reply::Outcome::Granted(spec) => spec,
            denied => panic!("{worker} seq {seq} not granted: {denied:?}"),
        }
    }

    /// `Some(retry_later)` when denied.
    async fn denied(&self, worker: &str, seq: u32) -> (bool, String) {
        match self.ask(worker, seq).await {
            claim_reply::Outcome::Denied(denied) => (denied.retry_later, denied.reason),
            granted => panic!("{worker} seq {seq} granted: {granted:?}"),
        }
    }

    async fn report(&self, spec: &JobSpec, kind: Kind) {
        let event = JobEvent {
            job_id: self.job_id.clone(),
            lease_token: spec.lease_token.clone(),
            attempt: spec.attempt,
            kind: Some(kind),
        };
        async_nats::jetstream::new(self.nats.clone())
            .publish(
                self.names.event_subject(&self.job_id),
                event.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .expect("event stored");
    }
}

/// The claim protocol, spoken directly: the repeat of a granted claim gets the same lease and
/// attempt; another worker is told to come back later while the grant is unreported, and
/// refused once it is; an old dispatch never claims a job released for a retry's back-off
/// (L6: before, a duplicate left in the stream started the retry at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_belongs_to_the_worker_that_claimed_it_and_a_back_off_is_kept() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let job_id = upscale_job(&sandbox).await;
    let claimer = Claimer {
        nats: async_nats::connect(&sandbox.nats_url).await.unwrap(),
        names: Names::new(&sandbox.prefix),
        job_id: job_id.clone(),
    };

    sandbox.wait_released(&job_id, 1).await;
    // A dispatch that is not the job's, for a job never claimed yet: refused, not deferred
    // (its message is dropped rather than asked again until its deliveries run out).
    let (retry_later, reason) = claimer.denied("w0", 7).await;
    assert!(!retry_later, "{reason}");
    let first = claimer.granted("w1", 1).await;
    let again = claimer.granted("w1", 1).await;
    assert_eq!(
        (again.lease_token.as_str(), again.attempt),
        (first.lease_token.as_str(), 1)
    );
    let (retry_later, reason) = claimer.denied("w2", 1).await;
    assert!(
        retry_later,
        "another worker waits for an unreported grant: {reason}"
    );
    let (retry_later, _) = claimer.denied("w1", 2).await;
    assert!(!retry_later, "a dispatch the job never had is dropped");

    // Once the attempt reports, the grant is settled: nobody gets it again.
    claimer
        .report(
            &first,
            Kind::Progress(Progress {
                percent: 10,
                step: "working".to_owned(),
            }),
        )
        .await;
    wait_until("the progress to be applied", WAIT, || async {
        (row(&sandbox, &job_id).await.1 == "working").then_some(())
    })
    .await;
    let (retry_later, reason) = claimer.denied("w1", 1).await;
    assert!(!retry_later, "{reason}");

    // Released for a minute's back-off: its old dispatch must not start the retry.
    claimer
        .report(
            &first,
            Kind::Released(Released {
                code: "upstream_busy".to_owned(),
                message: "try later".to_owned(),
                retry_in_ms: 60_000,
            }),
        )
        .await;
    wait_until("the release to be applied", WAIT, || async {
        (row(&sandbox, &job_id).await.0 == "queued").then_some(())
    })
    .await;
    let (retry_later, reason) = claimer.denied("w3", 1).await;
    assert!(!retry_later, "{reason}");
    let (retry_later, reason) = claimer.denied("w3", 2).await;
    assert!(
        !retry_later,
        "the retry's dispatch before its delay: {reason}"
    );
    let (status, _, attempt) = row(&sandbox, &job_id).await;
    assert_eq!((status.as_str(), attempt), ("queued", 1));
    sandbox.teardown().await;
}

/// Makes every result the projector applies from now on fail (another transaction locks
/// `assets`, and the database's `lock_timeout` makes the insert fail, as any outage would), so
/// results wait, nak'd, in the events stream. Answers the database's name and the lock.
async fn hold_results_back(
    sandbox: &Sandbox,
) -> (String, sqlx::Transaction<'static, sqlx::Postgres>) {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {database} SET lock_timeout = '300ms'"
    )))
    .execute(&sandbox.pool)
    .await
    .unwrap();
    // The api's connections pick the setting up when they reconnect.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&sandbox.pool)
    .await
    .unwrap();
    // Recording outputs needs the assets table: the result waits in the projector.
    let mut lock = sandbox.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = 0")
        .execute(&mut *lock)
        .await
        .unwrap();
    sqlx::query("LOCK TABLE assets IN SHARE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    (database, lock)
}

async fn let_results_through(
    sandbox: &Sandbox,
    database: &str,
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
) {
    lock.commit().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {database} RESET lock_timeout"
    )))
    .execute(&sandbox.pool)
    .await
    .unwrap();
}

/// M3: a finished job's result sits in the events stream, nak'd by the projector because it
/// cannot be applied for a while (here: another transaction locks `assets` and the database's
/// `lock_timeout` makes the insert fail, as any outage would), while the job's heartbeat in
/// the database grows old — the worker stopped beating when it finished. Before: the
/// reconciler counted only undelivered events, judged the job silent and failed it
/// `worker_lost` (its last attempt); the result, applied later, was fenced out. After: the
/// reconciler waits until the projector's ack floor passes its mark, and the job succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_projector_has_not_applied_yet_is_never_discarded() {
    let sandbox = Sandbox::start(Settings {
        max_attempts: 1,
        ..Settings::default()
    })
    .await;
    let asset = upload_png(&sandbox, &sandbox.alpha).await;
    let (database, lock) = hold_results_back(&sandbox).await;

    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputAssetIds": [asset], "scale": 2}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    // The worker claims (reading assets is allowed), runs and publishes its result, which
    // cannot be recorded; the heartbeat then ages past twice the stale threshold (3 s).
    let stale_for = Instant::now();
    wait_until(
        "the job's heartbeat to age past the stale threshold",
        WAIT,
        || async {
            let (status, stale): (String, bool) = sqlx::query_as(
                "SELECT status, coalesce(heartbeat_at < now() - interval '9 seconds', false)
             FROM jobs WHERE id = $1",
            )
            .bind(&job_id)
            .fetch_one(&sandbox.pool)
            .await
            .unwrap();
            let ended = status != "queued" && status != "running";
            (ended || stale).then_some(status)
        },
    )
    .await;
    println!(
        "M3: result held back for {:.1} s",
        stale_for.elapsed().as_secs_f64()
    );
    let_results_through(&sandbox, &database, lock).await;

    let job = sandbox
        .wait_for_job(&sandbox.alpha, &job_id, &["succeeded", "failed"], WAIT)
        .await;
    println!("M3: {} on attempt {}", job["status"], job["attempts"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    sandbox.teardown().await;
}

/// Found by the chaos suite (a paused api replica held a result in its projector): a result
/// published before the attempt's deadline, and still waiting to be applied when the deadline
/// passed, is applied — the job succeeds. Before: the reconciler judged deadlines by the clock
/// alone and failed the job `deadline_exceeded` while its result was on its way; the result,
/// applied later, was fenced out. After: deadlines are judged, like silent heartbeats, only by
/// a moment the projector has caught up with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_published_before_the_deadline_is_never_overtaken_by_it() {
    let sandbox = Sandbox::start(Settings {
        max_attempts: 1,
        run_timeout: Duration::from_secs(3),
        ..Settings::default()
    })
    .await;
    let asset = upload_png(&sandbox, &sandbox.alpha).await;
    let (database, lock) = hold_results_back(&sandbox).await;

    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputAssetIds": [asset], "scale": 2}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let held = Instant::now();
    let status = wait_until("the attempt's deadline to be 3 s past", WAIT, || async {
        let (status, past): (String, bool) = sqlx::query_as(
            "SELECT status, coalesce(run_deadline_at < now() - interval '3 seconds', false)
                 FROM jobs WHERE id = $1",
        )
        .bind(&job_id)
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
        (status != "running" && status != "queued" || past).then_some(status)
    })
    .await;
    println!(
        "deadline: result held back for {:.1} s, job {status} meanwhile",
        held.elapsed().as_secs_f64()
    );
    let_results_through(&sandbox, &database, lock).await;

    let job = sandbox
        .wait_for_job(&sandbox.alpha, &job_id, &["succeeded", "failed"], WAIT)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    sandbox.teardown().await;
}
