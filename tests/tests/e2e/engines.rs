//! Every capability, created with the seed's own example bodies (its example.com URLs pointed at
//! a local file server), succeeds with real media of the requested kind and size: images checked
//! with a decoder, the video with ffprobe. Bad inputs fail at once with a clear error, and the
//! workers keep serving.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Client, Sandbox, Settings},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);

fn png(image: image::RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a png");
    out.into_inner()
}

/// White where the original is to be repainted.
fn mask(width: u32, height: u32, hole: (u32, u32, u32, u32)) -> Vec<u8> {
    let (x0, y0, x1, y1) = hole;
    png(image::RgbaImage::from_fn(width, height, |x, y| {
        let inside = (x0..x1).contains(&x) && (y0..y1).contains(&y);
        if inside {
            image::Rgba([255, 255, 255, 255])
        } else {
            image::Rgba([0, 0, 0, 255])
        }
    }))
}

async fn create(sandbox: &Sandbox, body: &Value) -> String {
    let (status, created) = sandbox.post_job(&sandbox.alpha, body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["job"]["id"].as_str().unwrap().to_owned()
}

async fn finish(sandbox: &Sandbox, job_id: &str) -> Value {
    sandbox
        .wait_for_job(&sandbox.alpha, job_id, &["succeeded", "failed"], WAIT)
        .await
}

async fn download(sandbox: &Sandbox, client: &Client, asset_id: &str) -> (String, Vec<u8>) {
    let response = sandbox
        .http
        .get(sandbox.url(&format!("/api/v1/assets/{asset_id}/download")))
        .bearer_auth(&client.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.bytes().await.unwrap().to_vec())
}

/// The job's outputs, downloaded: (content type, bytes).
async fn outputs(sandbox: &Sandbox, job: &Value) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for id in job["outputAssetIds"].as_array().unwrap() {
        files.push(download(sandbox, &sandbox.alpha, id.as_str().unwrap()).await);
    }
    files
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("the output is a real image")
}

