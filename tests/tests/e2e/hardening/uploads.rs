//! H1: hostile multipart bodies are refused in flat memory.

use super::*;

/// H1: a multipart body that never contains its boundary, streamed chunked (no
/// Content-Length to refuse up front). Before: the parser kept every byte looking for the
/// boundary, so the api's memory grew with the body (the review's 4 GiB kills the pod).
/// After: the body is refused once 1 MiB has gone by without a part, and memory stays flat.
/// The size is `ATELIER_H1_BODY_MIB` (default 256; the review's figure is 4096, a manual run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_body_without_its_boundary_is_refused_in_flat_memory() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let mib: u64 = std::env::var("ATELIER_H1_BODY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let hostile = [
        ("no boundary", ""),
        (
            "endless part headers",
            "--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\nX-Pad: ",
        ),
    ];
    for (what, prefix) in hostile {
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let chunk = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
        let opening = bytes::Bytes::from_static(prefix.as_bytes());
        let body = futures::stream::iter(std::iter::once(opening).chain((0..mib).map(move |_| {
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
            chunk.clone()
        })))
        .map(Ok::<_, std::io::Error>);
        let before = rss_kib();
        let peak = Arc::new(AtomicUsize::new(before as usize));
        let sampling = CancellationToken::new();
        let sampler = {
            let (peak, stop) = (peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    peak.fetch_max(rss_kib() as usize, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let started = Instant::now();
        let answer = sandbox
            .http
            .post(sandbox.url("/api/v1/assets"))
            .bearer_auth(&sandbox.alpha.key)
            .header("content-type", "multipart/form-data; boundary=XYZ")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await;
        let took = started.elapsed();
        sampling.cancel();
        let _ = sampler.await;
        let growth_mib = (peak.load(Ordering::Relaxed) as u64).saturating_sub(before) / 1024;
        let sent_mib = sent.load(Ordering::Relaxed) / (1024 * 1024);
        println!(
            "h1 ({what}): {mib} MiB hostile body; {sent_mib} MiB left the client before the refusal \
             after {:.2}s; rss {} MiB before, peak growth {growth_mib} MiB; answer {:?}",
            took.as_secs_f64(),
            before / 1024,
            answer.as_ref().map(|r| r.status())
        );
        assert!(
            growth_mib < 48,
            "the api's memory grew by {growth_mib} MiB for a {mib} MiB body"
        );
        // The refusal is read when the client gets it; a client still writing may see the
        // connection close instead. Either way the api must not have held the body.
        if let Ok(response) = answer {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            assert!(
                body.to_string().contains("is the boundary missing"),
                "{body}"
            );
        }
    }
    // The api still serves.
    let (status, _) = sandbox.get(&sandbox.alpha, "/api/v1/assets").await;
    assert_eq!(status, StatusCode::OK);
    sandbox.teardown().await;
}
