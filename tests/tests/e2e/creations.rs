//! The creations API (seed 000) end to end: the quick start's requests with its own header,
//! a real narrated slide video checked with ffprobe (H.264 + AAC, one scene per page, the
//! duration the narration's, subtitles that match the scenes), the `script` path, every kind
//! of bad request refused with nothing charged, another client's creation a 404, a failure
//! mid-pipeline refunded once, and a queued creation cancelled.

use std::time::Duration;

use atelier_tests::sandbox::{Client, Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(240);

fn seed_body() -> Value {
    json!({
        "type": "slides_video",
        "prompt": "用 6 页讲清楚 transformer 的 attention 是怎么工作的",
        "language": "zh",
        "aspect_ratio": "16:9",
        "scene_count": 6,
    })
}

fn slides_settings() -> Settings {
    Settings {
        upscale_worker: false,
        slides: Some(atelier_slides::SlidesConfig::default()),
        ..Settings::default()
    }
}

/// A request of this face, with the seed's header.
async fn call(
    sandbox: &Sandbox,
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let url = sandbox.url(&format!("/openapi/v1{path}"));
    let mut request = match method {
        "POST" => sandbox.http.post(url),
        _ => sandbox.http.get(url),
    }
    .header("X-KGP-Api-Key", &client.key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn grant(sandbox: &Sandbox, client: &Client, amount: i64) {
    atelier_api::credits::grant(&sandbox.pool, client.id, amount, "test")
        .await
        .expect("granting credits");
}

async fn balance(sandbox: &Sandbox, client: &Client) -> i64 {
    let (_, me) = call(sandbox, client, "GET", "/me", None).await;
    me["credits"]["balance"].as_i64().expect("balance")
}

/// Polls the job until it is terminal; checks progress only moves forward on the way.
async fn poll(sandbox: &Sandbox, client: &Client, job_id: &str) -> Value {
    let started = std::time::Instant::now();
    let mut last = 0;
    loop {
        let (status, job) = call(
            sandbox,
            client,
            "GET",
            &format!("/creations/jobs/{job_id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        let pct = job["progress_pct"].as_i64().unwrap();
        assert!(
            (0..=100).contains(&pct) && pct >= last,
            "progress went from {last} to {pct}"
        );
        last = pct;
        if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
        assert!(
            started.elapsed() < WAIT,
            "the creation did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn download(sandbox: &Sandbox, client: &Client, url: &str) -> Vec<u8> {
    let response = sandbox
        .http
        .get(url)
        .header("X-KGP-Api-Key", &client.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.bytes().await.unwrap().to_vec()
}

/// ffprobe's streams and duration of an MP4 written to a temporary file.
fn probe(mp4: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creation.mp4");
    std::fs::write(&path, mp4).unwrap();
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("running ffprobe (deploy/local/deps.sh installs it)");
    assert!(output.status.success(), "ffprobe: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `HH:MM:SS,mmm` in seconds.
fn srt_time(t: &str) -> f64 {
    let (hms, ms) = t.split_once(',').unwrap();
    let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().unwrap() / 1000.0
}

#[tokio::test]
async fn the_quick_start_makes_a_narrated_video_a_person_would_watch() {
    let sandbox = Sandbox::start(slides_settings()).await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 1000).await;

    // The seed's own Python, as written (deploy/examples/creations_quickstart.py).
    let python = std::env::var("ATELIER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/creations_quickstart.py"
    );
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("KGP_BASE_URL", sandbox.url("/openapi/v1"))
        .env("KGP_API_KEY", &alpha.key)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output)
        .await
        .expect("the quick start finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("'client_id': 'alpha'") && lines[0].contains("'can_create': True"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("'type': 'slides_video'") && lines[1].contains("'cmn'"),
        "the catalog"
    );
    // Polling: progress only moves forward and the steps are the pipeline's real ones.
    let polled: Vec<(&str, i64, &str)> = lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let status = parts.next()?;
            let pct = parts.next()?.parse().ok()?;
            ["queued", "running", "succeeded"]
                .contains(&status)
                .then(|| (status, pct, parts.next().unwrap_or("")))
        })
        .collect();
    assert!(polled.windows(2).all(|w| w[0].1 <= w[1].1), "{polled:?}");
    assert_eq!(polled.last().map(|p| (p.0, p.1)), Some(("succeeded", 100)));
    let main_url = lines[lines.len() - 3];
    assert!(
        main_url.starts_with("http://127.0.0.1:") && main_url.ends_with("/download"),
        "{main_url}"
    );
    assert_eq!(
        balance(&sandbox, &alpha).await,
        1000 - 60,
        "6 scenes at 10 credits"
    );
    let (_, list) = call(
        &sandbox,
        &alpha,
        "GET",
        "/creations?page=1&page_size=5",
        None,
    )
    .await;
    assert_eq!(list["total"], 1);
    let creation_id = list["items"][0]["creation_id"]
        .as_i64()
        .expect("an integer creation id");
    let job_id = list["items"][0]["job"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Step 5: the detail.
    let (status, detail) = call(
        &sandbox,
        &alpha,
        "GET",
        &format!("/creations/{creation_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["status"], "ready");
    let scenes = detail["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 6);
    let kinds: Vec<&str> = detail["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    for kind in ["video", "cover", "subtitle", "slides_pdf"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    let mp4 = download(&sandbox, &alpha, detail["main_url"].as_str().unwrap()).await;
    let probe = probe(&mp4);
    let streams = probe["streams"].as_array().unwrap();
    let codec = |kind: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .map(|s| s["codec_name"].as_str().unwrap().to_owned())
    };
    assert_eq!(codec("video").as_deref(), Some("h264"));
    assert_eq!(codec("audio").as_deref(), Some("aac"));
    assert_eq!(codec("subtitle").as_deref(), Some("mov_text"));
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(1280), Some(720))
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let narrated: f64 = scenes
        .iter()
        .map(|s| s["duration_seconds"].as_f64().unwrap())
        .sum();
    assert!(
        (duration - narrated).abs() <= 0.5,
        "video {duration} s, narration {narrated} s"
    );

    // Each scene's audio is what is said over it, and starts where the last one ended.
    let mut start = 0.0;
    for scene in scenes {
        assert!((scene["start_seconds"].as_f64().unwrap() - start).abs() < 1e-6);
        start += scene["duration_seconds"].as_f64().unwrap();
        let wav = download(&sandbox, &alpha, scene["audio_url"].as_str().unwrap()).await;
        let pcm = atelier_slides::speech::parse_wav(&wav).unwrap();
        assert!((pcm.seconds() - scene["duration_seconds"].as_f64().unwrap()).abs() < 0.01);
        let png = download(&sandbox, &alpha, scene["image_url"].as_str().unwrap()).await;
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 1280);
        assert!(!scene["narration_text"].as_str().unwrap().is_empty());
    }

    // The subtitles' cues are the scenes' cues, each inside its scene.
    let srt_url = detail["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["format"] == "srt")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let srt = String::from_utf8(download(&sandbox, &alpha, &srt_url).await).unwrap();
    let cues: Vec<(f64, f64)> = srt
        .lines()
        .filter_map(|l| l.split_once(" --> "))
        .map(|(a, b)| (srt_time(a), srt_time(b)))
        .collect();
    let scene_cues: usize = scenes
        .iter()
        .map(|s| s["subtitles"].as_array().unwrap().len())
        .sum();
    assert_eq!(cues.len(), scene_cues);
    for scene in scenes {
        let (from, to) = (
            scene["start_seconds"].as_f64().unwrap(),
            scene["start_seconds"].as_f64().unwrap() + scene["duration_seconds"].as_f64().unwrap(),
        );
        for cue in scene["subtitles"].as_array().unwrap() {
            let (s, e) = (cue["start"].as_f64().unwrap(), cue["end"].as_f64().unwrap());
            assert!(
                from <= s && s < e && e <= to + 1e-6,
                "cue {s}–{e} outside its scene {from}–{to}"
            );
            assert!(
                cues.iter()
                    .any(|(a, b)| (a - s).abs() < 0.002 && (b - e).abs() < 0.002)
            );
        }
    }

    // The creation is a job of the native API too: same id, one pipeline.
    let (status, native) = sandbox.get(&alpha, &format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(native["capability"], "video.slides");
    assert_eq!(native["credits"], 60);
    assert_eq!(detail["main_url"], main_url);
    sandbox.teardown().await;
}

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

#[tokio::test]
async fn a_failure_mid_pipeline_refunds_once() {
    let sandbox = Sandbox::start(Settings {
        max_attempts: 2,
        slides: Some(atelier_slides::SlidesConfig {
            // ffmpeg "runs" and fails: outline, slides and narration happen, assembly fails.
            ffmpeg: "false".into(),
            ..atelier_slides::SlidesConfig::default()
        }),
        ..slides_settings()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let body =
        json!({"type": "slides_video", "prompt": "Tides", "language": "en", "scene_count": 2});
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(balance(&sandbox, &alpha).await, 80);
    let job_id = created["job"]["job_id"].as_str().unwrap().to_owned();
    let job = poll(&sandbox, &alpha, &job_id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "encode_failed");
    assert_eq!(job["attempt"], 2, "retried, as an environment failure");
    // Only assembly runs ffmpeg: the outline, the slides and the narration were done.
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("assembling the video failed")
    );
    assert_eq!(balance(&sandbox, &alpha).await, 100, "refunded");
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE job_id = $1 AND kind = 'refund'",
    )
    .bind(&job_id)
    .fetch_one(&sandbox.pool)
    .await
    .unwrap();
    assert_eq!(refunds, 1);
    sandbox.teardown().await;
}

#[tokio::test]
async fn a_queued_creation_can_be_cancelled_and_is_refunded() {
    // No slides worker: the creation stays queued.
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&seed_body())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&sandbox, &alpha).await, 40);
    for _ in 0..2 {
        let (status, job) = call(
            &sandbox,
            &alpha,
            "POST",
            &format!("/creations/jobs/{job_id}/cancel"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert_eq!(job["status"], "cancelled");
    }
    assert_eq!(balance(&sandbox, &alpha).await, 100);
    let (status, _) = call(
        &sandbox,
        &sandbox.beta,
        "POST",
        &format!("/creations/jobs/{job_id}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    sandbox.teardown().await;
}

#[tokio::test]
async fn routed_chat_and_speech_models_write_and_narrate() {
    let openai = atelier_providers::fake::openai::FakeOpenAi::start("sk-openai-test").await;
    let vars = [
        ("ATELIER_OPENAI_API_KEY", "sk-openai-test".to_owned()),
        ("ATELIER_OPENAI_BASE_URL", openai.base_url()),
        (
            "ATELIER_ROUTES",
            "text.generate=openai:gpt-4o-mini,audio.speech=openai:tts-1".to_owned(),
        ),
    ];
    let providers = atelier_providers::ProvidersConfig::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("providers settings");
    let sandbox = Sandbox::start(Settings {
        providers: Some(providers),
        max_attempts: 2,
        ..slides_settings()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let outline = json!({"scenes": [
        {"title": "潮汐从哪里来", "bullets": ["月球的引力"], "narration": "潮汐来自月球的引力。"},
        {"title": "总结", "bullets": [], "narration": "这就是潮汐。"},
    ]});
    openai.set_chat_content(&outline.to_string());
    // Every phrase the speech model speaks is 0.5 s of a 24 kHz WAV.
    let phrase = atelier_slides::speech::Pcm {
        rate: 24_000,
        samples: (0..12_000).map(|i| ((i % 48) as i16 - 24) * 200).collect(),
    };
    openai.set_speech(phrase.to_wav());
    let (_, catalog) = call(&sandbox, &alpha, "GET", "/catalog", None).await;
    let voices = &catalog["content_types"][0]["voices"]["zh"];
    assert!(
        voices.as_array().unwrap().iter().any(|v| v == "nova"),
        "{voices}"
    );
    let outline_by = catalog["content_types"][0]["outline"].as_str().unwrap();
    assert!(outline_by.starts_with("openai:gpt-4o-mini"), "{outline_by}");
    let body = json!({"type": "slides_video", "prompt": "讲讲潮汐", "language": "zh",
                      "scene_count": 2, "voice": "nova"});
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job = poll(&sandbox, &alpha, created["job"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let path = format!("/creations/{}", created["creation_id"]);
    let (_, detail) = call(&sandbox, &alpha, "GET", &path, None).await;
    assert_eq!(detail["generator"], "openai:gpt-4o-mini");
    assert_eq!(detail["scenes"][0]["title"], "潮汐从哪里来");
    assert_eq!(detail["scenes"][1]["narration_text"], "这就是潮汐。");
    // One phrase per scene: lead-in 0.3 s, 0.5 s of speech, tail 0.7 s.
    let duration = detail["scenes"][0]["duration_seconds"].as_f64().unwrap();
    assert!((duration - 1.5).abs() < 0.01, "{duration}");
    let asked = openai.received();
    let spoken = |r: &atelier_providers::fake::openai::Received| {
        r.fields["voice"] == "nova" && r.fields["model"] == "tts-1"
    };
    assert!(asked.iter().any(spoken));
    let chat = asked
        .iter()
        .find(|r| r.fields.get("messages").is_some())
        .expect("the chat model was asked");
    assert!(
        chat.fields.to_string().contains("讲讲潮汐"),
        "{}",
        chat.fields
    );

    // An answer that breaks the rules (one scene for two) is retried, then fails, refunded.
    openai.set_chat_content(&json!({"scenes": [outline["scenes"][0].clone()]}).to_string());
    let (_, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    let job = poll(&sandbox, &alpha, created["job"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "outline_invalid");
    assert_eq!(
        balance(&sandbox, &alpha).await,
        80,
        "the failed creation is refunded"
    );
    sandbox.teardown().await;
}
