//! The guarded HTTP client: reqwest with redirects off, proxies off, a filtering resolver and
//! size and time caps.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode, redirect};
use url::{Host, Url};

use crate::classify::{NetPolicy, permits};
use crate::error::{FetchError, GuardError};
use crate::resolver::GuardResolver;

/// Settings for [`GuardedClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Lets loopback and private networks through; for local use and tests only.
    pub allow_private_networks: bool,
    pub connect_timeout: Duration,
    /// Caps the whole exchange, body included.
    pub request_timeout: Duration,
    pub user_agent: String,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("Atelier/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl GuardConfig {
    pub fn policy(&self) -> NetPolicy {
        NetPolicy {
            allow_private_networks: self.allow_private_networks,
        }
    }
}

/// A successful [`GuardedClient::fetch`].
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// As the server claimed it; sniff the bytes before trusting it.
    pub content_type: Option<String>,
    pub final_url: Url,
}

/// Whatever the server answered to [`GuardedClient::send`], any status included.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The start of the body, up to the limit given to `send`.
    pub body: Bytes,
    pub body_truncated: bool,
    /// From sending the request to the end of the (possibly truncated) body.
    pub elapsed: Duration,
    pub final_url: Url,
}

impl Sent {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// `Retry-After` as a delay from now, in either of its forms (seconds or an HTTP date).
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(
            self.headers.get(RETRY_AFTER)?.to_str().ok()?,
            chrono::Utc::now(),
        )
    }

    /// The same judgement [`GuardedClient::fetch`] makes: 2xx is fine, a redirect or any other
    /// status is an error whose [`FetchError::is_retryable`] says what to do next.
    pub fn error_for_status(&self) -> Result<(), FetchError> {
        status_error(self.status, &self.headers).map_or(Ok(()), Err)
    }
}

/// The one HTTP client for user-supplied URLs. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    http: reqwest::Client,
    config: Arc<GuardConfig>,
}

impl GuardedClient {
    pub fn new(config: GuardConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // A redirect is a second, unchecked destination; callers see the 3xx instead.
            .redirect(redirect::Policy::none())
            // HTTP(S)_PROXY would let a proxy connect wherever it likes on our behalf.
            .no_proxy()
            .dns_resolver(Arc::new(GuardResolver {
                policy: config.policy(),
            }))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()?;
        Ok(Self {
            http,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    pub fn policy(&self) -> NetPolicy {
        self.config.policy()
    }

    /// The underlying client. reqwest never asks the resolver about IP-literal hosts, so a
    /// request built from this must have its URL passed through [`Self::check_url`] first;
    /// [`Self::send`] does that for you.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Refuses URLs the guard will not fetch: non-http(s) schemes, credentials, and hosts that
    /// are IP literals outside the policy. Named hosts are judged later, by the resolver.
    pub fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        check_url(&self.policy(), url)
    }

    /// Parses and checks a user-supplied URL.
    pub fn parse_url(&self, url: &str) -> Result<Url, GuardError> {
        let url = Url::parse(url)?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// GETs `url` and returns its body, refusing redirects, non-2xx answers and bodies over
    /// `max_bytes`; the whole exchange is bounded by the request timeout.
    pub async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Fetched, FetchError> {
        let mut download = self.open(url, max_bytes).await?;
        let hint = download.declared_len.unwrap_or(0).min(1 << 20);
        let mut body = BytesMut::with_capacity(usize::try_from(hint).unwrap_or(0));
        while let Some(chunk) = download.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            bytes: body.freeze(),
            content_type: download.content_type,
            final_url: download.final_url,
        })
    }

    /// [`Self::fetch`] for bodies the caller streams elsewhere (a file) instead of holding:
    /// the same refusals, the same cap and the same time bound, with the body read a chunk at
    /// a time from the returned [`Download`].
    pub async fn open(&self, url: &str, max_bytes: u64) -> Result<Download, FetchError> {
        let url = self.parse_url(url)?;
        let limit = self.config.request_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let response = tokio::time::timeout_at(deadline, self.http.get(url).send())
            .await
            .map_err(|_| timed_out(limit))??;
        if let Some(err) = status_error(response.status(), response.headers()) {
            return Err(err);
        }
        let declared_len = response.content_length();
        if declared_len.is_some_and(|len| len > max_bytes) {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        Ok(Download {
            content_type: response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            final_url: response.url().clone(),
            declared_len,
            response,
            max_bytes,
            read: 0,
            deadline,
            limit,
        })
    }

    /// Sends a request the caller built (method, headers, body) and returns the answer whatever
    /// its status, with at most `max_body_bytes` of the body kept. The request is sent through
    /// this client even if the builder came from another one, and its URL is checked first.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        max_body_bytes: u64,
    ) -> Result<Sent, FetchError> {
        let (_, request) = request.build_split();
        let request = request?;
        self.check_url(request.url())?;
        let started = Instant::now();
        let exchange = async {
            let mut response = self.http.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let final_url = response.url().clone();
            let (body, body_truncated) = read_capped(&mut response, max_body_bytes).await?;
            Ok(Sent {
                status,
                headers,
                body,
                body_truncated,
                elapsed: started.elapsed(),
                final_url,
            })
        };
        self.bounded(exchange).await
    }

    /// reqwest's own timeout covers the same span, but not time spent in our body loop, and
    /// it reports through an error chain; this makes the bound exact and the error plain.
    async fn bounded<T>(
        &self,
        exchange: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let limit = self.config.request_timeout;
        tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| Err(timed_out(limit)))
    }
}

