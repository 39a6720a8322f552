//! One job, one trace: the api-service, an upscale worker and the webhook-service run as
//! separate processes and export their spans to an OTLP receiver in this process (the worker
//! over gRPC, the others over HTTP/protobuf). Their `/metrics` parse as OpenMetrics with the
//! reference parser and move when a job runs. With no collector listening, jobs still finish.

use std::{collections::HashMap, time::Duration};

use atelier_tests::{
    gradient_png,
    otlp::{Collector, Span},
    peer::{File, Peer},
    process::{free_port, start_with},
    sandbox::{Sandbox, Settings},
    wait_until,
};
use serde_json::{Value, json};

/// Parses an exposition with `prometheus_client`'s OpenMetrics parser (from PyPI, run by
/// `ATELIER_TEST_PYTHON`) and returns every sample as `name{labels}` → value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let python = std::env::var("ATELIER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import json, sys\n\
                  from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
                  out = {}\n\
                  for family in text_string_to_metric_families(sys.stdin.read()):\n\
                  \x20   for s in family.samples:\n\
                  \x20       labels = ','.join(f'{k}=\"{v}\"' for k, v in sorted(s.labels.items()))\n\
                  \x20       out[s.name + '{' + labels + '}'] = s.value\n\
                  print(json.dumps(out))\n";
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("running {python}: {err} (deploy/test.sh sets it)"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the exposition does not parse: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn scrape(port: u16) -> HashMap<String, f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("scraping /metrics")
        .text()
        .await
        .unwrap();
    parse_metrics(&text)
}

fn sample(metrics: &HashMap<String, f64>, key: &str) -> f64 {
    metrics.get(key).copied().unwrap_or(0.0)
}

fn upscale_job(peer: &Peer) -> Value {
    let input = peer.serve("in.png", File::plain(gradient_png(32, 32)));
    json!({"capability": "image.upscale", "imageUrls": [input], "scale": 2,
           "webhookUrl": peer.hook_url()})
}

fn by_id(spans: &[Span]) -> HashMap<&str, &Span> {
    spans.iter().map(|s| (s.span_id.as_str(), s)).collect()
}

