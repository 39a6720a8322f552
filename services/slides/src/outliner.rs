//! Where a creation's scenes come from when the partner sends no script: a chat-completion
//! model when one is routed (`ATELIER_ROUTES=text.generate=openai:<model>`, any
//! OpenAI-compatible endpoint), asked for exactly `scene_count` scenes as JSON against a schema
//! and checked before use; otherwise the local template outliner (`outline`).
//!
//! A model's answer that breaks the rules (wrong count, empty title or narration) is a retryable
//! `outline_invalid`: another attempt asks again. Provider failures keep the provider's own
//! classification (`provider_unavailable` is the operator's problem, not the partner's).

use atelier_providers::openai::{ChatJson, OpenAiClient};
use atelier_providers::{Capability, Provider, Providers, Route};
use serde_json::{Value, json};

use crate::SlidesError;
use crate::catalog::{self, Language};
use crate::outline;
use crate::params::Scene;

#[derive(Clone, Debug)]
pub enum Outliner {
    Template,
    Chat { client: OpenAiClient, model: String },
}

impl Outliner {
    /// The chat outliner when `text.generate` is routed to OpenAI (or a compatible relay).
    pub fn from_providers(providers: &Providers) -> Result<Self, String> {
        match providers.routes.resolve(Capability::TextGenerate, None) {
            Route::Local => Ok(Self::Template),
            Route::Provider {
                provider: Provider::OpenAi,
                upstream_model,
            } => match &providers.openai {
                Some(client) => Ok(Self::Chat {
                    client: client.clone(),
                    model: upstream_model,
                }),
                None => {
                    Err("text.generate is routed to openai without ATELIER_OPENAI_API_KEY".into())
                }
            },
            Route::Provider { provider, .. } => Err(format!(
                "text.generate can only be routed to openai (an OpenAI-compatible chat API), not {}",
                provider.as_str()
            )),
        }
    }

    /// What the creation shows as its `generator`.
    pub fn name(&self) -> String {
        match self {
            Self::Template => outline::GENERATOR.to_owned(),
            Self::Chat { model, .. } => format!("openai:{model}"),
        }
    }

    pub async fn outline(
        &self,
        prompt: &str,
        language: &str,
        count: usize,
    ) -> Result<Vec<Scene>, SlidesError> {
        let Self::Chat { client, model } = self else {
            return Ok(outline::outline(prompt, language, count));
        };
        let name = catalog::language(language).map_or(language, |l: &Language| l.name);
        let request = ChatJson {
            model: model.clone(),
            system: Some(format!(
                "You write the outline of a narrated slide video. Answer in {name} ({language}) only. \
                 Give exactly {count} scenes: the first introduces the topic, the last sums it up. \
                 Each scene has a short title, at most {} bullets of a few words each, and a \
                 narration of two to four spoken sentences that explain the slide.",
                catalog::BULLETS_MAX.min(5)
            )),
            prompt: prompt.to_owned(),
            schema_name: "slides_outline".to_owned(),
            schema: schema(),
        };
        let answer = client
            .chat_json(&request)
            .await
            .map_err(|err| SlidesError::Upstream(err.into()))?;
        parse(answer, count).map_err(SlidesError::Outline)
    }
}

/// The JSON schema the model answers against (strict mode: every property required).
pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["scenes"],
        "properties": {"scenes": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["title", "bullets", "narration"],
            "properties": {
                "title": {"type": "string"},
                "bullets": {"type": "array", "items": {"type": "string"}},
                "narration": {"type": "string"},
            },
        }}},
    })
}

fn cut(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// The scenes of a model's answer, held to the catalog's limits: exactly `count` scenes, each
/// with a title and a narration; overlong text is cut, extra bullets dropped.
pub fn parse(answer: Value, count: usize) -> Result<Vec<Scene>, String> {
    let scenes = answer
        .get("scenes")
        .and_then(Value::as_array)
        .ok_or("the model's answer has no `scenes` array")?;
    if scenes.len() != count {
        return Err(format!(
            "the model gave {} scenes, {count} were asked for",
            scenes.len()
        ));
    }
    scenes
        .iter()
        .enumerate()
        .map(|(i, scene)| {
            let text = |field: &str| scene.get(field).and_then(Value::as_str).unwrap_or_default();
            let title = cut(text("title"), catalog::TITLE_MAX_CHARS);
            let narration = cut(text("narration"), catalog::NARRATION_MAX_CHARS);
            if title.is_empty() || narration.is_empty() {
                return Err(format!("scene {} has no title or no narration", i + 1));
            }
            let bullets = scene
                .get("bullets")
                .and_then(Value::as_array)
                .map(|b| {
                    b.iter()
                        .filter_map(Value::as_str)
                        .map(|s| cut(s, catalog::BULLET_MAX_CHARS))
                        .filter(|s| !s.is_empty())
                        .take(catalog::BULLETS_MAX)
                        .collect()
                })
                .unwrap_or_default();
            Ok(Scene {
                title,
                bullets,
                narration,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_answer_is_taken_and_held_to_the_limits() {
        let answer = json!({"scenes": [
            {"title": " Attention ", "bullets": ["Q", "", "K", "V", "a", "b", "c", "d", "e", "f"], "narration": "Queries meet keys."},
            {"title": "Summary", "bullets": [], "narration": "x".repeat(3000)},
        ]});
        let scenes = parse(answer, 2).unwrap();
        assert_eq!(scenes[0].title, "Attention");
        assert_eq!(scenes[0].bullets.len(), catalog::BULLETS_MAX);
        assert_eq!(
            scenes[1].narration.chars().count(),
            catalog::NARRATION_MAX_CHARS
        );
    }

    #[test]
    fn a_wrong_count_or_an_empty_scene_is_refused() {
        let one = json!({"scenes": [{"title": "a", "bullets": [], "narration": "b"}]});
        assert!(
            parse(one.clone(), 2)
                .unwrap_err()
                .contains("1 scenes, 2 were asked")
        );
        let empty = json!({"scenes": [{"title": "a", "bullets": [], "narration": " "}]});
        assert!(parse(empty, 1).is_err());
        assert!(parse(json!({"slides": []}), 1).is_err());
    }
}