fn timed_out(limit: Duration) -> FetchError {
    FetchError::Timeout(format!("no response within {limit:?}"))
}

/// A response to [`GuardedClient::open`] whose status and declared length passed; its body is
/// read with [`Download::chunk`].
#[derive(Debug)]
pub struct Download {
    /// As the server claimed it; sniff the bytes before trusting it.
    pub content_type: Option<String>,
    pub final_url: Url,
    /// `Content-Length`, when the server sent one (already checked against the cap).
    pub declared_len: Option<u64>,
    response: Response,
    max_bytes: u64,
    read: u64,
    /// The request timeout, counted from the request: it bounds the body too.
    deadline: tokio::time::Instant,
    limit: Duration,
}

impl Download {
    /// The next piece of the body, `None` at its end. Going past the cap is
    /// [`FetchError::TooLarge`] (an endless body costs at most one chunk more), and so is
    /// going past the request's deadline a [`FetchError::Timeout`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let chunk = tokio::time::timeout_at(self.deadline, self.response.chunk())
            .await
            .map_err(|_| timed_out(self.limit))??;
        if let Some(chunk) = &chunk {
            self.read += chunk.len() as u64;
            if self.read > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
        }
        Ok(chunk)
    }
}

/// [`GuardedClient::check_url`] without a client, for validating URLs at the API edge (a
/// named host still has to pass the resolver when the request is made).
pub fn check_url(policy: &NetPolicy, url: &Url) -> Result<(), GuardError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(GuardError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Credentials);
    }
    let ip = match url.host() {
        None => return Err(GuardError::NoHost),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    permits(policy, ip).map_err(|reason| GuardError::Blocked {
        host: url.host_str().unwrap_or_default().to_owned(),
        reason,
    })
}

fn status_error(status: StatusCode, headers: &HeaderMap) -> Option<FetchError> {
    if status.is_success() {
        None
    } else if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Some(FetchError::Redirect { status, location })
    } else {
        Some(FetchError::Status { status })
    }
}

/// Reads at most `cap` bytes of body; the flag says whether more was on offer. Stops reading
/// as soon as the cap is passed so an endless body costs at most one chunk more.
async fn read_capped(response: &mut Response, cap: u64) -> Result<(Bytes, bool), FetchError> {
    let cap_usize = usize::try_from(cap).unwrap_or(usize::MAX);
    let hint = response.content_length().unwrap_or(0).min(cap).min(1 << 20);
    let mut body = BytesMut::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        let room = cap_usize - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), false))
}

fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    // A date in the past means "now", not "never".
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests;
