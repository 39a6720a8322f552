//! Narration: each scene's text is cut into phrases at its punctuation, each phrase is spoken
//! by espeak-ng into its own WAV, and the phrases are joined with pauses. Speaking phrase by
//! phrase is what makes subtitles exact: every cue starts and ends where its audio does,
//! measured in samples rather than guessed from character counts.
//!
//! espeak-ng runs as a child process with the text on stdin (never on the command line, where
//! a leading `-` would be read as an option), under a timeout, killed on drop.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::SlidesError;
use crate::outline::is_clause_end;

/// Silence before a scene's first phrase, after a clause (comma) and after a sentence, and
/// after its last phrase: the pad each slide stays up for once its narration has ended.
pub const LEAD_IN: f64 = 0.3;
pub const CLAUSE_PAUSE: f64 = 0.15;
pub const SENTENCE_PAUSE: f64 = 0.35;
pub const TAIL_PAD: f64 = 0.7;
/// Speaking rate, in words per minute (espeak-ng's default of 175 is hurried for teaching).
const WORDS_PER_MINUTE: u32 = 160;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Mono 16-bit PCM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    pub fn seconds(&self) -> f64 {
        if self.rate == 0 {
            0.0
        } else {
            self.samples.len() as f64 / f64::from(self.rate)
        }
    }

    fn silence(&mut self, seconds: f64) {
        let n = (seconds * f64::from(self.rate)).round() as usize;
        self.samples.extend(std::iter::repeat_n(0, n));
    }

    /// The PCM as a WAV file.
    pub fn to_wav(&self) -> Vec<u8> {
        let data = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + data as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }
}

/// Reads a mono 16-bit PCM WAV (what espeak-ng writes), walking its chunks.
pub fn parse_wav(bytes: &[u8]) -> Result<Pcm, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".to_owned());
    }
    let mut at = 12;
    let mut rate = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8).saturating_add(len).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                if (format, channels, bits) != (1, 1, 16) {
                    return Err(format!(
                        "expected mono 16-bit PCM, got format {format}, {channels} channels, {bits} bits"
                    ));
                }
                rate = Some(u32::from_le_bytes([body[4], body[5], body[6], body[7]]));
            }
            b"data" => {
                let rate = rate.ok_or("data before fmt")?;
                let samples = body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return Ok(Pcm { rate, samples });
            }
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    Err("no data chunk".to_owned())
}

