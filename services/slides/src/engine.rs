//! `video.slides` as a worker-runtime [`Engine`]: outline, slides, narration, assembly, and
//! the outputs with their manifest. Every step reports progress per scene; the scratch
//! directory goes when the attempt ends, whichever way it ends.

use std::sync::Arc;

use atelier_image::Fonts;
use atelier_worker::{Engine, EngineError, Input, JobContext, OutputFile, ProgressReporter};
use image::RgbImage;

use crate::catalog;
use crate::manifest::{self, Artifact, Manifest, SceneRecord};
use crate::narrator::Narrator;
use crate::outliner::Outliner;
use crate::params::{Kind, SlidesParams};
use crate::pdf::{PdfPage, pdf};
use crate::render::{Page, render};
use crate::speech::Cue;
use crate::subtitles;
use crate::{SlidesConfig, SlidesError};

mod steps;
use steps::{Slide, blocking, encode_jpeg, encode_png, report};

/// Progress at the end of each step, in percent.
const OUTLINED: f64 = 3.0;
const SLIDES_DONE: f64 = 25.0;
const NARRATED: f64 = 45.0;
const ASSEMBLED: f64 = 95.0;

#[derive(Clone)]
pub struct SlidesEngine {
    config: Arc<SlidesConfig>,
    fonts: Fonts,
    outliner: Outliner,
    narrator: Narrator,
}

impl SlidesEngine {
    pub fn new(config: SlidesConfig) -> anyhow::Result<Self> {
        let fonts = Fonts::discover(config.font_path.as_deref())?;
        anyhow::ensure!(
            !fonts.is_empty(),
            "no fonts found for slides (ATELIER_FONT_PATH)"
        );
        tracing::info!(fonts = %fonts.describe(), "slides fonts");
        Ok(Self {
            narrator: Narrator::Espeak {
                program: config.espeak.clone(),
            },
            config: Arc::new(config),
            fonts,
            outliner: Outliner::Template,
        })
    }

    /// Narrates with `narrator` instead of the worker's espeak-ng.
    pub fn with_narrator(self, narrator: Narrator) -> Self {
        tracing::info!(narrator = %narrator.name(), "slides narrator");
        Self { narrator, ..self }
    }

    /// Outlines prompts with `outliner` instead of the local template.
    pub fn with_outliner(self, outliner: Outliner) -> Self {
        tracing::info!(outliner = %outliner.name(), "slides outliner");
        Self { outliner, ..self }
    }

    pub fn fonts(&self) -> &Fonts {
        &self.fonts
    }
}

