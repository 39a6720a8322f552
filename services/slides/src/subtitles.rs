//! Subtitles as SubRip (`.srt`) and WebVTT (`.vtt`) from timed cues. Pure.

use crate::speech::Cue;

/// `HH:MM:SS<sep>mmm`, rounded to the millisecond.
fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Cue text on one line: a cue never contains the blank line that ends it.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start, ','),
            timestamp(cue.end, ','),
            one_line(&cue.text)
        ));
    }
    out
}

pub fn vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(cue.start, '.'),
            timestamp(cue.end, '.'),
            one_line(&cue.text).replace("-->", "->")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues() -> Vec<Cue> {
        vec![
            Cue {
                start: 0.3,
                end: 2.0004,
                text: "你好\n世界".into(),
            },
            Cue {
                start: 3661.5,
                end: 3662.25,
                text: "a --> b".into(),
            },
        ]
    }

    #[test]
    fn srt_numbers_cues_with_comma_milliseconds() {
        assert_eq!(
            srt(&cues()),
            "1\n00:00:00,300 --> 00:00:02,000\n你好 世界\n\n2\n01:01:01,500 --> 01:01:02,250\na --> b\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_no_arrow_in_text() {
        let vtt = vtt(&cues());
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.300 --> 00:00:02.000\n你好 世界\n"));
        assert!(vtt.contains("\na -> b\n"));
    }
}
