//! The routing engine against the fakes: which route a job takes, and that a recorded
//! upstream task is resumed, never submitted again.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use atelier_worker::{
    Attempt, Engine, EngineError, Input, JobContext, OutputFile, ProgressReporter, Upstream,
};
use serde_json::json;

use super::Routed;
use crate::clients::Providers;
use crate::config::ProvidersConfig;
use crate::fake::Fault;
use crate::fake::ark::FakeArk;
use crate::fake::openai::FakeOpenAi;
use crate::poll::PollPolicy;
use crate::provider::{Capability, Provider};
use crate::routes::Route;

/// A local engine that says it ran.
struct Local(&'static str);

impl Engine for Local {
    fn capability(&self) -> &'static str {
        self.0
    }

    async fn run(&self, _: JobContext, _: Vec<Input>) -> Result<Vec<OutputFile>, EngineError> {
        Err(EngineError::fatal("local_ran", "the local engine ran"))
    }
}

fn providers(vars: &[(&str, String)]) -> Arc<Providers> {
    let config = ProvidersConfig::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let guard = atelier_netguard::GuardedClient::new(atelier_netguard::GuardConfig {
        allow_private_networks: true,
        ..Default::default()
    })
    .unwrap();
    Arc::new(Providers::new(&config, guard).unwrap())
}

fn job(params: serde_json::Value) -> JobContext {
    JobContext {
        job_id: "job_test".into(),
        attempt: 1,
        params,
        progress: ProgressReporter::new().0,
    }
}

fn attempt(upstream: Option<Upstream>) -> Attempt {
    let mut attempt = Attempt::detached(SystemTime::now() + Duration::from_secs(60));
    attempt.upstream = upstream;
    attempt
}

fn fast() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
        factor: 1.0,
        jitter: 0.0,
    }
}

#[tokio::test]
async fn routes_come_from_the_model_and_a_recorded_task_wins() {
    let openai = FakeOpenAi::start("sk-test").await;
    let ark = FakeArk::start("ark-test").await;
    let routes = "image.generate=openai:gpt-image-1,image.generate:seedream=ark:seedream-4";
    let engine = Routed::new(
        Local("image.generate"),
        providers(&[
            ("ATELIER_OPENAI_API_KEY", "sk-test".into()),
            ("ATELIER_OPENAI_BASE_URL", openai.base_url()),
            ("ATELIER_ARK_API_KEY", "ark-test".into()),
            ("ATELIER_ARK_BASE_URL", ark.base_url()),
            ("ATELIER_ROUTES", routes.into()),
        ]),
    )
    .unwrap();
    let provider = |p, m: &str| Route::Provider {
        provider: p,
        upstream_model: m.into(),
    };
    let plain = job(json!({"prompt": "x"}));
    let seedream = job(json!({"prompt": "x", "model": "seedream"}));
    assert_eq!(
        engine.route(&plain, &attempt(None)).unwrap(),
        provider(Provider::OpenAi, "gpt-image-1")
    );
    assert_eq!(
        engine.route(&seedream, &attempt(None)).unwrap(),
        provider(Provider::Ark, "seedream-4")
    );
    // A task recorded by an earlier attempt is polled where it lives, whatever the table says.
    let recorded = Upstream {
        provider: "jimeng".into(),
        upstream_model: "jimeng_t2i_v40".into(),
        task_id: Some("7392616336519610409".into()),
        ..Upstream::default()
    };
    assert_eq!(
        engine.route(&plain, &attempt(Some(recorded))).unwrap(),
        provider(Provider::Jimeng, "jimeng_t2i_v40")
    );
    // A record without a task (a synchronous provider) does not pin the route.
    let sync = Upstream {
        provider: "ark".into(),
        upstream_model: "seedream-4".into(),
        ..Upstream::default()
    };
    assert_eq!(
        engine.route(&plain, &attempt(Some(sync))).unwrap(),
        provider(Provider::OpenAi, "gpt-image-1")
    );
}

#[tokio::test]
async fn a_recorded_video_task_is_resumed_without_a_submit() {
    let ark = FakeArk::start("ark-test").await;
    let providers = providers(&[
        ("ATELIER_ARK_API_KEY", "ark-test".into()),
        ("ATELIER_ARK_BASE_URL", ark.base_url()),
        ("ATELIER_ROUTES", "video.generate=ark:seedance".into()),
    ]);
    let engine = Routed::new(Local("video.generate"), Arc::clone(&providers))
        .unwrap()
        .with_poll_policies(fast(), fast());
    let request = crate::ark::VideoRequest {
        model: "seedance".into(),
        prompt: "waves".into(),
        ..Default::default()
    };
    let id = providers
        .ark
        .as_ref()
        .unwrap()
        .create_video_task(&request)
        .await
        .unwrap();
    assert_eq!(ark.submits(), 1);
    let recorded = Upstream {
        provider: "ark".into(),
        upstream_model: "seedance".into(),
        task_id: Some(id.0),
        ..Upstream::default()
    };
    let outputs = engine
        .run_attempt(
            job(json!({"prompt": "waves"})),
            attempt(Some(recorded)),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].content_type, "video/mp4");
    assert_eq!(ark.submits(), 1, "resumed, not submitted again");
}

