//! Per-client admission (issue #16): a client over its create rate or its queued cap gets a
//! 429 with `Retry-After` and the `RateLimit-*` headers on every face, nothing is created or
//! charged, and other clients are not touched. `GET /api/v1/limits` shows where a client stands.

use atelier_api::limits::{Bucket, ClientLimits, Limits};
use atelier_tests::sandbox::{Client, Sandbox, Settings};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};

/// `POST path` with a client's key and a JSON body: status, headers, body.
async fn post(
    sandbox: &Sandbox,
    client: &Client,
    path: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = sandbox
        .http
        .post(sandbox.url(path))
        .bearer_auth(&client.key)
        .json(body);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("posting");
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn header(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

async fn jobs_of(sandbox: &Sandbox, client: &Client) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE client_id = $1")
        .bind(client.id)
        .fetch_one(&sandbox.pool)
        .await
        .unwrap()
}

async fn balance(sandbox: &Sandbox, client: &Client) -> i64 {
    let (_, credits) = sandbox.get(client, "/api/v1/credits").await;
    credits["balance"].as_i64().expect("balance")
}

const UPSCALE: &str = "http://127.0.0.1/in.png";

fn native_job() -> Value {
    json!({"capability": "image.upscale", "imageUrls": [UPSCALE], "scale": 2})
}

/// alpha may create 3 jobs at once and one every 20 s after; beta keeps the defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_on_every_face_and_nothing_is_created_or_charged() {
    let slow = ClientLimits {
        bucket: Bucket {
            rate: 0.05,
            burst: 3,
        },
        ..ClientLimits::default()
    };
    let limits = Limits {
        default: ClientLimits::default(),
        clients: [("alpha".to_owned(), slow)].into(),
    };
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        limits,
        ..Settings::default()
    })
    .await;
    let (alpha, beta) = (&sandbox.alpha, &sandbox.beta);
    atelier_api::credits::grant(&sandbox.pool, alpha.id, 100, "test")
        .await
        .unwrap();

    let mut remaining = Vec::new();
    for n in 0..3 {
        let key = format!("k{n}");
        let (status, headers, body) =
            post(&sandbox, alpha, "/api/v1/jobs", &native_job(), Some(&key)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(header(&headers, "ratelimit-limit"), Some(3));
        remaining.push(header(&headers, "ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, [2, 1, 0]);

    // Native face: the error body, Retry-After and the quota.
    let (status, headers, body) = post(&sandbox, alpha, "/api/v1/jobs", &native_job(), None).await;
    println!(
        "limits: native 429 {body} retry-after {:?}",
        headers.get("retry-after")
    );
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("rate limit"),
        "{body}"
    );
    let retry_after = header(&headers, "retry-after").expect("Retry-After");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&headers, "ratelimit-remaining"), Some(0));
    assert!(header(&headers, "ratelimit-reset").unwrap() >= retry_after);

    // Tasks face: HTTP 429 in its envelope with code 0, nothing charged.
    let task = json!({"model_id": "gpt-image-2", "prompt": "a lighthouse"});
    let (status, headers, body) = post(&sandbox, alpha, "/api/v1/tasks/create", &task, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], 0, "{body}");
    assert!(header(&headers, "retry-after").is_some());
    assert_eq!(header(&headers, "ratelimit-limit"), Some(3));

    // Creations face: 429 `rate_limited`, nothing charged.
    let creation =
        json!({"type": "image", "prompt": "a lighthouse at dusk", "aspect_ratio": "1:1"});
    let (status, headers, body) =
        post(&sandbox, alpha, "/openapi/v1/creations", &creation, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["detail"]["code"], "rate_limited", "{body}");
    assert!(header(&headers, "retry-after").is_some());

    assert_eq!(
        jobs_of(&sandbox, alpha).await,
        3,
        "a refused create wrote a job"
    );
    assert_eq!(
        balance(&sandbox, alpha).await,
        100,
        "a refused create was charged"
    );

    // A retry of a created job with its Idempotency-Key still answers it, limit or not.
    let (status, _, body) = post(&sandbox, alpha, "/api/v1/jobs", &native_job(), Some("k1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reused"], true);

    // Another client is not touched.
    let (status, headers, _) = post(&sandbox, beta, "/api/v1/jobs", &native_job(), None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(header(&headers, "ratelimit-limit"), Some(1000));

    let (status, limits) = sandbox.get(alpha, "/api/v1/limits").await;
    assert_eq!(status, StatusCode::OK, "{limits}");
    println!("limits: alpha {limits}");
    assert_eq!(limits["rate"]["burst"], 3);
    assert_eq!(limits["rate"]["remaining"], 0);
    assert_eq!(limits["queued"]["current"], 3);
    assert_eq!(limits["queued"]["byCapability"]["image.upscale"], 3);
    sandbox.teardown().await;
}

/// beta may have 2 jobs waiting; with no worker running, the third is refused until one
/// leaves the queue (here: cancelled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queued_cap_refuses_creates_until_a_job_leaves_the_queue() {
    let limits = Limits::parse(ClientLimits::default(), "beta:queued=2").unwrap();
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        limits,
        ..Settings::default()
    })
    .await;
    let beta = &sandbox.beta;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, _, body) = post(&sandbox, beta, "/api/v1/jobs", &native_job(), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["job"]["id"].as_str().unwrap().to_owned());
    }
    let (status, headers, body) = post(&sandbox, beta, "/api/v1/jobs", &native_job(), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("queue limit"),
        "{body}"
    );
    assert_eq!(header(&headers, "retry-after"), Some(1));
    assert_eq!(jobs_of(&sandbox, beta).await, 2);
    let (_, limits) = sandbox.get(beta, "/api/v1/limits").await;
    assert_eq!(
        (
            limits["queued"]["limit"].clone(),
            limits["queued"]["current"].clone()
        ),
        (json!(2), json!(2))
    );

    let (status, _, _) = post(
        &sandbox,
        beta,
        &format!("/api/v1/jobs/{}/cancel", ids[0]),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = post(&sandbox, beta, "/api/v1/jobs", &native_job(), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    sandbox.teardown().await;
}
