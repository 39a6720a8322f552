//! The video: each slide held for its scene's duration, soft crossfades between slides, the
//! narration as AAC and the subtitles as a soft (`mov_text`) track, H.264 in an MP4 with the
//! index at the front. One ffmpeg child does it all from the slide PNGs, one WAV and one SRT.
//!
//! Crossfades keep the timeline exact: every slide but the last is fed `T` seconds longer than
//! its scene, and fade `k` starts at scene `k`'s start, so the video is exactly as long as the
//! narration and each slide is fully in view within `T` of its narration starting.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::SlidesError;

/// Length of a crossfade, at most; shorter when a scene is very short.
const FADE: f64 = 0.4;
/// How much of ffmpeg's stderr an error carries.
const STDERR_TAIL: usize = 1500;

pub struct Assembly<'a> {
    pub slides: &'a [PathBuf],
    /// Seconds each slide is shown: its scene's narration and pads.
    pub durations: &'a [f64],
    pub audio: &'a Path,
    pub subtitles: &'a Path,
    pub fps: u32,
    pub preset: &'a str,
    pub output: &'a Path,
}

/// The ffmpeg arguments for `a`. Pure, so the filter graph is tested without running it.
pub fn args(a: &Assembly) -> Vec<String> {
    let n = a.slides.len();
    let shortest = a.durations.iter().copied().fold(f64::INFINITY, f64::min);
    let fade = FADE.min(shortest / 2.0);
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    for (i, (slide, duration)) in a.slides.iter().zip(a.durations).enumerate() {
        let fed = if i + 1 < n {
            duration + fade
        } else {
            *duration
        };
        args.extend([
            "-loop".into(),
            "1".into(),
            "-framerate".into(),
            a.fps.to_string(),
            "-t".into(),
            format!("{fed:.3}"),
            "-i".into(),
            slide.display().to_string(),
        ]);
    }
    args.extend(["-i".into(), a.audio.display().to_string()]);
    args.extend(["-i".into(), a.subtitles.display().to_string()]);
    let mut graph: Vec<String> = (0..n)
        .map(|i| format!("[{i}:v]fps={},format=yuv420p,settb=AVTB[s{i}]", a.fps))
        .collect();
    let mut last = "s0".to_owned();
    let mut start = 0.0;
    for k in 1..n {
        start += a.durations[k - 1];
        let out = format!("x{k}");
        graph.push(format!(
            "[{last}][s{k}]xfade=transition=fade:duration={fade:.3}:offset={start:.3}[{out}]"
        ));
        last = out;
    }
    args.extend(["-filter_complex".into(), graph.join(";")]);
    args.extend([
        "-map".into(),
        format!("[{last}]"),
        "-map".into(),
        format!("{n}:a"),
        "-map".into(),
        format!("{}:s", n + 1),
    ]);
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            a.preset,
            "-tune",
            "stillimage",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-c:s",
            "mov_text",
            "-movflags",
            "+faststart",
            "-progress",
            "pipe:1",
            "-nostats",
        ]
        .map(String::from),
    );
    args.push(a.output.display().to_string());
    args
}

/// Runs ffmpeg, reporting the fraction of the timeline encoded so far. The child is killed if
/// this future is dropped (a timeout, a shutdown).
pub async fn run(
    program: &Path,
    a: &Assembly<'_>,
    progress: impl Fn(f64),
) -> Result<(), SlidesError> {
    let total: f64 = a.durations.iter().sum();
    let mut child = Command::new(program)
        .args(args(a))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| SlidesError::Encode(format!("starting {}: {err}", program.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text).await;
        let text = String::from_utf8_lossy(&text).into_owned();
        let cut = text.len().saturating_sub(STDERR_TAIL);
        text[text.ceil_char_boundary(cut)..].trim().to_owned()
    });
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // `out_time_us` is the encoded timeline position (ffmpeg also prints it as the
        // misnamed `out_time_ms`, in microseconds too).
        if let Some(us) = line
            .strip_prefix("out_time_us=")
            .and_then(|v| v.parse::<f64>().ok())
            && total > 0.0
        {
            progress((us / 1e6 / total).clamp(0.0, 1.0));
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|err| SlidesError::Encode(format!("waiting for ffmpeg: {err}")))?;
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(SlidesError::Encode(format!("ffmpeg {status}: {stderr}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_start_where_scenes_start_and_slides_are_fed_longer() {
        let slides: Vec<PathBuf> = ["a.png", "b.png", "c.png"].map(PathBuf::from).to_vec();
        let a = Assembly {
            slides: &slides,
            durations: &[2.0, 3.5, 1.0],
            audio: Path::new("n.wav"),
            subtitles: Path::new("s.srt"),
            fps: 25,
            preset: "veryfast",
            output: Path::new("out.mp4"),
        };
        let args = args(&a);
        let fed: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-t")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(fed, ["2.400", "3.900", "1.000"]);
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(graph.contains("[s0][s1]xfade=transition=fade:duration=0.400:offset=2.000[x1]"));
        assert!(graph.contains("[x1][s2]xfade=transition=fade:duration=0.400:offset=5.500[x2]"));
        let maps: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-map")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(maps, ["[x2]", "3:a", "4:s"]);
        assert_eq!(args.last().unwrap(), "out.mp4");
    }

    #[test]
    fn one_slide_needs_no_fade() {
        let slides = [PathBuf::from("a.png")];
        let a = Assembly {
            slides: &slides,
            durations: &[0.6],
            audio: Path::new("n.wav"),
            subtitles: Path::new("s.srt"),
            fps: 25,
            preset: "veryfast",
            output: Path::new("out.mp4"),
        };
        let args = args(&a);
        assert!(!args.iter().any(|a| a.contains("xfade")));
        assert!(args.contains(&"[s0]".to_owned()));
    }
}
