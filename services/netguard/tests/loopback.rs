//! End-to-end behaviour against a raw HTTP/1.1 server on 127.0.0.1. Loopback only: these
//! machines forbid traffic to private or public addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atelier_netguard::{FetchError, GuardConfig, GuardError, GuardedClient, blocked_reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the test server does with each connection.
#[derive(Clone)]
enum Script {
    /// Writes these bytes and closes.
    Reply(String),
    /// Waits, then writes the reply.
    Delay(Duration, String),
    /// Sends headers without a length, then a chunk every `Duration` forever.
    Drip(Duration),
}

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let (tx, requests) = mpsc::unbounded_channel();
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(stream, script.clone(), tx.clone()));
            }
        });
        Server {
            addr,
            connections,
            requests,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn handle(mut stream: TcpStream, script: Script, requests: mpsc::UnboundedSender<String>) {
    let request = read_request(&mut stream).await;
    let _ = requests.send(request);
    match script {
        Script::Reply(reply) => {
            let _ = stream.write_all(reply.as_bytes()).await;
        }
        Script::Delay(delay, reply) => {
            tokio::time::sleep(delay).await;
            let _ = stream.write_all(reply.as_bytes()).await;
        }
        Script::Drip(every) => {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while stream.write_all(b"x").await.is_ok() {
                tokio::time::sleep(every).await;
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk).await {
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn reply(status: &str, headers: &[&str], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

fn guarded(allow_private_networks: bool) -> GuardedClient {
    GuardedClient::new(GuardConfig {
        allow_private_networks,
        request_timeout: Duration::from_secs(5),
        ..GuardConfig::default()
    })
    .unwrap()
}

/// Proves nobody connected: the kernel queues a completed handshake even before `accept`.
async fn assert_never_connected(listener: &TcpListener) {
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "the server saw a connection");
}

#[tokio::test]
async fn loopback_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = guarded(false);
    let urls = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ];
    for url in &urls {
        let err = client.fetch(url, 1024).await.expect_err(url);
        assert!(err.is_blocked(), "{url}: {err}");
        assert!(!err.is_retryable(), "{url}");

        let err = client
            .send(client.client().post(url).body("{}"), 1024)
            .await
            .expect_err(url);
        assert!(err.is_blocked(), "{url}: {err}");
    }
    assert_never_connected(&listener).await;
}

#[tokio::test]
async fn raw_client_is_guarded_by_the_resolver_for_names() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = guarded(false);
    let err = client
        .client()
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .unwrap_err();
    let reason = blocked_reason(&err).expect("the resolver's refusal is visible");
    assert!(
        reason.starts_with("destination localhost is blocked: "),
        "{reason}"
    );
    assert!(FetchError::from(err).is_blocked());
    assert_never_connected(&listener).await;
}

#[tokio::test]
async fn a_foreign_builder_is_still_sent_through_the_guard() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let foreign = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = guarded(false)
        .send(foreign.get(format!("http://localhost:{port}/")), 1024)
        .await
        .unwrap_err();
    assert!(err.is_blocked(), "{err}");
    assert_never_connected(&listener).await;
}

#[tokio::test]
async fn loopback_works_when_opted_in() {
    let server = Server::start(Script::Reply(reply(
        "200 OK",
        &["Content-Type: image/png"],
        "hello",
    )))
    .await;
    let client = guarded(true);
    for url in [
        server.url("/a.png"),
        format!("http://localhost:{}/a.png", server.addr.port()),
    ] {
        let fetched = client.fetch(&url, 1024).await.unwrap();
        assert_eq!(&fetched.bytes[..], b"hello");
        assert_eq!(fetched.content_type.as_deref(), Some("image/png"));
        assert_eq!(fetched.final_url.path(), "/a.png");
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = Server::start(Script::Reply(reply("200 OK", &[], "secret"))).await;
    let location = format!("Location: {}", target.url("/secret"));
    let server = Server::start(Script::Reply(reply("302 Found", &[&location], ""))).await;
    let client = guarded(true);

    let err = client.fetch(&server.url("/"), 1024).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "redirects are not followed (Location: {})",
            target.url("/secret")
        )
    );
    assert!(!err.is_retryable());

    let sent = client
        .send(client.client().get(server.url("/")), 1024)
        .await
        .unwrap();
    assert_eq!(sent.status, reqwest::StatusCode::FOUND);
    assert!(matches!(
        sent.error_for_status(),
        Err(FetchError::Redirect { .. })
    ));
    assert_eq!(target.connections(), 0);
}

#[tokio::test]
async fn bodies_over_the_cap_fail() {
    let body = "x".repeat(1000);
    // Declared length: refused before reading.
    let declared = Server::start(Script::Reply(reply("200 OK", &[], &body))).await;
    // No length, body until close: refused while streaming.
    let undeclared = Server::start(Script::Reply(format!(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{body}"
    )))
    .await;
    let client = guarded(true);
    for server in [&declared, &undeclared] {
        let err = client.fetch(&server.url("/"), 999).await.unwrap_err();
        assert_eq!(err, FetchError::TooLarge { limit: 999 });
        assert!(!err.is_retryable());
        let fetched = client.fetch(&server.url("/"), 1000).await.unwrap();
        assert_eq!(fetched.bytes.len(), 1000);
    }
    let sent = client
        .send(client.client().get(undeclared.url("/")), 10)
        .await
        .unwrap();
    assert_eq!(&sent.body[..], b"xxxxxxxxxx");
    assert!(sent.body_truncated);
}

