//! Real encodes with the installed ffmpeg, checked with ffprobe. These tests need ffmpeg and
//! ffprobe (deploy/local/deps.sh installs them) and fail, saying so, when they are missing.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};

use super::*;
use crate::clip::{Progress, VideoRequest, generate};
use crate::settings::{ClipSettings, Ratio, Resolution};
use crate::source::{Limits, SourceImage};
use crate::{VideoConfig, VideoEngine};

fn require(tool: &str) {
    let found = std::process::Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "{tool} is required by the video encode tests but does not run; \
         install it with deploy/local/deps.sh (Debian: apt-get install ffmpeg)"
    );
}

#[derive(Debug)]
struct Probe {
    codec: String,
    pix_fmt: String,
    width: u64,
    height: u64,
    frames: u64,
    duration: f64,
}

fn ffprobe(mp4: &[u8]) -> Probe {
    require("ffprobe");
    let dir = crate::scratch::ScratchDir::new(&std::env::temp_dir()).unwrap();
    let path = dir.path().join("probe.mp4");
    std::fs::write(&path, mp4).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,pix_fmt,width,height,nb_read_frames",
        ])
        .args(["-show_entries", "format=duration", "-of", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Probe {
        codec: text(&stream["codec_name"]),
        pix_fmt: text(&stream["pix_fmt"]),
        width: stream["width"].as_u64().unwrap(),
        height: stream["height"].as_u64().unwrap(),
        frames: text(&stream["nb_read_frames"]).parse().unwrap(),
        duration: text(&json["format"]["duration"]).parse().unwrap(),
    }
}

/// Every (percent, step) reported, in order.
type Seen = Arc<Mutex<Vec<(u32, String)>>>;

fn recorder() -> (Progress, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let progress: Progress = Arc::new(move |percent, step: &str| {
        sink.lock().unwrap().push((percent, step.to_owned()));
    });
    (progress, seen)
}

fn photo(width: u32, height: u32, tint: u8, format: ImageFormat) -> Bytes {
    let image = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            tint ^ ((x / 16 + y / 16) % 2 * 90) as u8,
        ])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes.into()
}

fn settings(ratio: Ratio, seconds: u32) -> ClipSettings {
    ClipSettings {
        ratio,
        seconds,
        resolution: Resolution::P480,
    }
}

#[tokio::test]
async fn a_prompt_only_clip_is_h264_yuv420p_of_the_asked_length_and_size() {
    require("ffmpeg");
    let (progress, seen) = recorder();
    let request = VideoRequest {
        prompt: "生成一条品牌短视频，节奏明快".to_owned(),
        settings: settings(Ratio::Fixed(16, 9), 4),
        images: Vec::new(),
    };
    let clip = generate(request, &VideoConfig::default(), progress)
        .await
        .unwrap();
    let probe = ffprobe(&clip.mp4);
    assert_eq!(probe.codec, "h264", "{probe:?}");
    assert_eq!(probe.pix_fmt, "yuv420p", "{probe:?}");
    assert_eq!((probe.width, probe.height), (854, 480), "{probe:?}");
    assert_eq!(probe.frames, 96, "{probe:?}");
    assert!((probe.duration - 4.0).abs() < 0.05, "{probe:?}");
    // faststart: the index (moov) comes before the media data (mdat).
    let moov = clip.mp4.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = clip.mp4.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat);
    let poster = image::load_from_memory_with_format(&clip.poster, ImageFormat::Jpeg).unwrap();
    assert_eq!((poster.width(), poster.height()), (854, 480));
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .any(|(_, step)| step.starts_with("encoding frame")),
        "{seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went back: {seen:?}"
    );
    assert_eq!(seen.last().unwrap().0, 97);
}

#[tokio::test]
async fn two_images_animate_in_an_adaptive_frame() {
    require("ffmpeg");
    let limits = Limits::default();
    let images = vec![
        SourceImage::check("a.jpg", photo(600, 800, 40, ImageFormat::Jpeg), &limits).unwrap(),
        SourceImage::check("b.png", photo(900, 500, 200, ImageFormat::Png), &limits).unwrap(),
    ];
    let request = VideoRequest {
        prompt: "参考 @图片1".to_owned(),
        settings: settings(Ratio::Adaptive, 4),
        images,
    };
    let (progress, _) = recorder();
    let clip = generate(request, &VideoConfig::default(), progress)
        .await
        .unwrap();
    let probe = ffprobe(&clip.mp4);
    // 3:4 from the first image, at 480p.
    assert_eq!((probe.width, probe.height), (480, 640), "{probe:?}");
    assert_eq!(probe.frames, 96);
    assert_eq!((clip.width, clip.height), (480, 640));
}

