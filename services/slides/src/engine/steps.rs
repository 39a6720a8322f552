//! The engine's media steps: encoding slides, running blocking work off the async threads,
//! narrating scenes and assembling the video.

use std::path::PathBuf;

use atelier_worker::ProgressReporter;
use image::{ImageEncoder, RgbImage};

use super::{ASSEMBLED, NARRATED, SLIDES_DONE, SlidesEngine};
use crate::SlidesError;
use crate::assemble::{self, Encoding, Segment};
use crate::manifest::SceneRecord;
use crate::params::Scene;
use crate::speech::{self, Cue, Narration};
use crate::subtitles;

/// One rendered slide: PNG bytes for the outputs and the pixels for the deck and cover.
pub(super) struct Slide {
    pub png: Vec<u8>,
    pub pixels: RgbImage,
}

pub(super) fn encode_png(pixels: &RgbImage) -> Result<Vec<u8>, SlidesError> {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            pixels.as_raw(),
            pixels.width(),
            pixels.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|err| SlidesError::Io(format!("encoding a slide: {err}")))?;
    Ok(png)
}

pub(super) fn encode_jpeg(pixels: &RgbImage) -> Result<Vec<u8>, SlidesError> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 88)
        .encode_image(pixels)
        .map_err(|err| SlidesError::Io(format!("encoding a slide as JPEG: {err}")))?;
    Ok(jpeg)
}

pub(super) fn report(progress: &ProgressReporter, percent: f64, step: &str) {
    progress.report(percent.floor() as u32, step);
}

/// Runs a blocking closure off the async threads, keeping the span.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SlidesError> + Send + 'static,
) -> Result<T, SlidesError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|err| SlidesError::Io(format!("the slide renderer stopped: {err}")))?
}

impl SlidesEngine {
    pub(super) async fn narrate(
        &self,
        scenes: &[Scene],
        voice: &str,
        dir: &std::path::Path,
        progress: &ProgressReporter,
    ) -> Result<Vec<Narration>, SlidesError> {
        let n = scenes.len();
        let mut out = Vec::with_capacity(n);
        let mut counter = 0;
        for (i, scene) in scenes.iter().enumerate() {
            report(
                progress,
                SLIDES_DONE + (NARRATED - SLIDES_DONE) * i as f64 / n as f64,
                &format!("narration {}/{n}", i + 1),
            );
            let mut spoken = Vec::new();
            let mut rate = 22_050;
            for phrase in speech::phrases(&scene.narration) {
                let pcm = self.narrator.speak(voice, &phrase.0, dir, counter).await?;
                counter += 1;
                if !spoken.is_empty() && pcm.rate != rate {
                    return Err(SlidesError::Tts(format!(
                        "the narrator changed its sample rate to {}",
                        pcm.rate
                    )));
                }
                rate = pcm.rate;
                spoken.push((phrase, pcm));
            }
            out.push(speech::join(spoken, rate));
        }
        Ok(out)
    }

    pub(super) async fn assemble(
        &self,
        slides: &[Slide],
        narrations: &[Narration],
        records: &[SceneRecord],
        cues: &[Cue],
        dir: &std::path::Path,
        progress: &ProgressReporter,
    ) -> Result<Vec<u8>, SlidesError> {
        let write = |name: String, bytes: Vec<u8>| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .map(|()| path)
                .map_err(|err| SlidesError::Io(format!("writing a scratch file: {err}")))
        };
        let paths = slides
            .iter()
            .enumerate()
            .map(|(i, s)| write(format!("slide-{i}.png"), s.png.clone()))
            .collect::<Result<Vec<PathBuf>, _>>()?;
        let mut whole = speech::Pcm {
            rate: narrations[0].pcm.rate,
            samples: Vec::new(),
        };
        for narration in narrations {
            whole.samples.extend_from_slice(&narration.pcm.samples);
        }
        let audio = write("narration.wav".into(), whole.to_wav())?;
        let srt = write("subtitles.srt".into(), subtitles::srt(cues).into_bytes())?;
        let durations: Vec<f64> = records.iter().map(|r| r.duration_seconds).collect();
        let fps = self.config.fps;
        let frames = assemble::frame_counts(&durations, fps);
        let total: u64 = frames.iter().sum();
        let encoding = Encoding {
            fps,
            preset: &self.config.preset,
        };
        let n = paths.len();
        let mut segments = Vec::with_capacity(n);
        let mut done = 0u64;
        for (i, slide) in paths.iter().enumerate() {
            let segment = Segment {
                previous: i.checked_sub(1).map(|p| paths[p].as_path()),
                slide,
                frames: frames[i],
            };
            let output = dir.join(format!("segment-{i}.mp4"));
            let args = assemble::segment_args(&segment, encoding, &output);
            let step = format!("assembling {}/{n}", i + 1);
            let before = done as f64 / total as f64;
            let share = frames[i] as f64 / total as f64;
            report(progress, NARRATED + (ASSEMBLED - NARRATED) * before, &step);
            assemble::run(&self.config.ffmpeg, &args, |seconds| {
                let within = (seconds * f64::from(fps) / frames[i] as f64).clamp(0.0, 1.0);
                report(
                    progress,
                    NARRATED + (ASSEMBLED - NARRATED) * (before + share * within),
                    &step,
                )
            })
            .await?;
            done += frames[i];
            segments.push(output);
        }
        let list = write(
            "segments.txt".into(),
            assemble::concat_list(&segments).into_bytes(),
        )?;
        let output = dir.join("creation.mp4");
        report(progress, ASSEMBLED, "assembling");
        assemble::run(
            &self.config.ffmpeg,
            &assemble::mux_args(&list, &audio, &srt, &output),
            |_| {},
        )
        .await?;
        std::fs::read(&output).map_err(|err| SlidesError::Io(format!("reading the video: {err}")))
    }
}
