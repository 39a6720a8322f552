//! Reading `ATELIER_*` settings: every setting has a local default, is parsed once at
//! start-up, and a bad value stops the process with a message naming the variable.

use std::{fmt, str::FromStr, time::Duration};

use anyhow::{Context, anyhow, bail};

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads one variable, or `None` when unset or blank.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn string(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

pub fn parsed<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|err| anyhow!("{name}: cannot parse {raw:?}: {err}")),
    }
}

pub fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match var(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name}: expected true or false, got {other:?}"),
    }
}

pub fn duration(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match var(name) {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).with_context(|| format!("{name}: bad duration")),
    }
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d`; a bare number is seconds.
pub fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow!("{raw:?} does not start with a number"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => bail!("unknown unit {other:?} in {raw:?} (use ms, s, m, h or d)"),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        bail!("{raw:?} is not a valid duration");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a comma-separated list of durations such as `5s,5m,30m,2h`.
pub fn parse_duration_list(raw: &str) -> anyhow::Result<Vec<Duration>> {
    raw.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_duration)
        .collect()
}

/// Settings every role that talks to NATS shares.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    pub url: String,
    /// Stream and subject prefix, so several deployments (or tests) share one server.
    pub prefix: String,
    /// Replicas of the streams Atelier creates (3 on a production cluster).
    pub replicas: usize,
}

impl NatsConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let prefix = string("ATELIER_NATS_PREFIX", "atelier");
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("ATELIER_NATS_PREFIX: only letters, digits, '-' and '_' are allowed");
        }
        Ok(Self {
            url: string("ATELIER_NATS_URL", "nats://127.0.0.1:4222"),
            prefix,
            replicas: parsed("ATELIER_NATS_REPLICAS", 1)?,
        })
    }
}

/// Settings for the one bucket Atelier stores files in.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// A custom endpoint (MinIO, Garage, s3s-fs); `None` means AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub force_path_style: bool,
    /// Every S3 call is bounded (docs/hardening.md, H3): a server that accepts and never
    /// answers must not hold a worker slot or a request forever.
    pub timeouts: S3Timeouts,
    pub credentials: S3Credentials,
}

/// Where the S3 client's credentials come from. Never implicitly from the AWS SDK's default
/// chain: its last resort asks the instance metadata service (169.254.169.254), which a
/// process started without keys must not reach by accident (issue #14).
#[derive(Clone, Debug)]
pub enum S3Credentials {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` if set).
    Keys {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// The SDK's default chain (web identity on Kubernetes, profiles, ECS, instance metadata),
    /// chosen explicitly with `ATELIER_S3_CREDENTIALS=chain`.
    Chain,
}

impl S3Credentials {
    /// Reads the credentials' source from `lookup` (the environment outside tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let chosen = lookup("ATELIER_S3_CREDENTIALS");
        match chosen.as_deref().map(str::trim) {
            None | Some("keys") => {}
            Some("chain") => return Ok(Self::Chain),
            Some(other) => bail!("ATELIER_S3_CREDENTIALS: expected keys or chain, got {other:?}"),
        }
        match (lookup("AWS_ACCESS_KEY_ID"), lookup("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret)) => Ok(Self::Keys {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: lookup("AWS_SESSION_TOKEN").map(Secret::new),
            }),
            _ => bail!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 ATELIER_S3_CREDENTIALS=chain to use the AWS SDK's default chain (web identity, \
                 profile, instance metadata)"
            ),
        }
    }

    /// Names the source for the start-up log; never the keys themselves.
    pub fn source(&self) -> String {
        match self {
            Self::Keys { access_key_id, .. } => {
                let shown: String = access_key_id.chars().take(4).collect();
                format!("keys from AWS_ACCESS_KEY_ID ({shown}…)")
            }
            Self::Chain => "the AWS SDK's default chain (ATELIER_S3_CREDENTIALS=chain)".to_owned(),
        }
    }
}

/// Bounds on every S3 call; an expired bound is an error the caller classifies (retryable).
#[derive(Clone, Copy, Debug)]
pub struct S3Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// From the request sent (body included) to the response's first byte.
    pub read: Duration,
    /// One attempt of one operation, end to end (the SDK retries up to 3 attempts).
    pub attempt: Duration,
}

impl S3Timeouts {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            connect: duration("ATELIER_S3_CONNECT_TIMEOUT", Duration::from_secs(5))?,
            read: duration("ATELIER_S3_READ_TIMEOUT", Duration::from_secs(120))?,
            attempt: duration("ATELIER_S3_ATTEMPT_TIMEOUT", Duration::from_secs(600))?,
        })
    }
}

impl S3Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let endpoint =
            Some(string("ATELIER_S3_ENDPOINT", "http://127.0.0.1:9000")).filter(|e| e != "aws");
        Ok(Self {
            force_path_style: flag("ATELIER_S3_FORCE_PATH_STYLE", endpoint.is_some())?,
            endpoint,
            bucket: string("ATELIER_S3_BUCKET", "atelier"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned()),
            timeouts: S3Timeouts::from_env()?,
            credentials: S3Credentials::from_lookup(var)?,
        })
    }
}

pub fn database_url() -> String {
    string(
        "ATELIER_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/atelier",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn the_default_retry_schedule_parses() {
        let schedule = parse_duration_list("5s,5m,30m,2h,5h,10h,10h").unwrap();
        assert_eq!(schedule.len(), 7);
        assert_eq!(schedule[6], Duration::from_secs(36000));
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn s3_credentials_are_keys_or_an_explicit_chain_never_a_silent_fallback() {
        let keys = [
            ("AWS_ACCESS_KEY_ID", "atelier"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        let found = S3Credentials::from_lookup(env(&keys)).unwrap();
        assert!(matches!(found, S3Credentials::Keys { .. }));
        assert_eq!(found.source(), "keys from AWS_ACCESS_KEY_ID (atel…)");
        assert!(
            !format!("{found:?}").contains("\"s\""),
            "the secret stays hidden"
        );

        let chain = [("ATELIER_S3_CREDENTIALS", "chain")];
        assert!(matches!(
            S3Credentials::from_lookup(env(&chain)).unwrap(),
            S3Credentials::Chain
        ));

        for missing in [
            &[][..],
            &[("AWS_ACCESS_KEY_ID", "atelier")][..],
            &[("ATELIER_S3_CREDENTIALS", "keys")][..],
        ] {
            let err = S3Credentials::from_lookup(env(missing))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
                "{err}"
            );
            assert!(err.contains("ATELIER_S3_CREDENTIALS=chain"), "{err}");
        }
        let typo = [("ATELIER_S3_CREDENTIALS", "imds")];
        assert!(S3Credentials::from_lookup(env(&typo)).is_err());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "Secret(***)");
    }
}
