//! Provider engines' foundation: clients for the upstream generation APIs (OpenAI, Volcengine
//! Ark, Google Gemini, Jimeng on the Volcengine visual API), their failures sorted into classes
//! the worker acts on, the routes that pick a provider per capability and model, polling, and
//! (feature `fake`) protocol-faithful fake servers for tests.
//!
//! Wire protocols and their sources: `shared/research/providers.md`.
//!
//! How an engine uses it:
//! 1. At start-up: [`ProvidersConfig::from_env`] (a route to a provider without credentials
//!    fails here), then [`Providers::new`] with the SSRF-guarded client for output URLs.
//! 2. Per job: [`RouteTable::resolve`] picks `local` or a provider and its upstream model;
//!    take a permit from [`Providers::concurrency`] for the provider and hold it to the end.
//! 3. Sync providers (OpenAI, Gemini, Seedream) answer with the images. Async ones (Ark
//!    Seedance, Jimeng) return an [`UpstreamTaskId`] that must be recorded before anything else;
//!    a later attempt that finds a recorded id polls it (`wait_video`, `wait_images`) instead of
//!    submitting again. Callbacks only notify the `Notify` the poller waits on.
//! 4. Errors convert into the worker's `EngineError` with their class: `OutcomeUnknown` is
//!    final, never resent, because the provider may already be working (and billing).

pub mod ark;
mod clients;
pub mod config;
pub mod engine;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod gemini;
mod http;
pub mod jimeng;
mod mask;
mod multipart;
pub mod openai;
pub mod output;
pub mod poll;
pub mod provider;
pub mod routes;
pub mod task;

pub use clients::Providers;
pub use config::{HttpLimits, JimengEndpoint, KeyedEndpoint, ProvidersConfig};
pub use engine::Routed;
pub use error::{ErrorClass, ProviderError};
pub use http::{Concurrency, retry_after};
pub use output::{Artifact, Downloader, Images};
pub use poll::{Poll, PollError, PollPolicy, poll_until};
pub use provider::{Capability, Provider};
pub use routes::{Route, RouteError, RouteTable};
pub use task::{TaskStatus, UpstreamTaskId};
