//! The create rules as vectors: the seed's request, every bad value, aliases, scripts, images.
use super::*;
use crate::faces::creations::catalog::tests::offer;

fn seed() -> CreateCreation {
    serde_json::from_value(serde_json::json!({
        "type": "slides_video",
        "prompt": "用 6 页讲清楚 transformer 的 attention 是怎么工作的",
        "language": "zh",
        "aspect_ratio": "16:9",
        "scene_count": 6,
    }))
    .unwrap()
}

fn check(req: CreateCreation) -> Result<Accepted, CreationError> {
    validate(
        req,
        &offer(),
        &NetPolicy {
            allow_private_networks: false,
        },
    )
}

#[test]
fn the_seed_request_is_a_priced_six_scene_video_with_defaults() {
    let accepted = check(seed()).unwrap();
    assert_eq!(accepted.capability, "video.slides");
    assert_eq!(accepted.price, 60);
    let params: SlidesParams = serde_json::from_value(accepted.params).unwrap();
    assert_eq!((params.width, params.height), (1280, 720));
    assert_eq!(params.voice.as_deref(), Some("cmn"));
    assert_eq!(params.style, "clean_light");
    assert_eq!(params.scene_count, 6);
}

#[test]
fn each_bad_value_names_its_field() {
    let scene = |narration: &str| Scene {
        title: "t".into(),
        bullets: vec![],
        narration: narration.into(),
    };
    let cases: Vec<(CreateCreation, &str)> = vec![
        (
            CreateCreation {
                kind: "podcast".into(),
                ..seed()
            },
            "type",
        ),
        (
            CreateCreation {
                kind: "explainer_video".into(),
                ..seed()
            },
            "type",
        ),
        (
            CreateCreation {
                aspect_ratio: Some("4:3".into()),
                ..seed()
            },
            "aspect_ratio",
        ),
        (
            CreateCreation {
                language: Some("xx".into()),
                ..seed()
            },
            "language",
        ),
        (
            CreateCreation {
                voice: Some("en-us".into()),
                ..seed()
            },
            "voice",
        ),
        (
            CreateCreation {
                style: Some("neon".into()),
                ..seed()
            },
            "style",
        ),
        (
            CreateCreation {
                quality: Some("4K".into()),
                ..seed()
            },
            "quality",
        ),
        (
            CreateCreation {
                scene_count: Some(21),
                ..seed()
            },
            "scene_count",
        ),
        (
            CreateCreation {
                scene_count: Some(0),
                ..seed()
            },
            "scene_count",
        ),
        (
            CreateCreation {
                prompt: Some("  ".into()),
                ..seed()
            },
            "prompt",
        ),
        (
            CreateCreation {
                prompt: Some("x".repeat(10_001)),
                ..seed()
            },
            "prompt",
        ),
        (
            CreateCreation {
                script: Some(vec![scene("a")]),
                ..seed()
            },
            "script",
        ),
        (
            CreateCreation {
                scene_count: Some(1),
                script: Some(vec![scene("")]),
                ..seed()
            },
            "script[0].narration",
        ),
        (
            CreateCreation {
                webhook_url: Some("http://127.0.0.1/hook".into()),
                ..seed()
            },
            "webhookUrl",
        ),
    ];
    for (req, expected) in cases {
        let err = check(req).unwrap_err();
        assert_eq!(err.code(), "validation_failed", "{expected}");
        assert_eq!(err.field(), Some(expected));
    }
}

#[test]
fn a_script_sets_the_scene_count_and_aliases_are_read() {
    let req: CreateCreation = serde_json::from_value(serde_json::json!({
        "type": "slide_deck", "prompt": "p", "style_id": "tech_blue", "output_quality": "2K",
        "script": [{"title": "One", "bullets": ["a"]}, {"title": "Two"}],
    }))
    .unwrap();
    let accepted = check(req).unwrap();
    let params: SlidesParams = serde_json::from_value(accepted.params).unwrap();
    assert_eq!(
        (params.scene_count, params.voice, params.height),
        (2, None, 1080)
    );
    assert_eq!(params.style, "tech_blue");
    assert_eq!(accepted.price, 8);
}

#[test]
fn an_image_is_an_image_generate_job() {
    let req = CreateCreation {
        kind: "image".into(),
        prompt: Some("a lighthouse".into()),
        aspect_ratio: Some("9:16".into()),
        ..Default::default()
    };
    let accepted = check(req).unwrap();
    assert_eq!(accepted.capability, "image.generate");
    assert_eq!(accepted.params["width"], 720);
    assert_eq!(accepted.price, 10);
}
