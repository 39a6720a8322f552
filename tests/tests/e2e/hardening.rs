//! The review's HIGH findings (issue #14, docs/hardening.md), each as the scenario that
//! showed it: a hostile or hung peer must cost one partner its own request, never the
//! platform's memory, a worker slot or another partner's webhooks.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use atelier_kit::config::S3Timeouts;
use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Sandbox, Settings},
    wait_until,
};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// A TCP server that accepts and never answers (it reads and discards, so a client's
/// writes never block), until told to pass new connections through to `upstream`.
struct Tarpit {
    addr: String,
    pass: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Tarpit {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("tarpit");
        let addr = listener.local_addr().expect("tarpit address").to_string();
        let pass = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (pass2, accepted2) = (pass.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                if pass2.load(Ordering::SeqCst) {
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        if let Ok(mut up) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut socket, &mut up).await;
                        }
                    });
                } else {
                    accepted2.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut sink = vec![0u8; 64 * 1024];
                        while socket.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                    });
                }
            }
        });
        Self {
            addr,
            pass,
            accepted,
        }
    }
}

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
