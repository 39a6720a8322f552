//! Provider engines' foundation: clients for the upstream generation APIs (OpenAI, Volcengine
//! Ark, Google Gemini, Jimeng on the Volcengine visual API), their failures sorted into classes
//! the worker acts on, the routes that pick a provider per capability and model, polling, and
//! (feature `fake`) protocol-faithful fake servers for tests.
//!
//! Wire protocols and their sources: `shared/research/providers.md`.

pub mod ark;
mod clients;
pub mod config;
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
pub use error::{ErrorClass, ProviderError};
pub use http::{Concurrency, retry_after};
pub use output::{Artifact, Downloader};
pub use poll::{Poll, PollError, PollPolicy, poll_until};
pub use provider::{Capability, Provider};
pub use routes::{Route, RouteError, RouteTable};
pub use task::{TaskStatus, UpstreamTaskId};
