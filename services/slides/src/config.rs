//! The slides engine's settings, read once at start-up, each with a local default.

use std::path::PathBuf;
use std::time::Duration;

use atelier_kit::config;

#[derive(Clone, Debug)]
pub struct SlidesConfig {
    /// | `ATELIER_ESPEAK` | `espeak-ng` (on `PATH`) | the speech synthesiser |
    pub espeak: String,
    /// | `ATELIER_FFMPEG` | `ffmpeg` (on `PATH`) | the encoder, shared with the video engine |
    pub ffmpeg: PathBuf,
    /// | `ATELIER_SLIDES_PRESET` | `veryfast` | x264 preset |
    pub preset: String,
    /// | `ATELIER_SLIDES_FPS` | `25` | frames per second of the video |
    pub fps: u32,
    /// | `ATELIER_SLIDES_TIMEOUT` | `10m` | cap on one creation, outline to last byte |
    pub timeout: Duration,
    /// | `ATELIER_SLIDES_TMPDIR` | the system temporary directory | scratch files |
    pub temp_dir: PathBuf,
    /// | `ATELIER_FONT_PATH` | well-known CJK and Latin fonts | extra fonts, tried first |
    pub font_path: Option<String>,
}

impl Default for SlidesConfig {
    fn default() -> Self {
        Self {
            espeak: "espeak-ng".to_owned(),
            ffmpeg: PathBuf::from("ffmpeg"),
            preset: "veryfast".to_owned(),
            fps: 25,
            timeout: Duration::from_secs(600),
            temp_dir: std::env::temp_dir(),
            font_path: None,
        }
    }
}

impl SlidesConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        let fps = config::parsed("ATELIER_SLIDES_FPS", defaults.fps)?;
        anyhow::ensure!(
            (1..=60).contains(&fps),
            "ATELIER_SLIDES_FPS: {fps} is not 1–60"
        );
        Ok(Self {
            espeak: config::string("ATELIER_ESPEAK", &defaults.espeak),
            ffmpeg: config::var("ATELIER_FFMPEG").map_or(defaults.ffmpeg, PathBuf::from),
            preset: config::string("ATELIER_SLIDES_PRESET", &defaults.preset),
            fps,
            timeout: config::duration("ATELIER_SLIDES_TIMEOUT", defaults.timeout)?,
            temp_dir: config::var("ATELIER_SLIDES_TMPDIR").map_or(defaults.temp_dir, PathBuf::from),
            font_path: config::var("ATELIER_FONT_PATH"),
        })
    }
}
