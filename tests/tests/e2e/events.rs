//! The event feed (issue #17): a partner whose receiver missed every webhook catches up from
//! `GET /api/v1/events` exactly — each change of each of its jobs once, in order, and nothing of
//! another client's — and a Server-Sent Events stream cut in the middle and resumed with
//! `Last-Event-ID` loses and repeats nothing.

use std::{collections::HashMap, time::Duration};

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const TERMINAL: [&str; 4] = [
    "job.succeeded",
    "job.failed",
    "job.expired",
    "job.cancelled",
];

/// Creates an upscale for `client`: of a PNG (it succeeds) or of text (it fails for good).
async fn upscale(sandbox: &Sandbox, client: &Client, peer: &Peer, name: &str, ok: bool) -> String {
    let file = if ok {
        File::plain(gradient_png(24, 16))
    } else {
        File::plain(b"not an image at all".to_vec())
    };
    let input = peer.serve(name, file);
    let (status, created) = sandbox
        .post_job(
            client,
            &json!({"capability": "image.upscale", "imageUrls": [input], "webhookUrl": peer.hook_url()}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["job"]["id"].as_str().unwrap().to_owned()
}

/// Alpha's upscales `a<n>.png` for `n` in `numbers`, one after the other; number `failing`'s
/// input is text, so it fails.
async fn alpha_upscales(
    sandbox: &Sandbox,
    peer: &Peer,
    numbers: std::ops::Range<usize>,
    failing: usize,
) -> Vec<String> {
    let mut jobs = Vec::new();
    for n in numbers {
        let name = format!("a{n}.png");
        jobs.push(upscale(sandbox, &sandbox.alpha, peer, &name, n != failing).await);
    }
    jobs
}

/// Reads the whole feed from `after`, `limit` events a page, following `next`.
async fn read_feed(sandbox: &Sandbox, client: &Client, after: &str, limit: u32) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = after.to_owned();
    loop {
        let (status, page) = sandbox
            .get(
                client,
                &format!("/api/v1/events?after={cursor}&limit={limit}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = page["events"].as_array().unwrap();
        assert!(
            batch.len() <= limit as usize,
            "a page holds at most `limit`"
        );
        events.extend(batch.iter().cloned());
        let next = page["next"].as_str().unwrap().to_owned();
        if let Some(last) = batch.last() {
            assert_eq!(last["id"], next, "`next` is the last event's id");
        } else {
            assert_eq!(next, cursor, "an empty page keeps the cursor");
        }
        cursor = next;
        if page["hasMore"] != true {
            return events;
        }
    }
}

/// Settings where a webhook is attempted once (no retries): the events then stop with it.
fn one_attempt() -> Settings {
    Settings {
        retry_schedule: Vec::new(),
        ..Settings::default()
    }
}

/// `events` hold a terminal event and a webhook attempt for every one of `jobs`.
fn every_end_in(events: &[Value], jobs: &[String]) -> bool {
    jobs.iter().all(|job| {
        let of_job = |kind: &str| {
            events
                .iter()
                .any(|e| e["jobId"] == job.as_str() && e["type"] == kind)
        };
        TERMINAL.iter().any(|kind| of_job(kind)) && of_job("webhook.attempt")
    })
}

/// Waits until the feed holds a terminal event for each job and a webhook attempt for each;
/// returns the whole feed.
async fn feed_with_every_end(sandbox: &Sandbox, client: &Client, jobs: &[String]) -> Vec<Value> {
    wait_until(
        "a terminal event and a webhook attempt for every job",
        WAIT,
        || async {
            let events = read_feed(sandbox, client, "", 7).await;
            every_end_in(&events, jobs).then_some(events)
        },
    )
    .await
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `(tx, id)` of a cursor: the feed's order.
fn order(id: &str) -> (u64, i64) {
    let (tx, row) = id.split_once('-').expect("a cursor is <tx>-<id>");
    (tx.parse().unwrap(), row.parse().unwrap())
}

/// Checks that `events` are in order without a repeat, and that each job's status events tell
/// its life as the API ends it: created first, one terminal event, last, matching the job.
async fn assert_tells_each_life(
    sandbox: &Sandbox,
    client: &Client,
    events: &[Value],
    jobs: &[String],
) {
    let orders: Vec<(u64, i64)> = ids(events).iter().map(|id| order(id)).collect();
    assert!(
        orders.windows(2).all(|w| w[0] < w[1]),
        "events in strictly increasing order, none twice: {orders:?}"
    );
    let mut lives: HashMap<&str, Vec<&Value>> = HashMap::new();
    for event in events {
        let job = event["jobId"].as_str().unwrap();
        assert!(
            jobs.iter().any(|j| j == job),
            "an event of a job not the client's: {event}"
        );
        if event["type"] != "webhook.attempt" {
            lives.entry(job).or_default().push(event);
        }
    }
    for job in jobs {
        let life = &lives[job.as_str()];
        let kinds: Vec<&str> = life.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[0], "job.created", "{job}: {kinds:?}");
        assert_eq!(life[0]["status"], "queued", "{job}");
        let ends: Vec<&&str> = kinds.iter().filter(|k| TERMINAL.contains(k)).collect();
        assert_eq!(ends.len(), 1, "{job}: one terminal event: {kinds:?}");
        assert_eq!(
            Some(ends[0]),
            kinds.last(),
            "{job}: the end is last: {kinds:?}"
        );
        for event in life.iter().skip(1) {
            let kind = event["type"].as_str().unwrap();
            if kind != "job.progress" {
                assert_eq!(
                    kind,
                    format!("job.{}", event["status"].as_str().unwrap()),
                    "{event}"
                );
            }
        }
        let (_, api) = sandbox.get(client, &format!("/api/v1/jobs/{job}")).await;
        let last = life.last().unwrap();
        assert_eq!(
            last["status"], api["status"],
            "{job}: the feed ends as the job does"
        );
        if api["status"] == "failed" {
            assert_eq!(last["error"]["code"], api["error"]["code"], "{job}");
        }
        assert!(kinds.contains(&"job.running"), "{job}: it ran: {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_that_missed_every_webhook_catches_up_from_the_feed_exactly() {
    // One attempt a job: the receiver's 500 is all the partner's webhook log will hold.
    let sandbox = Sandbox::start(one_attempt()).await;
    let peer = Peer::start().await;
    peer.script_hook(&[500; 64]);

    // The cursor a partner holds before anything happened: the feed is empty.
    let (status, page) = sandbox.get(&sandbox.alpha, "/api/v1/events").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["hasMore"], false);

    let jobs = alpha_upscales(&sandbox, &peer, 0..5, 2).await;
    let other = upscale(&sandbox, &sandbox.beta, &peer, "b.png", true).await;

    let events = feed_with_every_end(&sandbox, &sandbox.alpha, &jobs).await;
    assert_tells_each_life(&sandbox, &sandbox.alpha, &events, &jobs).await;
    assert!(
        events.iter().all(|e| e["jobId"] != other.as_str()),
        "another client's job is not in the feed"
    );
    // The receiver's answer is in the feed, as the webhook-service recorded it.
    for attempt in events.iter().filter(|e| e["type"] == "webhook.attempt") {
        let webhook = &attempt["webhook"];
        assert_eq!(webhook["statusCode"], 500, "{attempt}");
        assert_eq!(webhook["attempt"], 1, "{attempt}");
        assert!(webhook["latencyMs"].is_u64(), "{attempt}");
    }
    let failed = events
        .iter()
        .find(|e| e["jobId"] == jobs[2].as_str() && e["type"] == "job.failed")
        .expect("the text input's job failed");
    assert_eq!(failed["error"]["code"], "unsupported_format", "{failed}");

    // `now` is the latest event: reading after it gives what comes next, nothing before.
    let (_, now) = sandbox
        .get(&sandbox.alpha, "/api/v1/events?after=now")
        .await;
    assert_eq!(now["events"], json!([]), "{now}");
    assert_eq!(now["next"], events.last().unwrap()["id"], "{now}");

    // Pages of any size read the same feed, and reading from any event gives exactly what
    // follows it.
    assert_eq!(
        ids(&read_feed(&sandbox, &sandbox.alpha, "", 200).await),
        ids(&events)
    );
    let middle = events.len() / 2;
    let rest = read_feed(
        &sandbox,
        &sandbox.alpha,
        events[middle]["id"].as_str().unwrap(),
        3,
    )
    .await;
    assert_eq!(ids(&rest), ids(&events[middle + 1..]));

    // Beta sees its own job's life and nothing of alpha's.
    let beta = feed_with_every_end(&sandbox, &sandbox.beta, std::slice::from_ref(&other)).await;
    assert_tells_each_life(&sandbox, &sandbox.beta, &beta, std::slice::from_ref(&other)).await;

    // A cursor that is not one, or a limit out of range, is a clear 400.
    for query in [
        "after=12",
        "after=x-1",
        "after=1-2-3",
        "limit=0",
        "limit=201",
    ] {
        let (status, body) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/events?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["error"].is_string(),
            "{query}: a message says why: {body}"
        );
    }
    let (status, _) = sandbox
        .get(
            &Client {
                id: "nobody",
                key: "sk-wrong".into(),
            },
            "/api/v1/events",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sandbox.teardown().await;
}

/// A Server-Sent Events reader: yields `(id, event, data)` as they arrive.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(sandbox: &Sandbox, client: &Client, last_event_id: Option<&str>) -> Self {
        let mut request = sandbox
            .http
            .get(sandbox.url("/api/v1/events/stream"))
            .bearer_auth(&client.key);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("opening the stream");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a Server-Sent Events stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped).
    async fn next(&mut self) -> (String, String, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = String::new();
                let mut kind = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim_start().to_owned();
                    } else if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim_start().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if !id.is_empty() {
                    return (id, kind, serde_json::from_str(&data).expect("data is JSON"));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event within the wait")
                .expect("reading the stream")
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until every job has had a terminal event and a webhook attempt; returns them all.
    async fn until_every_end(&mut self, jobs: &[String], mut seen: Vec<Value>) -> Vec<Value> {
        loop {
            if every_end_in(&seen, jobs) {
                return seen;
            }
            let (id, kind, data) = self.next().await;
            assert_eq!(data["id"], id, "the SSE id is the event's cursor");
            assert_eq!(data["type"], kind, "the SSE event name is its type");
            seen.push(data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_with_last_event_id_loses_and_repeats_nothing() {
    let sandbox = Sandbox::start(one_attempt()).await;
    let peer = Peer::start().await;
    peer.script_hook(&[204; 64]);

    let mut first = SseReader::open(&sandbox, &sandbox.alpha, None).await;
    let mut beta = SseReader::open(&sandbox, &sandbox.beta, None).await;
    let mut jobs = vec![upscale(&sandbox, &sandbox.alpha, &peer, "a0.png", true).await];
    let mut received = first.until_every_end(&jobs, Vec::new()).await;
    // Cut the stream after some of the next job's events, not at a boundary of a job.
    jobs.push(upscale(&sandbox, &sandbox.alpha, &peer, "a1.png", true).await);
    for _ in 0..2 {
        received.push(first.next().await.2);
    }
    drop(first);

    // While nobody listens: more jobs, a failure among them, and beta's.
    jobs.extend(alpha_upscales(&sandbox, &peer, 2..5, 3).await);
    let other = upscale(&sandbox, &sandbox.beta, &peer, "b.png", true).await;

    let last = received.last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut resumed = SseReader::open(&sandbox, &sandbox.alpha, Some(&last)).await;
    let received = resumed.until_every_end(&jobs, received).await;

    // The stream told exactly what the feed tells, in the same order: nothing lost at the
    // cut, nothing repeated after it.
    let feed = feed_with_every_end(&sandbox, &sandbox.alpha, &jobs).await;
    assert_eq!(ids(&received), ids(&feed[..received.len()]));
    assert_tells_each_life(&sandbox, &sandbox.alpha, &received, &jobs).await;

    // `after` in the query resumes the same way when no header is sent, and the header wins.
    let response = sandbox
        .http
        .get(sandbox.url(&format!(
            "/api/v1/events/stream?after={}",
            feed[0]["id"].as_str().unwrap()
        )))
        .bearer_auth(&sandbox.alpha.key)
        .header("Last-Event-ID", feed[1]["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let mut both = SseReader {
        response,
        buffer: String::new(),
    };
    assert_eq!(
        both.next().await.0,
        feed[2]["id"].as_str().unwrap(),
        "Last-Event-ID wins"
    );
    drop(both);
    let bad = sandbox
        .http
        .get(sandbox.url("/api/v1/events/stream"))
        .bearer_auth(&sandbox.alpha.key)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Beta's stream, open all along, told beta's job and nothing of alpha's.
    let beta_seen = beta
        .until_every_end(std::slice::from_ref(&other), Vec::new())
        .await;
    assert_tells_each_life(
        &sandbox,
        &sandbox.beta,
        &beta_seen,
        std::slice::from_ref(&other),
    )
    .await;
    drop(beta);
    // `resumed` is still open: the api's shutdown ends it, so the teardown does not hang.
    sandbox.teardown().await;
    drop(resumed);
}
