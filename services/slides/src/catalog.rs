//! What the slides engine can make, as data: content types, aspect ratios and frame sizes,
//! qualities, scene counts, languages, slide styles — and the voices, read from the installed
//! espeak-ng rather than written down. The creations API's `/catalog` and its request
//! validation both come from here, and so does the engine's own check of a job, so the
//! three can never disagree.

use std::process::Stdio;
use std::time::Duration;

use atelier_image::Colour;
use serde::Serialize;

/// Scene (page) counts a creation may ask for, and the default.
pub const SCENE_COUNT_MIN: u32 = 1;
pub const SCENE_COUNT_MAX: u32 = 20;
pub const SCENE_COUNT_DEFAULT: u32 = 6;
/// Longest prompt, in characters.
pub const PROMPT_MAX_CHARS: usize = 10_000;
/// Longest title, bullet and narration of a partner's own script, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
pub const BULLET_MAX_CHARS: usize = 300;
pub const BULLETS_MAX: usize = 8;
pub const NARRATION_MAX_CHARS: usize = 2_000;

pub const ASPECT_RATIOS: [&str; 5] = ["16:9", "9:16", "1:1", "3:2", "2:3"];
pub const DEFAULT_ASPECT_RATIO: &str = "16:9";
/// Output qualities: the short side of the frame. `1K`/`2K` are accepted as aliases.
pub const QUALITIES: [&str; 2] = ["720p", "1080p"];
pub const DEFAULT_QUALITY: &str = "720p";

/// The canonical quality for a partner's value (`1K` is `720p`, `2K` is `1080p`).
pub fn quality(value: &str) -> Option<&'static str> {
    match value.to_ascii_lowercase().as_str() {
        "720p" | "1k" => Some("720p"),
        "1080p" | "2k" => Some("1080p"),
        _ => None,
    }
}

/// Frame size for an aspect ratio at a quality: the short side is the quality's lines, the
/// long side follows the ratio, both even (H.264 with 4:2:0 chroma needs even sides).
pub fn frame_size(aspect_ratio: &str, quality: &str) -> Option<(u32, u32)> {
    let short: u32 = match quality {
        "720p" => 720,
        "1080p" => 1080,
        _ => return None,
    };
    let (w, h): (u32, u32) = match aspect_ratio {
        "16:9" => (16, 9),
        "9:16" => (9, 16),
        "1:1" => (1, 1),
        "3:2" => (3, 2),
        "2:3" => (2, 3),
        _ => return None,
    };
    let long = |a: u32, b: u32| (short * a / b).div_ceil(2) * 2;
    Some(if w >= h {
        (long(w, h), short)
    } else {
        (short, long(h, w))
    })
}

/// A slide theme: background gradient, text colours and an accent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Style {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    #[serde(skip)]
    pub background: [Colour; 2],
    #[serde(skip)]
    pub title: Colour,
    #[serde(skip)]
    pub text: Colour,
    #[serde(skip)]
    pub accent: Colour,
}

pub const STYLES: [Style; 4] = [
    Style {
        id: "clean_light",
        name: "Clean Light",
        description: "white background, dark text, blue accent",
        background: [[250, 251, 253], [233, 238, 246]],
        title: [20, 33, 61],
        text: [45, 55, 72],
        accent: [37, 99, 235],
    },
    Style {
        id: "chalkboard_dark",
        name: "Chalkboard",
        description: "dark green board, chalk-white text, yellow accent",
        background: [[32, 56, 44], [22, 40, 31]],
        title: [250, 250, 240],
        text: [226, 232, 220],
        accent: [250, 204, 21],
    },
    Style {
        id: "tech_blue",
        name: "Tech Blue",
        description: "deep navy gradient, white text, cyan accent",
        background: [[15, 23, 42], [30, 58, 138]],
        title: [255, 255, 255],
        text: [203, 213, 225],
        accent: [34, 211, 238],
    },
    Style {
        id: "warm_paper",
        name: "Warm Paper",
        description: "cream paper, brown text, orange accent",
        background: [[253, 246, 227], [245, 231, 200]],
        title: [67, 40, 24],
        text: [92, 64, 51],
        accent: [234, 88, 12],
    },
];
pub const DEFAULT_STYLE: &str = "clean_light";

pub fn style(id: &str) -> Option<&'static Style> {
    STYLES.iter().find(|s| s.id == id)
}

