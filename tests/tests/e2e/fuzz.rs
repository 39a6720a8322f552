//! The fuzz gate of the HTTP faces: schemathesis (from the project's venv) generates requests
//! for every operation of `/api/v1/openapi.json` and sends them to a real `atelier all` on
//! loopback. It passes when nothing answers 5xx, every answer matches its documented status,
//! content type and schema, schema-valid requests are accepted and schema-invalid ones
//! refused. Its configuration and hooks are in `tests/fuzz/`.
//!
//! Bounded for the gate: `ATELIER_FUZZ_EXAMPLES` cases per operation (default 20) and
//! `ATELIER_FUZZ_SECONDS` in all (default 150). The README's test section has the long form.

use std::{path::PathBuf, process::Stdio, time::Duration};

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    process::{free_port, start},
    sandbox::{Sandbox, Settings},
};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `schemathesis` beside `ATELIER_TEST_PYTHON` (deploy/checks/run.sh installs it there).
fn schemathesis() -> PathBuf {
    let python = std::env::var("ATELIER_TEST_PYTHON")
        .expect("ATELIER_TEST_PYTHON names the venv's python (deploy/test.sh sets it)");
    let path = PathBuf::from(python).with_file_name("schemathesis");
    assert!(
        path.exists(),
        "{} is missing: run deploy/checks/run.sh to install the venv",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_every_face_survives_the_fuzz() {
    let program = schemathesis();
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    // Every URL the generator makes points here (tests/fuzz/hooks.py): a PNG to fetch and a
    // receiver for webhooks. `localhost`, because the document asks for a named host.
    let peer = Peer::start().await;
    peer.serve("input.png", File::plain(gradient_png(64, 64)));
    let peer_base = peer.base.replace("127.0.0.1", "localhost");
    let mut platform = start(&sandbox, "all", port).await;
    // Creations and priced tasks charge credits; a schema-valid request should not be
    // refused for want of them.
    atelier_api::credits::grant(&sandbox.pool, sandbox.alpha.id, 1_000_000_000, "fuzz")
        .await
        .expect("granting credits");

    let examples = setting("ATELIER_FUZZ_EXAMPLES", 20);
    let seconds = setting("ATELIER_FUZZ_SECONDS", 150);
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let report = std::env::temp_dir().join(format!("atelier-fuzz-{port}.xml"));
    let started = std::time::Instant::now();
    let mut command = tokio::process::Command::new(&program);
    command
        .arg("--config-file")
        .arg(fuzz_dir.join("schemathesis.toml"))
        .arg("run")
        .arg(sandbox.url("/api/v1/openapi.json"))
        .args([
            "--header",
            &format!("Authorization: Bearer {}", sandbox.alpha.key),
        ])
        .args(["--generation-with-security-parameters", "false"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--max-time", &seconds.to_string()])
        .args(["--request-timeout", "10"])
        // One worker: hypothesis's lambda-description cache is not thread-safe, and two
        // workers failed a run with "AST constructor recursion depth mismatch".
        .args(["--workers", "1", "--no-color"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&report)
        .env("ATELIER_FUZZ_PEER", &peer_base)
        .env("ATELIER_FUZZ_HOOKS", fuzz_dir.join("hooks.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Ok(seed) = std::env::var("ATELIER_FUZZ_SEED") {
        command.args(["--seed", &seed]);
    }
    // The run's own bound is --max-time; this one catches a hang past it.
    let output = tokio::time::timeout(Duration::from_secs(seconds + 120), command.output())
        .await
        .expect("schemathesis ended within its time bound")
        .expect("running schemathesis");
    let summary = String::from_utf8_lossy(&output.stdout);
    println!("{summary}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    println!(
        "fuzz: {:.0} s, {examples} examples per operation, report {}",
        started.elapsed().as_secs_f64(),
        report.display()
    );
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {:?}); the summary is above",
        output.status.code()
    );
    platform.kill().await.ok();
    sandbox.teardown().await;
}
