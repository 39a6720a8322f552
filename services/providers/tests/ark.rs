//! The Ark client against its fake: Seedance tasks through their timeline, cancel rules,
//! callbacks as wake-ups, Seedream partial success, and each error class.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atelier_media::MediaType;
use atelier_providers::ark::{ArkClient, ImageInput, SeedreamRequest, VideoRequest};
use atelier_providers::fake::ark::{ArkOutcome, ArkPlan, FakeArk};
use atelier_providers::fake::{Fault, Step, png};
use atelier_providers::{ErrorClass, PollError, TaskStatus};
use tokio::sync::Notify;

const KEY: &str = "ark-test-key";

async fn setup() -> (FakeArk, ArkClient) {
    let fake = FakeArk::start(KEY).await;
    let providers = common::providers(&[
        ("ATELIER_ARK_API_KEY", KEY.into()),
        ("ATELIER_ARK_BASE_URL", fake.base_url()),
    ]);
    (fake, providers.ark.expect("ark configured"))
}

fn video() -> VideoRequest {
    VideoRequest {
        model: "doubao-seedance-1-0-pro-250528".into(),
        prompt: "a paper boat on a river".into(),
        first_frame: Some(ImageInput::Bytes(png(16, 16).into())),
        last_frame: Some(ImageInput::Url("https://example.com/last.png".into())),
        ratio: Some("16:9".into()),
        duration: Some(5),
        resolution: Some("720p".into()),
        ..VideoRequest::default()
    }
}

fn plan(queued: u32, running: u32, outcome: ArkOutcome) -> ArkPlan {
    ArkPlan {
        queued: Step::Polls(queued),
        running: Step::Polls(running),
        outcome,
    }
}

#[tokio::test]
async fn a_task_runs_through_its_timeline_and_the_video_is_copied() {
    let (fake, client) = setup().await;
    fake.push_plan(plan(2, 2, ArkOutcome::Succeed));
    let id = client.create_video_task(&video()).await.unwrap();
    let body = fake.task_body(id.as_str()).unwrap();
    assert_eq!(body["ratio"], "16:9");
    assert_eq!(body["content"][1]["role"], "first_frame");
    assert!(
        body["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(body["content"][2]["role"], "last_frame");

    assert_eq!(
        client.get_video_task(&id).await.unwrap().status,
        TaskStatus::Queued
    );
    let (video, task) = client
        .wait_video(
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &Notify::new(),
        )
        .await
        .unwrap();
    assert_eq!(video.media, MediaType::Mp4);
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.usage.unwrap()["completion_tokens"], 246840);
    assert_eq!((fake.submits(), fake.polls()), (1, 5));
}

#[tokio::test]
async fn failures_expiry_and_expired_urls_are_classified() {
    let (fake, client) = setup().await;
    let wake = Notify::new();
    fake.push_plan(plan(
        0,
        1,
        ArkOutcome::Fail {
            code: "OutputVideoSensitiveContentDetected".into(),
            message: "blocked".into(),
        },
    ));
    let id = client.create_video_task(&video()).await.unwrap();
    let Err(PollError::Provider(err)) = client
        .wait_video(&id, &common::fast_poll(), common::deadline(30), &wake)
        .await
    else {
        panic!("expected a classified failure");
    };
    assert_eq!(
        (err.class, err.code.as_deref()),
        (
            ErrorClass::ContentRejected,
            Some("OutputVideoSensitiveContentDetected")
        )
    );

    fake.push_plan(plan(0, 0, ArkOutcome::Expire));
    let id = client.create_video_task(&video()).await.unwrap();
    let Err(PollError::Provider(err)) = client
        .wait_video(&id, &common::fast_poll(), common::deadline(30), &wake)
        .await
    else {
        panic!("expected expiry");
    };
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::ProviderUnavailable, Some("expired"))
    );

    fake.expire_outputs();
    let id = client.create_video_task(&video()).await.unwrap();
    let Err(PollError::Provider(err)) = client
        .wait_video(&id, &common::fast_poll(), common::deadline(30), &wake)
        .await
    else {
        panic!("expected the expired output url");
    };
    assert_eq!(err.code.as_deref(), Some("output_expired"));
}

