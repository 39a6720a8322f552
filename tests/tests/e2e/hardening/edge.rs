//! M6: the HTTP edge bounds what a connection or a request may cost. Idle and slowloris
//! connections are cut at the request head's deadline while everyone else is served; a
//! stalled upload is cut, and uploads beyond their cap are shed with `Retry-After`.

use super::*;
pub(super) use atelier_tests::roles::ApiReplica as Api;
use tokio::{io::AsyncWriteExt, task::JoinHandle};

/// The scenario holds both ends of every connection in this process: make sure the soft
/// limit on open files allows it (raised up to the hard limit when it does not).
fn ensure_open_files(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return;
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        maximum >= needed,
        "the scenario needs {needed} open files; the hard limit is {maximum}"
    );
    let raised = rustix::process::Rlimit {
        current: Some(needed),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raising the soft limit on open files");
}

/// M6: 3,000 connections that dribble a request head and never finish it. Before, nothing
/// cut them (axum::serve sets no timer, so hyper's head deadline never applied): each held a
/// file descriptor and a task for as long as the client liked, toward the fd limit. Now the
/// api closes each at the head deadline, and meanwhile `/healthz` and a job creation from
/// another client answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_while_others_are_served() {
    const IDLE: usize = 3000;
    let header_timeout = Duration::from_secs(3);
    ensure_open_files(2 * IDLE as u64 + 1024);
    let mut sandbox = Sandbox::provision(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let mut config = sandbox.api_config();
    config.http.header_timeout = header_timeout;
    let api = Api::start(config).await;
    sandbox.base = api.base.clone();
    let addr = api.base.trim_start_matches("http://").to_owned();

    let (opened, refused, cut) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    // At most 128 connects in progress: a burst of 3,000 overflows the listen backlog
    // (1,024), and the kernel then resets connections the api never saw (it did so before the
    // fix as after, about half of them at 0.2 s), which is not what this scenario is about.
    let connecting = Arc::new(tokio::sync::Semaphore::new(128));
    let started = Instant::now();
    let idle: Vec<JoinHandle<Option<(String, Duration)>>> = (0..IDLE)
        .map(|_| {
            let (addr, opened, refused, cut, connecting) = (
                addr.clone(),
                opened.clone(),
                refused.clone(),
                cut.clone(),
                connecting.clone(),
            );
            tokio::spawn(async move {
                let permit = connecting.acquire_owned().await.expect("connect permits");
                let Ok(mut socket) = TcpStream::connect(&addr).await else {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return None;
                };
                if socket
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .is_err()
                {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return None;
                }
                drop(permit);
                opened.fetch_add(1, Ordering::SeqCst);
                let since = Instant::now();
                // The slow client's own pace: one more header line every half second.
                let mut drip = tokio::time::interval(Duration::from_millis(500));
                let mut buffer = [0u8; 1024];
                // Closed by the server: a FIN, or a reset when our drips were still unread.
                let how = loop {
                    tokio::select! {
                        read = socket.read(&mut buffer) => match read {
                            Ok(0) => break "closed".to_owned(),
                            Err(err) => break format!("{:?}", err.kind()),
                            Ok(_) => {}
                        },
                        _ = drip.tick() => {
                            if let Err(err) = socket.write_all(b"X-Drip: 1\r\n").await {
                                break format!("write {:?}", err.kind());
                            }
                        }
                    }
                };
                cut.fetch_add(1, Ordering::SeqCst);
                Some((how, since.elapsed()))
            })
        })
        .collect();
    wait_until(
        "the idle connections to be opened",
        Duration::from_secs(30),
        || async {
            let done = opened.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst);
            (done == IDLE).then_some(())
        },
    )
    .await;
    let opened_in = started.elapsed();

    // Another client, on fresh connections, while those are held.
    let other = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let held = opened.load(Ordering::SeqCst) - cut.load(Ordering::SeqCst);
    let asked = Instant::now();
    let health = other.get(sandbox.url("/healthz")).send().await;
    let health_took = asked.elapsed();
    let asked = Instant::now();
    let created = other
        .post(sandbox.url("/api/v1/jobs"))
        .bearer_auth(&sandbox.alpha.key)
        .json(&json!({"capability": "image.generate", "prompt": "edge"}))
        .send()
        .await;
    let create_took = asked.elapsed();
    println!(
        "m6: {} of {IDLE} idle connections opened in {:.2}s ({} refused); with {held} held, \
         /healthz answered {:?} in {} ms, a job creation {:?} in {} ms",
        opened.load(Ordering::SeqCst),
        opened_in.as_secs_f64(),
        refused.load(Ordering::SeqCst),
        health.as_ref().map(|r| r.status()),
        health_took.as_millis(),
        created.as_ref().map(|r| r.status()),
        create_took.as_millis(),
    );
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "connections were refused"
    );
    assert_eq!(health.expect("/healthz").status(), StatusCode::OK);
    assert_eq!(created.expect("job creation").status(), StatusCode::CREATED);
    assert!(health_took < Duration::from_secs(2) && create_took < Duration::from_secs(2));

    // The server cuts every one of them at the head deadline (the clients would go on).
    let slack = Duration::from_secs(5);
    let all_cut = tokio::time::timeout(header_timeout + slack, futures::future::join_all(idle));
    let lifetimes = match all_cut.await {
        Ok(lifetimes) => lifetimes,
        Err(_) => panic!(
            "{} of {IDLE} idle connections still open {:?} after they opened",
            IDLE - cut.load(Ordering::SeqCst),
            header_timeout + slack
        ),
    };
    let mut how = std::collections::BTreeMap::<String, usize>::new();
    let mut lifetimes: Vec<f64> = lifetimes
        .into_iter()
        .filter_map(|l| l.expect("idle client task"))
        .map(|(cut_how, lifetime)| {
            *how.entry(cut_how).or_default() += 1;
            lifetime.as_secs_f64()
        })
        .collect();
    lifetimes.sort_by(f64::total_cmp);
    println!(
        "m6: all {} cut by the server ({how:?}); lifetime min {:.2}s, p50 {:.2}s, max {:.2}s \
         (head deadline {header_timeout:?})",
        lifetimes.len(),
        lifetimes[0],
        atelier_tests::percentile(&lifetimes, 0.5),
        lifetimes[lifetimes.len() - 1],
    );
    assert_eq!(lifetimes.len(), IDLE);
    // Cut at the head deadline: not before (that would be something else), nor long after.
    let deadline = header_timeout.as_secs_f64();
    assert!(lifetimes[0] > deadline - 0.5, "{}", lifetimes[0]);
    assert!(
        lifetimes[IDLE - 1] < deadline + 2.0,
        "{}",
        lifetimes[IDLE - 1]
    );
    // And it still serves.
    let health = other
        .get(sandbox.url("/healthz"))
        .send()
        .await
        .expect("/healthz");
    assert_eq!(health.status(), StatusCode::OK);
    api.stop().await;
    sandbox.teardown().await;
}

