//! The review's findings (issue #14, docs/hardening.md), each as the scenario that
//! showed it: a hostile or hung peer must cost one partner its own request, never the
//! platform's memory, a worker slot or another partner's webhooks. One file per kind of peer:
//! `s3` (H3), `nats` (H2), `uploads` (H1), `webhooks` (H4), `input` (M1), `claims` (M2, M3,
//! L6), `worker_inputs` (M5), `edge` (M6), `keys` (M4), `answers` (L1, L10), `orphans` (L4,
//! L5), `multipart` (L4), `webhook_edges` (L2, L3, L9), `credentials` (no cloud credential
//! chain by accident).

mod answers;
mod claims;
mod credentials;
mod edge;
mod input;
mod keys;
mod multipart;
mod nats;
mod orphans;
mod s3;
mod uploads;
mod webhook_edges;
mod webhooks;
mod worker_inputs;

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
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// A TCP server that accepts and never answers (it reads and discards, so a client's
/// writes never block), until told to pass new connections through to `upstream`.
pub(super) struct Tarpit {
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

/// The resident set of this process (the api runs in it), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