#[tokio::test]
async fn local_routes_run_the_local_engine() {
    let engine = Routed::new(
        Local("image.upscale"),
        providers(&[("ATELIER_ROUTES", "image.upscale:fast=local".into())]),
    )
    .unwrap();
    let err = engine
        .run_attempt(job(json!({})), attempt(None), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code, "local_ran");
    assert_eq!(
        "image.upscale".parse::<Capability>().unwrap(),
        engine.capability
    );
}

fn openai_engine(fake: &FakeOpenAi) -> Routed<Local> {
    Routed::new(
        Local("image.generate"),
        providers(&[
            ("ATELIER_OPENAI_API_KEY", "sk-test".into()),
            ("ATELIER_OPENAI_BASE_URL", fake.base_url()),
            ("ATELIER_ROUTES", "image.generate=openai:gpt-image-1".into()),
        ]),
    )
    .unwrap()
}

#[tokio::test]
async fn a_call_an_earlier_attempt_sent_is_not_sent_again() {
    let fake = FakeOpenAi::start("sk-test").await;
    let engine = openai_engine(&fake);
    // The worker died during the call: the mark is there, no answer was kept.
    let sent = Upstream {
        provider: "openai".into(),
        upstream_model: "gpt-image-1".into(),
        submitted: true,
        ..Upstream::default()
    };
    let err = engine
        .run_attempt(job(json!({"prompt": "x"})), attempt(Some(sent)), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code, "upstream_outcome_unknown");
    assert!(!err.retryable);
    assert_eq!(fake.submits(), 0);
}

#[tokio::test]
async fn the_mark_is_stored_before_sending_and_cleared_when_nothing_was_done() {
    let fake = FakeOpenAi::start("sk-test").await;
    let engine = openai_engine(&fake);
    let records = Arc::new(std::sync::Mutex::new(Vec::<Upstream>::new()));
    let recording = {
        let records = Arc::clone(&records);
        Attempt::new(
            None,
            SystemTime::now() + Duration::from_secs(60),
            Arc::new(move |u: Upstream| {
                records.lock().unwrap().push(u);
                Box::pin(async { Ok(()) })
            }),
        )
    };
    fake.fail_next(Fault::ServerError { status: 503 });
    let err = engine
        .run_attempt(job(json!({"prompt": "x"})), recording.clone(), vec![])
        .await
        .unwrap_err();
    assert!(err.retryable, "{err}");
    let marks: Vec<bool> = records
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.submitted)
        .collect();
    assert_eq!(
        marks,
        [true, false],
        "marked, then cleared: the provider did nothing"
    );

    // A mark that cannot be stored stops the call before it leaves.
    let failing = Attempt::new(
        None,
        SystemTime::now() + Duration::from_secs(60),
        Arc::new(|_| {
            Box::pin(async { Err(EngineError::retryable("upstream_unrecorded", "nats down")) })
        }),
    );
    let before = fake.submits();
    let err = engine
        .run_attempt(job(json!({"prompt": "x"})), failing, vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code, "upstream_unrecorded");
    assert_eq!(fake.submits(), before, "nothing sent without the mark");
}

#[tokio::test]
async fn a_partial_success_is_recorded_with_the_usage() {
    let ark = FakeArk::start("ark-test").await;
    ark.set_seedream(1, 1);
    let engine = Routed::new(
        Local("image.generate"),
        providers(&[
            ("ATELIER_ARK_API_KEY", "ark-test".into()),
            ("ATELIER_ARK_BASE_URL", ark.base_url()),
            ("ATELIER_ROUTES", "image.generate=ark:seedream-4".into()),
        ]),
    )
    .unwrap();
    let records = Arc::new(std::sync::Mutex::new(Vec::<Upstream>::new()));
    let sink = Arc::clone(&records);
    let recorder: Arc<atelier_worker::engine::RecordFn> = Arc::new(move |upstream| {
        sink.lock().unwrap().push(upstream);
        Box::pin(async { Ok(()) })
    });
    let attempt = Attempt::new(None, SystemTime::now() + Duration::from_secs(60), recorder);
    let outputs = engine
        .run_attempt(
            job(json!({"prompt": "two lighthouses"})),
            attempt,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(outputs.len(), 1);
    let last = records.lock().unwrap().last().cloned().expect("a record");
    let usage = last.usage.expect("usage recorded");
    assert_eq!(
        (
            usage["images_requested"].as_u64(),
            usage["images_delivered"].as_u64()
        ),
        (Some(2), Some(1))
    );
}
