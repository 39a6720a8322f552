//! The video: each slide held for its scene's duration with a soft crossfade from the slide
//! before, the narration as AAC and the subtitles as a soft (`mov_text`) track, H.264 in an MP4
//! with the index at the front.
//!
//! One ffmpeg per scene encodes that scene's segment (the previous slide fading into this one
//! over its first `FADE` seconds, then this slide held), and one more joins the segments by
//! stream copy and adds the audio and subtitles. A single ffmpeg with every slide as an input
//! and a chain of `xfade`s was tried first: ffmpeg reads all inputs at once and queues the
//! frames of later slides until their fade, so its memory grew with the video's length (375 MB
//! for a 2-minute, 6-scene 720p video). Per-scene segments keep it flat.
//!
//! Segment lengths are whole frames, counted from the timeline (frame `round(start × fps)` to
//! `round(end × fps)`), so rounding never accumulates: every slide change is within half a
//! frame of its narration's scene boundary, however many scenes there are.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::SlidesError;

/// Length of a crossfade, at most; shorter when a scene is very short.
const FADE: f64 = 0.4;
/// How much of ffmpeg's stderr an error carries.
const STDERR_TAIL: usize = 1500;

/// How every segment is encoded: identical settings, so they join by stream copy.
#[derive(Clone, Copy, Debug)]
pub struct Encoding<'a> {
    pub fps: u32,
    pub preset: &'a str,
}

/// One scene's segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// The slide before, faded from; none for the first scene.
    pub previous: Option<&'a Path>,
    pub slide: &'a Path,
    pub frames: u64,
}

/// Frames of each scene: from `round(start × fps)` to `round(end × fps)`.
pub fn frame_counts(durations: &[f64], fps: u32) -> Vec<u64> {
    let mut at = 0.0;
    durations
        .iter()
        .map(|d| {
            let start = (at * f64::from(fps)).round() as u64;
            at += d;
            let end = (at * f64::from(fps)).round() as u64;
            (end - start).max(1)
        })
        .collect()
}

fn common() -> Vec<String> {
    [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-nostats",
    ]
    .map(String::from)
    .to_vec()
}

/// The ffmpeg arguments of one segment. Pure, so the filter graph is tested without running it.
pub fn segment_args(segment: &Segment, encoding: Encoding, output: &Path) -> Vec<String> {
    let fps = encoding.fps;
    let seconds = segment.frames as f64 / f64::from(fps);
    let fade = FADE.min(seconds / 2.0);
    let mut args = common();
    // Each slide is decoded once and its frame cloned up to the segment's length (`tpad`):
    // looping the image input instead decoded and converted the PNG for every output frame,
    // which was three quarters of the assembly time.
    let mut input = |path: &Path, length: f64| {
        args.extend([
            "-framerate".into(),
            fps.to_string(),
            "-i".into(),
            path.display().to_string(),
        ]);
        // A frame of slack: `-frames:v` decides the exact length.
        format!(
            "format=yuv420p,tpad=stop_mode=clone:stop_duration={:.3},settb=AVTB",
            length + 1.0 / f64::from(fps)
        )
    };
    let graph = match segment.previous {
        Some(previous) => {
            let a = input(previous, fade);
            let b = input(segment.slide, seconds);
            format!(
                "[0:v]{a}[a];[1:v]{b}[b];\
                 [a][b]xfade=transition=fade:duration={fade:.3}:offset=0[v]"
            )
        }
        None => {
            let a = input(segment.slide, seconds);
            format!("[0:v]{a}[v]")
        }
    };
    args.extend(["-filter_complex".into(), graph, "-map".into(), "[v]".into()]);
    args.extend(["-frames:v".into(), segment.frames.to_string()]);
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            encoding.preset,
            "-tune",
            "stillimage",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-an",
            "-f",
            "mp4",
        ]
        .map(String::from),
    );
    args.push(output.display().to_string());
    args
}

