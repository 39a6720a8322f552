//! The Jimeng client against its fake: signed requests accepted, a wrong secret refused with
//! `SignatureDoesNotMatch`, tasks polled to their images, and each error class.

mod common;

use std::io::Cursor;

use atelier_media::MediaType;
use atelier_providers::fake::jimeng::{FakeJimeng, JimengOutcome, JimengPlan};
use atelier_providers::fake::{Fault, Step, png};
use atelier_providers::jimeng::{JimengClient, JimengRequest};
use atelier_providers::{ErrorClass, PollError, TaskStatus};
use atelier_worker::EngineError;
use tokio::sync::Notify;

const AK: &str = "AKLTfakeaccesskey";
const SK: &str = "fake-secret-key-value";

fn client_for(fake: &FakeJimeng, secret: &str) -> JimengClient {
    common::providers(&[
        ("ATELIER_JIMENG_ACCESS_KEY", AK.into()),
        ("ATELIER_JIMENG_SECRET_KEY", secret.into()),
        ("ATELIER_JIMENG_BASE_URL", fake.base_url()),
    ])
    .jimeng
    .expect("jimeng configured")
}

fn t2i() -> JimengRequest {
    JimengRequest::TextToImage {
        req_key: "jimeng_t2i_v40".into(),
        prompt: "a red fox in snow".into(),
        image_urls: Vec::new(),
        width: Some(2048),
        height: Some(2048),
        scale: Some(0.5),
        force_single: true,
    }
}

#[tokio::test]
async fn a_signed_task_is_submitted_polled_and_its_images_returned() {
    let fake = FakeJimeng::start(AK, SK).await;
    let client = client_for(&fake, SK);
    fake.push_plan(JimengPlan {
        queued: Step::Polls(1),
        running: Step::Polls(2),
        outcome: JimengOutcome::Succeed,
    });
    let id = client.submit(&t2i()).await.unwrap();
    let body = fake.task_body(id.as_str()).unwrap();
    assert_eq!(
        (body["scale"].as_f64(), body["force_single"].as_bool()),
        (Some(0.5), Some(true))
    );
    assert_eq!(
        client
            .get_result("jimeng_t2i_v40", &id)
            .await
            .unwrap()
            .status,
        TaskStatus::Queued
    );
    let images = client
        .wait_images(
            "jimeng_t2i_v40",
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &Notify::new(),
        )
        .await
        .unwrap();
    assert_eq!(images.images.len(), 1);
    assert_eq!(images.images[0].media, MediaType::Png);
    assert_eq!((fake.submits(), fake.signature_failures()), (1, 0));
}

#[tokio::test]
async fn a_wrong_secret_gets_signature_does_not_match() {
    let fake = FakeJimeng::start(AK, SK).await;
    let client = client_for(&fake, "not-the-secret");
    let err = client.submit(&t2i()).await.unwrap_err();
    assert_eq!(
        (err.class.clone(), err.code.as_deref()),
        (
            ErrorClass::ProviderUnavailable,
            Some("SignatureDoesNotMatch")
        )
    );
    assert_eq!((fake.submits(), fake.signature_failures()), (0, 1));
    let engine = EngineError::from(err.clone());
    assert_eq!(engine.code, "provider_unavailable");
    for text in [format!("{err:?}"), engine.message] {
        assert!(
            !text.contains("not-the-secret") && !text.contains(AK),
            "{text}"
        );
    }
}