#[tokio::test]
async fn polling_rides_out_429_and_5xx_and_stops_at_the_deadline() {
    let (fake, client) = setup().await;
    let id = client.create_video_task(&video()).await.unwrap();
    fake.fail_next_poll(Fault::RateLimited {
        retry_after_secs: 0,
    });
    fake.state
        .poll_faults
        .push_n(Fault::ServerError { status: 503 }, 3);
    client
        .wait_video(
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &Notify::new(),
        )
        .await
        .unwrap();
    assert_eq!(fake.submits(), 1);

    fake.push_plan(ArkPlan {
        queued: Step::For(Duration::from_secs(3600)),
        running: Step::Polls(0),
        outcome: ArkOutcome::Succeed,
    });
    let id = client.create_video_task(&video()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    let err = client
        .wait_video(&id, &common::fast_poll(), deadline, &Notify::new())
        .await
        .unwrap_err();
    assert!(matches!(err, PollError::Deadline { .. }), "{err:?}");
    // On our deadline a queued task can still be cancelled upstream.
    client.cancel_video_task(&id).await.unwrap();
    assert_eq!(
        client.get_video_task(&id).await.unwrap().status,
        TaskStatus::Cancelled
    );
    assert!(client.cancel_video_task(&id).await.is_err());
}

#[tokio::test]
async fn a_running_task_cannot_be_cancelled() {
    let (fake, client) = setup().await;
    fake.push_plan(plan(0, 10, ArkOutcome::Succeed));
    let id = client.create_video_task(&video()).await.unwrap();
    assert_eq!(
        client.get_video_task(&id).await.unwrap().status,
        TaskStatus::Running
    );
    let err = client.cancel_video_task(&id).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest);
}

#[tokio::test]
async fn submit_errors_and_unknown_outcomes() {
    let (fake, client) = setup().await;
    for (fault, class) in [
        (Fault::InsufficientBalance, ErrorClass::ProviderUnavailable),
        (Fault::ContentRejected, ErrorClass::ContentRejected),
        (
            Fault::RateLimited {
                retry_after_secs: 4,
            },
            ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(4)),
            },
        ),
        (Fault::DropConnection, ErrorClass::OutcomeUnknown),
    ] {
        fake.fail_next_submit(fault);
        assert_eq!(
            client.create_video_task(&video()).await.unwrap_err().class,
            class
        );
    }
    assert_eq!(fake.submits(), 4);
    let bad = VideoRequest {
        ratio: Some("5:4".into()),
        ..video()
    };
    let err = client.create_video_task(&bad).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::InvalidRequest, Some("InvalidParameter"))
    );
}

#[tokio::test]
async fn callbacks_only_wake_the_poller() {
    let (fake, client) = setup().await;
    fake.duplicate_callbacks(true);
    let wake = Arc::new(Notify::new());
    let hook = Arc::clone(&wake);
    let receiver = atelier_providers::fake::FakeServer::start(axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let hook = Arc::clone(&hook);
            async move {
                hook.notify_one();
                "ok"
            }
        }),
    ))
    .await;
    fake.push_plan(ArkPlan {
        queued: Step::For(Duration::from_millis(30)),
        running: Step::For(Duration::from_millis(30)),
        outcome: ArkOutcome::Succeed,
    });
    let request = VideoRequest {
        callback_url: Some(receiver.url("/hook")),
        ..video()
    };
    let id = client.create_video_task(&request).await.unwrap();
    // A poll schedule of an hour: only the callbacks can make this finish in time.
    let slow = atelier_providers::PollPolicy {
        initial: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
        factor: 1.0,
        jitter: 0.0,
    };
    let (video, _) = client
        .wait_video(&id, &slow, common::deadline(20), &wake)
        .await
        .unwrap();
    assert_eq!(video.media, MediaType::Mp4);
    // queued, running, succeeded: each sent twice.
    common::wait_until("six callbacks", Duration::from_secs(10), || {
        fake.callbacks_sent() == 6
    })
    .await;
}

#[tokio::test]
async fn seedream_reports_partial_success() {
    let (fake, client) = setup().await;
    fake.set_seedream(2, 1);
    let request = SeedreamRequest {
        model: "doubao-seedream-4-0-250828".into(),
        prompt: "a teapot".into(),
        ..SeedreamRequest::default()
    };
    let images = client.generate_images(&request).await.unwrap();
    assert_eq!((images.images.len(), images.requested), (2, 3));
    fake.set_seedream(0, 1);
    let err = client.generate_images(&request).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_deref()),
        (
            ErrorClass::ContentRejected,
            Some("OutputImageSensitiveContentDetected")
        )
    );
}
