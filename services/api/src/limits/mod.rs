//! Per-client limits on creating jobs (issue #16): a create rate (a token bucket) and a cap on
//! the jobs a client has waiting. Both are checked in the transaction that accepts a job, under
//! the lock of the client's bucket row, so every face and every api replica applies the same
//! limits exactly, and a refused request writes and charges nothing.
//!
//! Every face answers a refusal with HTTP 429, `Retry-After` and the IETF `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers; an accepted create carries the same
//! three headers. `GET /api/v1/limits` shows a client its limits and its current counts.

mod bucket;
pub mod route;

use std::collections::HashMap;

use anyhow::{Context, bail};
use atelier_kit::{config, ids::ClientId, metrics::metrics};
use axum::http::{HeaderMap, HeaderValue};
use sqlx::{Postgres, Transaction};

pub use bucket::{Bucket, Take};

use crate::error::ApiError;

/// One client's limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientLimits {
    pub bucket: Bucket,
    /// Jobs the client may have `queued` at once; a create beyond it is refused.
    pub max_queued: u32,
    /// Jobs of one capability the client may have in flight (released to workers or running)
    /// at once; the rest wait queued. `None`: no cap.
    pub max_running: Option<u32>,
    /// The client's share of the workers when they are the bottleneck, relative to others.
    pub weight: u32,
}

impl Default for ClientLimits {
    /// Generous enough for any honest integration; an operator tightens them per client.
    fn default() -> Self {
        Self {
            bucket: Bucket {
                rate: 100.0,
                burst: 1000,
            },
            max_queued: 10_000,
            max_running: None,
            weight: 1,
        }
    }
}

/// The limits in force: a default, and the clients configured otherwise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub default: ClientLimits,
    pub clients: HashMap<String, ClientLimits>,
}

impl Limits {
    /// `ATELIER_LIMIT_RATE` (creates a second), `ATELIER_LIMIT_BURST`, `ATELIER_LIMIT_QUEUED`,
    /// and `ATELIER_CLIENT_LIMITS` for the clients that differ.
    pub fn from_env() -> anyhow::Result<Self> {
        let built_in = ClientLimits::default();
        let default = ClientLimits {
            bucket: Bucket {
                rate: config::parsed("ATELIER_LIMIT_RATE", built_in.bucket.rate)?,
                burst: config::parsed("ATELIER_LIMIT_BURST", built_in.bucket.burst)?,
            },
            max_queued: config::parsed("ATELIER_LIMIT_QUEUED", built_in.max_queued)?,
            max_running: config::var("ATELIER_LIMIT_RUNNING")
                .map(|raw| raw.trim().parse())
                .transpose()
                .context("ATELIER_LIMIT_RUNNING")?,
            weight: built_in.weight,
        };
        check(&default).context(
            "ATELIER_LIMIT_RATE, ATELIER_LIMIT_BURST, ATELIER_LIMIT_QUEUED, ATELIER_LIMIT_RUNNING",
        )?;
        Self::parse(default, &config::string("ATELIER_CLIENT_LIMITS", ""))
            .context("ATELIER_CLIENT_LIMITS")
    }

    /// `client:rate=5,burst=20,queued=100,running=4,weight=2;client:queued=50` — each
    /// client's settings override the default's, the others keep it.
    pub fn parse(default: ClientLimits, raw: &str) -> anyhow::Result<Self> {
        let mut clients = HashMap::new();
        for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (client, settings) = entry
                .split_once(':')
                .with_context(|| format!("{entry:?}: expected client:name=value,…"))?;
            let client = ClientId::parse(client.trim())
                .with_context(|| format!("{client:?} is not a client id"))?;
            let mut limits = default;
            for setting in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, value) = setting
                    .split_once('=')
                    .with_context(|| format!("{setting:?}: expected name=value"))?;
                let value = value.trim();
                let bad = || format!("{entry:?}: {name} cannot be {value:?}");
                match name.trim() {
                    "rate" => limits.bucket.rate = value.parse().with_context(bad)?,
                    "burst" => limits.bucket.burst = value.parse().with_context(bad)?,
                    "queued" => limits.max_queued = value.parse().with_context(bad)?,
                    "running" => limits.max_running = Some(value.parse().with_context(bad)?),
                    "weight" => limits.weight = value.parse().with_context(bad)?,
                    other => bail!(
                        "{entry:?}: unknown limit {other:?} (rate, burst, queued, running, weight)"
                    ),
                }
            }
            check(&limits).with_context(|| format!("{entry:?}"))?;
            if clients.insert(client.as_str().to_owned(), limits).is_some() {
                bail!("{client} is listed twice");
            }
        }
        Ok(Self { default, clients })
    }

    pub fn of(&self, client: &ClientId) -> ClientLimits {
        self.of_name(client.as_str())
    }

    /// [`Limits::of`] for a client id read from the database.
    pub fn of_name(&self, client: &str) -> ClientLimits {
        self.clients.get(client).copied().unwrap_or(self.default)
    }
}

fn check(limits: &ClientLimits) -> anyhow::Result<()> {
    let ClientLimits {
        bucket,
        max_queued,
        max_running,
        weight,
    } = limits;
    if !(bucket.rate.is_finite() && bucket.rate > 0.0)
        || bucket.burst == 0
        || *max_queued == 0
        || *max_running == Some(0)
        || *weight == 0
    {
        bail!("rate, burst, queued, running and weight must be above zero");
    }
    Ok(())
}

/// The `RateLimit-*` values of an answer: the bucket's size, what is left of it, and the
/// seconds until it is full again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub reset: u64,
}

impl Quota {
    fn of(bucket: &Bucket, level: f64) -> Self {
        Self {
            limit: bucket.burst,
            remaining: level.max(0.0).floor() as u32,
            reset: bucket.full_after(level),
        }
    }