#[tokio::test]
async fn inpaint_sends_the_source_then_a_single_channel_mask() {
    let fake = FakeJimeng::start(AK, SK).await;
    let client = client_for(&fake, SK);
    let mask = {
        let img = image::RgbImage::from_fn(16, 16, |x, _| {
            if x < 4 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let request = JimengRequest::Inpaint {
        req_key: "jimeng_image2image_dream_inpaint".into(),
        prompt: "删除".into(),
        image: png(16, 16).into(),
        mask: mask.into(),
        seed: Some(101),
    };
    let id = client.submit(&request).await.unwrap();
    let body = fake.task_body(id.as_str()).unwrap();
    let parts = body["binary_data_base64"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(parts[1].as_str().unwrap())
        .unwrap();
    let sent = image::load_from_memory(&sent).unwrap();
    assert!(matches!(sent, image::DynamicImage::ImageLuma8(_)));
    assert_eq!(sent.to_luma8().get_pixel(0, 0).0[0], 255);
}

#[tokio::test]
async fn upscale_sends_one_inline_image() {
    let fake = FakeJimeng::start(AK, SK).await;
    let client = client_for(&fake, SK);
    fake.set_images_per_task(1);
    let request = JimengRequest::Upscale {
        req_key: "jimeng_i2i_seed3_tilesr_cvtob".into(),
        image: png(16, 16).into(),
        resolution: Some("4k".into()),
        scale: Some(50),
    };
    let id = client.submit(&request).await.unwrap();
    let body = fake.task_body(id.as_str()).unwrap();
    assert_eq!(body["binary_data_base64"].as_array().unwrap().len(), 1);
    assert_eq!(
        (body["resolution"].as_str(), body["scale"].as_u64()),
        (Some("4k"), Some(50))
    );
    let images = client
        .wait_images(
            request.req_key(),
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &Notify::new(),
        )
        .await
        .unwrap();
    assert_eq!(images.images.len(), 1);
}

#[tokio::test]
async fn task_failures_and_submit_errors_are_classified() {
    let fake = FakeJimeng::start(AK, SK).await;
    let client = client_for(&fake, SK);
    let wake = Notify::new();
    fake.push_plan(JimengPlan {
        queued: Step::Polls(0),
        running: Step::Polls(0),
        outcome: JimengOutcome::Fail {
            code: 50511,
            message: "Post Img Risk Not Pass".into(),
        },
    });
    let id = client.submit(&t2i()).await.unwrap();
    let Err(PollError::Provider(err)) = client
        .wait_images(
            "jimeng_t2i_v40",
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &wake,
        )
        .await
    else {
        panic!("expected a refusal");
    };
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::ContentRejected, Some("50511"))
    );

    fake.push_plan(JimengPlan {
        queued: Step::Polls(0),
        running: Step::Polls(0),
        outcome: JimengOutcome::Expire,
    });
    let id = client.submit(&t2i()).await.unwrap();
    let err = client
        .wait_images(
            "jimeng_t2i_v40",
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &wake,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PollError::Provider(ref e) if e.code.as_deref() == Some("expired")),
        "{err:?}"
    );

    // Throttled polls are waited out, honouring Retry-After.
    let id = client.submit(&t2i()).await.unwrap();
    fake.state.poll_faults.push_n(
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        2,
    );
    fake.fail_next_poll(Fault::ServerError { status: 500 });
    client
        .wait_images(
            "jimeng_t2i_v40",
            &id,
            &common::fast_poll(),
            common::deadline(30),
            &wake,
        )
        .await
        .unwrap();

    for (fault, class) in [
        (Fault::ContentRejected, ErrorClass::ContentRejected),
        (Fault::InsufficientBalance, ErrorClass::ProviderUnavailable),
        (
            Fault::RateLimited {
                retry_after_secs: 3,
            },
            ErrorClass::Retryable {
                retry_after: Some(std::time::Duration::from_secs(3)),
            },
        ),
        (Fault::DropConnection, ErrorClass::OutcomeUnknown),
    ] {
        fake.fail_next_submit(fault);
        assert_eq!(client.submit(&t2i()).await.unwrap_err().class, class);
    }
    assert_eq!(fake.submits(), 7);
}

/// Sends a hand-signed submit, to show what the fake's verifier refuses.
async fn raw_submit(
    fake: &FakeJimeng,
    signed_body: &[u8],
    sent_body: &[u8],
    x_date: &str,
) -> (u16, serde_json::Value) {
    use atelier_providers::jimeng::sign;
    let query = vec![
        ("Action".to_owned(), "CVSync2AsyncSubmitTask".to_owned()),
        ("Version".to_owned(), "2022-08-31".to_owned()),
    ];
    let host = fake.server.addr.to_string();
    let request = sign::SignedRequest {
        method: "POST",
        host: &host,
        path: "/",
        query: &query,
        content_type: "application/json",
        body: signed_body,
        x_date,
    };
    let signature = sign::sign(&request, AK, SK);
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(
            fake.server
                .url("/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31"),
        )
        .header("content-type", "application/json")
        .header("x-date", x_date)
        .header("x-content-sha256", signature.x_content_sha256)
        .header("authorization", signature.authorization)
        .body(sent_body.to_vec())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_tampered_body_or_a_skewed_clock_is_refused() {
    let fake = FakeJimeng::start(AK, SK).await;
    let body = br#"{"req_key":"jimeng_t2i_v40","prompt":"a fox"}"#;
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let (status, answer) = raw_submit(&fake, body, body, &now).await;
    assert_eq!((status, answer["code"].as_i64()), (200, Some(10000)));
    let tampered = br#"{"req_key":"jimeng_t2i_v40","prompt":"a wolf"}"#;
    let (status, answer) = raw_submit(&fake, body, tampered, &now).await;
    assert_eq!(
        (status, answer["ResponseMetadata"]["Error"]["Code"].as_str()),
        (401, Some("SignatureDoesNotMatch"))
    );
    let (status, _) = raw_submit(&fake, body, body, "20200101T000000Z").await;
    assert_eq!(status, 401);
    assert_eq!((fake.submits(), fake.signature_failures()), (1, 2));
}
