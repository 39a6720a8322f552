//! Vectors for the request rules, including every example body of the seed.

use super::*;

const OPEN: NetPolicy = NetPolicy {
    allow_private_networks: false,
};

fn parse(json: &str) -> Result<CreateJobRequest, Invalid> {
    let req: CreateJobRequest = serde_json::from_str(json).map_err(|e| Invalid(e.to_string()))?;
    validate(req, &OPEN)
}

fn message(json: &str) -> String {
    parse(json).unwrap_err().0
}

#[test]
fn every_seed_example_is_accepted() {
    let seeds = [
        r#"{"capability":"image.generate","prompt":"生成一张专业产品主图","width":1440,"height":2560,"webhookUrl":"https://example.com/zhinian/webhook"}"#,
        r#"{"capability":"image.generate","prompt":"参考 @图片1 的风格,生成 9:16 旅游海报","imageUrls":["https://example.com/reference.png"],"width":1440,"height":2560,"scale":50,"quality":"medium","force_single":true}"#,
        r#"{"capability":"image.upscale","imageUrls":["https://example.com/input.png"],"resolution":"4k"}"#,
        r#"{"capability":"image.inpaint","prompt":"把选中区域文字替换成新品上市","imageUrls":["https://example.com/original.png","https://example.com/mask.png"]}"#,
        r#"{"capability":"video.generate","prompt":"生成一条 9:16 品牌短视频,节奏明快,适合信息流投放","settings":{"ratio":"9:16","duration":5,"resolution":"720p"},"materials":[{"type":"image","url":"https://example.com/product.png","label":"@图片1"}]}"#,
    ];
    for seed in seeds {
        parse(seed).unwrap_or_else(|err| panic!("{seed}: {err}"));
    }
}

