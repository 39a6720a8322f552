//! Measures the slides engine on seed 000's quick-start creation: 6 scenes, 16:9, 720p,
//! Chinese, narrated with espeak-ng. Prints one JSON line: wall time, the time each step
//! took, the video's length and size, and this process's peak RSS.
//!
//!   cargo build --release -j 2 -p atelier-slides --bin slides-bench
//!   /usr/bin/time -f '%M KiB peak RSS of the largest process' target/release/slides-bench [DIR]
//!
//! `/usr/bin/time` adds the figure that includes the children (ffmpeg, espeak-ng): on Linux
//! it reports the largest single process of the tree. DIR, when given, keeps the outputs.

use std::collections::BTreeMap;
use std::time::Instant;

use atelier_slides::catalog;
use atelier_slides::params::{Kind, SlidesParams};
use atelier_slides::{SlidesConfig, SlidesEngine};
use atelier_worker::{Engine, JobContext, ProgressReporter};

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let keep = std::env::args().nth(1).map(std::path::PathBuf::from);
    let engine = SlidesEngine::new(SlidesConfig::from_env()?)?;
    let (width, height) = catalog::frame_size("16:9", "720p").expect("a catalog size");
    let params = SlidesParams {
        kind: Kind::SlidesVideo,
        prompt: "用 6 页讲清楚 transformer 的 attention 是怎么工作的".to_owned(),
        language: "zh".to_owned(),
        aspect_ratio: "16:9".to_owned(),
        quality: "720p".to_owned(),
        width,
        height,
        scene_count: 6,
        voice: Some("cmn".to_owned()),
        style: catalog::DEFAULT_STYLE.to_owned(),
        script: None,
        webhook_url: None,
    };
    let (progress, mut updates) = ProgressReporter::new();
    let job = JobContext {
        job_id: "job_bench".to_owned(),
        attempt: 1,
        params: serde_json::to_value(&params)?,
        progress,
    };
    let started = Instant::now();
    // Time per step: a step's time runs from its first report to the next step's.
    let watcher = tokio::spawn(async move {
        let mut steps: Vec<(String, f64)> = Vec::new();
        while updates.changed().await.is_ok() {
            let step = updates.borrow().1.clone();
            let family = step.split(' ').next().unwrap_or_default().to_owned();
            if steps.last().map(|(s, _)| s != &family).unwrap_or(true) {
                steps.push((family, started.elapsed().as_secs_f64()));
            }
        }
        steps
    });
    let outputs = engine
        .run(job, Vec::new())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wall = started.elapsed().as_secs_f64();
    let steps = watcher.await?;
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    for (i, (step, at)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(wall, |(_, t)| *t);
        *seconds.entry(step.clone()).or_default() += end - at;
    }
    let manifest: atelier_slides::manifest::Manifest =
        serde_json::from_slice(&outputs.last().expect("a manifest").bytes)?;
    if let Some(dir) = keep {
        std::fs::create_dir_all(&dir)?;
        for (n, file) in outputs.iter().enumerate() {
            std::fs::write(dir.join(format!("{n}.{}", file.extension)), &file.bytes)?;
        }
    }
    let line = serde_json::json!({
        "case": "slides_video 6 scenes 16:9 720p zh",
        "wall_seconds": (wall * 100.0).round() / 100.0,
        "step_seconds": seconds.iter().map(|(k, v)| (k.clone(), (v * 100.0).round() / 100.0)).collect::<BTreeMap<_, _>>(),
        "video_seconds": manifest.duration_seconds,
        "video_bytes": outputs[0].bytes.len(),
        "outputs": outputs.len(),
        "outputs_bytes": outputs.iter().map(|o| o.bytes.len()).sum::<usize>(),
        "peak_rss_kib": vm_hwm_kib(),
    });
    println!("{line}");
    Ok(())
}