#[tokio::test]
async fn endless_body_is_cut_at_the_cap() {
    let server = Server::start(Script::Drip(Duration::from_millis(1))).await;
    let err = guarded(true).fetch(&server.url("/"), 50).await.unwrap_err();
    assert_eq!(err, FetchError::TooLarge { limit: 50 });
}

/// `open` is `fetch` read a chunk at a time: the same cap, checked as the chunks arrive.
#[tokio::test]
async fn downloads_stream_under_the_same_cap() {
    let body = "x".repeat(100_000);
    let server = Server::start(Script::Reply(reply("200 OK", &[], &body))).await;
    let mut download = guarded(true).open(&server.url("/"), 100_000).await.unwrap();
    assert_eq!(download.declared_len, Some(100_000));
    let mut read = 0;
    while let Some(chunk) = download.chunk().await.unwrap() {
        read += chunk.len();
    }
    assert_eq!(read, 100_000);
    let drip = Server::start(Script::Drip(Duration::from_millis(1))).await;
    let mut download = guarded(true).open(&drip.url("/"), 20).await.unwrap();
    let err = loop {
        match download.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the drip never ends"),
            Err(err) => break err,
        }
    };
    assert_eq!(err, FetchError::TooLarge { limit: 20 });
}

#[tokio::test]
async fn slow_servers_time_out() {
    let client = GuardedClient::new(GuardConfig {
        allow_private_networks: true,
        request_timeout: Duration::from_millis(300),
        ..GuardConfig::default()
    })
    .unwrap();

    let silent = Server::start(Script::Delay(
        Duration::from_secs(10),
        reply("200 OK", &[], "late"),
    ))
    .await;
    let started = std::time::Instant::now();
    let err = client.fetch(&silent.url("/"), 1024).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));

    let err = client
        .send(client.client().post(silent.url("/")).body("{}"), 1024)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");

    // Headers on time, body never finishing.
    let drip = Server::start(Script::Drip(Duration::from_millis(50))).await;
    let err = client.fetch(&drip.url("/"), 1 << 20).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn status_errors_carry_retryability() {
    let client = guarded(true);
    for (status, retryable) in [
        ("404 Not Found", false),
        ("400 Bad Request", false),
        ("410 Gone", false),
        ("408 Request Timeout", true),
        ("429 Too Many Requests", true),
        ("500 Internal Server Error", true),
        ("503 Service Unavailable", true),
    ] {
        let server = Server::start(Script::Reply(reply(status, &[], "no"))).await;
        let err = client.fetch(&server.url("/"), 1024).await.unwrap_err();
        assert!(matches!(err, FetchError::Status { .. }), "{status}: {err}");
        assert_eq!(err.is_retryable(), retryable, "{status}");
        assert!(
            err.to_string().starts_with("unexpected http status "),
            "{err}"
        );
    }
}

#[tokio::test]
async fn send_posts_and_reports_the_answer() {
    let mut server = Server::start(Script::Reply(reply(
        "429 Too Many Requests",
        &["Retry-After: 7"],
        "slow down",
    )))
    .await;
    let client = guarded(true);
    let request = client
        .client()
        .post(server.url("/hook"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .body(r#"{"ok":true}"#);
    let sent = client.send(request, 1024).await.unwrap();
    assert_eq!(sent.status, reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sent.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(&sent.body[..], b"slow down");
    assert!(!sent.body_truncated);
    assert!(sent.elapsed > Duration::ZERO);
    assert!(sent.error_for_status().unwrap_err().is_retryable());

    let seen = server.requests.recv().await.unwrap().to_ascii_lowercase();
    assert!(seen.starts_with("post /hook http/1.1\r\n"), "{seen}");
    assert!(seen.contains("webhook-id: msg_1\r\n"), "{seen}");
    assert!(
        seen.contains(&format!(
            "user-agent: atelier/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{seen}"
    );
    assert!(seen.ends_with(r#"{"ok":true}"#), "{seen}");
}

#[tokio::test]
async fn refused_connections_are_retryable_not_blocked() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = guarded(true)
        .fetch(&format!("http://127.0.0.1:{port}/"), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err}");
    assert!(err.is_retryable());
    assert!(!err.is_blocked());
}

#[tokio::test]
async fn bad_urls_are_fatal() {
    let client = guarded(true);
    for (url, check) in [
        (
            "file:///etc/passwd",
            (|e: &GuardError| matches!(e, GuardError::Scheme(_))) as fn(&GuardError) -> bool,
        ),
        ("http://user:pw@localhost/", |e| {
            matches!(e, GuardError::Credentials)
        }),
        ("http://", |e| matches!(e, GuardError::InvalidUrl(_))),
    ] {
        match client.fetch(url, 10).await {
            Err(FetchError::Guard(e)) => assert!(check(&e), "{url}: {e}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}