/// The sending end of a request body, and the request in flight.
type HeldUpload = (
    futures::channel::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    JoinHandle<Result<reqwest::Response, reqwest::Error>>,
);

/// A multipart upload whose body sends its head, then nothing.
fn stalled_upload(sandbox: &Sandbox) -> HeldUpload {
    let (mut tx, rx) = futures::channel::mpsc::channel(4);
    let head = "--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\
                Content-Type: image/png\r\n\r\n";
    tx.try_send(Ok(bytes::Bytes::from(head)))
        .expect("queueing the head");
    let request = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(reqwest::Body::wrap_stream(rx));
    (tx, tokio::spawn(request.send()))
}

/// One small upload on its own connection: its status, `Retry-After` and body.
async fn upload_one(sandbox: &Sandbox) -> (StatusCode, Option<String>, serde_json::Value) {
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(gradient_png(16, 16)).file_name("small.png"),
    );
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .header("connection", "close")
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        response.status(),
        retry_after,
        response.json().await.unwrap_or_default(),
    )
}

/// M6, uploads: each holds a part buffer of 8-16 MiB, and a body that never ends used to hold
/// it for ever. Now, with a cap of one upload: a second one is shed at once (503,
/// `Retry-After`) while a stalled one holds the slot; the stalled one is cut after the
/// body's idle deadline; then the slot serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_and_uploads_beyond_the_cap_are_shed() {
    let mut sandbox = Sandbox::provision(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    // Long enough that the second upload reaches the api while the stalled one still holds
    // the slot, on a loaded machine too (3 s was not, once, with the browser test beside it).
    let idle = Duration::from_secs(6);
    let mut config = sandbox.api_config();
    config.http.body_idle_timeout = idle;
    config.http.max_uploads = 1;
    let api = Api::start(config).await;
    sandbox.base = api.base.clone();

    let started = Instant::now();
    let (body, stalled) = stalled_upload(&sandbox);
    let (status, retry_after, answer) = wait_until(
        "an upload to be shed while the stalled one holds the slot",
        idle,
        || async {
            let (status, retry_after, answer) = upload_one(&sandbox).await;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some((status, retry_after, answer))
        },
    )
    .await;
    println!("m6 uploads: a second upload: {status}, Retry-After {retry_after:?}, {answer}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(answer["error"].is_string(), "{answer}");

    let cut = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("the stalled upload is answered or cut")
        .expect("upload task");
    let took = started.elapsed();
    let outcome = match &cut {
        Ok(response) => format!("answered {}", response.status()),
        Err(err) => format!("cut: {err}"),
    };
    println!(
        "m6 uploads: the stalled upload {outcome} after {:.2}s (body idle deadline {idle:?})",
        took.as_secs_f64()
    );
    assert!(took < idle + Duration::from_secs(3));
    if let Ok(response) = cut {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    drop(body);
    let (status, _, answer) = upload_one(&sandbox).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    api.stop().await;
    sandbox.teardown().await;
}
