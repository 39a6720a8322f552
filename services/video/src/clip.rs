//! One clip from start to finish: plan the frame size, render frames on a blocking thread,
//! stream them to ffmpeg, and cut a poster from the clip.
//!
//! Rendering and encoding overlap: the render thread hands frames over a small bounded queue
//! (memory stays at a few frames whatever the clip's length) and gets the written buffers back
//! for reuse. Dropping the returned future stops both: the queue closes, so the render thread
//! ends at its next frame, and the ffmpeg child is killed with its [`Encoder`].

use std::sync::Arc;

use image::{ExtendedColorType, ImageEncoder, codecs::jpeg::JpegEncoder};
use tokio::sync::mpsc;

use crate::config::VideoConfig;
use crate::ffmpeg::FrameFormat;
use crate::procedural::Procedural;
use crate::scratch::ScratchDir;
use crate::settings::{ClipSettings, FPS};
use crate::slideshow::Slideshow;
use crate::source::{Limits, SourceImage};
use crate::{Encoder, VideoError};

/// Frames waiting for ffmpeg; enough to ride out a render hiccup (decoding the next image).
const QUEUE_FRAMES: usize = 3;
const POSTER_QUALITY: u8 = 88;

/// What to make: the prompt, the settings, and the images to animate in order (none for a
/// prompt-only clip).
#[derive(Debug, Clone)]
pub struct VideoRequest {
    pub prompt: String,
    pub settings: ClipSettings,
    pub images: Vec<SourceImage>,
}

/// A finished clip.
#[derive(Clone)]
pub struct Clip {
    pub mp4: Vec<u8>,
    /// A JPEG of one frame of the clip.
    pub poster: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    /// ffmpeg's peak resident memory, when it could be read.
    pub ffmpeg_peak_rss_kib: Option<u64>,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("mp4", &format_args!("<{} bytes>", self.mp4.len()))
            .field("poster", &format_args!("<{} bytes>", self.poster.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("frames", &self.frames)
            .finish()
    }
}

/// Progress as (percent, step), callable from any thread.
pub type Progress = Arc<dyn Fn(u32, &str) + Send + Sync>;

/// Makes the clip, within `config.timeout`.
pub async fn generate(
    request: VideoRequest,
    config: &VideoConfig,
    progress: Progress,
) -> Result<Clip, VideoError> {
    tokio::time::timeout(config.timeout, make(request, config, progress))
        .await
        .map_err(|_| VideoError::TimedOut {
            seconds: config.timeout.as_secs(),
        })?
}

async fn make(
    request: VideoRequest,
    config: &VideoConfig,
    progress: Progress,
) -> Result<Clip, VideoError> {
    if request.prompt.trim().is_empty() && request.images.is_empty() {
        return Err(VideoError::NothingToAnimate);
    }
    progress(1, "preparing");
    let limits = config.limits;
    let settings = request.settings;
    let (scene, format) = blocking(move || Scene::build(request, limits)).await??;
    let frames = settings.frames();

    let dir = ScratchDir::new(&config.temp_dir)?;
    // Before ffmpeg starts, so its first count never precedes this.
    progress(5, "encoding");
    let reporter = progress.clone();
    let mut encoder = Encoder::spawn(
        &config.encoder,
        format,
        &dir.path().join("clip.mp4"),
        move |done| {
            let percent = 5 + (done.min(u64::from(frames)) * 90 / u64::from(frames)) as u32;
            reporter(percent, &format!("encoding frame {done} of {frames}"));
        },
    )?;
    let (frames_tx, mut frames_rx) = mpsc::channel(QUEUE_FRAMES);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
    let renderer = blocking(move || scene.render_all(format, frames, frames_tx, recycle_rx));
    while let Some(frame) = frames_rx.recv().await {
        encoder.write_frame(&frame).await?;
        // The renderer may have finished and gone; the buffer is then simply freed.
        let _ = recycle_tx.send(frame);
    }
    // The queue closed: the renderer finished, or failed and must not leave a short clip.
    let poster = renderer
        .await??
        .ok_or_else(|| VideoError::RendererCrashed {
            reason: "stopped before the last frame".to_owned(),
        })?;
    let (mp4, stats) = encoder.finish().await?;
    drop(dir);
    progress(97, "writing poster");
    let poster = blocking(move || jpeg(&poster, format)).await??;
    Ok(Clip {
        mp4,
        poster,
        width: format.width,
        height: format.height,
        frames,
        ffmpeg_peak_rss_kib: stats.peak_rss_kib,
    })
}

/// Starts CPU work off the async threads, in the caller's span, at once (not when first
/// polled, so the renderer runs while this task feeds ffmpeg).
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Result<T, VideoError>> {
    let span = tracing::Span::current();
    let handle = tokio::task::spawn_blocking(move || span.in_scope(work));
    async move {
        handle.await.map_err(|err| VideoError::RendererCrashed {
            reason: err.to_string(),
        })
    }
}

enum Scene {
    Slideshow(Box<Slideshow>),
    Procedural(Procedural),
}

impl Scene {
    /// Decodes the first image (an `adaptive` clip takes its shape) and sets the frame size.
    fn build(request: VideoRequest, limits: Limits) -> Result<(Self, FrameFormat), VideoError> {
        let seconds = f64::from(request.settings.seconds);
        let first = match request.images.first() {
            Some(image) => Some(image.decode(&limits)?),
            None => None,
        };
        let (width, height) = request
            .settings
            .dimensions(first.as_ref().map(|image| image.dimensions()));
        let format = FrameFormat {
            width,
            height,
            fps: FPS,
        };
        let scene = if request.images.is_empty() {
            Self::Procedural(Procedural::new(&request.prompt, (width, height), seconds))
        } else {
            Self::Slideshow(Box::new(Slideshow::new(
                (width, height),
                seconds,
                &request.prompt,
                request.images,
                first,
                limits,
            )))
        };
        Ok((scene, format))
    }

    /// Renders every frame into the queue; returns the poster frame, or `None` when the
    /// receiving side went away first.
    fn render_all(
        mut self,
        format: FrameFormat,
        frames: u32,
        queue: mpsc::Sender<Vec<u8>>,
        recycled: std::sync::mpsc::Receiver<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, VideoError> {
        let poster_time = match &self {
            Self::Slideshow(show) => show.poster_time(),
            Self::Procedural(scene) => scene.poster_time(),
        };
        let poster_frame = ((poster_time * f64::from(format.fps)).round() as u32).min(frames - 1);
        let mut poster = None;
        for index in 0..frames {
            let mut frame = recycled
                .try_recv()
                .unwrap_or_else(|_| vec![0; format.frame_bytes()]);
            let t = f64::from(index) / f64::from(format.fps);
            match &mut self {
                Self::Slideshow(show) => show.render(t, &mut frame)?,
                Self::Procedural(scene) => scene.render(t, &mut frame),
            }
            if index == poster_frame {
                poster = Some(frame.clone());
            }
            if queue.blocking_send(frame).is_err() {
                return Ok(None);
            }
        }
        Ok(poster)
    }
}

fn jpeg(rgb: &[u8], format: FrameFormat) -> Result<Vec<u8>, VideoError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, POSTER_QUALITY)
        .write_image(rgb, format.width, format.height, ExtendedColorType::Rgb8)
        .map_err(|err| VideoError::io("encoding the poster", err))?;
    Ok(out)
}
