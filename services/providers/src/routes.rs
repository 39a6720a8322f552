//! `ATELIER_ROUTES`: which provider and upstream model serve a capability, optionally per model
//! name. A pure parser, so a typo stops the process at start-up with a message naming it.
//!
//! Grammar: a comma list of `capability[:model]=provider:upstream_model`, e.g.
//! `image.generate=openai:gpt-image-1,video.generate=ark:doubao-seedance-1-0-pro-250528`.

use std::collections::BTreeMap;

use crate::provider::{Capability, Provider};

/// Where one job goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The offline engine built into the worker.
    Local,
    Provider {
        provider: Provider,
        upstream_model: String,
    },
}

/// A route that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("ATELIER_ROUTES entry {entry:?}: {reason}")]
    Syntax { entry: String, reason: String },
    #[error("ATELIER_ROUTES names {key} twice")]
    Duplicate { key: String },
    #[error("ATELIER_ROUTES routes {capability} to {provider}, which does not offer it")]
    Unsupported {
        capability: Capability,
        provider: Provider,
    },
    #[error(
        "ATELIER_ROUTES routes {capability} to {provider}, but its credentials are not set ({hint})"
    )]
    MissingCredentials {
        capability: Capability,
        provider: Provider,
        hint: &'static str,
    },
}

/// Routes by capability, then by the model name a request may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: BTreeMap<(Capability, Option<String>), Route>,
}

