//! H3: a hung S3 costs an attempt, never a worker slot.

use super::*;

/// H3: S3 accepts the worker's connections and never answers. Before: the upload hung with
/// the heartbeat alive, so both slots were lost until the job's deadline (and the upload
/// itself never ended). After: every S3 call times out, the attempt is released and
/// retried, and once S3 answers again both jobs succeed well inside their deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_s3_costs_an_attempt_never_a_worker_slot() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        run_timeout: Duration::from_secs(90),
        ..Settings::default()
    })
    .await;
    let endpoint = sandbox.s3.endpoint.clone().expect("a local s3 endpoint");
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let tarpit = Tarpit::start(upstream).await;
    let mut worker = sandbox.worker_config();
    worker.s3.endpoint = Some(format!("http://{}", tarpit.addr));
    worker.s3.timeouts = S3Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
    };
    let stop = CancellationToken::new();
    let token = stop.clone();
    let running = tokio::spawn(async move {
        atelier_worker::run(
            worker,
            atelier_upscale::UpscaleEngine::default(),
            None,
            token,
        )
        .await
    });

    let peer = Peer::start().await;
    let input = peer.serve("input.png", File::plain(gradient_png(32, 24)));
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let (status, created) = sandbox
            .post_job(
                &sandbox.alpha,
                &json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k"}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        jobs.push(created["job"]["id"].as_str().unwrap().to_owned());
    }
    // Both slots are inside S3 calls that will never be answered.
    wait_until(
        "both slots to reach the hung s3",
        Duration::from_secs(30),
        || async { (tarpit.accepted.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;
    let hung = Instant::now();
    tarpit.pass.store(true, Ordering::SeqCst);
    // Far less than the 90 s deadline: the hung calls timed out and were retried (by the
    // SDK, or as a new attempt), so the slots came back on their own.
    for job in &jobs {
        let done = sandbox
            .wait_for_job(
                &sandbox.alpha,
                job,
                &["succeeded", "failed"],
                Duration::from_secs(40),
            )
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    println!(
        "h3: {} connections tarpitted; both jobs succeeded {:.1}s after s3 hung",
        tarpit.accepted.load(Ordering::SeqCst),
        hung.elapsed().as_secs_f64()
    );
    stop.cancel();
    running
        .await
        .expect("worker task")
        .expect("worker stopped cleanly");
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

/// H3, the backstop: S3 hangs and its client waits as long as it likes (the bounds it had
/// before: none). Before: the upload outlived the attempt's deadline, so both slots were
/// lost for good and a later job never ran. After: the whole attempt is under the deadline,
/// the hung jobs end `failed`, and the slots serve the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_ends_at_its_deadline_whatever_hangs() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        max_attempts: 1,
        run_timeout: Duration::from_secs(6),
        ..Settings::default()
    })
    .await;
    let endpoint = sandbox.s3.endpoint.clone().expect("a local s3 endpoint");
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let tarpit = Tarpit::start(upstream).await;
    let mut worker = sandbox.worker_config();
    worker.s3.endpoint = Some(format!("http://{}", tarpit.addr));
    worker.s3.timeouts = S3Timeouts {
        connect: Duration::from_secs(3600),
        read: Duration::from_secs(3600),
        attempt: Duration::from_secs(3600),
    };
    let stop = CancellationToken::new();
    let token = stop.clone();
    let running = tokio::spawn(async move {
        atelier_worker::run(
            worker,
            atelier_upscale::UpscaleEngine::default(),
            None,
            token,
        )
        .await
    });
    let peer = Peer::start().await;
    let input = peer.serve("input.png", File::plain(gradient_png(32, 24)));
    let upscale = json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k"});
    let mut hung = Vec::new();
    for _ in 0..2 {
        let (status, created) = sandbox.post_job(&sandbox.alpha, &upscale, None).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        hung.push(created["job"]["id"].as_str().unwrap().to_owned());
    }
    wait_until(
        "both slots to reach the hung s3",
        Duration::from_secs(30),
        || async { (tarpit.accepted.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;
    for job in &hung {
        let done = sandbox
            .wait_for_job(&sandbox.alpha, job, &["failed"], Duration::from_secs(20))
            .await;
        println!("h3: hung job ended {}: {}", done["status"], done["error"]);
    }
    tarpit.pass.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (status, created) = sandbox.post_job(&sandbox.alpha, &upscale, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let next = created["job"]["id"].as_str().unwrap().to_owned();
    let done = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &next,
            &["succeeded", "failed"],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    println!(
        "h3: the next job ran on a freed slot in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    stop.cancel();
    let _ = running.await;
    sandbox.teardown().await;
}
