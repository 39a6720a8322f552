//! `settings` of a `video.generate` job, and the pure function from them to exact frame sizes.
//!
//! The api has already validated and defaulted the settings (16:9, 5 s, 720p); they are parsed
//! again here because a stored job is data from elsewhere, and a bad value must fail the job as
//! fatal rather than reach ffmpeg.

use crate::VideoError;

/// Frames per second of every clip: the rate generation services deliver, and a third fewer
/// frames to render and encode than 30.
pub const FPS: u32 = 24;
pub const MIN_SECONDS: u32 = 4;
pub const MAX_SECONDS: u32 = 15;
/// The widest aspect an `adaptive` clip takes from its first image, either way round; a
/// panorama beyond it is cropped rather than turned into a ribbon of a video.
pub const MAX_ADAPTIVE_ASPECT: f64 = 21.0 / 9.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ratio {
    /// Width over height as two whole numbers, e.g. 16:9.
    Fixed(u32, u32),
    /// The aspect of the first image material; 16:9 when there is none.
    Adaptive,
}

impl Ratio {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "16:9" => Self::Fixed(16, 9),
            "4:3" => Self::Fixed(4, 3),
            "1:1" => Self::Fixed(1, 1),
            "3:4" => Self::Fixed(3, 4),
            "9:16" => Self::Fixed(9, 16),
            "21:9" => Self::Fixed(21, 9),
            "adaptive" => Self::Adaptive,
            _ => return None,
        })
    }
}

/// The short side of the frame, as the `p` names it: `720p` is 1280x720 at 16:9 and 720x1280
/// at 9:16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    P480,
    P720,
    P1080,
}

