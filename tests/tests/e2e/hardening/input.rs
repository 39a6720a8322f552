//! M1: NUL characters are a client error on every face.

use super::*;

/// M1: a NUL character (`\u0000` in JSON, `%00` in a path) is the request's mistake: PostgreSQL
/// cannot store it, and that used to surface as a 500. Malformed ids are now a 404 before any
/// query, and text the database refuses is a 400 naming the problem — on every face.
#[tokio::test]
async fn nul_characters_are_a_clear_client_error_never_a_500() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        slides: Some(atelier_slides::SlidesConfig::default()),
        ..Settings::default()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    for path in [
        "/api/v1/jobs/%00",
        "/api/v1/jobs/%00/webhooks",
        "/api/v1/assets/%00",
        "/api/v1/assets/%00/download",
        "/api/v1/tasks/%00",
        "/openapi/v1/creations/jobs/%00",
    ] {
        let (status, body) = sandbox.get(&alpha, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let deleted = sandbox
        .http
        .delete(sandbox.url("/api/v1/assets/%00"))
        .bearer_auth(&alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);

    let (status, body) = sandbox
        .post_job(
            &alpha,
            &json!({"capability": "image.generate", "prompt": "a\u{0}b"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("NUL"), "{body}");
    let post = |path: &'static str, body: serde_json::Value| {
        let (sandbox, alpha) = (&sandbox, &alpha);
        async move {
            let response = sandbox
                .http
                .post(sandbox.url(path))
                .bearer_auth(&alpha.key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    // The tasks face answers a refused request in its envelope, `code: 0`.
    let (status, body) = post(
        "/api/v1/tasks/create",
        json!({"model_id": "gpt-image-2", "prompt": "a\u{0}b"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
    let (status, body) = post(
        "/openapi/v1/creations",
        json!({"type": "slides_video", "prompt": "a\u{0}b", "scene_count": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["detail"]["code"], "validation_failed");
    sandbox.teardown().await;
}
