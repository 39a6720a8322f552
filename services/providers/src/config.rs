//! Provider credentials, endpoints, limits and routes, read once at start-up from `ATELIER_*`
//! variables. A route to a provider without credentials is a start-up error.

use std::collections::BTreeMap;
use std::time::Duration;

use atelier_kit::config::Secret;
use url::Url;

use crate::provider::Provider;
use crate::routes::{RouteError, RouteTable};

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const ARK_BASE_URL: &str = "https://ark.cn-beijing.volces.com/api/v3";
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
pub const JIMENG_BASE_URL: &str = "https://visual.volcengineapi.com";

/// A provider reached with one bearer-style key.
#[derive(Debug, Clone)]
pub struct KeyedEndpoint {
    pub api_key: Secret,
    pub base_url: Url,
}

/// The Volcengine visual API signs each request with an access key pair.
#[derive(Debug, Clone)]
pub struct JimengEndpoint {
    pub access_key: Secret,
    pub secret_key: Secret,
    pub base_url: Url,
}

/// Time and size bounds for every provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    /// Whole-request bound: image models can take minutes (providers.md §8.4).
    pub request_timeout: Duration,
    /// Cap on a JSON answer, which may carry base64 images.
    pub max_response_bytes: usize,
    /// Cap on one decoded or downloaded image.
    pub max_image_bytes: usize,
    /// Cap on one downloaded video.
    pub max_video_bytes: usize,
    /// Cap on one speech answer.
    pub max_audio_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            max_response_bytes: 128 * 1024 * 1024,
            max_image_bytes: 50 * 1024 * 1024,
            max_video_bytes: 512 * 1024 * 1024,
            max_audio_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    pub openai: Option<KeyedEndpoint>,
    pub ark: Option<KeyedEndpoint>,
    pub gemini: Option<KeyedEndpoint>,
    pub jimeng: Option<JimengEndpoint>,
    pub routes: RouteTable,
    pub http: HttpLimits,
    /// Calls in flight per provider, protecting the upstream account's concurrency quota.
    pub max_in_flight: BTreeMap<Provider, usize>,
}

/// A bad or missing setting, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// Every setting [`ProvidersConfig::from_lookup`] reads. Some names are built from the
/// provider's name, so this list is what the deployment checks (deploy/checks/config_names.py)
/// read; a test below holds it to what the code actually asks for.
pub const SETTINGS: &[&str] = &[
    "ATELIER_OPENAI_API_KEY",
    "ATELIER_OPENAI_BASE_URL",
    "ATELIER_ARK_API_KEY",
    "ATELIER_ARK_BASE_URL",
    "ATELIER_GEMINI_API_KEY",
    "ATELIER_GEMINI_BASE_URL",
    "ATELIER_JIMENG_ACCESS_KEY",
    "ATELIER_JIMENG_SECRET_KEY",
    "ATELIER_JIMENG_BASE_URL",
    "ATELIER_OPENAI_MAX_IN_FLIGHT",
    "ATELIER_ARK_MAX_IN_FLIGHT",
    "ATELIER_GEMINI_MAX_IN_FLIGHT",
    "ATELIER_JIMENG_MAX_IN_FLIGHT",
    "ATELIER_PROVIDER_CONNECT_TIMEOUT_SECS",
    "ATELIER_PROVIDER_REQUEST_TIMEOUT_SECS",
    "ATELIER_ROUTES",
];

impl ProvidersConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(atelier_kit::config::var)
    }

    /// Reads settings through `lookup` (blank counts as unset), so tests need no environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let keyed = |prefix: &str, default: &str| -> Result<_, ConfigError> {
            let key = lookup(&format!("ATELIER_{prefix}_API_KEY"));
            let base_url = url(&lookup, &format!("ATELIER_{prefix}_BASE_URL"), default)?;
            Ok(key.map(|k| KeyedEndpoint {
                api_key: Secret::new(k.trim()),
                base_url,
            }))
        };
        let access = lookup("ATELIER_JIMENG_ACCESS_KEY");
        let secret = lookup("ATELIER_JIMENG_SECRET_KEY");
        let jimeng_url = url(&lookup, "ATELIER_JIMENG_BASE_URL", JIMENG_BASE_URL)?;
        let jimeng = match (access, secret) {
            (Some(a), Some(s)) => Some(JimengEndpoint {
                access_key: Secret::new(a.trim()),
                secret_key: Secret::new(s.trim()),
                base_url: jimeng_url,
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "ATELIER_JIMENG_ACCESS_KEY".into(),
                    reason: "set both ATELIER_JIMENG_ACCESS_KEY and ATELIER_JIMENG_SECRET_KEY"
                        .into(),
                });
            }
        };
        let mut max_in_flight = BTreeMap::new();
        for provider in Provider::ALL {
            let name = format!("ATELIER_{}_MAX_IN_FLIGHT", provider.as_str().to_uppercase());
            let n = number(&lookup, &name, default_in_flight(provider))?;
            if n == 0 {
                return Err(invalid(&name, "must be at least 1"));
            }
            max_in_flight.insert(provider, n);
        }
        let defaults = HttpLimits::default();
        let http = HttpLimits {
            connect_timeout: Duration::from_secs(number(
                &lookup,
                "ATELIER_PROVIDER_CONNECT_TIMEOUT_SECS",
                10,
            )? as u64),
            request_timeout: Duration::from_secs(number(
                &lookup,
                "ATELIER_PROVIDER_REQUEST_TIMEOUT_SECS",
                300,
            )? as u64),
            ..defaults
        };
        let config = Self {
            openai: keyed("OPENAI", OPENAI_BASE_URL)?,
            ark: keyed("ARK", ARK_BASE_URL)?,
            gemini: keyed("GEMINI", GEMINI_BASE_URL)?,
            jimeng,
            routes: RouteTable::parse(&lookup("ATELIER_ROUTES").unwrap_or_default())?,
            http,
            max_in_flight,
        };
        config.routes.validate(|p| config.is_configured(p))?;
        Ok(config)
    }

    /// Whether the provider's credentials are set.
    pub fn is_configured(&self, provider: Provider) -> bool {
        match provider {
            Provider::OpenAi => self.openai.is_some(),
            Provider::Ark => self.ark.is_some(),
            Provider::Gemini => self.gemini.is_some(),
            Provider::Jimeng => self.jimeng.is_some(),
        }
    }
}