/// A language slides can be written and narrated in: its espeak-ng voices are those whose
/// language is one of `espeak` (or a dialect of it), and `sample` is a character the slide
/// font must have for the language to be offered.
#[derive(Clone, Copy, Debug)]
pub struct Language {
    pub code: &'static str,
    pub name: &'static str,
    pub espeak: &'static [&'static str],
    pub sample: char,
    /// Writes without spaces between words (wrapping and subtitle lengths differ).
    pub cjk: bool,
}

pub const LANGUAGES: [Language; 8] = [
    Language {
        code: "zh",
        name: "中文",
        espeak: &["cmn"],
        sample: '中',
        cjk: true,
    },
    Language {
        code: "en",
        name: "English",
        espeak: &["en-us", "en-gb"],
        sample: 'A',
        cjk: false,
    },
    Language {
        code: "ja",
        name: "日本語",
        espeak: &["ja"],
        sample: 'あ',
        cjk: true,
    },
    Language {
        code: "ko",
        name: "한국어",
        espeak: &["ko"],
        sample: '한',
        cjk: true,
    },
    Language {
        code: "fr",
        name: "Français",
        espeak: &["fr-fr", "fr"],
        sample: 'é',
        cjk: false,
    },
    Language {
        code: "de",
        name: "Deutsch",
        espeak: &["de"],
        sample: 'ß',
        cjk: false,
    },
    Language {
        code: "es",
        name: "Español",
        espeak: &["es"],
        sample: 'ñ',
        cjk: false,
    },
    Language {
        code: "hi",
        name: "हिन्दी",
        espeak: &["hi"],
        sample: 'ह',
        cjk: false,
    },
];

pub fn language(code: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.code == code)
}

/// One voice a creation may name: an espeak-ng voice, optionally with a variant (`+f3`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Voice {
    pub voice_id: String,
    pub language: &'static str,
    pub name: String,
    pub gender: &'static str,
    pub engine: &'static str,
}

/// One line of `espeak-ng --voices`: its language code, name and voice file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspeakVoice {
    pub language: String,
    pub name: String,
    pub file: String,
}

/// Parses `espeak-ng --voices` (and `--voices=variant`). Columns are fixed: priority,
/// language, age/gender, name, file, other languages. MBROLA voices (`mb/…`) need a
/// separate synthesiser and data that are not installed, so they are left out.
pub fn parse_espeak_voices(listing: &str) -> Vec<EspeakVoice> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _priority = fields.next()?;
            let language = fields.next()?.to_owned();
            let _age_gender = fields.next()?;
            let name = fields.next()?.to_owned();
            let file = fields.next()?.to_owned();
            (!file.starts_with("mb/")).then_some(EspeakVoice {
                language,
                name,
                file,
            })
        })
        .collect()
}

/// The female variant offered beside each voice, when espeak-ng has it installed.
const FEMALE_VARIANT: &str = "f3";

/// The voices for each language, from espeak-ng's own listing: each matching voice, and its
/// female variant when that variant is installed. Deterministic: listing order, no duplicates.
pub fn voices(installed: &[EspeakVoice], variants: &[EspeakVoice]) -> Vec<Voice> {
    let has_female = variants
        .iter()
        .any(|v| v.file.trim_start_matches("!v/") == FEMALE_VARIANT);
    let mut out: Vec<Voice> = Vec::new();
    for language in &LANGUAGES {
        for voice in installed.iter().filter(|v| {
            language
                .espeak
                .iter()
                .any(|code| v.language == *code || v.language.starts_with(&format!("{code}-")))
                && !v.language.contains("latn")
        }) {
            if out.iter().any(|o| o.voice_id == voice.language) {
                continue;
            }
            let pretty = voice.name.replace('_', " ");
            out.push(Voice {
                voice_id: voice.language.clone(),
                language: language.code,
                name: pretty.clone(),
                gender: "male",
                engine: "espeak-ng",
            });
            if has_female {
                out.push(Voice {
                    voice_id: format!("{}+{FEMALE_VARIANT}", voice.language),
                    language: language.code,
                    name: format!("{pretty} (female)"),
                    gender: "female",
                    engine: "espeak-ng",
                });
            }
        }
    }
    out
}

/// What this machine can narrate and write: the voices, and the languages that have both a
/// voice and a font covering them.
#[derive(Clone, Debug, Default)]
pub struct Installed {
    pub voices: Vec<Voice>,
    pub languages: Vec<&'static Language>,
    /// Why nothing can be narrated, when nothing can (espeak-ng missing, say).
    pub problem: Option<String>,
}

impl Installed {
    pub fn voice(&self, id: &str) -> Option<&Voice> {
        self.voices.iter().find(|v| v.voice_id == id)
    }