/// The ffmpeg arguments that join the segments listed in `list` (a concat demuxer file) and
/// add the narration and subtitles.
pub fn mux_args(list: &Path, audio: &Path, subtitles: &Path, output: &Path) -> Vec<String> {
    let mut args = common();
    args.extend(["-f", "concat", "-safe", "0", "-i"].map(String::from));
    args.push(list.display().to_string());
    args.extend(["-i".into(), audio.display().to_string()]);
    args.extend(["-i".into(), subtitles.display().to_string()]);
    args.extend(
        [
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:s",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-c:s",
            "mov_text",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ]
        .map(String::from),
    );
    args.push(output.display().to_string());
    args
}

/// The concat demuxer's list of segment files.
pub fn concat_list(segments: &[PathBuf]) -> String {
    segments
        .iter()
        .map(|p| {
            format!(
                "file '{}'\n",
                p.display().to_string().replace('\'', "'\\''")
            )
        })
        .collect()
}

/// Runs ffmpeg with `args`, reporting how many seconds of output it has written. The child
/// is killed if this future is dropped (a timeout, a shutdown).
pub async fn run(
    program: &Path,
    args: &[String],
    progress: impl Fn(f64),
) -> Result<(), SlidesError> {
    let mut child = Command::new(program)
        .args(args)
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
        // `out_time_us`: the output's timeline position, in microseconds.
        if let Some(us) = line
            .strip_prefix("out_time_us=")
            .and_then(|v| v.parse::<f64>().ok())
        {
            progress(us / 1e6);
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

    const ENCODING: Encoding = Encoding {
        fps: 25,
        preset: "veryfast",
    };

    #[test]
    fn frame_counts_follow_the_timeline_without_drift() {
        let durations = [1.01; 20];
        let frames = frame_counts(&durations, 25);
        assert_eq!(frames.iter().sum::<u64>(), (20.2_f64 * 25.0).round() as u64);
        assert!(frames.iter().all(|f| *f == 25 || *f == 26));
        assert_eq!(frame_counts(&[0.001], 25), [1]);
    }

    #[test]
    fn a_segment_fades_from_the_previous_slide_then_holds() {
        let segment = Segment {
            previous: Some(Path::new("a.png")),
            slide: Path::new("b.png"),
            frames: 100,
        };
        let args = segment_args(&segment, ENCODING, Path::new("seg.mp4"));
        let inputs: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-i")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(inputs, ["a.png", "b.png"]);
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(graph.contains("[0:v]format=yuv420p,tpad=stop_mode=clone:stop_duration=0.440,"));
        assert!(graph.contains("[1:v]format=yuv420p,tpad=stop_mode=clone:stop_duration=4.040,"));
        assert!(
            graph.ends_with("[a][b]xfade=transition=fade:duration=0.400:offset=0[v]"),
            "{graph}"
        );
        assert!(
            args.windows(2)
                .any(|w| w[0] == "-frames:v" && w[1] == "100")
        );
        assert_eq!(args.last().unwrap(), "seg.mp4");
    }

    #[test]
    fn the_first_segment_has_no_fade_and_short_scenes_fade_faster() {
        let first = Segment {
            previous: None,
            slide: Path::new("a.png"),
            frames: 10,
        };
        let args = segment_args(&first, ENCODING, Path::new("s.mp4"));
        assert!(!args.iter().any(|a| a.contains("xfade")));
        let short = Segment {
            previous: Some(Path::new("a.png")),
            slide: Path::new("b.png"),
            frames: 10,
        };
        let args = segment_args(&short, ENCODING, Path::new("s.mp4"));
        assert!(args.iter().any(|a| a.contains("duration=0.200")));
    }

    #[test]
    fn the_mux_copies_video_and_adds_audio_and_subtitles() {
        let args = mux_args(
            Path::new("l.txt"),
            Path::new("n.wav"),
            Path::new("s.srt"),
            Path::new("o.mp4"),
        );
        let maps: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "-map")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(maps, ["0:v", "1:a", "2:s"]);
        assert!(args.windows(2).any(|w| w[0] == "-c:v" && w[1] == "copy"));
        assert_eq!(
            concat_list(&[PathBuf::from("/t/it's.mp4")]),
            "file '/t/it'\\''s.mp4'\n"
        );
    }
}
