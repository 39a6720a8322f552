//! M5: a worker's memory does not grow with the number or size of a job's inputs.

use atelier_tests::process::{free_port, peak_rss_kib, start_with};
use image::{ExtendedColorType, ImageEncoder, codecs::png};
use sha2::{Digest, Sha256};

use super::*;

/// As many inputs as `image.generate` takes (`validate` in the api's `jobs/request.rs`).
const INPUTS: usize = 14;
/// What the worker under test lets a job's inputs add up to (`ATELIER_MAX_JOB_INPUT_BYTES`).
const JOB_BUDGET: u64 = 192 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(180);

/// A valid PNG of `side` x `side` noise: incompressible, so the file is about `3 * side²`
/// bytes, while decoding it (the engine does, for the first reference) stays cheap.
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let pixels: Vec<u8> = (0..side as usize * side as usize * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let mut out = Vec::new();
    png::PngEncoder::new_with_quality(
        &mut out,
        png::CompressionType::Fast,
        png::FilterType::NoFilter,
    )
    .write_image(&pixels, side, side, ExtendedColorType::Rgb8)
    .expect("encoding the noise png");
    out
}

fn generate(urls: &[String]) -> serde_json::Value {
    json!({
        "capability": "image.generate",
        "prompt": "a poster",
        "width": 256,
        "height": 256,
        "imageUrls": urls,
    })
}

/// Creates a job and waits for its end; its id and the job.
async fn post(sandbox: &Sandbox, body: serde_json::Value) -> (String, serde_json::Value) {
    let (status, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["job"]["id"].as_str().unwrap().to_owned();
    let job = sandbox
        .wait_for_job(&sandbox.alpha, &id, &["succeeded", "failed"], WAIT)
        .await;
    (id, job)
}

/// Temporary files the worker left behind.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// M5. Before: the runtime fetched every input whole into memory before the engine started,
/// so an `image.generate` job of many large references cost their sum in the worker's RSS
/// (the review's 16 `imageUrls` + 16 `inputUrls` of 50 MB each: 1.6 GB), though the engine
/// uses one. After: inputs are streamed to temporary files (removed when the attempt ends),
/// engines read only the ones they use, a job's inputs together have a byte budget, and the
/// api refuses more inputs than the capability takes. The worker runs as the `atelier` binary
/// so that its peak RSS (`VmHWM`) is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_no_more_than_one_input_in_memory() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let scratch = tempfile::tempdir().expect("the worker's temporary folder");
    let env = [
        ("TMPDIR".to_owned(), scratch.path().display().to_string()),
        (
            "ATELIER_MAX_JOB_INPUT_BYTES".to_owned(),
            JOB_BUDGET.to_string(),
        ),
    ];
    let worker = start_with(&sandbox, &["worker", "image"], free_port(), &env).await;
    let pid = worker.id().expect("the worker's pid");
    // A warm-up job (fonts, connections, allocator pools), then the baseline.
    let small = peer.serve("small.png", File::plain(gradient_png(64, 64)));
    let (_, job) = post(&sandbox, generate(&[small])).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let idle = peak_rss_kib(pid);

    // 14 references of 12 MiB each: 168 MiB of inputs, within the job's budget.
    let big = noise_png(2048);
    let size = big.len() as u64;
    let digest = hex::encode(Sha256::digest(&big));
    let url = peer.serve("big.png", File::plain(big));
    let urls: Vec<String> = (0..INPUTS).map(|n| format!("{url}?copy={n}")).collect();
    let started = Instant::now();
    let (job_id, job) = post(&sandbox, generate(&urls)).await;
    let growth_mib = peak_rss_kib(pid).saturating_sub(idle) / 1024;
    println!(
        "m5: {INPUTS} inputs of {:.1} MiB ({:.0} MiB in all) in {:.1}s; worker rss {} MiB idle, \
         peak growth {growth_mib} MiB; job {}",
        size as f64 / 1048576.0,
        (size * INPUTS as u64) as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        idle / 1024,
        job["status"],
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    let limit_mib = 3 * size / (1024 * 1024) + 16;
    assert!(
        growth_mib < limit_mib,
        "the worker's peak rss grew by {growth_mib} MiB for {INPUTS} inputs of {size} bytes \
         (allowed: {limit_mib} MiB, about one input read and decoded)"
    );
    // Every URL input is still kept once, whole, under the job, as an input asset.
    let kept: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT s3_key, sha256, size_bytes FROM assets WHERE job_id = $1 AND role = 'input' \
         ORDER BY s3_key",
    )
    .bind(&job_id)
    .fetch_all(&sandbox.pool)
    .await
    .expect("the kept inputs");
    assert_eq!(kept.len(), INPUTS);
    for (_, sha256, bytes) in &kept {
        assert_eq!((sha256.as_str(), *bytes as u64), (digest.as_str(), size));
    }
    let stored = sandbox.read_object(&kept[0].0).await;
    assert_eq!(hex::encode(Sha256::digest(&stored)), digest);
    wait_until("the attempt's files to go", Duration::from_secs(10), || {
        let left = leftovers(scratch.path());
        async move { left.is_empty().then_some(()) }
    })
    .await;

    // 14 references of 15 MiB: past the budget, the job fails at once, and its files go too.
    let bigger = peer.serve("bigger.png", File::plain(noise_png(2304)));
    let urls: Vec<String> = (0..INPUTS).map(|n| format!("{bigger}?copy={n}")).collect();
    let (_, job) = post(&sandbox, generate(&urls)).await;
    let growth_mib = peak_rss_kib(pid).saturating_sub(idle) / 1024;
    println!(
        "m5: past the {} MiB budget: job {} ({}), peak growth {growth_mib} MiB",
        JOB_BUDGET >> 20,
        job["status"],
        job["error"]["code"]
    );
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "inputs_too_large", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "the budget will not change on retry: {job}"
    );
    assert!(growth_mib < limit_mib, "peak growth {growth_mib} MiB");
    wait_until(
        "the failed attempt's files to go",
        Duration::from_secs(10),
        || {
            let left = leftovers(scratch.path());
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;

    // The review's request: 16 `imageUrls` and 16 `inputUrls` are refused up front now.
    let many: Vec<String> = (0..16).map(|n| format!("{url}?many={n}")).collect();
    let mut body = generate(&many);
    body["inputUrls"] = json!(many);
    let (status, refused) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("imageUrls, inputUrls, inputAssetIds:")),
        "{refused}"
    );
    sandbox.check_invariants().await;
    drop(worker);
    sandbox.teardown().await;
}
