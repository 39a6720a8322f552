//! Every configured provider client, built once from [`ProvidersConfig`] and shared by the
//! engines: one transport per provider, one concurrency limit per provider, one guarded
//! downloader for all output URLs.

use atelier_netguard::GuardedClient;

use crate::ark::ArkClient;
use crate::config::ProvidersConfig;
use crate::error::ProviderError;
use crate::gemini::GeminiClient;
use crate::http::{Concurrency, Transport};
use crate::jimeng::JimengClient;
use crate::openai::OpenAiClient;
use crate::output::Downloader;
use crate::provider::Provider;
use crate::routes::RouteTable;

#[derive(Debug, Clone)]
pub struct Providers {
    pub openai: Option<OpenAiClient>,
    pub ark: Option<ArkClient>,
    pub gemini: Option<GeminiClient>,
    pub jimeng: Option<JimengClient>,
    pub routes: RouteTable,
    /// Take a permit per job sent upstream (see [`Concurrency::acquire`]).
    pub concurrency: Concurrency,
}

impl Providers {
    /// `guard` fetches output URLs; in production it must refuse private networks.
    pub fn new(config: &ProvidersConfig, guard: GuardedClient) -> Result<Self, ProviderError> {
        let concurrency = Concurrency::new(&config.max_in_flight);
        let downloader = Downloader::new(guard);
        let transport = |p: Provider| Transport::new(p, config.http.clone());
        Ok(Self {
            openai: match &config.openai {
                Some(e) => Some(OpenAiClient::new(
                    transport(Provider::OpenAi)?,
                    downloader.clone(),
                    e.clone(),
                )),
                None => None,
            },
            ark: match &config.ark {
                Some(e) => Some(ArkClient::new(
                    transport(Provider::Ark)?,
                    downloader.clone(),
                    e.clone(),
                )),
                None => None,
            },
            gemini: match &config.gemini {
                Some(e) => Some(GeminiClient::new(transport(Provider::Gemini)?, e.clone())),
                None => None,
            },
            jimeng: match &config.jimeng {
                Some(e) => Some(JimengClient::new(
                    transport(Provider::Jimeng)?,
                    downloader.clone(),
                    e.clone(),
                )),
                None => None,
            },
            routes: config.routes.clone(),
            concurrency,
        })
    }
}