/// The chain of span names from `span` up to the root, through spans of any process.
fn ancestry<'a>(span: &'a Span, index: &HashMap<&str, &'a Span>) -> Vec<&'a Span> {
    let mut chain = vec![span];
    let mut current = span;
    while !current.parent_span_id.is_empty() {
        let Some(parent) = index.get(current.parent_span_id.as_str()) else {
            break;
        };
        chain.push(parent);
        current = parent;
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_across_processes_and_the_metrics_move() {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let collector = Collector::start().await;
    let peer = Peer::start().await;
    let (api_port, worker_port, webhook_port) = (free_port(), free_port(), free_port());
    sandbox.base = format!("http://127.0.0.1:{api_port}");
    let _api = start_with(&sandbox, &["api"], api_port, &collector.http_env()).await;
    let _worker = start_with(
        &sandbox,
        &["worker", "upscale"],
        worker_port,
        &collector.grpc_env(),
    )
    .await;
    let _webhook = start_with(&sandbox, &["webhook"], webhook_port, &collector.http_env()).await;
    let before = (
        scrape(api_port).await,
        scrape(worker_port).await,
        scrape(webhook_port).await,
    );

    let (status, created) = sandbox
        .post_job(&sandbox.alpha, &upscale_job(&peer), None)
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let trace_id = created["job"]["traceId"].as_str().unwrap().to_owned();
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let hook = wait_until("the webhook", Duration::from_secs(30), || async {
        peer.for_job(&job_id).into_iter().next()
    })
    .await;

    // Every role's spans arrive, in the job's trace. Each role exports in its own batches, so
    // a span can arrive before its parent from another process: wait until none is missing
    // (or the time is up, and the checks below say what is).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.trace(&trace_id);
        let has = |service: &str, name: &str| {
            spans.iter().any(|s| s.service == service && s.name == name)
        };
        let complete = has("api-service", "job.accept")
            && has("upscale-worker", "job.attempt")
            && has("api-service", "job.event succeeded")
            && has("webhook-service", "webhook.attempt");
        let index = by_id(&spans);
        let linked = spans.iter().all(|span| {
            let chain = ancestry(span, &index);
            chain.last().unwrap().parent_span_id.is_empty()
        });
        if (complete && linked) || tokio::time::Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let index = by_id(&spans);
    let find = |service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {name} span from {service}"))
    };

    // One root: the api's request span; everything else hangs from it, across processes.
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    let names: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {} {}<-{}",
                s.service, s.name, s.span_id, s.parent_span_id
            )
        })
        .collect();
    assert_eq!(roots.len(), 1, "one root span: {names:#?}");
    assert_eq!(roots[0].service, "api-service");
    assert_eq!(roots[0].name, "POST /api/v1/jobs", "{names:#?}");
    for span in &spans {
        let chain = ancestry(span, &index);
        assert!(
            chain.last().unwrap().parent_span_id.is_empty(),
            "{} ({}) does not lead to the root: its parent {} never arrived",
            span.name,
            span.service,
            chain.last().unwrap().parent_span_id
        );
    }

    // Parenting across the boundaries: publish -> attempt -> claim, event; the webhook's
    // attempt follows its intake, which follows the api's publish of the webhook request.
    let attempt = find("upscale-worker", "job.attempt");
    let parent = index[attempt.parent_span_id.as_str()];
    assert_eq!(
        (parent.service.as_str(), parent.name.as_str()),
        ("api-service", "outbox.publish")
    );
    let claim = find("api-service", "claim");
    assert!(
        ancestry(claim, &index)
            .iter()
            .any(|s| s.span_id == attempt.span_id),
        "the claim is inside the attempt"
    );
    let event = find("api-service", "job.event succeeded");
    assert!(
        ancestry(event, &index)
            .iter()
            .any(|s| s.span_id == attempt.span_id)
    );
    let delivery = find("webhook-service", "webhook.attempt");
    let chain: Vec<&str> = ancestry(delivery, &index)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        &chain[..4],
        &[
            "webhook.attempt",
            "webhook.intake",
            "outbox.publish",
            "job.event succeeded"
        ],
        "{chain:?}"
    );
    for name in ["inputs.fetch", "engine.run", "outputs.upload", "queue.wait"] {
        let span = find("upscale-worker", name);
        assert_eq!(span.transport, "grpc");
    }
    assert_eq!(find("api-service", "job.accept").transport, "http");
    for (service, name) in [
        ("api-service", "job.accept"),
        ("upscale-worker", "job.attempt"),
        ("webhook-service", "webhook.attempt"),
    ] {
        assert_eq!(
            find(service, name).attribute("job.id"),
            Some(job_id.as_str()),
            "{service} {name} carries job.id"
        );
    }
    assert_eq!(attempt.attribute("client.id"), Some("alpha"));
    assert_eq!(attempt.attribute("attempt"), Some("1"));
    assert_eq!(attempt.attribute("capability"), Some("image.upscale"));

    // The receiver's traceparent names the delivery attempt's span in the same trace.
    let traceparent = hook.header("traceparent");
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{}-01", delivery.span_id),
        "the webhook carries its attempt's context"
    );

    // The metrics moved.
    let after = (
        scrape(api_port).await,
        scrape(worker_port).await,
        scrape(webhook_port).await,
    );
    let moved = |before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str| {
        assert!(
            sample(after, key) > sample(before, key),
            "{key}: {} -> {}",
            sample(before, key),
            sample(after, key)
        );
    };
    moved(
        &before.0,
        &after.0,
        "atelier_jobs_created_total{capability=\"image.upscale\"}",
    );
    moved(
        &before.0,
        &after.0,
        "atelier_jobs_finished_total{capability=\"image.upscale\",status=\"succeeded\"}",
    );
    moved(
        &before.0,
        &after.0,
        "atelier_http_requests_total{method=\"POST\",route=\"/api/v1/jobs\",status=\"201\"}",
    );
    moved(
        &before.1,
        &after.1,
        "atelier_job_run_seconds_count{capability=\"image.upscale\",outcome=\"succeeded\"}",
    );
    moved(
        &before.1,
        &after.1,
        "atelier_job_queue_wait_seconds_count{capability=\"image.upscale\"}",
    );
    moved(
        &before.2,
        &after.2,
        "atelier_webhook_attempts_total{outcome=\"success\"}",
    );
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_collector_listening_jobs_still_finish() {
    let mut sandbox = Sandbox::provision(Settings::default()).await;
    let peer = Peer::start().await;
    let port = free_port();
    sandbox.base = format!("http://127.0.0.1:{port}");
    // A port nobody listens on: every export fails.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), dead),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let _platform = start_with(&sandbox, &["all"], port, &env).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let (status, created) = sandbox
            .post_job(&sandbox.alpha, &upscale_job(&peer), None)
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        jobs.push(created["job"]["id"].as_str().unwrap().to_owned());
    }
    for job_id in &jobs {
        let job = sandbox
            .wait_for_job(
                &sandbox.alpha,
                job_id,
                &["succeeded", "failed"],
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["traceId"].as_str().unwrap().len(), 32);
    }
    wait_until("the webhooks", Duration::from_secs(30), || async {
        jobs.iter()
            .all(|id| !peer.for_job(id).is_empty())
            .then_some(())
    })
    .await;
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
