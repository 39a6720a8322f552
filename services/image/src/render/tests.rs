//! The renderer end to end, with the system's fonts. These tests need a CJK font
//! (deploy/local/deps.sh installs `fonts-wqy-microhei`) and fail, saying so, without one.

use image::ImageFormat;

use super::*;

fn fonts() -> Fonts {
    let fonts = Fonts::discover(None).expect("the well-known fonts load");
    assert!(
        fonts.covers('海') && fonts.covers('a'),
        "a CJK font is required (found: {}); install fonts-wqy-microhei with deploy/local/deps.sh",
        fonts.describe()
    );
    fonts
}

fn request(prompt: &str, width: u32, height: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.to_owned(),
        width,
        height,
        quality: Quality::Medium,
        scale: 50.0,
        seed: 42,
    }
}

fn pixels(generated: &Generated) -> image::RgbImage {
    image::load_from_memory_with_format(&generated.png, ImageFormat::Png)
        .unwrap()
        .into_rgb8()
}

const POSTER: &str = "参考 @图片1 的风格，生成 9:16 旅游海报";

#[test]
fn the_same_request_gives_the_same_bytes() {
    let fonts = fonts();
    let a = render(&request(POSTER, 360, 640), &fonts, None).unwrap();
    let b = render(&request(POSTER, 360, 640), &fonts, None).unwrap();
    assert_eq!(a.png, b.png);
}

#[test]
fn prompt_seed_and_size_each_change_the_image() {
    let fonts = fonts();
    let base = render(&request(POSTER, 360, 640), &fonts, None).unwrap();
    let other_prompt = render(&request("生成一张专业产品主图", 360, 640), &fonts, None).unwrap();
    assert_ne!(base.png, other_prompt.png);
    let other_seed = GenerateRequest {
        seed: 43,
        ..request(POSTER, 360, 640)
    };
    assert_ne!(base.png, render(&other_seed, &fonts, None).unwrap().png);
}

#[test]
fn dimensions_are_honoured() {
    let fonts = fonts();
    for (width, height) in [(64, 64), (300, 200), (1440, 2560)] {
        let low = GenerateRequest {
            quality: Quality::Low,
            ..request(POSTER, width, height)
        };
        let generated = render(&low, &fonts, None).unwrap();
        assert_eq!((generated.width, generated.height), (width, height));
        assert_eq!(pixels(&generated).dimensions(), (width, height));
    }
}

/// Pixels that differ between two renders of the same size.
fn changed(a: &Generated, b: &Generated) -> usize {
    let (a, b) = (pixels(a), pixels(b));
    a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count()
}

#[test]
fn the_prompt_is_drawn_and_scale_sets_its_prominence() {
    let fonts = fonts();
    let size = (512, 512);
    let without_text = render(&request(POSTER, size.0, size.1), &Fonts::default(), None).unwrap();
    let at = |scale| {
        let req = GenerateRequest {
            scale,
            ..request(POSTER, size.0, size.1)
        };
        render(&req, &fonts, None).unwrap()
    };
    let (quiet, loud) = (at(0.0), at(100.0));
    let (quiet, loud) = (
        changed(&without_text, &quiet),
        changed(&without_text, &loud),
    );
    assert!(
        quiet > 500,
        "the text should show even at scale 0 ({quiet} pixels)"
    );
    assert!(
        loud > 2 * quiet,
        "scale 100 ({loud} pixels) should dominate scale 0 ({quiet})"
    );
}

#[test]
fn quality_changes_detail_and_compression_not_size() {
    let fonts = fonts();
    let at = |quality| {
        let req = GenerateRequest {
            quality,
            ..request(POSTER, 400, 300)
        };
        render(&req, &fonts, None).unwrap()
    };
    let (low, high) = (at(Quality::Low), at(Quality::High));
    assert_ne!(low.png, high.png);
    assert_eq!(pixels(&low).dimensions(), pixels(&high).dimensions());
}

#[test]
fn a_reference_image_sets_the_palette() {
    let fonts = fonts();
    let req = request(POSTER, 200, 200);
    let plain = render(&req, &fonts, None).unwrap();
    let red: Vec<Colour> = vec![[220, 20, 20]; 64 * 64];
    let tinted = render(&req, &fonts, Some(&red)).unwrap();
    assert_ne!(plain.png, tinted.png);
    let image = pixels(&tinted);
    let reddish = image
        .pixels()
        .filter(|p| p.0[0] > 150 && p.0[1] < 90)
        .count();
    assert!(reddish > 0, "the reference's red should appear");
}

#[test]
fn cjk_text_wraps_within_the_box_with_a_real_font() {
    let fonts = fonts();
    let text = "参考图片的风格，生成一张适合信息流投放的旅游海报，节奏明快，色彩鲜明";
    let block = fonts.fit(text, 300.0, 400.0, 40.0, 10.0);
    assert!(block.lines.len() > 1, "{block:?}");
    assert_eq!(block.lines.concat(), text);
    for line in &block.lines {
        assert!(
            fonts.line_width(line, block.size) <= 300.0,
            "{line} overflows"
        );
        assert!(!line.starts_with('，'), "{line} starts with a comma");
    }
    let latin = fonts.fit(
        "a travel poster in the style of the reference",
        200.0,
        400.0,
        30.0,
        10.0,
    );
    assert!(
        latin
            .lines
            .iter()
            .all(|l| !l.starts_with(' ') && !l.ends_with(' ')),
        "{latin:?}"
    );
    // Too much text for the box: cut, with an ellipsis.
    let crammed = fonts.fit(&text.repeat(20), 100.0, 60.0, 20.0, 10.0);
    assert!(crammed.lines.last().unwrap().ends_with('…'), "{crammed:?}");
    assert!(crammed.height <= 60.0);
}