/// One subtitle: when it is said, relative to the start of its scene or of the video.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A phrase and whether it ends a sentence (which earns the longer pause).
pub fn phrases(narration: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in narration.chars() {
        current.push(c);
        if is_clause_end(c) {
            let sentence = matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | ';' | '；' | '\n');
            let text = current
                .trim()
                .trim_end_matches(['，', ',', '、'])
                .trim()
                .to_owned();
            if text.chars().any(char::is_alphanumeric) {
                out.push((text, sentence));
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if rest.chars().any(char::is_alphanumeric) {
        out.push((rest.to_owned(), true));
    }
    out
}

/// Speaks `text` with `voice` into a WAV under `dir`, and reads it back.
pub async fn speak(
    espeak: &str,
    voice: &str,
    text: &str,
    dir: &Path,
    n: usize,
) -> Result<Pcm, SlidesError> {
    let path = dir.join(format!("phrase-{n}.wav"));
    let mut child = Command::new(espeak)
        .args([
            "-v",
            voice,
            "-s",
            &WORDS_PER_MINUTE.to_string(),
            "--stdin",
            "-w",
        ])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| SlidesError::TtsUnavailable(format!("{espeak}: {err}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = text.to_owned();
    let run = async move {
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        child.wait_with_output().await
    };
    let out = tokio::time::timeout(TIMEOUT, run)
        .await
        .map_err(|_| SlidesError::TimedOut("espeak-ng"))?
        .map_err(|err| SlidesError::TtsUnavailable(format!("{espeak}: {err}")))?;
    if !out.status.success() {
        let _ = tokio::fs::remove_file(&path).await;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(SlidesError::Tts(format!("voice {voice:?}: {stderr}")));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|err| SlidesError::Io(format!("reading {}: {err}", path.display())))?;
    let _ = tokio::fs::remove_file(&path).await;
    parse_wav(&bytes)
        .map_err(|err| SlidesError::Tts(format!("espeak-ng wrote an unreadable WAV: {err}")))
}

/// A scene's narration: its audio (lead-in, phrases with pauses, tail pad) and a cue per
/// phrase, timed from the scene's start.
#[derive(Clone, Debug, Default)]
pub struct Narration {
    pub pcm: Pcm,
    pub cues: Vec<Cue>,
}

/// Joins spoken phrases into a scene. `spoken` pairs each phrase with its audio; all must
/// share one sample rate (espeak-ng always writes 22050 Hz).
pub fn join(spoken: Vec<((String, bool), Pcm)>, rate: u32) -> Narration {
    let mut pcm = Pcm {
        rate,
        samples: Vec::new(),
    };
    pcm.silence(LEAD_IN);
    let mut cues = Vec::with_capacity(spoken.len());
    let count = spoken.len();
    for (i, ((text, sentence), phrase)) in spoken.into_iter().enumerate() {
        let start = pcm.seconds();
        pcm.samples.extend_from_slice(&phrase.samples);
        cues.push(Cue {
            start,
            end: pcm.seconds(),
            text,
        });
        if i + 1 < count {
            pcm.silence(if sentence {
                SENTENCE_PAUSE
            } else {
                CLAUSE_PAUSE
            });
        }
    }
    pcm.silence(TAIL_PAD);
    Narration { pcm, cues }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_split_at_punctuation_and_know_their_sentence_ends() {
        assert_eq!(
            phrases("这一页讲核心概念。围绕 attention，我们关注查询、键和值"),
            [
                ("这一页讲核心概念。".to_owned(), true),
                ("围绕 attention".to_owned(), false),
                ("我们关注查询".to_owned(), false),
                ("键和值".to_owned(), true),
            ]
        );
        assert_eq!(
            phrases("Hello, world. ..."),
            [("Hello".to_owned(), false), ("world.".to_owned(), true)]
        );
        assert!(phrases("  ").is_empty());
    }

    #[test]
    fn wav_round_trips_and_bad_files_are_named() {
        let pcm = Pcm {
            rate: 22050,
            samples: vec![0, 1, -1, i16::MAX, i16::MIN],
        };
        assert_eq!(parse_wav(&pcm.to_wav()).unwrap(), pcm);
        assert!(
            parse_wav(b"RIFF\0\0\0\0WAVE")
                .unwrap_err()
                .contains("no data")
        );
        assert!(parse_wav(b"ID3 not a wav").is_err());
    }

    #[test]
    fn cues_are_where_their_audio_is() {
        let rate = 1000;
        let phrase = |n: usize| Pcm {
            rate,
            samples: vec![1; n],
        };
        let joined = join(
            vec![
                (("a".into(), false), phrase(500)),
                (("b".into(), true), phrase(1000)),
            ],
            rate,
        );
        assert_eq!(
            joined.cues[0],
            Cue {
                start: 0.3,
                end: 0.8,
                text: "a".into()
            }
        );
        assert!((joined.cues[1].start - (0.8 + CLAUSE_PAUSE)).abs() < 1e-9);
        assert!((joined.cues[1].end - 1.95).abs() < 1e-9);
        assert!((joined.pcm.seconds() - (1.95 + TAIL_PAD)).abs() < 1e-9);
    }

    #[tokio::test]
    async fn espeak_speaks_chinese_and_refuses_an_unknown_voice() {
        let dir = tempfile::tempdir().unwrap();
        let pcm = speak("espeak-ng", "cmn", "你好，世界", dir.path(), 0)
            .await
            .unwrap();
        assert_eq!(pcm.rate, 22050);
        assert!(pcm.seconds() > 0.5, "{}", pcm.seconds());
        let refused = speak("espeak-ng", "zz9", "hi", dir.path(), 1).await;
        assert!(
            matches!(refused, Err(SlidesError::Tts(_))),
            "an unknown voice is refused"
        );
        // Nothing is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
