//! The OpenAI client against its fake: images (base64 and URL outputs), edits with a mask,
//! structured chat, speech, and each error class.

mod common;

use std::io::Cursor;

use atelier_media::MediaType;
use atelier_providers::fake::openai::{FakeOpenAi, OutputMode};
use atelier_providers::fake::{Fault, png};
use atelier_providers::openai::{ChatJson, ImageEdit, ImageGeneration, OpenAiClient, Speech};
use atelier_providers::{ErrorClass, ProviderError};
use atelier_worker::EngineError;
use serde_json::json;

const KEY: &str = "sk-test-openai-key";

async fn setup() -> (FakeOpenAi, OpenAiClient) {
    let fake = FakeOpenAi::start(KEY).await;
    let providers = common::providers(&[
        ("ATELIER_OPENAI_API_KEY", KEY.into()),
        ("ATELIER_OPENAI_BASE_URL", fake.base_url()),
    ]);
    (fake, providers.openai.expect("openai configured"))
}

fn generation(n: Option<u32>) -> ImageGeneration {
    ImageGeneration {
        model: "gpt-image-1".into(),
        prompt: "a lighthouse at dusk".into(),
        n,
        size: Some("1024x1024".into()),
        ..ImageGeneration::default()
    }
}

#[tokio::test]
async fn generates_images_from_base64_or_url_outputs() {
    let (fake, client) = setup().await;
    let images = client.generate_images(&generation(Some(2))).await.unwrap();
    assert_eq!((images.images.len(), images.requested), (2, 2));
    assert_eq!(images.images[0].media, MediaType::Png);
    assert_eq!((images.images[0].width, images.images[0].height), (16, 16));
    assert_eq!(images.usage.unwrap()["total_tokens"], 4210);
    let sent = &fake.received()[0].fields;
    assert_eq!(
        (sent["model"].as_str(), sent["n"].as_u64()),
        (Some("gpt-image-1"), Some(2))
    );

    fake.set_output_mode(OutputMode::Url);
    let images = client.generate_images(&generation(None)).await.unwrap();
    assert_eq!(images.images.len(), 1);
    assert_eq!(fake.submits(), 2);
}

#[tokio::test]
async fn edits_send_the_mask_in_openais_alpha_convention() {
    let (fake, client) = setup().await;
    let mask = {
        let img =
            image::GrayImage::from_fn(16, 16, |x, _| image::Luma([if x < 8 { 255 } else { 0 }]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let edit = ImageEdit {
        model: "gpt-image-1".into(),
        prompt: "replace the sky".into(),
        image: png(16, 16).into(),
        mask: Some(mask.into()),
        ..ImageEdit::default()
    };
    let images = client.edit_image(&edit).await.unwrap();
    assert_eq!(images.images.len(), 1);
    let received = &fake.received()[0];
    assert_eq!(received.fields["prompt"], "replace the sky");
    assert_eq!(received.image.as_deref(), Some(png(16, 16).as_slice()));
    let sent_mask = image::load_from_memory(received.mask.as_ref().unwrap())
        .unwrap()
        .to_rgba8();
    // White (repaint) became transparent; black (keep) stayed opaque.
    assert_eq!(
        (
            sent_mask.get_pixel(0, 0).0[3],
            sent_mask.get_pixel(15, 0).0[3]
        ),
        (0, 255)
    );
}

#[tokio::test]
async fn chat_returns_the_structured_json_and_speech_returns_audio() {
    let (fake, client) = setup().await;
    fake.set_chat_content(r#"{"title":"Tides","slides":["one","two"]}"#);
    let outline = client
        .chat_json(&ChatJson {
            model: "gpt-4o-mini".into(),
            system: Some("you write outlines".into()),
            prompt: "tides".into(),
            schema_name: "outline".into(),
            schema: json!({"type": "object"}),
        })
        .await
        .unwrap();
    assert_eq!(outline["slides"][1], "two");
    let sent = &fake.received()[0].fields;
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "outline");

    let speech = Speech {
        model: "gpt-4o-mini-tts".into(),
        voice: "alloy".into(),
        input: "hello".into(),
        response_format: None,
    };
    assert_eq!(client.speech(&speech).await.unwrap().media, MediaType::Mp3);
    fake.set_speech(b"<html>oops</html>".to_vec());
    assert!(client.speech(&speech).await.unwrap_err().is_retryable());
}

async fn failure(fault: Fault) -> ProviderError {
    let (fake, client) = setup().await;
    fake.fail_next(fault);
    let err = client.generate_images(&generation(None)).await.unwrap_err();
    assert_eq!(fake.submits(), 1);
    err
}

#[tokio::test]
async fn each_error_class() {
    let err = failure(Fault::ContentRejected).await;
    assert_eq!(
        (err.class.clone(), err.code.as_deref()),
        (ErrorClass::ContentRejected, Some("moderation_blocked"))
    );
    assert_eq!(EngineError::from(err).code, "content_rejected");

    let err = failure(Fault::InsufficientBalance).await;
    assert_eq!(err.class, ErrorClass::ProviderUnavailable);
    assert_eq!(EngineError::from(err).code, "provider_unavailable");

    let err = failure(Fault::RateLimited {
        retry_after_secs: 7,
    })
    .await;
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));

    let err = failure(Fault::ServerError { status: 503 }).await;
    assert!(err.is_retryable());
    assert_eq!(EngineError::from(err).code, "provider_retryable");

    // The body was sent and the connection cut: resending could bill twice.
    let err = failure(Fault::DropConnection).await;
    assert_eq!(err.class, ErrorClass::OutcomeUnknown);
    assert!(!EngineError::from(err).retryable);
}

#[tokio::test]
async fn a_wrong_key_is_the_operators_problem_and_never_echoed() {
    let fake = FakeOpenAi::start("sk-the-right-key").await;
    let providers = common::providers(&[
        ("ATELIER_OPENAI_API_KEY", KEY.into()),
        ("ATELIER_OPENAI_BASE_URL", fake.base_url()),
    ]);
    assert!(!format!("{providers:?}").contains(KEY));
    let err = providers
        .openai
        .unwrap()
        .generate_images(&generation(None))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::ProviderUnavailable);
    assert!(
        err.message.contains("Incorrect API key provided: ***"),
        "{}",
        err.message
    );
    let engine = EngineError::from(err.clone());
    for text in [format!("{err}"), format!("{err:?}"), engine.message] {
        assert!(!text.contains(KEY), "{text}");
    }
}

#[tokio::test]
async fn oversized_or_non_image_outputs_are_refused() {
    let (fake, client) = setup().await;
    fake.set_image(b"<svg onload=alert(1)>".to_vec());
    let err = client.generate_images(&generation(None)).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("malformed_response"));

    let fake = FakeOpenAi::start(KEY).await;
    let providers = common::providers(&[
        ("ATELIER_OPENAI_API_KEY", KEY.into()),
        ("ATELIER_OPENAI_BASE_URL", fake.base_url()),
    ]);
    // A 3 MB base64 body against the default cap passes; a fake PNG of 60 MB does not.
    let mut huge = png(4, 4);
    huge.resize(60 * 1024 * 1024, 0);
    fake.set_image(huge);
    let err = providers
        .openai
        .unwrap()
        .generate_images(&generation(None))
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("output_too_large"));
}