impl Resolution {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "480p" => Self::P480,
            "720p" => Self::P720,
            "1080p" => Self::P1080,
            _ => return None,
        })
    }

    pub fn short_side(self) -> u32 {
        match self {
            Self::P480 => 480,
            Self::P720 => 720,
            Self::P1080 => 1080,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipSettings {
    pub ratio: Ratio,
    pub seconds: u32,
    pub resolution: Resolution,
}

impl Default for ClipSettings {
    /// The api's defaults.
    fn default() -> Self {
        Self {
            ratio: Ratio::Fixed(16, 9),
            seconds: 5,
            resolution: Resolution::P720,
        }
    }
}

impl ClipSettings {
    /// Reads `params.settings`; a missing field takes the api's default.
    pub fn from_params(params: &serde_json::Value) -> Result<Self, VideoError> {
        let mut settings = Self::default();
        let Some(raw) = params.get("settings").filter(|v| !v.is_null()) else {
            return Ok(settings);
        };
        let invalid = |reason: String| VideoError::InvalidSettings { reason };
        if let Some(ratio) = raw.get("ratio").filter(|v| !v.is_null()) {
            settings.ratio = ratio
                .as_str()
                .and_then(Ratio::parse)
                .ok_or_else(|| invalid(format!("settings.ratio {ratio} is not supported")))?;
        }
        if let Some(duration) = raw.get("duration").filter(|v| !v.is_null()) {
            settings.seconds = duration
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .filter(|s| (MIN_SECONDS..=MAX_SECONDS).contains(s))
                .ok_or_else(|| {
                    invalid(format!(
                        "settings.duration {duration} is not {MIN_SECONDS} to {MAX_SECONDS} seconds"
                    ))
                })?;
        }
        if let Some(resolution) = raw.get("resolution").filter(|v| !v.is_null()) {
            settings.resolution =
                resolution
                    .as_str()
                    .and_then(Resolution::parse)
                    .ok_or_else(|| {
                        invalid(format!("settings.resolution {resolution} is not supported"))
                    })?;
        }
        Ok(settings)
    }

    /// Frame width and height. `first_image` is the first image's (width, height), which an
    /// `adaptive` ratio follows.
    pub fn dimensions(&self, first_image: Option<(u32, u32)>) -> (u32, u32) {
        let aspect = match (self.ratio, first_image) {
            (Ratio::Fixed(w, h), _) => f64::from(w) / f64::from(h),
            (Ratio::Adaptive, Some((w, h))) if w > 0 && h > 0 => {
                (f64::from(w) / f64::from(h)).clamp(1.0 / MAX_ADAPTIVE_ASPECT, MAX_ADAPTIVE_ASPECT)
            }
            (Ratio::Adaptive, _) => 16.0 / 9.0,
        };
        let short = self.resolution.short_side();
        // H.264 in yuv420p needs even sides; the short side already is one.
        let long = (even(f64::from(short) * aspect.max(1.0 / aspect))).max(short);
        if aspect >= 1.0 {
            (long, short)
        } else {
            (short, long)
        }
    }

    pub fn frames(&self) -> u32 {
        self.seconds * FPS
    }
}

/// The nearest even whole number.
fn even(x: f64) -> u32 {
    ((x / 2.0).round() * 2.0) as u32
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dims(ratio: &str, resolution: &str, first: Option<(u32, u32)>) -> (u32, u32) {
        let settings = ClipSettings::from_params(&json!({
            "settings": {"ratio": ratio, "duration": 5, "resolution": resolution}
        }))
        .unwrap();
        settings.dimensions(first)
    }

    #[test]
    fn every_ratio_and_resolution_has_exact_even_dimensions() {
        let table = [
            ("16:9", "480p", (854, 480)),
            ("16:9", "720p", (1280, 720)),
            ("16:9", "1080p", (1920, 1080)),
            ("4:3", "480p", (640, 480)),
            ("4:3", "720p", (960, 720)),
            ("4:3", "1080p", (1440, 1080)),
            ("1:1", "720p", (720, 720)),
            ("3:4", "720p", (720, 960)),
            ("9:16", "480p", (480, 854)),
            ("9:16", "720p", (720, 1280)),
            ("9:16", "1080p", (1080, 1920)),
            ("21:9", "480p", (1120, 480)),
            ("21:9", "720p", (1680, 720)),
            ("21:9", "1080p", (2520, 1080)),
        ];
        for (ratio, resolution, expected) in table {
            assert_eq!(
                dims(ratio, resolution, None),
                expected,
                "{ratio} {resolution}"
            );
        }
    }

    #[test]
    fn adaptive_follows_the_first_image() {
        assert_eq!(dims("adaptive", "720p", Some((1000, 1500))), (720, 1080));
        assert_eq!(dims("adaptive", "720p", Some((4000, 3000))), (960, 720));
        assert_eq!(dims("adaptive", "1080p", Some((333, 333))), (1080, 1080));
        // 1001x1000 rounds to the short side, never below it.
        assert_eq!(dims("adaptive", "480p", Some((1001, 1000))), (480, 480));
        // Panoramas are held to 21:9 either way round.
        assert_eq!(dims("adaptive", "720p", Some((10000, 100))), (1680, 720));
        assert_eq!(dims("adaptive", "720p", Some((100, 10000))), (720, 1680));
        // Nothing to follow: 16:9.
        assert_eq!(dims("adaptive", "720p", None), (1280, 720));
    }

    #[test]
    fn durations_are_whole_seconds_from_4_to_15() {
        let frames = |duration: serde_json::Value| {
            ClipSettings::from_params(&json!({"settings": {"duration": duration}}))
                .map(|s| s.frames())
        };
        assert_eq!(frames(json!(4)).unwrap(), 96);
        assert_eq!(frames(json!(15)).unwrap(), 360);
        for bad in [json!(3), json!(16), json!(5.5), json!(-1), json!("5")] {
            let err = frames(bad.clone()).unwrap_err();
            assert_eq!(err.code(), "invalid_settings", "{bad}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn missing_settings_take_the_api_defaults() {
        let settings = ClipSettings::from_params(&json!({"prompt": "x"})).unwrap();
        assert_eq!(settings, ClipSettings::default());
        assert_eq!(settings.dimensions(None), (1280, 720));
        assert_eq!(settings.frames(), 120);
        let partial = ClipSettings::from_params(&json!({"settings": {"ratio": "9:16"}})).unwrap();
        assert_eq!(partial.dimensions(None), (720, 1280));
    }

    #[test]
    fn unknown_values_are_refused_by_name() {
        for settings in [
            json!({"ratio": "2:1"}),
            json!({"ratio": 16}),
            json!({"resolution": "4k"}),
        ] {
            let err = ClipSettings::from_params(&json!({ "settings": settings })).unwrap_err();
            assert_eq!(err.code(), "invalid_settings");
            assert!(err.to_string().contains("settings."), "{err}");
        }
    }
}
