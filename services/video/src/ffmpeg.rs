//! The ffmpeg child that turns raw RGB frames into an H.264 MP4.
//!
//! Frames go in through its stdin as `rawvideo`; it writes a temporary file, because
//! `+faststart` moves the index to the front after encoding, which needs a seekable output.
//! The child is killed when the [`Encoder`] is dropped (`kill_on_drop`): an attempt that is
//! cancelled, times out or fails on our side never leaves an ffmpeg behind. Its stdout carries
//! `-progress` reports (frames actually encoded) and its stderr is kept, the last few KiB of
//! it, for the error message.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

use crate::VideoError;

/// How much of ffmpeg's stderr an error message carries.
const STDERR_TAIL: usize = 2048;

/// How ffmpeg is run; see `VideoConfig` for the environment variables behind each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// The executable: a path, or a name looked up on `PATH`.
    pub program: PathBuf,
    /// x264 preset: `veryfast` keeps a 720p clip well ahead of real time on two cores.
    pub preset: String,
    /// x264 constant rate factor: 18 (visually lossless) to 28 (small).
    pub crf: u8,
    /// Encoder threads; 0 lets x264 choose (about 1.5 per core).
    pub threads: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("ffmpeg"),
            preset: "veryfast".to_owned(),
            crf: 21,
            threads: 0,
        }
    }
}

/// What the frames are: RGB24, `width` x `height`, at `fps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl FrameFormat {
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

/// Facts about a finished encode.
#[derive(Debug, Clone, Default)]
pub struct EncodeStats {
    /// ffmpeg's peak resident memory (`VmHWM`), read from `/proc` while it ran; `None` where
    /// there is no `/proc`.
    pub peak_rss_kib: Option<u64>,
}

/// A running ffmpeg with its stdin open for frames.
pub struct Encoder {
    child: Child,
    stdin: Option<ChildStdin>,
    output: PathBuf,
    stderr: JoinHandle<String>,
    progress: JoinHandle<()>,
    peak_rss_kib: Arc<AtomicU64>,
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // The child itself is killed by `kill_on_drop`; its readers end at EOF anyway, but
        // need not outlive the attempt.
        self.stderr.abort();
        self.progress.abort();
    }
}

impl Encoder {
    /// Starts ffmpeg writing `output`. `on_progress` is called with the count of frames
    /// encoded so far, from a task of its own.
    pub fn spawn(
        config: &EncoderConfig,
        format: FrameFormat,
        output: &Path,
        on_progress: impl Fn(u64) + Send + 'static,
    ) -> Result<Self, VideoError> {
        let mut command = Command::new(&config.program);
        command
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
            .args(["-progress", "pipe:1"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .arg("-video_size")
            .arg(format!("{}x{}", format.width, format.height))
            .arg("-framerate")
            .arg(format.fps.to_string())
            .args(["-i", "pipe:0", "-an"])
            .args(["-c:v", "libx264", "-preset", &config.preset])
            .arg("-crf")
            .arg(config.crf.to_string())
            .arg("-threads")
            .arg(config.threads.to_string())
            .args([
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
                "-y",
            ])
            .arg(output)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                VideoError::FfmpegMissing {
                    program: config.program.display().to_string(),
                    reason: err.to_string(),
                }
            }
            _ => VideoError::io("starting ffmpeg", err),
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let stderr = tokio::spawn(tail(stderr));
        let progress = tokio::spawn(read_progress(
            stdout,
            child.id(),
            peak_rss_kib.clone(),
            on_progress,
        ));
        Ok(Self {
            child,
            stdin,
            output: output.to_owned(),
            stderr,
            progress,
            peak_rss_kib,
        })
    }

    /// Writes one frame. When ffmpeg has died, the error is its exit and stderr, not the
    /// broken pipe.
    pub async fn write_frame(&mut self, frame: &[u8]) -> Result<(), VideoError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(VideoError::io("writing a frame", "stdin already closed"));
        };
        if stdin.write_all(frame).await.is_err() {
            self.stdin = None;
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Closes stdin, waits for ffmpeg to finish, and reads the MP4.
    pub async fn finish(mut self) -> Result<(Vec<u8>, EncodeStats), VideoError> {
        if let Some(mut stdin) = self.stdin.take() {
            // A failed flush means ffmpeg is gone; its exit status says why.
            let _ = stdin.shutdown().await;
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(|err| VideoError::io("waiting for ffmpeg", err))?;
        if !status.success() {
            let stderr = (&mut self.stderr).await.unwrap_or_default();
            return Err(VideoError::EncodeFailed {
                status: status.to_string(),
                stderr,
            });
        }
        // Progress lines up to the end, so the last report is the full count.
        let _ = (&mut self.progress).await;
        let bytes = tokio::fs::read(&self.output)
            .await
            .map_err(|err| VideoError::io("reading the encoded clip", err))?;
        if bytes.is_empty() {
            return Err(VideoError::EncodeFailed {
                status: status.to_string(),
                stderr: "ffmpeg wrote an empty file".to_owned(),
            });
        }
        let peak = self.peak_rss_kib.load(Ordering::Relaxed);
        Ok((
            bytes,
            EncodeStats {
                peak_rss_kib: (peak > 0).then_some(peak),
            },
        ))
    }

    async fn failure(&mut self) -> VideoError {
        let status = match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(err) => format!("unknown status: {err}"),
        };
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        VideoError::EncodeFailed { status, stderr }
    }
}

/// The last [`STDERR_TAIL`] bytes of a stream, as text.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// Follows `-progress` output (`frame=N` lines, twice a second) and samples the child's peak
/// memory each time.
async fn read_progress(
    stdout: Option<impl AsyncRead + Unpin>,
    pid: Option<u32>,
    peak_rss_kib: Arc<AtomicU64>,
    on_progress: impl Fn(u64),
) {
    let Some(stdout) = stdout else {
        return;
    };
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(frames) = line.strip_prefix("frame=") {
            if let Some(kib) = pid.and_then(peak_rss_of) {
                peak_rss_kib.fetch_max(kib, Ordering::Relaxed);
            }
            if let Ok(frames) = frames.trim().parse() {
                on_progress(frames);
            }
        }
    }
}

/// `VmHWM` of a process, in KiB.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm(&status)
}

/// The `VmHWM:` field of a `/proc/<pid>/status` text, in KiB.
pub fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests;