    /// The first voice of a language: its default.
    pub fn default_voice(&self, language: &str) -> Option<&Voice> {
        self.voices.iter().find(|v| v.language == language)
    }

    pub fn language(&self, code: &str) -> Option<&'static Language> {
        self.languages.iter().copied().find(|l| l.code == code)
    }
}

/// With narration routed to a speech model (`audio.speech=openai:<model>`): its voices, in
/// every language the fonts can write.
pub fn provider_voices(model: &str, fonts: &atelier_image::Fonts) -> Installed {
    let languages: Vec<&'static Language> = LANGUAGES
        .iter()
        .filter(|l| fonts.covers(l.sample))
        .collect();
    let voices = languages
        .iter()
        .flat_map(|l| {
            crate::narrator::OPENAI_VOICES.iter().map(|v| Voice {
                voice_id: (*v).to_owned(),
                language: l.code,
                name: format!("{v} ({model})"),
                gender: "neutral",
                engine: "openai",
            })
        })
        .collect();
    Installed {
        voices,
        languages,
        problem: None,
    }
}

/// Runs `espeak-ng --voices` and `--voices=variant` and checks the fonts, once, at start-up.
pub async fn probe(espeak: &str, fonts: &atelier_image::Fonts) -> Installed {
    let listing = |arg: &'static str| async move {
        let run = tokio::process::Command::new(espeak)
            .arg(arg)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(10), run).await {
            Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
            Ok(Ok(out)) => Err(format!("{espeak} {arg} exited with {}", out.status)),
            Ok(Err(err)) => Err(format!("{espeak}: {err}")),
            Err(_) => Err(format!("{espeak} {arg} did not answer")),
        }
    };
    let (installed, variants): (String, String) =
        match (listing("--voices").await, listing("--voices=variant").await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(err), _) | (_, Err(err)) => {
                return Installed {
                    problem: Some(err),
                    ..Default::default()
                };
            }
        };
    let voices = voices(
        &parse_espeak_voices(&installed),
        &parse_espeak_voices(&variants),
    );
    let languages = LANGUAGES
        .iter()
        .filter(|l| fonts.covers(l.sample) && voices.iter().any(|v| v.language == l.code))
        .collect();
    Installed {
        voices,
        languages,
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)
 5  cmn-latn-pinyin --/M      Chinese_(Mandarin,_latin_as_Pinyin) sit/cmn-Latn-pinyin  (zh-cmn 5)(zh 5)
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  en-us           --/F      us-mbrola-1        mb/mb-us1            (en 8)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
";
    const VARIANTS: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/F      Female3            !v/f3
 5  variant         --/M      Adam               !v/adam
";

    #[test]
    fn voices_come_from_the_listing_without_mbrola_or_romanised_ones() {
        let voices = voices(
            &parse_espeak_voices(LISTING),
            &parse_espeak_voices(VARIANTS),
        );
        let ids: Vec<&str> = voices.iter().map(|v| v.voice_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "cmn", "cmn+f3", "en-gb", "en-gb+f3", "en-us", "en-us+f3", "fr-fr", "fr-fr+f3"
            ]
        );
        assert_eq!(voices[0].language, "zh");
        assert_eq!(voices[1].gender, "female");
        assert_eq!(voices[0].name, "Chinese (Mandarin, latin as English)");
    }

    #[test]
    fn without_the_variant_only_the_voices_themselves_are_offered() {
        let voices = voices(&parse_espeak_voices(LISTING), &[]);
        assert!(voices.iter().all(|v| !v.voice_id.contains('+')));
    }

    #[test]
    fn frame_sizes_follow_ratio_and_quality() {
        assert_eq!(frame_size("16:9", "720p"), Some((1280, 720)));
        assert_eq!(frame_size("9:16", "1080p"), Some((1080, 1920)));
        assert_eq!(frame_size("1:1", "720p"), Some((720, 720)));
        assert_eq!(frame_size("3:2", "720p"), Some((1080, 720)));
        assert_eq!(frame_size("2:3", "1080p"), Some((1080, 1620)));
        assert_eq!(frame_size("4:3", "720p"), None);
        for ratio in ASPECT_RATIOS {
            for q in QUALITIES {
                let (w, h) = frame_size(ratio, q).unwrap();
                assert!(w % 2 == 0 && h % 2 == 0, "{ratio} {q}");
            }
        }
        assert_eq!(quality("2K"), Some("1080p"));
        assert_eq!(quality("4K"), None);
    }
}
