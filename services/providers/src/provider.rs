//! The upstream providers and the capabilities each one can serve: the names used in routes,
//! configuration, errors and telemetry.

use std::fmt;
use std::str::FromStr;

/// An upstream service Atelier can route a capability to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// OpenAI, or any relay speaking its API.
    OpenAi,
    /// Volcengine Ark: Seedance video tasks and Seedream images.
    Ark,
    /// Google Gemini image generation ("Nano Banana").
    Gemini,
    /// Jimeng on the Volcengine visual API.
    Jimeng,
}

impl Provider {
    pub const ALL: [Self; 4] = [Self::OpenAi, Self::Ark, Self::Gemini, Self::Jimeng];

    /// Stable lowercase name, as written in `ATELIER_ROUTES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Ark => "ark",
            Self::Gemini => "gemini",
            Self::Jimeng => "jimeng",
        }
    }

    /// What this provider's protocol can do; a route to anything else is refused at start-up.
    pub fn supports(self, capability: Capability) -> bool {
        use Capability::*;
        match self {
            Self::OpenAi => matches!(
                capability,
                ImageGenerate | ImageInpaint | TextGenerate | AudioSpeech
            ),
            Self::Ark => matches!(capability, ImageGenerate | VideoGenerate),
            Self::Gemini => matches!(capability, ImageGenerate),
            Self::Jimeng => matches!(capability, ImageGenerate | ImageInpaint | ImageUpscale),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown provider {s:?} (known: openai, ark, gemini, jimeng)"))
    }
}

/// A job capability a route can send upstream. The first four are the worker capabilities; the
/// last two serve the creations API (a structured outline and its narration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    ImageGenerate,
    ImageInpaint,
    ImageUpscale,
    VideoGenerate,
    TextGenerate,
    AudioSpeech,
}

impl Capability {
    pub const ALL: [Self; 6] = [
        Self::ImageGenerate,
        Self::ImageInpaint,
        Self::ImageUpscale,
        Self::VideoGenerate,
        Self::TextGenerate,
        Self::AudioSpeech,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageGenerate => "image.generate",
            Self::ImageInpaint => "image.inpaint",
            Self::ImageUpscale => "image.upscale",
            Self::VideoGenerate => "video.generate",
            Self::TextGenerate => "text.generate",
            Self::AudioSpeech => "audio.speech",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown capability {s:?} (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>().unwrap(), c);
        }
        assert!("OpenAI".parse::<Provider>().is_err());
    }

    #[test]
    fn support_matrix() {
        assert!(Provider::Ark.supports(Capability::VideoGenerate));
        assert!(!Provider::OpenAi.supports(Capability::VideoGenerate));
        assert!(!Provider::Gemini.supports(Capability::ImageInpaint));
        assert!(Provider::Jimeng.supports(Capability::ImageUpscale));
    }
}