impl RouteTable {
    /// Parses the variable's value; an empty value means every capability stays local.
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        let mut routes = BTreeMap::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, route) = parse_entry(entry)?;
            let name = match &key {
                (capability, Some(model)) => format!("{capability}:{model}"),
                (capability, None) => capability.to_string(),
            };
            if routes.insert(key, route).is_some() {
                return Err(RouteError::Duplicate { key: name });
            }
        }
        Ok(Self { routes })
    }

    /// The route for a request: the model's own route if there is one, else the capability's,
    /// else the local engine.
    pub fn resolve(&self, capability: Capability, model: Option<&str>) -> Route {
        model
            .and_then(|m| self.routes.get(&(capability, Some(m.to_owned()))))
            .or_else(|| self.routes.get(&(capability, None)))
            .cloned()
            .unwrap_or(Route::Local)
    }

    /// The model names routed for a capability, for `GET /api/v1/capabilities`.
    pub fn models(&self, capability: Capability) -> Vec<&str> {
        self.routes
            .keys()
            .filter(|(c, _)| *c == capability)
            .filter_map(|(_, m)| m.as_deref())
            .collect()
    }

    /// Every provider some route uses.
    pub fn providers(&self) -> impl Iterator<Item = (Capability, Provider)> + '_ {
        self.routes
            .iter()
            .filter_map(|((capability, _), route)| match route {
                Route::Provider { provider, .. } => Some((*capability, *provider)),
                Route::Local => None,
            })
    }

    /// Refuses a route to a provider whose credentials are not configured.
    pub fn validate(&self, configured: impl Fn(Provider) -> bool) -> Result<(), RouteError> {
        for (capability, provider) in self.providers() {
            if !configured(provider) {
                return Err(RouteError::MissingCredentials {
                    capability,
                    provider,
                    hint: credential_hint(provider),
                });
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn parse_entry(entry: &str) -> Result<((Capability, Option<String>), Route), RouteError> {
    let syntax = |reason: String| RouteError::Syntax {
        entry: entry.to_owned(),
        reason,
    };
    let (key, target) = entry
        .split_once('=')
        .ok_or_else(|| syntax("expected capability[:model]=provider:upstream_model".into()))?;
    let (capability, model) = match key.trim().split_once(':') {
        Some((c, m)) => (c.trim(), Some(m.trim())),
        None => (key.trim(), None),
    };
    let capability: Capability = capability.parse().map_err(syntax)?;
    if model.is_some_and(|m| m.is_empty() || !is_name(m)) {
        return Err(syntax(
            "the model name after ':' is empty or has spaces".into(),
        ));
    }
    let target = target.trim();
    let route = if target == "local" {
        Route::Local
    } else {
        let (provider, upstream) = target
            .split_once(':')
            .ok_or_else(|| syntax(format!("{target:?} should be provider:upstream_model")))?;
        let provider: Provider = provider.trim().parse().map_err(syntax)?;
        let upstream = upstream.trim();
        if upstream.is_empty() || !is_name(upstream) {
            return Err(syntax("the upstream model is empty or has spaces".into()));
        }
        if !provider.supports(capability) {
            return Err(RouteError::Unsupported {
                capability,
                provider,
            });
        }
        Route::Provider {
            provider,
            upstream_model: upstream.to_owned(),
        }
    };
    Ok(((capability, model.map(str::to_owned)), route))
}

fn is_name(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c == '=' || c == ',')
}

fn credential_hint(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "ATELIER_OPENAI_API_KEY",
        Provider::Ark => "ATELIER_ARK_API_KEY",
        Provider::Gemini => "ATELIER_GEMINI_API_KEY",
        Provider::Jimeng => "ATELIER_JIMENG_ACCESS_KEY and ATELIER_JIMENG_SECRET_KEY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "image.generate=openai:gpt-image-1,\
        image.generate:nano-banana-2=gemini:gemini-2.5-flash-image,\
        video.generate=ark:doubao-seedance-1-0-pro-250528";

    fn provider(p: Provider, model: &str) -> Route {
        Route::Provider {
            provider: p,
            upstream_model: model.into(),
        }
    }

    #[test]
    fn the_documented_example_resolves() {
        let table = RouteTable::parse(EXAMPLE).unwrap();
        let image = Capability::ImageGenerate;
        assert_eq!(
            table.resolve(image, None),
            provider(Provider::OpenAi, "gpt-image-1")
        );
        assert_eq!(
            table.resolve(image, Some("nano-banana-2")),
            provider(Provider::Gemini, "gemini-2.5-flash-image")
        );
        // An unrouted model name falls back to the capability's route.
        assert_eq!(
            table.resolve(image, Some("other")),
            provider(Provider::OpenAi, "gpt-image-1")
        );
        assert_eq!(
            table.resolve(Capability::VideoGenerate, None),
            provider(Provider::Ark, "doubao-seedance-1-0-pro-250528")
        );
        assert_eq!(table.resolve(Capability::ImageUpscale, None), Route::Local);
        assert_eq!(table.models(image), vec!["nano-banana-2"]);
    }

    #[test]
    fn blanks_spaces_and_local_are_accepted() {
        assert!(RouteTable::parse("").unwrap().is_empty());
        let table = RouteTable::parse(
            " image.upscale = jimeng:jimeng_i2i_seed3_tilesr_cvtob ,, \
             image.generate:sandbox=local",
        )
        .unwrap();
        assert_eq!(
            table.resolve(Capability::ImageUpscale, None),
            provider(Provider::Jimeng, "jimeng_i2i_seed3_tilesr_cvtob")
        );
        assert_eq!(
            table.resolve(Capability::ImageGenerate, Some("sandbox")),
            Route::Local
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let cases = [
            (
                "image.generate",
                "expected capability[:model]=provider:upstream_model",
            ),
            ("image.make=openai:x", "unknown capability \"image.make\""),
            ("image.generate=dalle:x", "unknown provider \"dalle\""),
            ("image.generate=openai", "should be provider:upstream_model"),
            ("image.generate=openai:", "the upstream model is empty"),
            (
                "image.generate:=openai:x",
                "the model name after ':' is empty",
            ),
        ];
        for (raw, expected) in cases {
            let err = RouteTable::parse(raw).unwrap_err().to_string();
            assert!(err.contains(expected), "{raw}: {err}");
            assert!(err.starts_with("ATELIER_ROUTES entry"), "{err}");
        }
        let err = RouteTable::parse("video.generate=openai:sora").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ATELIER_ROUTES routes video.generate to openai, which does not offer it"
        );
        let err = RouteTable::parse("image.generate=openai:a,image.generate=ark:b").unwrap_err();
        assert_eq!(err.to_string(), "ATELIER_ROUTES names image.generate twice");
    }

    #[test]
    fn routes_need_credentials() {
        let table = RouteTable::parse(EXAMPLE).unwrap();
        assert!(table.validate(|_| true).is_ok());
        let err = table.validate(|p| p != Provider::Gemini).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ATELIER_ROUTES routes image.generate to gemini, but its credentials are not set \
             (ATELIER_GEMINI_API_KEY)"
        );
    }
}
