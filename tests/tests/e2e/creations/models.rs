//! Routed chat and speech models outline and narrate a creation (against the OpenAI fake).

use atelier_tests::sandbox::{Sandbox, Settings};
use reqwest::StatusCode;
use serde_json::json;

use super::{balance, call, grant, poll, slides_settings};

#[tokio::test]
async fn routed_chat_and_speech_models_write_and_narrate() {
    let openai = atelier_providers::fake::openai::FakeOpenAi::start("sk-openai-test").await;
    let vars = [
        ("ATELIER_OPENAI_API_KEY", "sk-openai-test".to_owned()),
        ("ATELIER_OPENAI_BASE_URL", openai.base_url()),
        (
            "ATELIER_ROUTES",
            "text.generate=openai:gpt-4o-mini,audio.speech=openai:tts-1".to_owned(),
        ),
    ];
    let providers = atelier_providers::ProvidersConfig::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("providers settings");
    let sandbox = Sandbox::start(Settings {
        providers: Some(providers),
        max_attempts: 2,
        ..slides_settings()
    })
    .await;
    let alpha = sandbox.alpha.clone();
    grant(&sandbox, &alpha, 100).await;
    let outline = json!({"scenes": [
        {"title": "潮汐从哪里来", "bullets": ["月球的引力"], "narration": "潮汐来自月球的引力。"},
        {"title": "总结", "bullets": [], "narration": "这就是潮汐。"},
    ]});
    openai.set_chat_content(&outline.to_string());
    // Every phrase the speech model speaks is 0.5 s of a 24 kHz WAV.
    let phrase = atelier_slides::speech::Pcm {
        rate: 24_000,
        samples: (0..12_000).map(|i| ((i % 48) as i16 - 24) * 200).collect(),
    };
    openai.set_speech(phrase.to_wav());
    let (_, catalog) = call(&sandbox, &alpha, "GET", "/catalog", None).await;
    let voices = &catalog["content_types"][0]["voices"]["zh"];
    assert!(
        voices.as_array().unwrap().iter().any(|v| v == "nova"),
        "{voices}"
    );
    let outline_by = catalog["content_types"][0]["outline"].as_str().unwrap();
    assert!(outline_by.starts_with("openai:gpt-4o-mini"), "{outline_by}");
    let body = json!({"type": "slides_video", "prompt": "讲讲潮汐", "language": "zh",
                      "scene_count": 2, "voice": "nova"});
    let (status, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job = poll(&sandbox, &alpha, created["job"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let path = format!("/creations/{}", created["creation_id"]);
    let (_, detail) = call(&sandbox, &alpha, "GET", &path, None).await;
    assert_eq!(detail["generator"], "openai:gpt-4o-mini");
    assert_eq!(detail["scenes"][0]["title"], "潮汐从哪里来");
    assert_eq!(detail["scenes"][1]["narration_text"], "这就是潮汐。");
    // One phrase per scene: lead-in 0.3 s, 0.5 s of speech, tail 0.7 s.
    let duration = detail["scenes"][0]["duration_seconds"].as_f64().unwrap();
    assert!((duration - 1.5).abs() < 0.01, "{duration}");
    let asked = openai.received();
    let spoken = |r: &atelier_providers::fake::openai::Received| {
        r.fields["voice"] == "nova" && r.fields["model"] == "tts-1"
    };
    assert!(asked.iter().any(spoken));
    let chat = asked
        .iter()
        .find(|r| r.fields.get("messages").is_some())
        .expect("the chat model was asked");
    assert!(
        chat.fields.to_string().contains("讲讲潮汐"),
        "{}",
        chat.fields
    );

    // An answer that breaks the rules (one scene for two) is retried, then fails, refunded.
    openai.set_chat_content(&json!({"scenes": [outline["scenes"][0].clone()]}).to_string());
    let (_, created) = call(&sandbox, &alpha, "POST", "/creations", Some(&body)).await;
    let job = poll(&sandbox, &alpha, created["job"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "outline_invalid");
    assert_eq!(
        balance(&sandbox, &alpha).await,
        80,
        "the failed creation is refunded"
    );
    sandbox.teardown().await;
}
