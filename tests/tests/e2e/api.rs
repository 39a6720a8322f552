//! The native API's contract: idempotency, isolation between clients on every route,
//! authentication, and each documented error status with a JSON body.

use atelier_tests::sandbox::{Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Jobs for image.generate wait queued (no worker yet), which keeps these tests about
/// the API alone.
fn generate(prompt: &str) -> Value {
    json!({"capability": "image.generate", "prompt": prompt, "width": 1440, "height": 2560})
}

fn quiet() -> Settings {
    Settings {
        upscale_worker: false,
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_reuse_conflict_and_stay_per_client() {
    let sandbox = Sandbox::start(quiet()).await;
    let body = generate("生成一张专业产品主图");

    // Many concurrent requests with one key make one job.
    let attempts = (0..8).map(|_| sandbox.post_job(&sandbox.alpha, &body, Some("demo-job-001")));
    let answers = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(status, v)| {
            assert!(status.is_success(), "{v}");
            v["job"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one key, one job");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(
        answers.iter().filter(|(_, v)| v["reused"] == false).count(),
        1
    );

    // Same key, same body (other key order and spacing): the same job, reused.
    let reordered: Value = serde_json::from_str(
        r#"{"height":2560, "width":1440, "prompt":"生成一张专业产品主图", "capability":"image.generate"}"#,
    )
    .unwrap();
    let (status, again) = sandbox
        .post_job(&sandbox.alpha, &reordered, Some("demo-job-001"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["reused"], true);
    assert_eq!(again["job"]["id"], id.as_str());

    // Same key, different body: 409.
    let (status, conflict) = sandbox
        .post_job(&sandbox.alpha, &generate("another"), Some("demo-job-001"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );

    // Same key from another client: independent.
    let (status, other) = sandbox
        .post_job(&sandbox.beta, &body, Some("demo-job-001"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["job"]["id"], id.as_str());

    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 2);
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_ids_are_404_on_every_route() {
    let sandbox = Sandbox::start(quiet()).await;
    let (_, created) = sandbox
        .post_job(&sandbox.alpha, &generate("a's job"), None)
        .await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    // An output asset of alpha's, recorded as the projector would.
    let asset_id = "asset_01jxxxxxxxxxxxxxxxxxxxxxxx";
    sqlx::query(
        "INSERT INTO assets (id, client_id, job_id, role, kind, name, s3_key, content_type,
                             size_bytes, sha256)
         VALUES ($1, 'alpha', $2, 'output', 'image', 'a.png', 'outputs/alpha/x/1/0.png',
                 'image/png', 3, 'abc')",
    )
    .bind(asset_id)
    .bind(&job_id)
    .execute(&sandbox.pool)
    .await
    .unwrap();
    // Its object, so alpha's own download is found (a vanished object is a 404 too).
    sandbox
        .storage
        .client
        .put_object()
        .bucket(&sandbox.storage.bucket)
        .key("outputs/alpha/x/1/0.png")
        .body(b"png".to_vec().into())
        .send()
        .await
        .unwrap();

    for path in [
        format!("/api/v1/jobs/{job_id}"),
        format!("/api/v1/assets/{asset_id}"),
        format!("/api/v1/assets/{asset_id}/download"),
    ] {
        let (status, body) = sandbox.get(&sandbox.beta, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["error"].is_string(), "{path}: {body}");
        let (status, _) = sandbox.get(&sandbox.alpha, &path).await;
        assert_ne!(status, StatusCode::NOT_FOUND, "{path} is alpha's");
    }
    let (_, jobs) = sandbox.get(&sandbox.beta, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));
    let (_, assets) = sandbox.get(&sandbox.beta, "/api/v1/assets").await;
    assert_eq!(assets["assets"], json!([]));
    // Beta cannot use alpha's asset as an input either.
    let (status, body) = sandbox
        .post_job(
            &sandbox.beta,
            &json!({"capability": "image.upscale", "inputAssetIds": [asset_id]}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, jobs) = sandbox.get(&sandbox.alpha, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_accepts_both_headers_and_nothing_else() {
    let sandbox = Sandbox::start(quiet()).await;
    let url = sandbox.url("/api/v1/jobs");
    let http = &sandbox.http;
    let key = &sandbox.alpha.key;
    let ok = http
        .get(&url)
        .header("X-Zhinian-Api-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let ok = http.get(&url).bearer_auth(key).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for request in [
        http.get(&url),
        http.get(&url).bearer_auth("sk-wrong"),
        http.get(&url)
            .header("Authorization", format!("Basic {key}")),
        http.get(format!("{url}?api_key={key}")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("API key"),
            "{body}"
        );
        assert!(!body.to_string().contains(key.as_str()));
    }
    // The OpenAPI document and health need no key.
    let doc: Value = http
        .get(sandbox.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/capabilities",
        "/api/v1/assets",
        "/api/v1/assets/{id}",
        "/api/v1/assets/{id}/download",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_json_error_naming_the_field() {
    let sandbox = Sandbox::start(Settings {
        allow_private_networks: false,
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let cases = [
        (
            json!({"capability": "video.generate", "prompt": "x", "settings": {"duration": 3}}),
            "settings.duration",
        ),
        (
            json!({"capability": "video.generate", "prompt": "x", "settings": {"ratio": "2:1"}}),
            "settings.ratio",
        ),
        (
            json!({"capability": "video.generate", "prompt": "x", "settings": {"resolution": "2k"}}),
            "settings.resolution",
        ),
        (
            json!({"capability": "image.dream", "prompt": "x"}),
            "capability",
        ),
        (
            json!({"capability": "image.generate", "prompt": "x", "width": "wide"}),
            "width",
        ),
        (json!({"capability": "image.generate"}), "prompt"),
        (
            json!({"capability": "image.upscale", "imageUrls": ["http://127.0.0.1/a.png"]}),
            "imageUrls[0]",
        ),
        (
            json!({"capability": "image.generate", "prompt": "x", "webhookUrl": "http://[::1]:9/hook"}),
            "webhookUrl",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = sandbox.post_job(&sandbox.alpha, &body, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(field),
            "{body}: {message:?} should name {field}"
        );
    }
    let raw = sandbox
        .http
        .post(sandbox.url("/api/v1/jobs"))
        .bearer_auth(&sandbox.alpha.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let huge = sandbox
        .http
        .post(sandbox.url("/api/v1/jobs"))
        .bearer_auth(&sandbox.alpha.key)
        // Answered before the body is read; the server then closes the connection.
        .header("connection", "close")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = huge.json().await.unwrap();
    assert!(body["error"].is_string());
    for path in [
        "/api/v1/jobs/job_01jxxxxxxxxxxxxxxxxxxxxxxx",
        "/api/v1/nowhere",
    ] {
        let (status, body) = sandbox.get(&sandbox.alpha, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body["error"].is_string());
    }
    for query in [
        "limit=0",
        "limit=201",
        "status=done",
        "before=yesterday",
        "capability=x",
    ] {
        let (status, body) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/jobs?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["error"].is_string());
    }
    // Nothing of the refused requests was stored.
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_page_backwards_in_time() {
    let sandbox = Sandbox::start(quiet()).await;
    for i in 0..5 {
        let (status, _) = sandbox
            .post_job(&sandbox.alpha, &generate(&format!("n{i}")), None)
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, first) = sandbox
        .get(&sandbox.alpha, "/api/v1/jobs?limit=2&status=queued")
        .await;
    let page: Vec<&str> = first["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["n4", "n3"]);
    let before = first["nextBefore"].as_str().unwrap();
    let (_, second) = sandbox
        .get(
            &sandbox.alpha,
            &format!("/api/v1/jobs?limit=2&before={}", before.replace('+', "%2B")),
        )
        .await;
    let page: Vec<&str> = second["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["n2", "n1"]);
    let (_, none) = sandbox
        .get(
            &sandbox.alpha,
            "/api/v1/jobs?status=succeeded&capability=image.generate",
        )
        .await;
    assert_eq!(none["jobs"], json!([]));
    sandbox.teardown().await;
}
