//! Benchmarks the inpaint engine on fixed cases and prints one JSON line per case.
//!
//! `inpaint-bench DIR [--runs N]` runs every case directory under `DIR` (sorted by name), each
//! holding `input.png` (the hole's pixels may hold anything: the engine must not read them),
//! `mask.png`, and optionally `reference.png` (the intact image). Each case runs in a child
//! process of its own, so the peak memory it reports (`VmHWM`) is that case's alone. The output
//! is written beside the inputs as `ours.png` for inspection and for `deploy/bench/engines.sh`.
//!
//! Fields: `ms` is the median wall time of `inpaint` on the encoded bytes (decode, fill, PNG
//! encode); `core_ms` the median of `inpaint_image` on decoded pixels (the fill alone);
//! `psnr_hole` the PSNR in dB of the 8-bit RGB samples inside the mask against the reference.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use atelier_inpaint::engine::{self, Limits, Mask};
use image::DynamicImage;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 => n,
            _ => return usage("--runs takes a positive count"),
        },
        None => 5,
    };
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("--case"), Some(dir)) => run_case(Path::new(dir), runs),
        (Some(dir), _) if !dir.starts_with("--") => run_all(Path::new(dir), runs),
        _ => return usage("missing the cases directory"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("inpaint-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("inpaint-bench: {problem}\nusage: inpaint-bench DIR [--runs N]");
    ExitCode::from(2)
}

/// Runs each case in a fresh child process and passes its JSON line through.
fn run_all(dir: &Path, runs: usize) -> Result<(), String> {
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
            .args(["--runs", &runs.to_string()])
            .status()
            .map_err(|e| format!("spawn for {}: {e}", case.display()))?;
        if !status.success() {
            return Err(format!("case {} failed: {status}", case.display()));
        }
    }
    Ok(())
}

fn run_case(dir: &Path, runs: usize) -> Result<(), String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}/{name}: {e}", dir.display()))
    };
    let (input, mask_bytes) = (read("input.png")?, read("mask.png")?);
    let limits = Limits::default();

    let mut output = None;
    let ms = median_ms(runs, || {
        output = Some(engine::inpaint(&input, &mask_bytes, &limits));
    });
    let output = output
        .expect("at least one run")
        .map_err(|e| e.to_string())?;
    // Read before anything else is decoded, so the peak is the engine's (plus the inputs).
    let peak_rss_kib = peak_rss_kib()?;
    std::fs::write(dir.join("ours.png"), &output.bytes).map_err(|e| format!("ours.png: {e}"))?;

    let decode = |bytes: &[u8]| image::load_from_memory(bytes).map_err(|e| e.to_string());
    let image = decode(&input)?;
    let mask = Mask::from_image(&decode(&mask_bytes)?);
    let mut copy = image.clone();
    let core_ms = median_ms(runs, || {
        copy.clone_from(&image);
        engine::inpaint_image(&mut copy, &mask).expect("the full run succeeded");
    });
    let psnr_hole = match read("reference.png") {
        Ok(reference) => Some(psnr_in_mask(
            &decode(&reference)?,
            &decode(&output.bytes)?,
            &mask,
        )),
        Err(_) => None,
    };
    let line = serde_json::json!({
        "engine": "inpaint",
        "impl": "ours",
        "case": dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "width": output.width,
        "height": output.height,
        "hole_pixels": mask.count(),
        "ms": round2(ms),
        "core_ms": round2(core_ms),
        "peak_rss_kib": peak_rss_kib,
        "output_bytes": output.bytes.len(),
        "psnr_hole": psnr_hole.map(round2),
    });
    println!("{line}");
    Ok(())
}

/// Median wall time of `runs` calls, in milliseconds. The clone in `core_ms`'s closure is not
/// timed out: it is a memcpy, small against the fill, and the same in every run.
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

/// PSNR over the 8-bit RGB samples of the pixels the mask selects.
fn psnr_in_mask(reference: &DynamicImage, output: &DynamicImage, mask: &Mask) -> f64 {
    let (reference, output) = (reference.to_rgb8(), output.to_rgb8());
    let mut squared = 0.0;
    let mut samples = 0usize;
    for (x, y, want) in reference.enumerate_pixels() {
        if mask.is_hole(x, y) {
            for (&a, &b) in want.0.iter().zip(&output.get_pixel(x, y).0) {
                squared += (f64::from(a) - f64::from(b)).powi(2);
                samples += 1;
            }
        }
    }
    let mse = squared / samples as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
