//! The Gemini client against its fake: inline images both ways, HTTP-200 refusals, and each
//! error class.

mod common;

use std::time::Duration;

use atelier_media::MediaType;
use atelier_providers::ErrorClass;
use atelier_providers::fake::gemini::{FakeGemini, GeminiAnswer};
use atelier_providers::fake::{Fault, png};
use atelier_providers::gemini::{GeminiClient, GeminiImageRequest};

const KEY: &str = "AIza-fake-gemini-key";

async fn setup() -> (FakeGemini, GeminiClient) {
    let fake = FakeGemini::start(KEY).await;
    let providers = common::providers(&[
        ("ATELIER_GEMINI_API_KEY", KEY.into()),
        ("ATELIER_GEMINI_BASE_URL", fake.base_url()),
    ]);
    (fake, providers.gemini.expect("gemini configured"))
}

fn request() -> GeminiImageRequest {
    GeminiImageRequest {
        model: "gemini-2.5-flash-image".into(),
        prompt: "make it dusk".into(),
        images: vec![png(16, 16).into()],
        aspect_ratio: Some("16:9".into()),
        image_size: None,
    }
}

#[tokio::test]
async fn reference_images_go_inline_and_the_image_comes_back() {
    let (fake, client) = setup().await;
    let images = client.generate_image(&request()).await.unwrap();
    assert_eq!(images.images[0].media, MediaType::Png);
    assert_eq!(images.usage.unwrap()["totalTokenCount"], 1323);
    let (model, body) = fake.received().remove(0);
    assert_eq!(model, "gemini-2.5-flash-image");
    assert_eq!(
        body["generationConfig"]["imageConfig"]["aspectRatio"],
        "16:9"
    );
    assert_eq!(
        body["contents"][0]["parts"][1]["inlineData"]["mimeType"],
        "image/png"
    );
}

#[tokio::test]
async fn refusals_arrive_with_status_200() {
    let (fake, client) = setup().await;
    fake.set_answer(GeminiAnswer::Finish("IMAGE_SAFETY".into()));
    let err = client.generate_image(&request()).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::ContentRejected, Some("IMAGE_SAFETY"))
    );
    fake.set_answer(GeminiAnswer::Blocked("PROHIBITED_CONTENT".into()));
    let err = client.generate_image(&request()).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_deref()),
        (ErrorClass::ContentRejected, Some("PROHIBITED_CONTENT"))
    );
}

#[tokio::test]
async fn each_error_class() {
    let (fake, client) = setup().await;
    for (fault, class) in [
        (
            Fault::RateLimited {
                retry_after_secs: 27,
            },
            ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(27)),
            },
        ),
        (
            Fault::ServerError { status: 503 },
            ErrorClass::Retryable { retry_after: None },
        ),
        (Fault::InsufficientBalance, ErrorClass::ProviderUnavailable),
        (Fault::DropConnection, ErrorClass::OutcomeUnknown),
    ] {
        fake.fail_next(fault);
        assert_eq!(
            client.generate_image(&request()).await.unwrap_err().class,
            class
        );
    }
    assert_eq!(fake.submits(), 4);
    let mut huge = png(4, 4);
    huge.resize(51 * 1024 * 1024, 0);
    fake.set_image(huge);
    let err = client.generate_image(&request()).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("output_too_large"));
}

#[tokio::test]
async fn a_bad_key_is_unavailable_and_not_echoed() {
    let fake = FakeGemini::start("AIza-the-right-one").await;
    let providers = common::providers(&[
        ("ATELIER_GEMINI_API_KEY", KEY.into()),
        ("ATELIER_GEMINI_BASE_URL", fake.base_url()),
    ]);
    let err = providers
        .gemini
        .unwrap()
        .generate_image(&request())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::ProviderUnavailable);
    assert!(!format!("{err:?}").contains(KEY));
    assert_eq!(fake.submits(), 0);
}