/// Ark's individual tier allows 3 concurrent video tasks (providers.md §2.7); the image APIs
/// take a few more.
fn default_in_flight(provider: Provider) -> usize {
    match provider {
        Provider::Ark => 3,
        Provider::OpenAi | Provider::Gemini | Provider::Jimeng => 4,
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn url(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> Result<Url, ConfigError> {
    let raw = lookup(name).unwrap_or_else(|| default.to_owned());
    let url = Url::parse(raw.trim()).map_err(|err| invalid(name, format!("{raw:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid(name, format!("{raw:?} is not an http(s) base url")));
    }
    Ok(url)
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|err| invalid(name, format!("cannot parse {raw:?}: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<ProvidersConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProvidersConfig::from_lookup(|name| map.get(name).cloned().filter(|v| !v.trim().is_empty()))
    }

    #[test]
    fn defaults_without_any_variable() {
        let config = load(&[]).unwrap();
        assert!(Provider::ALL.iter().all(|p| !config.is_configured(*p)));
        assert!(config.routes.is_empty());
        assert_eq!(config.max_in_flight[&Provider::Ark], 3);
    }

    #[test]
    fn keys_and_urls_are_read_and_never_printed() {
        let config = load(&[
            ("ATELIER_OPENAI_API_KEY", "sk-secret-value"),
            ("ATELIER_OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("ATELIER_ARK_API_KEY", "ark-secret-value"),
            ("ATELIER_JIMENG_ACCESS_KEY", "AKLT-value"),
            ("ATELIER_JIMENG_SECRET_KEY", "jimeng-secret-value"),
            (
                "ATELIER_ROUTES",
                "video.generate=ark:doubao-seedance-1-0-pro-250528",
            ),
            ("ATELIER_ARK_MAX_IN_FLIGHT", "1"),
        ])
        .unwrap();
        let openai = config.openai.as_ref().unwrap();
        assert_eq!(openai.base_url.as_str(), "http://127.0.0.1:9/v1");
        assert_eq!(openai.api_key.expose(), "sk-secret-value");
        assert_eq!(config.ark.as_ref().unwrap().base_url.as_str(), ARK_BASE_URL);
        assert_eq!(config.max_in_flight[&Provider::Ark], 1);
        let printed = format!("{config:?}");
        for secret in ["sk-secret-value", "ark-secret-value", "jimeng-secret-value"] {
            assert!(!printed.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn a_route_without_credentials_stops_start_up() {
        let err = load(&[("ATELIER_ROUTES", "image.generate=openai:gpt-image-1")]).unwrap_err();
        assert!(err.to_string().contains("ATELIER_OPENAI_API_KEY"), "{err}");
        let err = load(&[("ATELIER_JIMENG_ACCESS_KEY", "ak")]).unwrap_err();
        assert!(err.to_string().contains("set both"), "{err}");
        let err = load(&[("ATELIER_GEMINI_BASE_URL", "ftp://x")]).unwrap_err();
        assert!(
            err.to_string().starts_with("ATELIER_GEMINI_BASE_URL:"),
            "{err}"
        );
        let err = load(&[("ATELIER_OPENAI_MAX_IN_FLIGHT", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ATELIER_OPENAI_MAX_IN_FLIGHT: must be at least 1"
        );
    }

    #[test]
    fn the_settings_list_is_what_the_code_reads() {
        let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
        ProvidersConfig::from_lookup(|name| {
            asked.lock().unwrap().insert(name.to_owned());
            None
        })
        .unwrap();
        let listed: std::collections::BTreeSet<String> =
            SETTINGS.iter().map(|s| s.to_string()).collect();
        assert_eq!(*asked.lock().unwrap(), listed);
    }
}
