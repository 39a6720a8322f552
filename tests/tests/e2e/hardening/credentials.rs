//! Issue #14, found by running it: `load-bench` started without `.local/env` built its S3
//! client from the AWS SDK's default chain, whose last resort asked the cloud metadata address.
//! Now the roles and the tools refuse to start without explicit S3 credentials, naming the
//! variables, and the roles log the source they use.

use std::process::Stdio;

use tokio::process::Command;

use super::*;
use atelier_tests::process::binary;

/// Every variable the AWS SDK's chain would read credentials from.
const AWS_CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "ATELIER_S3_CREDENTIALS",
];

/// Runs `program args` with the sandbox's settings but no S3 credentials; it must exit
/// (not hang on a credential chain) within 30 s. Returns its exit success and its stderr.
async fn run_without_credentials(
    sandbox: &Sandbox,
    program: &str,
    args: &[&str],
) -> (bool, String) {
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(sandbox.env())
        .env("ATELIER_HTTP_ADDR", "127.0.0.1:0")
        .env("ATELIER_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in AWS_CREDENTIALS {
        command.env_remove(name);
    }
    let child = command.spawn().expect("spawning");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not exit without credentials"))
        .expect("waiting");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_tools_refuse_to_start_without_s3_credentials() {
    let sandbox = Sandbox::provision(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let atelier = binary();
    let atelier = atelier.to_str().expect("binary path");
    let runs: [(&str, &[&str]); 3] = [
        (atelier, &["api"]),
        (atelier, &["worker", "upscale"]),
        (env!("CARGO_BIN_EXE_load-bench"), &["--jobs", "1"]),
    ];
    for (program, args) in runs {
        let (succeeded, stderr) = run_without_credentials(&sandbox, program, args).await;
        let name = program.rsplit('/').next().unwrap_or(program);
        println!(
            "credentials: {name} {args:?} without keys: {}",
            stderr.trim().lines().last().unwrap_or("")
        );
        assert!(!succeeded, "{name} {args:?} started without credentials");
        assert!(
            stderr.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
                && stderr.contains("ATELIER_S3_CREDENTIALS=chain"),
            "{name} {args:?} must name the variables: {stderr}"
        );
    }
    sandbox.teardown().await;
}

/// With keys, a role names the source in its start-up log (and never the secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_logs_which_s3_credentials_it_uses() {
    let sandbox = Sandbox::provision(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let port = atelier_tests::process::free_port();
    let mut child = Command::new(binary())
        .arg("api")
        .envs(sandbox.env())
        .env("ATELIER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ATELIER_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("ATELIER_S3_CREDENTIALS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning the api");
    // The roles log to standard output.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut log = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        let mut chunk = [0u8; 4096];
        loop {
            let read = stdout.read(&mut chunk).await.expect("reading stdout");
            if read == 0 {
                return false;
            }
            log.push_str(&String::from_utf8_lossy(&chunk[..read]));
            if log.contains("keys from AWS_ACCESS_KEY_ID") {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    assert!(found, "no credentials source in the start-up log: {log}");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("the sandbox's S3 secret");
    assert!(!log.contains(&secret), "the secret leaked into the log");
    sandbox.teardown().await;
}
