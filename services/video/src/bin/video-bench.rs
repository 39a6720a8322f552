//! Measures the local video engine: a 5 s 720p clip from two generated images, a 5 s 720p
//! prompt-only clip, and the largest clip the api accepts (15 s, 1080p, 21:9). Prints one JSON
//! line per case.
//!
//!   cargo build --release -j 1 -p atelier-video --bin video-bench
//!   target/release/video-bench [DIR]      (ATELIER_VIDEO_PRESET / _THREADS / _CRF apply;
//!                                          DIR keeps each clip and poster)
//!
//! `realtime_factor` is clip seconds over wall seconds: above 1 is faster than real time.
//! `peak_rss_kib` is this process's `VmHWM`, reset before each case (`/proc/self/clear_refs`);
//! `ffmpeg_peak_rss_kib` is the child's, sampled from its `/proc` status while it encoded.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use atelier_video::settings::{ClipSettings, Ratio, Resolution};
use atelier_video::source::SourceImage;
use atelier_video::{VideoConfig, VideoRequest, generate};
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};

/// A test image with something for every stage to do: smooth gradients, sharp-edged tiles and
/// thin lines (which show blur and cost the encoder bits), not an easy flat field.
fn test_image(width: u32, height: u32, hue: f32, format: ImageFormat) -> Vec<u8> {
    let image = ImageBuffer::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let ring = ((fx - 0.5).hypot(fy - 0.5) * 40.0).sin() * 0.5 + 0.5;
        let tile = if (x / 96 + y / 96) % 2 == 0 {
            1.0
        } else {
            0.55
        };
        let line = if x % 48 == 0 || y % 48 == 0 { 0.3 } else { 1.0 };
        let shade = tile * line;
        Rgb([
            (255.0 * (fx * 0.7 + ring * 0.3) * shade) as u8,
            (255.0 * (fy * 0.6 + hue * 0.4) * shade) as u8,
            (255.0 * ring * shade) as u8,
        ])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), format)
        .expect("encoding a test image");
    bytes
}

fn vm_hwm_kib() -> Option<u64> {
    atelier_video::ffmpeg::peak_rss_of(std::process::id())
}

async fn case(
    name: &str,
    request: VideoRequest,
    config: &VideoConfig,
    keep: Option<&Path>,
) -> anyhow::Result<()> {
    // Writing 5 resets the peak RSS counter (Linux 4.0+); elsewhere the peak is cumulative.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let seconds = request.settings.seconds;
    let start = Instant::now();
    let clip = generate(request, config, Arc::new(|_, _| {})).await?;
    let wall = start.elapsed();
    if let Some(dir) = keep {
        std::fs::write(dir.join(format!("{name}.mp4")), &clip.mp4)?;
        std::fs::write(dir.join(format!("{name}.jpg")), &clip.poster)?;
    }
    let line = serde_json::json!({
        "case": name,
        "width": clip.width,
        "height": clip.height,
        "frames": clip.frames,
        "clip_seconds": seconds,
        "wall_ms": wall.as_millis() as u64,
        "realtime_factor": (f64::from(seconds) / wall.as_secs_f64() * 100.0).round() / 100.0,
        "output_bytes": clip.mp4.len(),
        "poster_bytes": clip.poster.len(),
        "peak_rss_kib": vm_hwm_kib(),
        "ffmpeg_peak_rss_kib": clip.ffmpeg_peak_rss_kib,
        "preset": config.encoder.preset,
        "threads": config.encoder.threads,
    });
    println!("{line}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = VideoConfig::from_env()?;
    let keep = std::env::args().nth(1).map(PathBuf::from);
    let settings = ClipSettings {
        ratio: Ratio::Fixed(16, 9),
        seconds: 5,
        resolution: Resolution::P720,
    };
    let images = vec![
        SourceImage::check(
            "generated-1.jpg",
            test_image(1920, 1280, 0.2, ImageFormat::Jpeg).into(),
            &config.limits,
        )?,
        SourceImage::check(
            "generated-2.png",
            test_image(1200, 1600, 0.8, ImageFormat::Png).into(),
            &config.limits,
        )?,
    ];
    let two_images = VideoRequest {
        prompt: "从 @图片1 过渡到 @图片2，节奏明快".to_owned(),
        settings,
        images,
    };
    case("two_images_720p_5s", two_images, &config, keep.as_deref()).await?;
    let prompt_only = VideoRequest {
        prompt: "生成一条 9:16 品牌短视频，节奏明快，适合信息流投放".to_owned(),
        settings,
        images: Vec::new(),
    };
    case("prompt_only_720p_5s", prompt_only, &config, keep.as_deref()).await?;
    // The largest job the api accepts, for sizing time caps and memory limits.
    let largest = VideoRequest {
        prompt: "最长最大的一条".to_owned(),
        settings: ClipSettings {
            ratio: Ratio::Fixed(21, 9),
            seconds: 15,
            resolution: Resolution::P1080,
        },
        images: Vec::new(),
    };
    case(
        "prompt_only_1080p_21x9_15s",
        largest,
        &config,
        keep.as_deref(),
    )
    .await?;
    Ok(())
}