    /// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
    pub fn write(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// Why a create was refused, with what the answer tells the client.
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
    pub retry_after: u64,
    pub quota: Quota,
}

/// Takes a token from the client's bucket and checks its queued cap, in the accepting
/// transaction after the job's insert: the bucket's row stays locked until it commits or rolls back, so concurrent
/// creates of one client are counted one after the other, and a refused or rolled-back create
/// (an Idempotency-Key reused) takes nothing.
pub async fn admit(
    tx: &mut Transaction<'_, Postgres>,
    limits: &ClientLimits,
    client: &ClientId,
) -> Result<Quota, ApiError> {
    let bucket = limits.bucket;
    // Seeds a client's first bucket full, or locks the existing row (the no-op update), and
    // reads its level: one round trip. The clock is the statement's, not the transaction's
    // start: a create that waited for the lock must not count its wait as refill twice.
    let (level, elapsed): (f64, f64) = sqlx::query_as(
        "INSERT INTO admission_buckets (client_id, tokens, refilled_at)
         VALUES ($1, $2, clock_timestamp())
         ON CONFLICT (client_id) DO UPDATE SET client_id = EXCLUDED.client_id
         RETURNING tokens, extract(epoch FROM clock_timestamp() - refilled_at)::float8",
    )
    .bind(client.as_str())
    .bind(f64::from(bucket.burst))
    .fetch_one(&mut **tx)
    .await?;
    let left = match bucket.take(level, elapsed) {
        Take::Taken { left } => left,
        Take::Empty { level, retry_after } => {
            metrics().create_refused(client.as_str(), "rate");
            return Err(ApiError::RateLimited(Box::new(Refusal {
                message: format!(
                    "rate limit: at most {} job creations a second (bursts of {}); retry in {retry_after} s",
                    bucket.rate, bucket.burst
                ),
                retry_after,
                quota: Quota::of(&bucket, level),
            })));
        }
    };
    // Writes the new level and counts the client's queued jobs in one statement, which
    // starts after the lock is held, so it sees every create committed before this one; the
    // job being accepted is in the count (its insert came first). A refusal here rolls the
    // write back with the rest.
    let queued: i64 = sqlx::query_scalar(
        "UPDATE admission_buckets SET tokens = $2, refilled_at = clock_timestamp()
         WHERE client_id = $1
         RETURNING (SELECT count(*) FROM (
             SELECT 1 FROM jobs WHERE client_id = $1 AND status = 'queued' LIMIT $3) capped)",
    )
    .bind(client.as_str())
    .bind(left)
    .bind(i64::from(limits.max_queued) + 1)
    .fetch_one(&mut **tx)
    .await?;
    if queued > i64::from(limits.max_queued) {
        metrics().create_refused(client.as_str(), "queued");
        return Err(ApiError::RateLimited(Box::new(Refusal {
            message: format!(
                "queue limit: at most {} jobs waiting at once; retry when some have started",
                limits.max_queued
            ),
            retry_after: 1,
            quota: Quota::of(&bucket, left + 1.0),
        })));
    }
    Ok(Quota::of(&bucket, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: ClientLimits = ClientLimits {
        bucket: Bucket {
            rate: 100.0,
            burst: 1000,
        },
        max_queued: 10_000,
        max_running: None,
        weight: 1,
    };

    #[test]
    fn clients_override_only_what_they_name() {
        let limits = Limits::parse(
            DEFAULT,
            "alpha:rate=0.5,burst=2; beta:queued=3,running=4,weight=2",
        )
        .unwrap();
        let alpha = limits.of(&ClientId::parse("alpha").unwrap());
        assert_eq!(
            alpha.bucket,
            Bucket {
                rate: 0.5,
                burst: 2
            }
        );
        assert_eq!(alpha.max_queued, 10_000);
        let beta = limits.of(&ClientId::parse("beta").unwrap());
        assert_eq!((beta.bucket, beta.max_queued), (DEFAULT.bucket, 3));
        assert_eq!((beta.max_running, beta.weight), (Some(4), 2));
        assert_eq!((alpha.max_running, alpha.weight), (None, 1));
        assert_eq!(limits.of(&ClientId::parse("gamma").unwrap()), DEFAULT);
        assert_eq!(Limits::parse(DEFAULT, "").unwrap().clients.len(), 0);
    }

    #[test]
    fn bad_limits_stop_start_up_with_the_entry_named() {
        for (raw, says) in [
            ("alpha", "expected client:"),
            ("alpha:rate", "expected name=value"),
            ("alpha:rate=fast", "rate cannot be"),
            ("alpha:speed=1", "unknown limit"),
            ("alpha:rate=0", "above zero"),
            ("alpha:queued=0", "above zero"),
            ("alpha:running=0", "above zero"),
            ("alpha:weight=0", "above zero"),
            ("alpha:rate=1;alpha:burst=2", "listed twice"),
            ("not a client:rate=1", "not a client id"),
        ] {
            let err = format!("{:#}", Limits::parse(DEFAULT, raw).unwrap_err());
            assert!(err.contains(says), "{raw}: {err}");
        }
    }

    #[test]
    fn a_quota_counts_whole_tokens() {
        let bucket = Bucket {
            rate: 2.0,
            burst: 10,
        };
        assert_eq!(
            Quota::of(&bucket, 3.7),
            Quota {
                limit: 10,
                remaining: 3,
                reset: 4
            }
        );
        let mut headers = HeaderMap::new();
        Quota::of(&bucket, 3.7).write(&mut headers);
        assert_eq!(headers["ratelimit-remaining"], "3");
        assert_eq!(headers["ratelimit-reset"], "4");
    }
}