#[tokio::test]
async fn the_start_up_probe_accepts_the_installed_ffmpeg() {
    require("ffmpeg");
    let version = VideoEngine::default().check().await.unwrap();
    assert!(version.starts_with("ffmpeg version"), "{version}");
}

#[tokio::test]
async fn a_missing_ffmpeg_is_named_and_retryable() {
    let config = VideoConfig {
        encoder: EncoderConfig {
            program: "/nonexistent/ffmpeg".into(),
            ..EncoderConfig::default()
        },
        ..VideoConfig::default()
    };
    let request = VideoRequest {
        prompt: "x".to_owned(),
        settings: settings(Ratio::Fixed(1, 1), 4),
        images: Vec::new(),
    };
    let (progress, _) = recorder();
    let err = generate(request, &config, progress).await.unwrap_err();
    assert!(matches!(err, VideoError::FfmpegMissing { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("ATELIER_FFMPEG"), "{err}");
    let err = VideoEngine::new(config).check().await.unwrap_err();
    assert_eq!(err.code(), "encoder_unavailable");
}

#[tokio::test]
async fn an_encoder_that_dies_reports_its_exit_and_stderr() {
    let dir = crate::scratch::ScratchDir::new(&std::env::temp_dir()).unwrap();
    let script = dir.path().join("broken-ffmpeg");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 3\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = VideoConfig {
        encoder: EncoderConfig {
            program: script,
            ..EncoderConfig::default()
        },
        ..VideoConfig::default()
    };
    let request = VideoRequest {
        prompt: "x".to_owned(),
        settings: settings(Ratio::Fixed(1, 1), 4),
        images: Vec::new(),
    };
    let (progress, _) = recorder();
    let err = generate(request, &config, progress).await.unwrap_err();
    assert_eq!(err.code(), "encode_failed", "{err:?}");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("exit status: 3") && text.contains("Unknown encoder libx264"),
        "{text}"
    );
}

/// Children of this test process running `name`, zombies excluded.
fn children_named(name: &str) -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or_default();
            let ppid = fields.next().unwrap_or_default();
            comm == name && ppid == me && state != "Z"
        })
        .count()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An ffmpeg under a name of its own, so this test counts only its own children.
fn renamed_ffmpeg(dir: &Path, name: &str) -> EncoderConfig {
    require("ffmpeg");
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v ffmpeg"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap();
    let link = dir.join(name);
    #[cfg(unix)]
    std::os::unix::fs::symlink(real.trim(), &link).unwrap();
    EncoderConfig {
        program: link,
        ..EncoderConfig::default()
    }
}

fn long_request() -> VideoRequest {
    VideoRequest {
        prompt: "a long clip".to_owned(),
        settings: ClipSettings {
            ratio: Ratio::Fixed(16, 9),
            seconds: 15,
            resolution: Resolution::P1080,
        },
        images: Vec::new(),
    }
}

#[tokio::test]
async fn dropping_the_attempt_kills_ffmpeg() {
    let dir = crate::scratch::ScratchDir::new(&std::env::temp_dir()).unwrap();
    let config = VideoConfig {
        encoder: renamed_ffmpeg(dir.path(), "atl-ff-drop"),
        ..VideoConfig::default()
    };
    let (progress, _) = recorder();
    let task = tokio::spawn(async move { generate(long_request(), &config, progress).await });
    wait_until("ffmpeg runs", Duration::from_secs(30), || {
        children_named("atl-ff-drop") == 1
    })
    .await;
    task.abort();
    let _ = task.await;
    wait_until("ffmpeg is gone", Duration::from_secs(10), || {
        children_named("atl-ff-drop") == 0
    })
    .await;
}

#[tokio::test]
async fn the_time_cap_stops_the_clip_and_ffmpeg() {
    let dir = crate::scratch::ScratchDir::new(&std::env::temp_dir()).unwrap();
    let config = VideoConfig {
        encoder: renamed_ffmpeg(dir.path(), "atl-ff-cap"),
        timeout: Duration::from_millis(700),
        ..VideoConfig::default()
    };
    let (progress, _) = recorder();
    let err = generate(long_request(), &config, progress)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "encode_timeout", "{err:?}");
    assert!(err.is_retryable());
    wait_until("ffmpeg is gone", Duration::from_secs(10), || {
        children_named("atl-ff-cap") == 0
    })
    .await;
}

#[test]
fn peak_memory_is_read_from_proc_status() {
    let status = "Name:\tffmpeg\nVmPeak:\t  300000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t 80000 kB\n";
    assert_eq!(vm_hwm(status), Some(81234));
    assert_eq!(vm_hwm("Name:\tx\n"), None);
    assert!(peak_rss_of(std::process::id()).is_some_and(|kib| kib > 0));
}
