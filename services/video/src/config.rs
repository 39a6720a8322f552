//! The video engine's settings, read once at start-up from `ATELIER_VIDEO_*` and
//! `ATELIER_FFMPEG`, each with a local default.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use atelier_kit::config;

use crate::ffmpeg::EncoderConfig;
use crate::source::Limits;

/// The presets x264 knows, fastest first.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Everything that shapes how clips are made.
#[derive(Debug, Clone)]
pub struct VideoConfig {
    pub encoder: EncoderConfig,
    pub limits: Limits,
    /// The longest a clip may take, rendering and encoding together.
    pub timeout: Duration,
    /// Where the temporary MP4 is written.
    pub temp_dir: PathBuf,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderConfig::default(),
            limits: Limits::default(),
            timeout: Duration::from_secs(600),
            temp_dir: std::env::temp_dir(),
        }
    }
}

impl VideoConfig {
    /// | variable | default | meaning |
    /// | --- | --- | --- |
    /// | `ATELIER_FFMPEG` | `ffmpeg` (on `PATH`) | the ffmpeg executable |
    /// | `ATELIER_VIDEO_PRESET` | `veryfast` | x264 preset |
    /// | `ATELIER_VIDEO_CRF` | `21` | x264 quality, 0–51 (lower is better and larger) |
    /// | `ATELIER_VIDEO_THREADS` | `0` (x264 decides) | encoder threads |
    /// | `ATELIER_VIDEO_TIMEOUT` | `10m` | cap on one clip, rendering and encoding |
    /// | `ATELIER_VIDEO_TMPDIR` | the system temporary directory | where the MP4 is written |
    /// | `ATELIER_MAX_INPUT_BYTES` | 50 MiB | largest input image accepted |
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        let preset = config::string("ATELIER_VIDEO_PRESET", &defaults.encoder.preset);
        if !X264_PRESETS.contains(&preset.as_str()) {
            bail!(
                "ATELIER_VIDEO_PRESET: {preset:?} is not one of {}",
                X264_PRESETS.join(", ")
            );
        }
        let crf: u8 = config::parsed("ATELIER_VIDEO_CRF", defaults.encoder.crf)?;
        if crf > 51 {
            bail!("ATELIER_VIDEO_CRF: {crf} is over 51");
        }
        Ok(Self {
            encoder: EncoderConfig {
                program: config::var("ATELIER_FFMPEG")
                    .map(PathBuf::from)
                    .unwrap_or(defaults.encoder.program),
                preset,
                crf,
                threads: config::parsed("ATELIER_VIDEO_THREADS", defaults.encoder.threads)?,
            },
            limits: Limits {
                max_bytes: config::parsed("ATELIER_MAX_INPUT_BYTES", defaults.limits.max_bytes)?,
                ..defaults.limits
            },
            timeout: config::duration("ATELIER_VIDEO_TIMEOUT", defaults.timeout)?,
            temp_dir: config::var("ATELIER_VIDEO_TMPDIR")
                .map(PathBuf::from)
                .unwrap_or(defaults.temp_dir),
        })
    }
}
