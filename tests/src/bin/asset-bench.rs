//! Benchmark: upload and download of one large file through the api versus a direct S3
//! PUT/GET to the same server in the same run, and the api process's peak RSS.
//!
//! `cargo run --release -p atelier-tests --bin asset-bench -- [SIZE_MIB]` (default 1024),
//! with the local services up (`deploy/local/deps.sh`, `. .local/env`). The api runs as
//! its own process (`ATELIER_BIN`, default the `atelier` binary beside this one) so its
//! RSS is its own.

use std::time::{Duration, Instant};

use atelier_tests::{
    process::{binary, free_port, peak_rss_kib, start},
    sandbox::{Sandbox, Settings},
};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

const CHUNK: usize = 1024 * 1024;
const PART: usize = 8 * 1024 * 1024;

/// `size` bytes that sniff as an MP4 (an `ftyp` box), then a cheap repeating pattern.
fn payload(size: u64) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let mut header = vec![0u8; CHUNK];
    header[..24].copy_from_slice(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2");
    let body = Bytes::from(vec![0x5Au8; CHUNK]);
    let header = Bytes::from(header);
    let chunks = size.div_ceil(CHUNK as u64);
    futures::stream::iter(0..chunks).map(move |i| {
        let chunk = if i == 0 { header.clone() } else { body.clone() };
        let left = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok(chunk.slice(..left))
    })
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

async fn direct_put(sandbox: &Sandbox, key: &str, size: u64) -> Duration {
    let s3 = &sandbox.storage.client;
    let bucket = &sandbox.storage.bucket;
    let started = Instant::now();
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create");
    let id = upload.upload_id().expect("upload id").to_owned();
    let mut parts = Vec::new();
    let mut buffer = Vec::with_capacity(PART);
    let mut stream = Box::pin(payload(size));
    loop {
        let chunk = stream.next().await;
        if let Some(Ok(chunk)) = &chunk {
            buffer.extend_from_slice(chunk);
        }
        if buffer.len() >= PART || (chunk.is_none() && !buffer.is_empty()) {
            let number = parts.len() as i32 + 1;
            let done = s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .part_number(number)
                .body(ByteStream::from(std::mem::take(&mut buffer)))
                .send()
                .await
                .expect("part");
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(done.e_tag().map(str::to_owned))
                    .build(),
            );
        }
        if chunk.is_none() {
            break;
        }
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    started.elapsed()
}

async fn direct_get(sandbox: &Sandbox, key: &str) -> (Duration, u64) {
    let started = Instant::now();
    let object = sandbox
        .storage
        .client
        .get_object()
        .bucket(&sandbox.storage.bucket)
        .key(key)
        .send()
        .await
        .expect("get");
    let mut body = object.body;
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        total += chunk.expect("body").len() as u64;
    }
    (started.elapsed(), total)
}

#[tokio::main]
async fn main() {
    let size_mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let size = size_mib * 1024 * 1024;
    let mut sandbox = Sandbox::provision(Settings {
        max_upload_bytes: size + 1024 * 1024,
        ..Settings::default()
    })
    .await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    let mut api = start(&sandbox, "api", port).await;
    let pid = api.id().expect("api pid");
    let http = reqwest::Client::new();
    let idle_rss = peak_rss_kib(pid);

    let direct_up = direct_put(&sandbox, "bench/direct.mp4", size).await;
    let (direct_down, direct_bytes) = direct_get(&sandbox, "bench/direct.mp4").await;
    assert_eq!(direct_bytes, size);

    let started = Instant::now();
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(payload(size)),
        size,
    )
    .file_name("bench.mp4");
    let response = http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .multipart(reqwest::multipart::Form::new().part("files", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(
        response.status(),
        reqwest::StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    let api_up = started.elapsed();
    let created: serde_json::Value = response.json().await.expect("json");
    let id = created["assets"][0]["id"]
        .as_str()
        .expect("asset id")
        .to_owned();

    let started = Instant::now();
    let response = http
        .get(sandbox.url(&format!("/api/v1/assets/{id}/download")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .expect("download");
    let mut stream = response.bytes_stream();
    let mut api_bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        api_bytes += chunk.expect("chunk").len() as u64;
    }
    let api_down = started.elapsed();
    assert_eq!(api_bytes, size);
    let peak = peak_rss_kib(pid);
    let _ = api.kill().await;

    println!(
        "asset-bench: {size_mib} MiB, api binary {}",
        binary().display()
    );
    println!(
        "  direct S3 PUT   {:>8.1} MiB/s ({:.2} s)",
        mib_per_s(size, direct_up),
        direct_up.as_secs_f64()
    );
    println!(
        "  api upload      {:>8.1} MiB/s ({:.2} s)  {:.0} % of direct",
        mib_per_s(size, api_up),
        api_up.as_secs_f64(),
        100.0 * direct_up.as_secs_f64() / api_up.as_secs_f64()
    );
    println!(
        "  direct S3 GET   {:>8.1} MiB/s ({:.2} s)",
        mib_per_s(size, direct_down),
        direct_down.as_secs_f64()
    );
    println!(
        "  api download    {:>8.1} MiB/s ({:.2} s)  {:.0} % of direct",
        mib_per_s(size, api_down),
        api_down.as_secs_f64(),
        100.0 * direct_down.as_secs_f64() / api_down.as_secs_f64()
    );
    println!(
        "  api peak RSS    {:>8.1} MiB (idle {:.1} MiB)",
        peak as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
    sandbox.teardown().await;
}