#[test]
fn defaults_are_filled_in() {
    let video = parse(r#"{"capability":"video.generate","prompt":"a cat"}"#).unwrap();
    let settings = video.settings.unwrap();
    assert_eq!(settings.ratio.as_deref(), Some("16:9"));
    assert_eq!(settings.duration, Some(5));
    assert_eq!(settings.resolution.as_deref(), Some("720p"));
    let upscale =
        parse(r#"{"capability":"image.upscale","inputUrls":["https://example.com/a.png"]}"#)
            .unwrap();
    assert_eq!(upscale.scale, Some(2.0));
    let upper = parse(
        r#"{"capability":"image.upscale","imageUrls":["https://example.com/a.png"],"resolution":"2K"}"#,
    )
    .unwrap();
    assert_eq!(upper.resolution.as_deref(), Some("2k"));
}

#[test]
fn video_limits_name_the_field() {
    let base = |settings: &str| {
        message(&format!(
            r#"{{"capability":"video.generate","prompt":"x","settings":{settings}}}"#
        ))
    };
    assert!(base(r#"{"duration":3}"#).starts_with("settings.duration"));
    assert!(base(r#"{"duration":16}"#).starts_with("settings.duration"));
    assert!(base(r#"{"ratio":"2:1"}"#).starts_with("settings.ratio"));
    assert!(base(r#"{"resolution":"4k"}"#).starts_with("settings.resolution"));
    for ratio in VIDEO_RATIOS {
        parse(&format!(
            r#"{{"capability":"video.generate","prompt":"x","settings":{{"ratio":"{ratio}","duration":15,"resolution":"1080p"}}}}"#
        ))
        .unwrap();
    }
}

#[test]
fn bad_requests_are_refused_with_the_field_named() {
    assert!(message(r#"{"capability":"image.paint","prompt":"x"}"#).starts_with("capability"));
    assert!(message(r#"{"capability":"image.generate"}"#).starts_with("prompt"));
    assert!(
        message(r#"{"capability":"image.generate","prompt":"x","width":10}"#).starts_with("width")
    );
    assert!(
        message(r#"{"capability":"image.generate","prompt":"x","quality":"ultra"}"#)
            .starts_with("quality")
    );
    assert!(
        message(r#"{"capability":"image.generate","prompt":"x","scale":101}"#).starts_with("scale")
    );
    assert!(
        message(r#"{"capability":"image.inpaint","imageUrls":["https://example.com/a.png"]}"#)
            .starts_with("imageUrls")
    );
    assert!(
        message(r#"{"capability":"image.upscale","imageUrls":["ftp://example.com/a.png"]}"#)
            .starts_with("imageUrls[0]")
    );
    assert!(message(r#"{"capability":"image.upscale","imageUrls":["https://example.com/a.png"],"resolution":"8k"}"#).starts_with("resolution"));
    assert!(
        message(
            r#"{"capability":"image.upscale","imageUrls":["https://example.com/a.png"],"scale":9}"#
        )
        .starts_with("scale")
    );
    assert!(
        message(r#"{"capability":"image.upscale","inputAssetIds":["job_x"]}"#)
            .starts_with("inputAssetIds[0]")
    );
    assert!(message(r#"{"capability":"image.upscale","imageUrls":["https://example.com/a.png"],"settings":{}}"#).starts_with("settings"));
    assert!(message(r#"{"capability":"image.generate","prompt":"x","webhookUrl":"http://169.254.169.254/latest"}"#).starts_with("webhookUrl"));
    assert!(
        message(r#"{"capability":"image.generate","prompt":"x","colour":"red"}"#)
            .contains("unknown field `colour`")
    );
}

#[test]
fn private_targets_pass_only_when_allowed() {
    let body = r#"{"capability":"image.upscale","imageUrls":["http://127.0.0.1:9/a.png"]}"#;
    assert!(parse(body).is_err());
    let req: CreateJobRequest = serde_json::from_str(body).unwrap();
    let local = NetPolicy {
        allow_private_networks: true,
    };
    assert!(validate(req, &local).is_ok());
}

/// H2: no field may grow a message past NATS' 1 MiB; each URL and label is capped.
#[test]
fn long_urls_and_labels_are_refused_with_the_field_named() {
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
    let hook = format!(r#"{{"capability":"image.generate","prompt":"x","webhookUrl":"{long}"}}"#);
    assert_eq!(message(&hook), "webhookUrl: longer than 2048 characters");
    let images = format!(r#"{{"capability":"image.upscale","imageUrls":["{long}"]}}"#);
    assert_eq!(
        message(&images),
        "imageUrls[0]: longer than 2048 characters"
    );
    let label = format!(
        r#"{{"capability":"video.generate","prompt":"x","materials":[{{"type":"image","url":"https://example.com/a.png","label":"{}"}}]}}"#,
        "@".repeat(101)
    );
    assert_eq!(
        message(&label),
        "materials[0].label: longer than 100 characters"
    );
    let fits = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - 20));
    let ok = format!(r#"{{"capability":"image.upscale","imageUrls":["{fits}"]}}"#);
    assert!(parse(&ok).is_ok());
}

/// M5: a worker fetches every input of a job, so each capability takes only as many as its
/// engines use; the seed's examples (one reference, `[original, mask]`, one image to upscale,
/// one material) stay well inside.
#[test]
fn input_counts_are_capped_per_capability() {
    let urls = |n: usize| {
        serde_json::to_string(
            &(0..n)
                .map(|i| format!("https://example.com/{i}.png"))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let ids = |n: usize| {
        serde_json::to_string(
            &(0..n)
                .map(|i| format!("asset_01jabcdefghjkmnpqrstvwxy{i:02}"))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let generate = |images: usize, inputs: usize, assets: usize| {
        parse(&format!(
            r#"{{"capability":"image.generate","prompt":"x","imageUrls":{},"inputUrls":{},"inputAssetIds":{}}}"#,
            urls(images),
            urls(inputs),
            ids(assets)
        ))
    };
    assert!(generate(MAX_GENERATE_INPUTS, 0, 0).is_ok());
    assert!(generate(5, 5, 4).is_ok());
    // The review's job: 16 + 16 + 16, each list within its own limit.
    for (images, inputs, assets) in [(15, 0, 0), (8, 7, 0), (5, 5, 5), (16, 16, 16)] {
        let err = generate(images, inputs, assets).unwrap_err().0;
        assert!(
            err.starts_with("imageUrls, inputUrls, inputAssetIds: image.generate takes at most 14"),
            "{err}"
        );
    }
    let video = |images: usize, materials: usize| {
        let materials: Vec<serde_json::Value> = (0..materials)
            .map(|i| serde_json::json!({"type": "image", "url": format!("https://example.com/m{i}.png")}))
            .collect();
        parse(&format!(
            r#"{{"capability":"video.generate","prompt":"x","imageUrls":{},"materials":{}}}"#,
            urls(images),
            serde_json::Value::from(materials)
        ))
    };
    assert!(video(0, MAX_VIDEO_INPUTS).is_ok());
    assert!(video(4, 5).is_ok());
    let err = video(1, 9).unwrap_err().0;
    assert!(
        err.starts_with(
            "imageUrls, inputUrls, inputAssetIds, materials: video.generate takes at most 9"
        ),
        "{err}"
    );
    assert!(video(10, 0).unwrap_err().0.contains("got 10"));
    // Inpaint and upscale already take exactly two and one.
    assert!(
        message(&format!(
            r#"{{"capability":"image.inpaint","imageUrls":{}}}"#,
            urls(3)
        ))
        .starts_with("imageUrls: image.inpaint needs exactly two")
    );
    assert!(
        message(&format!(
            r#"{{"capability":"image.upscale","imageUrls":{}}}"#,
            urls(2)
        ))
        .starts_with("imageUrls: image.upscale needs exactly one")
    );
}