impl SlidesEngine {
    async fn create(
        &self,
        params: SlidesParams,
        progress: ProgressReporter,
    ) -> Result<Vec<OutputFile>, SlidesError> {
        let style = *catalog::style(&params.style).ok_or_else(|| {
            SlidesError::InvalidParams(format!("style {:?} is not in the catalog", params.style))
        })?;
        let (width, height) = (params.width, params.height);
        if !(16..=4096).contains(&width) || !(16..=4096).contains(&height) {
            return Err(SlidesError::InvalidParams(format!(
                "frame {width}x{height} is out of range"
            )));
        }
        report(&progress, 1.0, "outline");
        let (scenes, generator) = match &params.script {
            Some(script) => (script.clone(), "script".to_owned()),
            None => (
                self.outliner
                    .outline(
                        &params.prompt,
                        &params.language,
                        params.scene_count as usize,
                    )
                    .await?,
                self.outliner.name(),
            ),
        };
        report(&progress, OUTLINED, "outline");
        let n = scenes.len();
        let scratch = tempfile::Builder::new()
            .prefix("atelier-slides-")
            .tempdir_in(&self.config.temp_dir)
            .map_err(|err| SlidesError::Io(format!("creating a scratch directory: {err}")))?;

        let mut slides = Vec::with_capacity(n);
        for (i, scene) in scenes.iter().enumerate() {
            report(
                &progress,
                OUTLINED + (SLIDES_DONE - OUTLINED) * i as f64 / n as f64,
                &format!("slide {}/{n}", i + 1),
            );
            let (scene, fonts) = (scene.clone(), self.fonts.clone());
            let page = Page { index: i, total: n };
            slides.push(
                blocking(move || {
                    let pixels = render(&scene, page, &style, &fonts, width, height);
                    Ok(Slide {
                        png: encode_png(&pixels)?,
                        pixels,
                    })
                })
                .await?,
            );
        }
        report(&progress, SLIDES_DONE, "slides");

        let narrations = match (params.kind.narrated(), &params.voice) {
            (true, Some(voice)) => Some(
                self.narrate(&scenes, voice, scratch.path(), &progress)
                    .await?,
            ),
            (true, None) => {
                return Err(SlidesError::InvalidParams(
                    "a narrated video needs a voice".into(),
                ));
            }
            (false, _) => None,
        };

        let mut outputs: Vec<OutputFile> = Vec::new();
        let mut artifacts: Vec<Artifact> = Vec::new();
        let mut add = |outputs: &mut Vec<OutputFile>,
                       file: OutputFile,
                       kind: &str,
                       main: bool,
                       language: Option<&str>| {
            artifacts.push(Artifact {
                position: outputs.len(),
                kind: kind.to_owned(),
                format: file.extension.clone(),
                language: language.map(str::to_owned),
                main,
            });
            outputs.push(file);
        };
        let file =
            |bytes: Vec<u8>, content_type: &str, extension: &str, size: (u32, u32)| OutputFile {
                bytes,
                content_type: content_type.to_owned(),
                extension: extension.to_owned(),
                width: size.0,
                height: size.1,
            };

        // Timeline: scenes back to back, each as long as its narration with pads.
        let mut records: Vec<SceneRecord> = Vec::with_capacity(n);
        let mut start = 0.0;
        let mut all_cues: Vec<Cue> = Vec::new();
        for (i, scene) in scenes.iter().enumerate() {
            let (duration, cues) = match &narrations {
                Some(narrations) => {
                    let narration = &narrations[i];
                    let cues: Vec<Cue> = narration
                        .cues
                        .iter()
                        .map(|c| Cue {
                            start: start + c.start,
                            end: start + c.end,
                            text: c.text.clone(),
                        })
                        .collect();
                    (narration.pcm.seconds(), cues)
                }
                None => (0.0, Vec::new()),
            };
            all_cues.extend(cues.iter().cloned());
            records.push(SceneRecord {
                index: i + 1,
                title: scene.title.clone(),
                bullets: scene.bullets.clone(),
                narration: scene.narration.clone(),
                image: 0,
                audio: None,
                start_seconds: start,
                duration_seconds: duration,
                cues,
            });
            start += duration;
        }

        let mut duration_seconds = None;
        if let Some(narrations) = &narrations {
            let mp4 = self
                .assemble(
                    &slides,
                    narrations,
                    &records,
                    &all_cues,
                    scratch.path(),
                    &progress,
                )
                .await?;
            duration_seconds = Some(start);
            add(
                &mut outputs,
                file(mp4, "video/mp4", "mp4", (width, height)),
                "video",
                true,
                None,
            );
        }
        let cover = {
            let pixels = slides[0].pixels.clone();
            blocking(move || encode_jpeg(&pixels)).await?
        };
        add(
            &mut outputs,
            file(cover, "image/jpeg", "jpg", (width, height)),
            "cover",
            false,
            None,
        );
        if narrations.is_some() {
            let language = Some(params.language.as_str());
            add(
                &mut outputs,
                file(
                    subtitles::srt(&all_cues).into_bytes(),
                    "application/x-subrip",
                    "srt",
                    (0, 0),
                ),
                "subtitle",
                false,
                language,
            );
            add(
                &mut outputs,
                file(
                    subtitles::vtt(&all_cues).into_bytes(),
                    "text/vtt",
                    "vtt",
                    (0, 0),
                ),
                "subtitle",
                false,
                language,
            );
        }
        let deck = {
            let pixels: Vec<RgbImage> = slides.iter().map(|s| s.pixels.clone()).collect();
            blocking(move || {
                let pages = pixels
                    .iter()
                    .map(|p| {
                        Ok(PdfPage {
                            jpeg: encode_jpeg(p)?,
                            width: p.width(),
                            height: p.height(),
                        })
                    })
                    .collect::<Result<Vec<_>, SlidesError>>()?;
                Ok(pdf(&pages))
            })
            .await?
        };
        add(
            &mut outputs,
            file(deck, "application/pdf", "pdf", (width, height)),
            "slides_pdf",
            params.kind == Kind::SlideDeck,
            None,
        );
        for (record, slide) in records.iter_mut().zip(slides) {
            record.image = outputs.len();
            outputs.push(file(slide.png, "image/png", "png", (width, height)));
        }
        if let Some(narrations) = narrations {
            for (record, narration) in records.iter_mut().zip(narrations) {
                record.audio = Some(outputs.len());
                outputs.push(file(narration.pcm.to_wav(), "audio/wav", "wav", (0, 0)));
            }
        }
        let manifest = Manifest {
            generator,
            title: scenes.first().map(|s| s.title.clone()).unwrap_or_default(),
            width,
            height,
            duration_seconds,
            artifacts,
            scenes: records,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|err| SlidesError::Io(err.to_string()))?;
        outputs.push(file(json, manifest::CONTENT_TYPE, "json", (0, 0)));
        report(&progress, 97.0, "uploading");
        Ok(outputs)
    }
}

impl Engine for SlidesEngine {
    fn capability(&self) -> &'static str {
        "video.slides"
    }

    async fn run(
        &self,
        job: JobContext,
        _inputs: Vec<Input>,
    ) -> Result<Vec<OutputFile>, EngineError> {
        let params: SlidesParams = serde_json::from_value(job.params)
            .map_err(|err| SlidesError::InvalidParams(err.to_string()))?;
        let timeout = self.config.timeout;
        let outputs = tokio::time::timeout(timeout, self.create(params, job.progress))
            .await
            .map_err(|_| SlidesError::TimedOut("the creation"))??;
        Ok(outputs)
    }
}
