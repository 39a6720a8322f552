//! Benchmarks the upscale engine on fixed cases and prints one JSON line per case.
//!
//! `upscale-bench DIR [--scale F] [--runs N]` runs every case directory under `DIR` (sorted by
//! name), each holding `input.png` and optionally `reference.png` (the image the input was
//! shrunk from). Each case runs in a child process of its own, so the peak memory it reports
//! (`VmHWM`) is that case's alone. The output is written beside the input as `ours.png` for
//! inspection and for `deploy/bench/engines.sh`.
//!
//! Fields: `ms` is the median wall time of `upscale` on the encoded bytes (decode, resample,
//! sharpen, encode); `core_ms` the median of `resample` on decoded pixels; `psnr` the PSNR in dB
//! of the 8-bit RGB samples against the reference.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use atelier_upscale::engine::{self, Limits, Target};
use image::DynamicImage;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str, default: f64| match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0),
        None => Some(default),
    };
    let (Some(runs), Some(scale)) = (option("--runs", 5.0), option("--scale", 4.0)) else {
        return usage("--runs and --scale take positive numbers");
    };
    let options = Options {
        runs: (runs as usize).max(1),
        scale: scale as f32,
    };
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("--case"), Some(dir)) => run_case(Path::new(dir), &options),
        (Some(dir), _) if !dir.starts_with("--") => run_all(Path::new(dir), &options),
        _ => return usage("missing the cases directory"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("upscale-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    runs: usize,
    scale: f32,
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("upscale-bench: {problem}\nusage: upscale-bench DIR [--scale F] [--runs N]");
    ExitCode::from(2)
}

/// Runs each case in a fresh child process and passes its JSON line through.
fn run_all(dir: &Path, options: &Options) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("input.png").is_file())
        .collect();
    cases.sort();
    if cases.is_empty() {
        return Err(format!(
            "{}: no case directories with input.png",
            dir.display()
        ));
    }
    for case in cases {
        let status = Command::new(&me)
            .arg("--case")
            .arg(&case)
            .args(["--runs", &options.runs.to_string()])
            .args(["--scale", &options.scale.to_string()])
            .status()
            .map_err(|e| format!("spawn for {}: {e}", case.display()))?;
        if !status.success() {
            return Err(format!("case {} failed: {status}", case.display()));
        }
    }
    Ok(())
}

fn run_case(dir: &Path, options: &Options) -> Result<(), String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}/{name}: {e}", dir.display()))
    };
    let input = read("input.png")?;
    let target = Target::Scale(options.scale);
    let limits = Limits::default();

    let mut output = None;
    let ms = median_ms(options.runs, || {
        output = Some(engine::upscale(&input, &target, &limits));
    });
    let output = output
        .expect("at least one run")
        .map_err(|e| e.to_string())?;
    // Read before anything else is decoded, so the peak is the engine's (plus the input).
    let peak_rss_kib = peak_rss_kib()?;
    std::fs::write(dir.join("ours.png"), &output.bytes).map_err(|e| format!("ours.png: {e}"))?;

    let decode = |bytes: &[u8]| image::load_from_memory(bytes).map_err(|e| e.to_string());
    let source = decode(&input)?;
    let core_ms = median_ms(options.runs, || {
        // The clone is timed too: a memcpy of the source, small against the resample.
        engine::resample(source.clone(), output.width, output.height)
            .expect("the full run succeeded");
    });
    let psnr = match read("reference.png") {
        Ok(reference) => Some(psnr(&decode(&reference)?, &decode(&output.bytes)?)?),
        Err(_) => None,
    };
    let line = serde_json::json!({
        "engine": "upscale",
        "impl": "ours",
        "case": dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "width": output.width,
        "height": output.height,
        "ms": round2(ms),
        "core_ms": round2(core_ms),
        "peak_rss_kib": peak_rss_kib,
        "output_bytes": output.bytes.len(),
        "psnr": psnr.map(round2),
    });
    println!("{line}");
    Ok(())
}

/// Median wall time of `runs` calls, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// This process's peak resident set so far, from the kernel's own accounting.
fn peak_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/self/status".to_owned())
}

/// PSNR over the 8-bit RGB samples of two images of the same size.
fn psnr(reference: &DynamicImage, output: &DynamicImage) -> Result<f64, String> {
    let (reference, output) = (reference.to_rgb8(), output.to_rgb8());
    if reference.dimensions() != output.dimensions() {
        return Err(format!(
            "reference is {:?}, output {:?}",
            reference.dimensions(),
            output.dimensions()
        ));
    }
    let squared: f64 = reference
        .as_raw()
        .iter()
        .zip(output.as_raw())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let mse = squared / reference.as_raw().len() as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
