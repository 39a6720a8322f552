//! The transport every client shares: one reqwest client (rustls, no proxy from the
//! environment, timeouts on every call), capped bodies, and the one rule for what a transport
//! failure means; and the per-provider concurrency limit the engines hold per job.
//!
//! A failure before the connection was made means nothing reached the provider, so it is
//! retryable. Any later failure of a *submit* may have left work running (and billing)
//! upstream, so it is `OutcomeUnknown`; the same failure of a read is retryable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atelier_kit::metrics::metrics;
use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use tokio::sync::Semaphore;

use crate::config::HttpLimits;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::Provider;

/// Whether resending the request could repeat work upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Creates work: never resent after its body may have been sent.
    Submit,
    /// Reads or cancels: safe to repeat.
    Read,
}

/// An answer of any status, its body read up to the cap.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

/// Calls in flight per provider. Cheap to clone; clones share the permits.
#[derive(Debug, Clone)]
pub struct Concurrency {
    semaphores: Arc<BTreeMap<Provider, Arc<Semaphore>>>,
}

impl Concurrency {
    pub fn new(max_in_flight: &BTreeMap<Provider, usize>) -> Self {
        let semaphores = Provider::ALL
            .into_iter()
            .map(|p| {
                let n = max_in_flight.get(&p).copied().unwrap_or(4).max(1);
                (p, Arc::new(Semaphore::new(n)))
            })
            .collect();
        Self {
            semaphores: Arc::new(semaphores),
        }
    }

    /// Waits for a slot; the slot is released when the permit drops. An engine takes one per
    /// job it sends upstream and holds it from submit to result (a whole video task, or one
    /// synchronous image call). The clients do not take permits themselves, so a job's polls
    /// never wait behind its own slot.
    pub async fn acquire(&self, provider: Provider) -> tokio::sync::OwnedSemaphorePermit {
        // The semaphores are never closed, so acquiring cannot fail.
        Arc::clone(&self.semaphores[&provider])
            .acquire_owned()
            .await
            .expect("provider semaphores are never closed")
    }

    /// Free slots now, for the in-flight gauge.
    pub fn available(&self, provider: Provider) -> usize {
        self.semaphores[&provider].available_permits()
    }
}

/// The HTTP side of one provider client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub provider: Provider,
    client: reqwest::Client,
    pub limits: HttpLimits,
}

impl Transport {
    pub fn new(provider: Provider, limits: HttpLimits) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            // Credentials go only where the operator pointed them, never through a proxy the
            // environment names.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .user_agent(concat!("Atelier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                ProviderError::new(provider, ErrorClass::ProviderUnavailable, err.to_string())
            })?;
        Ok(Self {
            provider,
            client,
            limits,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends and reads the body up to the cap.
    pub async fn send(&self, request: RequestBuilder, call: Call) -> Result<Reply, ProviderError> {
        let started = std::time::Instant::now();
        let provider = self.provider.as_str();
        let mut response = request.send().await.map_err(|err| {
            metrics().provider_request(provider, "transport", started.elapsed());
            self.transport_error(&err, call)
        })?;
        let status = response.status();
        let class = format!("{}xx", status.as_u16() / 100);
        metrics().provider_request(provider, &class, started.elapsed());
        let headers = response.headers().clone();
        let cap = self.limits.max_response_bytes;
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > cap {
                        return Err(too_large(self.provider, cap));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => return Err(self.transport_error(&err, call)),
            }
        }
        Ok(Reply {
            status,
            headers,
            body: body.freeze(),
        })
    }

    fn transport_error(&self, err: &reqwest::Error, call: Call) -> ProviderError {
        let message = error_chain(err);
        if err.is_connect() || call == Call::Read {
            ProviderError::retryable(self.provider, message)
        } else if err.is_builder() {
            ProviderError::new(self.provider, ErrorClass::InvalidRequest, message)
        } else {
            ProviderError::new(
                self.provider,
                ErrorClass::OutcomeUnknown,
                format!("the submit was sent but no answer came: {message}"),
            )
        }
    }
}

pub(crate) fn too_large(provider: Provider, cap: usize) -> ProviderError {
    ProviderError::new(
        provider,
        ErrorClass::InvalidRequest,
        format!("the provider's answer exceeds the {cap} byte limit"),
    )
    .with_code("output_too_large")
}

/// A body that is not the JSON the protocol promises: the provider misbehaved, try again.
pub(crate) fn malformed(provider: Provider, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::retryable(provider, format!("malformed answer: {what}"))
        .with_code("malformed_response")
}

/// `retry-after-ms` (OpenAI), then `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    // A date in the past means "now", not "never".
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// "outer: inner: innermost": the useful part of a reqwest error sits several sources deep.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let msg = e.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        current = e.source();
    }
    out
}

/// Joins a base URL and a path without `Url::join`'s surprise of dropping the base's last
/// segment (`.../v1` + `images` must stay under `/v1`).
pub(crate) fn endpoint(base: &url::Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut dated = HeaderMap::new();
        dated.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&dated), Some(Duration::ZERO));
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let base = url::Url::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            endpoint(&base, "images/generations"),
            "https://api.openai.com/v1/images/generations"
        );
        let base = url::Url::parse("http://127.0.0.1:1/api/v3/").unwrap();
        assert_eq!(
            endpoint(&base, "/contents"),
            "http://127.0.0.1:1/api/v3/contents"
        );
    }

    #[tokio::test]
    async fn concurrency_is_bounded_per_provider() {
        let limits = BTreeMap::from([(Provider::Ark, 1)]);
        let concurrency = Concurrency::new(&limits);
        let permit = concurrency.acquire(Provider::Ark).await;
        assert_eq!(concurrency.available(Provider::Ark), 0);
        assert_eq!(concurrency.available(Provider::OpenAi), 4);
        drop(permit);
        assert_eq!(concurrency.available(Provider::Ark), 1);
    }
}
