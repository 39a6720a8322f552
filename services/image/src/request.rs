//! The parameters of an `image.generate` job, parsed again from the stored job (the api has
//! validated and defaulted them) so that a bad value fails the job as fatal here.

use crate::ImageError;

/// Sides the api accepts; checked again so a hand-edited job cannot ask for a gigapixel.
pub const MIN_SIDE: u32 = 64;
pub const MAX_SIDE: u32 = 8192;
pub const MAX_PIXELS: u64 = 16_777_216;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Low,
    Medium,
    High,
}

impl Quality {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub quality: Quality,
    /// Text influence, 0 to 100: how large and prominent the prompt's text is.
    pub scale: f64,
    pub seed: u64,
}

impl GenerateRequest {
    /// Reads the job's parameters. `fallback_seed` is used when the job gave none, so that
    /// jobs without a seed differ from one another, as a generator's do.
    pub fn from_params(params: &serde_json::Value, fallback_seed: u64) -> Result<Self, ImageError> {
        let invalid = |reason: String| ImageError::InvalidRequest { reason };
        let prompt = params
            .get("prompt")
            .and_then(|p| p.as_str())
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| invalid("prompt: required for image.generate".to_owned()))?
            .to_owned();
        let side = |name: &str| -> Result<u32, ImageError> {
            match params.get(name).filter(|v| !v.is_null()) {
                None => Ok(1024),
                Some(value) => value
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|v| (MIN_SIDE..=MAX_SIDE).contains(v))
                    .ok_or_else(|| {
                        invalid(format!("{name}: {value} is not {MIN_SIDE} to {MAX_SIDE}"))
                    }),
            }
        };
        let (width, height) = (side("width")?, side("height")?);
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(invalid(format!(
                "width, height: {width}x{height} is over {MAX_PIXELS} pixels"
            )));
        }
        let quality = match params.get("quality").filter(|v| !v.is_null()) {
            None => Quality::Medium,
            Some(value) => value
                .as_str()
                .and_then(Quality::parse)
                .ok_or_else(|| invalid(format!("quality: {value} is not low, medium or high")))?,
        };
        let scale = match params.get("scale").filter(|v| !v.is_null()) {
            None => 50.0,
            Some(value) => value
                .as_f64()
                .filter(|s| (0.0..=100.0).contains(s))
                .ok_or_else(|| invalid(format!("scale: {value} is not 0 to 100")))?,
        };
        let seed = match params.get("seed").filter(|v| !v.is_null()) {
            None => fallback_seed,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| invalid(format!("seed: {value} is not a whole number")))?,
        };
        Ok(Self {
            prompt,
            width,
            height,
            quality,
            scale,
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_seed_example_parses() {
        let request = GenerateRequest::from_params(
            &json!({
                "capability": "image.generate",
                "prompt": "参考 @图片1 的风格，生成 9:16 旅游海报",
                "imageUrls": ["https://example.com/reference.png"],
                "width": 1440,
                "height": 2560,
                "scale": 50,
                "quality": "medium",
                "force_single": true
            }),
            7,
        )
        .unwrap();
        assert_eq!((request.width, request.height), (1440, 2560));
        assert_eq!(request.quality, Quality::Medium);
        assert_eq!(request.scale, 50.0);
        assert_eq!(request.seed, 7);
    }

    #[test]
    fn defaults_match_the_api() {
        let request =
            GenerateRequest::from_params(&json!({"prompt": "a cat", "seed": 3}), 9).unwrap();
        assert_eq!((request.width, request.height), (1024, 1024));
        assert_eq!(request.quality, Quality::Medium);
        assert_eq!(request.scale, 50.0);
        assert_eq!(request.seed, 3);
    }

    #[test]
    fn out_of_range_values_are_fatal_and_named() {
        for (params, field) in [
            (json!({"prompt": " "}), "prompt"),
            (json!({"prompt": "x", "width": 32}), "width"),
            (json!({"prompt": "x", "height": 9000}), "height"),
            (
                json!({"prompt": "x", "width": 8192, "height": 8192}),
                "width, height",
            ),
            (json!({"prompt": "x", "quality": "ultra"}), "quality"),
            (json!({"prompt": "x", "scale": 101}), "scale"),
            (json!({"prompt": "x", "seed": -1}), "seed"),
        ] {
            let err = GenerateRequest::from_params(&params, 0).unwrap_err();
            assert_eq!(err.code(), "invalid_request");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }
}