/// ffprobe's view of an MP4: (codec, pix_fmt, width, height, duration in s).
fn probe(mp4: &[u8]) -> (String, String, u64, u64, f64) {
    let path = std::env::temp_dir().join(format!("atelier-probe-{}.mp4", ulid::Ulid::new()));
    std::fs::write(&path, mp4).unwrap();
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,pix_fmt,width,height"])
        .args(["-show_entries", "format=duration", "-of", "json"])
        .arg(&path)
        .output()
        .expect("running ffprobe (deploy/local/deps.sh installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success(), "ffprobe: {output:?}");
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &probed["streams"][0];
    (
        stream["codec_name"].as_str().unwrap().to_owned(),
        stream["pix_fmt"].as_str().unwrap().to_owned(),
        stream["width"].as_u64().unwrap(),
        stream["height"].as_u64().unwrap(),
        probed["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_capability_serves_the_seeds_examples_with_real_media() {
    let sandbox = Sandbox::start(Settings {
        engines: true,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let reference = peer.serve("reference.png", File::plain(gradient_png(48, 64)));
    let input = peer.serve("input.png", File::plain(gradient_png(32, 18)));
    let original = peer.serve("original.png", File::plain(gradient_png(96, 64)));
    let mask_url = peer.serve("mask.png", File::plain(mask(96, 64, (30, 20, 60, 44))));
    let product = peer.serve("product.png", File::plain(gradient_png(80, 60)));

    // The seed's bodies, verbatim but for the URLs.
    let generate = create(
        &sandbox,
        &json!({
            "capability": "image.generate",
            "prompt": "参考 @图片1 的风格,生成 9:16 旅游海报",
            "imageUrls": [reference],
            "width": 1440,
            "height": 2560,
            "scale": 50,
            "quality": "medium",
            "force_single": true
        }),
    )
    .await;
    let upscale = create(
        &sandbox,
        &json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "4k"}),
    )
    .await;
    let inpaint = create(
        &sandbox,
        &json!({
            "capability": "image.inpaint",
            "prompt": "把选中区域文字替换成新品上市",
            "imageUrls": [original, mask_url]
        }),
    )
    .await;
    let video = create(
        &sandbox,
        &json!({
            "capability": "video.generate",
            "prompt": "生成一条 9:16 品牌短视频,节奏明快,适合信息流投放",
            "settings": {"ratio": "9:16", "duration": 5, "resolution": "720p"},
            "materials": [{"type": "image", "url": product, "label": "@图片1"}]
        }),
    )
    .await;

    let job = finish(&sandbox, &generate).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let files = outputs(&sandbox, &job).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "image/png");
    let image = decode(&files[0].1);
    assert_eq!((image.width(), image.height()), (1440, 2560));

    let job = finish(&sandbox, &upscale).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let image = decode(&outputs(&sandbox, &job).await[0].1);
    assert_eq!(
        image.width().max(image.height()),
        4096,
        "4k: a 4096 long edge"
    );

    let job = finish(&sandbox, &inpaint).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let files = outputs(&sandbox, &job).await;
    let filled = decode(&files[0].1).to_rgb8();
    assert_eq!(filled.dimensions(), (96, 64));
    let before = decode(&gradient_png(96, 64)).to_rgb8();
    // Outside the mask nothing changes; inside, the gradient is continued closely.
    assert_eq!(filled.get_pixel(5, 5), before.get_pixel(5, 5));
    assert_eq!(filled.get_pixel(90, 60), before.get_pixel(90, 60));
    let centre = filled.get_pixel(45, 32);
    let expected = before.get_pixel(45, 32);
    for channel in 0..3 {
        let error = (i32::from(centre[channel]) - i32::from(expected[channel])).abs();
        assert!(
            error <= 24,
            "hole filled from its surroundings: {centre:?} vs {expected:?}"
        );
    }

    let job = finish(&sandbox, &video).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let files = outputs(&sandbox, &job).await;
    assert_eq!(files.len(), 2, "the clip and its poster");
    assert_eq!(files[0].0, "video/mp4");
    let (codec, pix_fmt, width, height, duration) = probe(&files[0].1);
    assert_eq!((codec.as_str(), pix_fmt.as_str()), ("h264", "yuv420p"));
    assert_eq!((width, height), (720, 1280));
    assert!((duration - 5.0).abs() < 0.2, "{duration} s");
    assert_eq!(files[1].0, "image/jpeg");
    let poster = decode(&files[1].1);
    assert_eq!((poster.width(), poster.height()), (720, 1280));

    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_fast_and_the_workers_keep_serving() {
    let sandbox = Sandbox::start(Settings {
        engines: true,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let text = peer.serve("notes.png", File::plain(b"just some notes".to_vec()));
    let mut huge = gradient_png(1, 1);
    huge[16..20].copy_from_slice(&60000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let huge = peer.serve("huge.png", File::plain(huge));
    let original = peer.serve("original.png", File::plain(gradient_png(96, 64)));
    let small_mask = peer.serve("mask.png", File::plain(mask(48, 32, (10, 10, 20, 20))));
    let good_mask = peer.serve("good-mask.png", File::plain(mask(96, 64, (30, 20, 60, 44))));

    // A duration of 20 never becomes a job.
    let (status, body) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "video.generate", "prompt": "x",
                    "settings": {"ratio": "9:16", "duration": 20, "resolution": "720p"}}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("duration"),
        "{body}"
    );

    let cases = [
        (
            json!({"capability": "image.inpaint", "prompt": "x",
                   "imageUrls": [original.clone(), small_mask.clone()]}),
            "48x32",
        ),
        (
            json!({"capability": "image.inpaint", "prompt": "x",
                   "imageUrls": [text.clone(), good_mask.clone()]}),
            "notes.png",
        ),
        (
            json!({"capability": "image.inpaint", "prompt": "x",
                   "imageUrls": [huge.clone(), good_mask.clone()]}),
            "60000x60000",
        ),
        (
            json!({"capability": "video.generate", "prompt": "x",
                   "materials": [{"type": "image", "url": text.clone()}]}),
            "notes.png",
        ),
        (
            json!({"capability": "image.generate", "prompt": "x", "imageUrls": [huge.clone()]}),
            "60000x60000",
        ),
    ];
    for (body, names) in &cases {
        let job_id = create(&sandbox, body).await;
        let job = finish(&sandbox, &job_id).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["attempts"], 1, "a bad input is not retried: {job}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{names} named in {job}");
    }
    // The workers are still there.
    let ok = create(
        &sandbox,
        &json!({"capability": "image.inpaint", "prompt": "x",
                "imageUrls": [original, good_mask]}),
    )
    .await;
    assert_eq!(finish(&sandbox, &ok).await["status"], "succeeded");
    let ok = create(
        &sandbox,
        &json!({"capability": "image.generate", "prompt": "still here", "width": 64, "height": 64}),
    )
    .await;
    assert_eq!(finish(&sandbox, &ok).await["status"], "succeeded");
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
