//! The creations API (seed 000) end to end: the quick start's requests with its own header (the
//! seed's Python as written), a real narrated slide video checked with ffprobe (H.264 + AAC, one
//! scene per page, the duration the narration's, subtitles that match the scenes); then, in the
//! submodules, the `script` path, decks and images, every kind of bad request refused with
//! nothing charged, another client's creation a 404 (`requests`), a failure mid-pipeline refunded
//! once and a queued creation cancelled (`failures`), and routed chat and speech models
//! (`models`).

mod failures;
mod models;
mod requests;

use std::time::Duration;

use atelier_tests::sandbox::{Client, Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(240);

pub fn seed_body() -> Value {
    json!({
        "type": "slides_video",
        "prompt": "用 6 页讲清楚 transformer 的 attention 是怎么工作的",
        "language": "zh",
        "aspect_ratio": "16:9",
        "scene_count": 6,
    })
}

pub fn slides_settings() -> Settings {
    Settings {
        upscale_worker: false,
        slides: Some(atelier_slides::SlidesConfig::default()),
        ..Settings::default()
    }
}

/// A request of this face, with the seed's header.
pub async fn call(
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

pub async fn grant(sandbox: &Sandbox, client: &Client, amount: i64) {
    atelier_api::credits::grant(&sandbox.pool, client.id, amount, "test")
        .await
        .expect("granting credits");
}

pub async fn balance(sandbox: &Sandbox, client: &Client) -> i64 {
    let (_, me) = call(sandbox, client, "GET", "/me", None).await;
    me["credits"]["balance"].as_i64().expect("balance")
}

/// Polls the job until it is terminal; checks progress only moves forward on the way.
pub async fn poll(sandbox: &Sandbox, client: &Client, job_id: &str) -> Value {
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

pub async fn download(sandbox: &Sandbox, client: &Client, url: &str) -> Vec<u8> {
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
pub fn probe(mp4: &[u8]) -> Value {
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
pub fn srt_time(t: &str) -> f64 {
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
