//! Running the real `atelier` binary against a sandbox, for scenarios that kill processes
//! and for benchmarks that measure one role's own memory.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

use crate::{sandbox::Sandbox, wait_until};

/// `ATELIER_BIN`, or the `atelier` binary in the same target folder as the running
/// executable (tests run from `target/<profile>/deps/`, binaries from `target/<profile>/`).
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("ATELIER_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("atelier");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p atelier-cli)",
        path.display()
    );
    path
}

/// A free loopback port for a child process to bind.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probing for a port");
    probe.local_addr().expect("probe address").port()
}

/// Starts `atelier <role>` with the sandbox's settings on `port` and waits until it is ready.
/// The child is killed when dropped.
pub async fn start(sandbox: &Sandbox, role: &str, port: u16) -> Child {
    start_with(sandbox, &[role], port, &[]).await
}

/// [`start`] with arguments after `atelier` (`["worker", "upscale"]`) and extra environment.
pub async fn start_with(
    sandbox: &Sandbox,
    args: &[&str],
    port: u16,
    env: &[(String, String)],
) -> Child {
    let role = args.join(" ");
    let mut command = Command::new(binary());
    command
        .args(args)
        .envs(sandbox.env())
        .envs(env.iter().cloned())
        .env("ATELIER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .unwrap_or_else(|err| panic!("starting atelier {role}: {err}"));
    let http = reqwest::Client::new();
    wait_until(
        &format!("atelier {role} to be ready"),
        Duration::from_secs(60),
        || {
            let http = http.clone();
            async move {
                let response = http
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .send()
                    .await;
                response
                    .is_ok_and(|r| r.status().is_success())
                    .then_some(())
            }
        },
    )
    .await;
    child
}

/// The CPU time a process has used so far, user plus system (`/proc/<pid>/stat`); zero
/// once it has exited.
pub fn cpu_time(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // In USER_HZ ticks, which the kernel's /proc interface fixes at 100 a second.
    std::time::Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The peak resident set of a process (`VmHWM`), in KiB; 0 once it has exited.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
