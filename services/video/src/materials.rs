//! Which of a job's inputs are animated, and in what order. Pure, tested with vectors.
//!
//! The runtime hands inputs over in the claim's order: `imageUrls`, `inputUrls`,
//! `inputAssetIds`, then `materials`, so the last `materials.len()` inputs are the materials.
//! - Everything before the materials is an image; of the materials, those of type `image`.
//!   `video` and `audio` materials are not used by this local engine (it has no way to cut
//!   them in) and are skipped.
//! - Images whose label (`@图片2`) the prompt mentions come first, in the order the prompt
//!   first mentions them, so "从 @图片2 过渡到 @图片1" plays 2 then 1; the rest follow in
//!   input order.
//! - At most one image per second of clip is shown; later ones are left out, since an image on
//!   screen for less than a second is a flicker, not a shot.

use crate::VideoError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Indices into the inputs, in showing order.
    pub order: Vec<usize>,
    /// `video` and `audio` materials passed over.
    pub skipped_non_images: usize,
    /// Images beyond one per second.
    pub left_out: usize,
}

pub fn select(
    params: &serde_json::Value,
    input_count: usize,
    seconds: u32,
) -> Result<Selection, VideoError> {
    let materials: Vec<(String, Option<String>)> = params
        .get("materials")
        .and_then(|m| m.as_array())
        .map(|list| {
            list.iter()
                .map(|m| {
                    let field =
                        |name: &str| m.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                    (field("type").unwrap_or_default(), field("label"))
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(leading) = input_count.checked_sub(materials.len()) else {
        return Err(VideoError::InvalidSettings {
            reason: format!(
                "the job lists {} materials but {input_count} inputs were fetched",
                materials.len()
            ),
        });
    };
    let mut candidates: Vec<(usize, Option<String>)> = (0..leading).map(|i| (i, None)).collect();
    let mut skipped_non_images = 0;
    for (offset, (kind, label)) in materials.into_iter().enumerate() {
        if kind == "image" {
            candidates.push((leading + offset, label));
        } else {
            skipped_non_images += 1;
        }
    }
    let prompt = params.get("prompt").and_then(|p| p.as_str()).unwrap_or("");
    // Stable: unmentioned images keep input order behind the mentioned ones.
    candidates.sort_by_key(|(_, label)| {
        label
            .as_deref()
            .and_then(|label| first_mention(prompt, label))
            .unwrap_or(usize::MAX)
    });
    let mut order: Vec<usize> = candidates.into_iter().map(|(i, _)| i).collect();
    let keep = (seconds.max(1) as usize).min(order.len());
    let left_out = order.len() - keep;
    order.truncate(keep);
    Ok(Selection {
        order,
        skipped_non_images,
        left_out,
    })
}

/// Byte offset of the first mention of `label` in `prompt` that is not the start of a longer
/// label (`@图片1` does not match inside `@图片12`).
fn first_mention(prompt: &str, label: &str) -> Option<usize> {
    let label = label.trim();
    if label.is_empty() {
        return None;
    }
    let ends_in_digit = label.ends_with(|c: char| c.is_ascii_digit());
    prompt.match_indices(label).map(|(at, _)| at).find(|&at| {
        let next = prompt[at + label.len()..].chars().next();
        !(ends_in_digit && next.is_some_and(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn image(label: &str) -> serde_json::Value {
        json!({"type": "image", "url": "https://example.com/x.png", "label": label})
    }

    #[test]
    fn the_seed_example_animates_its_one_material() {
        let params = json!({
            "prompt": "生成一条 9:16 品牌短视频，节奏明快，适合信息流投放",
            "materials": [image("@图片1")],
        });
        let selection = select(&params, 1, 5).unwrap();
        assert_eq!(selection.order, [0]);
    }

    #[test]
    fn mentioned_labels_lead_in_mention_order() {
        let params = json!({
            "prompt": "从 @图片3 开始，过渡到 @图片1",
            "imageUrls": ["https://example.com/lead.png"],
            "materials": [image("@图片1"), image("@图片2"), image("@图片3")],
        });
        // Inputs: 0 = imageUrls[0], 1..=3 = materials.
        let selection = select(&params, 4, 5).unwrap();
        assert_eq!(selection.order, [3, 1, 0, 2]);
    }

    #[test]
    fn a_label_is_not_found_inside_a_longer_one() {
        assert_eq!(first_mention("看 @图片12 和 @图片1。", "@图片1"), Some(18));
        assert_eq!(first_mention("@图片12", "@图片1"), None);
        assert_eq!(first_mention("@logo是主角", "@logo"), Some(0));
        assert_eq!(first_mention("anything", " "), None);
    }

    #[test]
    fn video_and_audio_materials_are_skipped() {
        let params = json!({
            "prompt": "x",
            "materials": [
                {"type": "audio", "url": "https://example.com/a.mp3"},
                image("@图片1"),
                {"type": "video", "url": "https://example.com/v.mp4"},
            ],
        });
        let selection = select(&params, 3, 5).unwrap();
        assert_eq!(selection.order, [1]);
        assert_eq!(selection.skipped_non_images, 2);
    }

    #[test]
    fn at_most_one_image_per_second() {
        let params = json!({"prompt": "x"});
        let selection = select(&params, 9, 4).unwrap();
        assert_eq!(selection.order, [0, 1, 2, 3]);
        assert_eq!(selection.left_out, 5);
    }

    #[test]
    fn fewer_inputs_than_materials_is_refused() {
        let params = json!({"materials": [image("@图片1"), image("@图片2")]});
        let err = select(&params, 1, 5).unwrap_err();
        assert_eq!(err.code(), "invalid_settings");
    }
}
