//! Killing the platform (SIGKILL, the real binary) with a job in flight loses nothing:
//! after a restart the job reaches a terminal state once and its webhook arrives once.

use std::time::Duration;

use atelier_tests::{
    chaos::proxy::{Mode, Proxy},
    gradient_png,
    peer::{File, Peer},
    process::{binary, free_port, start},
    sandbox::{Sandbox, Settings},
    wait_until,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_platform_finishes_its_job_exactly_once_after_restart() {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    let peer = Peer::start().await;
    // The input answers slowly, so the job is still running when the platform dies.
    let slow = File {
        delay: Duration::from_secs(3),
        ..File::plain(gradient_png(64, 64))
    };
    let input = peer.serve("slow.png", slow);

    let body = json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k",
                      "webhookUrl": peer.hook_url()});
    let mut platform = start(&sandbox, "all", port).await;
    let (_, created) = sandbox
        .post_job(&sandbox.alpha, &body, Some("restart-1"))
        .await;
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["running"],
            Duration::from_secs(30),
        )
        .await;
    platform.kill().await.expect("SIGKILL");
    platform.wait().await.ok();

    let mut platform = start(&sandbox, "all", port).await;
    // A client retrying with its Idempotency-Key gets the same job.
    let (_, retried) = sandbox
        .post_job(&sandbox.alpha, &body, Some("restart-1"))
        .await;
    assert_eq!(retried["job"]["id"], job_id.as_str());
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["attempts"].as_i64().unwrap() >= 2,
        "the killed attempt was retried: {job}"
    );
    wait_until("the webhook", Duration::from_secs(30), || async {
        (!peer.for_job(&job_id).is_empty()).then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    assert_eq!(peer.for_job(&job_id).len(), 1, "exactly one webhook");
    platform.kill().await.ok();
    sandbox.teardown().await;
}

/// A role started while PostgreSQL is unreachable waits for it, unready, and serves once it
/// answers. The chaos suite found the api and the webhook-service exiting instead (a
/// webhook-service restarted during a PostgreSQL crash exited twice), which on Kubernetes
/// means a crash loop's growing back-off after every database blip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_started_while_postgresql_is_down_wait_for_it() {
    let sandbox = Sandbox::provision(Settings::default()).await;
    let (_, rest) = sandbox.database_url.split_once('@').unwrap();
    let (upstream, _) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(upstream.parse().unwrap()).await.unwrap();
    proxy.set(Mode::Refuse);
    let database_url = sandbox
        .database_url
        .replace(upstream, &proxy.addr.to_string());
    // The api answers nothing until it has its database (its listener is bound, so a
    // request would wait); the webhook-service answers its health port unready.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut roles = Vec::new();
    for role in ["api", "webhook"] {
        let port = free_port();
        let child = tokio::process::Command::new(binary())
            .arg(role)
            .envs(sandbox.env())
            .env("ATELIER_DATABASE_URL", &database_url)
            .env("ATELIER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let before = proxy.connections();
        wait_until(
            &format!("{role} to try the database three times"),
            Duration::from_secs(30),
            || async { (proxy.connections() >= before + 3).then_some(()) },
        )
        .await;
        roles.push((role, port, child));
    }
    for (role, port, child) in &mut roles {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{role} exited while the database was down"
        );
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        assert!(
            !ready.is_ok_and(|r| r.status().is_success()),
            "{role} is not ready without its database"
        );
    }
    proxy.set(Mode::Pass);
    for (role, port, _) in &roles {
        wait_until(
            &format!("{role} to be ready once the database answers"),
            Duration::from_secs(30),
            || async {
                let ready = http
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .send()
                    .await;
                ready.is_ok_and(|r| r.status().is_success()).then_some(())
            },
        )
        .await;
    }
    for (_, _, mut child) in roles {
        child.kill().await.ok();
    }
    sandbox.teardown().await;
}
