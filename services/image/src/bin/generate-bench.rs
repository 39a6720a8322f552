//! Measures the sandbox renderer at 64x64, 1024x1024 and 1440x2560 (each quality at the
//! largest). Prints one JSON line per case.
//!
//!   cargo build --release -j 1 -p atelier-image --bin generate-bench
//!   target/release/generate-bench [DIR]      (ATELIER_FONT_PATH applies; DIR keeps the PNGs)
//!
//! `peak_rss_kib` is this process's `VmHWM`, reset before each case (`/proc/self/clear_refs`,
//! Linux 4.0+); it includes the fonts loaded at start-up.

use std::time::Instant;

use atelier_image::{Fonts, GenerateRequest, Quality, render};

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> anyhow::Result<()> {
    let fonts = Fonts::discover(std::env::var("ATELIER_FONT_PATH").ok().as_deref())?;
    let keep = std::env::args().nth(1).map(std::path::PathBuf::from);
    let cases = [
        (64, 64, Quality::Medium),
        (1024, 1024, Quality::Medium),
        (1440, 2560, Quality::Low),
        (1440, 2560, Quality::Medium),
        (1440, 2560, Quality::High),
    ];
    for (width, height, quality) in cases {
        let request = GenerateRequest {
            prompt: "参考 @图片1 的风格，生成 9:16 旅游海报".to_owned(),
            width,
            height,
            quality,
            scale: 50.0,
            seed: 1,
        };
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let start = Instant::now();
        let generated = render(&request, &fonts, None)?;
        let wall = start.elapsed();
        if let Some(dir) = &keep {
            let name = format!("{width}x{height}-{quality:?}.png").to_lowercase();
            std::fs::write(dir.join(name), &generated.png)?;
        }
        let line = serde_json::json!({
            "case": format!("{width}x{height}"),
            "quality": format!("{quality:?}").to_lowercase(),
            "wall_ms": wall.as_millis() as u64,
            "output_bytes": generated.png.len(),
            "peak_rss_kib": vm_hwm_kib(),
            "fonts": fonts.describe(),
        });
        println!("{line}");
    }
    Ok(())
}
