//! The `script` path, decks and images, bad requests and other clients' creations.

use atelier_tests::sandbox::{Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{balance, call, download, grant, poll, seed_body, slides_settings};

#[tokio::test]
async fn scripts_decks_images_bad_requests_and_other_clients() {
    let sandbox = Sandbox::start(Settings {
        engines: true,
        ..slides_settings()
    })
    .await;
    let (alpha, beta) = (sandbox.alpha.clone(), sandbox.beta.clone());
    grant(&sandbox, &alpha, 100).await;

    let script = json!({
        "type": "slides_video",
        "prompt": "Photosynthesis in two slides",
        "language": "en",
        "aspect_ratio": "9:16",
        "voice": "en-us+f3",
        "style": "chalkboard_dark",
        "script": [
            {"title": "Light in", "bullets": ["Chlorophyll absorbs light"], "narration": "Leaves catch light. Chlorophyll absorbs it."},
            {"title": "Sugar out", "bullets": ["Water is split", "Sugar is built"], "narration": "Water is split, and sugar is built."},
        ],
    });
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&script)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(balance(&sandbox, &alpha).await, 80);
    let job_id = created["job"]["job_id"].as_str().unwrap().to_owned();
    let creation_id = created["creation_id"].as_i64().unwrap();

    // Every kind of bad request: 400 naming the field, nothing charged, nothing created.
    let bad: Vec<(Value, &str)> = vec![
        (json!({"type": "podcast", "prompt": "x"}), "type"),
        (
            json!({"type": "slides_video", "prompt": "x", "aspect_ratio": "4:3"}),
            "aspect_ratio",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "language": "tlh"}),
            "language",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "voice": "nobody"}),
            "voice",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "style": "neon"}),
            "style",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "scene_count": 50}),
            "scene_count",
        ),
        (json!({"type": "slides_video", "prompt": ""}), "prompt"),
        (
            json!({"type": "slides_video", "prompt": "x".repeat(10_001)}),
            "prompt",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "scene_count": 3, "script": [{"title": "a", "narration": "b"}]}),
            "script",
        ),
        (
            json!({"type": "slides_video", "prompt": "x", "colour": "red"}),
            "body",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["detail"]["code"], "validation_failed");
        assert_eq!(answer["detail"]["field"], field, "{answer}");
    }
    let (_, answer) = call(
        &sandbox,
        &alpha,
        "POST",
        "/creations",
        Some(&json!({"type": "slides_video", "prompt": "x", "aspect_ratio": "4:3"})),
    )
    .await;
    assert!(
        answer["detail"]["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "16:9")
    );
    assert_eq!(balance(&sandbox, &alpha).await, 80);
    let creations: i64 = sqlx::query_scalar("SELECT count(*) FROM creations")
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
    assert_eq!(creations, 1);

    // Keys: missing or wrong is 401 in this face's shape; another client's creation is a 404.
    let response = sandbox
        .http
        .get(sandbox.url("/openapi/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["code"], "invalid_api_key");
    for path in [
        format!("/creations/{creation_id}"),
        format!("/creations/jobs/{job_id}"),
    ] {
        let (status, answer) = call(&sandbox, &beta, "GET", &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert_eq!(answer["detail"]["code"], "not_found");
    }
    // Too few credits: 402, nothing created.
    let (status, answer) = call(&sandbox, &beta, "POST", "/creations", Some(&seed_body())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{answer}");
    assert_eq!(answer["detail"]["code"], "insufficient_credits");

    // The script is what the video says.
    let job = poll(&sandbox, &alpha, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, detail) = call(
        &sandbox,
        &alpha,
        "GET",
        &format!("/creations/{creation_id}"),
        None,
    )
    .await;
    assert_eq!(detail["generator"], "script");
    assert_eq!(detail["scenes"][1]["title"], "Sugar out");
    assert_eq!(
        detail["scenes"][1]["subtitles"][0]["text"],
        "Water is split"
    );
    assert_eq!(
        (detail["width"].as_i64(), detail["height"].as_i64()),
        (Some(720), Some(1280))
    );

    // The same pipeline makes a deck (a PDF, not narrated) and, through image.generate, an image.
    let deck = json!({"type": "slide_deck", "prompt": "Tides", "language": "en", "scene_count": 3});
    let image = json!({"type": "image", "prompt": "a lighthouse at dusk", "aspect_ratio": "1:1"});
    for (body, magic) in [(deck, &b"%PDF"[..]), (image, &b"\x89PNG"[..])] {
        let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let job = poll(&sandbox, &alpha, created["job"]["job_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let path = format!("/creations/{}", created["creation_id"]);
        let (_, detail) = call(&sandbox, &alpha, "GET", &path, None).await;
        let main = download(&sandbox, &alpha, detail["main_url"].as_str().unwrap()).await;
        assert!(main.starts_with(magic), "{body}: {detail}");
        if body["type"] == "slide_deck" {
            let pages = main.windows(12).filter(|w| *w == b"/Type /Page ").count();
            assert_eq!(pages, 3, "a page per scene");
            assert_eq!(detail["scenes"].as_array().unwrap().len(), 3);
            assert!(
                detail["scenes"][0]["audio_url"].is_null(),
                "a deck is not narrated"
            );
        }
    }
    assert_eq!(balance(&sandbox, &alpha).await, 80 - 12 - 10);
    sandbox.teardown().await;
}
