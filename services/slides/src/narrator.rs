//! Who speaks a creation's narration: espeak-ng on the worker (the offline default), or an
//! OpenAI-compatible `/v1/audio/speech` model when `audio.speech` is routed to one
//! (`ATELIER_ROUTES=audio.speech=openai:<model>`). Either way each phrase comes back as mono
//! 16-bit WAV, so timing and subtitles are measured the same way.

use std::path::Path;

use atelier_providers::openai::{OpenAiClient, Speech};
use atelier_providers::{Capability, Provider, Providers, Route};

use crate::SlidesError;
use crate::speech::{self, Pcm};

/// The voices of OpenAI's speech models; they speak every language the model knows.
pub const OPENAI_VOICES: [&str; 10] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
];

#[derive(Clone, Debug)]
pub enum Narrator {
    Espeak { program: String },
    OpenAi { client: OpenAiClient, model: String },
}

impl Narrator {
    /// The provider narrator when `audio.speech` is routed to OpenAI; espeak-ng otherwise.
    pub fn from_providers(providers: &Providers, espeak: &str) -> Result<Self, String> {
        match providers.routes.resolve(Capability::AudioSpeech, None) {
            Route::Local => Ok(Self::Espeak {
                program: espeak.to_owned(),
            }),
            Route::Provider {
                provider: Provider::OpenAi,
                upstream_model,
            } => match &providers.openai {
                Some(client) => Ok(Self::OpenAi {
                    client: client.clone(),
                    model: upstream_model,
                }),
                None => {
                    Err("audio.speech is routed to openai without ATELIER_OPENAI_API_KEY".into())
                }
            },
            Route::Provider { provider, .. } => Err(format!(
                "audio.speech can only be routed to openai (an OpenAI-compatible speech API), not {}",
                provider.as_str()
            )),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Espeak { .. } => "espeak-ng".to_owned(),
            Self::OpenAi { model, .. } => format!("openai:{model}"),
        }
    }

    /// Speaks one phrase with `voice`; `dir` and `n` name espeak-ng's scratch file.
    pub async fn speak(
        &self,
        voice: &str,
        text: &str,
        dir: &Path,
        n: usize,
    ) -> Result<Pcm, SlidesError> {
        match self {
            Self::Espeak { program } => speech::speak(program, voice, text, dir, n).await,
            Self::OpenAi { client, model } => {
                let request = Speech {
                    model: model.clone(),
                    voice: voice.to_owned(),
                    input: text.to_owned(),
                    response_format: Some("wav".to_owned()),
                };
                let audio = client
                    .speech(&request)
                    .await
                    .map_err(|err| SlidesError::Upstream(err.into()))?;
                speech::parse_wav(&audio.bytes).map_err(|err| {
                    SlidesError::Upstream(atelier_worker::EngineError::retryable(
                        "upstream_error",
                        format!("the speech model's WAV: {err}"),
                    ))
                })
            }
        }
    }
}
