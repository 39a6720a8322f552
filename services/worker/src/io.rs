//! Inputs in and outputs out: URLs through the SSRF-guarded client, stored assets
//! straight from the bucket, both streamed to temporary files ([`crate::input`]) under a
//! per-input and a per-job byte budget; outputs to `outputs/<client>/<job>/<attempt>/<n>.<ext>`.

use atelier_kit::storage::Storage;
use atelier_netguard::{FetchError, GuardedClient};
use atelier_proto::jobs::v1::{JobSpec, Output, input_ref::Source};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::engine::{EngineError, Input, OutputFile};
use crate::input::{Spool, Spooled};

/// What a job's inputs may weigh: each one, and all of them together.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub per_input: u64,
    pub per_job: u64,
}

/// The cap on one input: the per-input limit, or what is left of the job's budget when that
/// is less; going past it is a different error in each case.
#[derive(Clone, Copy, Debug)]
struct Cap {
    bytes: u64,
    /// The job's budget, when it is what binds.
    job: Option<u64>,
}

impl Budget {
    fn cap(&self, used: u64) -> Cap {
        let left = self.per_job.saturating_sub(used);
        if left < self.per_input {
            Cap {
                bytes: left,
                job: Some(self.per_job),
            }
        } else {
            Cap {
                bytes: self.per_input,
                job: None,
            }
        }
    }
}

impl Cap {
    /// `None` when the per-input limit binds: each source says so in its own words.
    fn job_exceeded(&self, source: &str) -> Option<EngineError> {
        self.job.map(|budget| {
            EngineError::fatal(
                "inputs_too_large",
                format!("{source}: the job's inputs together are larger than {budget} bytes"),
            )
        })
    }
}

/// Fetches every input in order, each streamed to a temporary file; the first failure names
/// its URL and the reason. Files already written are removed when the result is dropped
/// (a failure, a cancelled attempt), or with the engine's inputs.
///
/// A URL is fetched once per job: its bytes are kept in the bucket at
/// `inputs/<client>/<job>/fetched-<n>` and later attempts read them from there. Every kept
/// input is added to `kept`, which the terminal event carries so the api records them as the
/// job's input assets (and retention removes them).
pub async fn fetch_inputs(
    guard: &GuardedClient,
    storage: &Storage,
    spec: &JobSpec,
    budget: Budget,
    kept: &mut Vec<Output>,
) -> Result<Vec<Input>, EngineError> {
    let mut fetched = Vec::with_capacity(spec.inputs.len());
    let mut used = 0;
    for (n, input) in spec.inputs.iter().enumerate() {
        let cap = budget.cap(used);
        let spooled = match &input.source {
            Some(Source::Url(url)) => {
                let key = format!("inputs/{}/{}/fetched-{n}", spec.client_id, spec.job_id);
                match try_read_object(storage, &key, url, cap).await? {
                    Some(spooled) => {
                        kept.extend(describe_kept(&key, url, &spooled));
                        spooled
                    }
                    None => {
                        let spooled = fetch_url(guard, url, cap).await?;
                        if let Some(record) = describe_kept(&key, url, &spooled) {
                            keep(storage, &key, &record, &spooled.input).await;
                            kept.push(record);
                        }
                        spooled
                    }
                }
            }
            Some(Source::S3Key(key)) => read_object(storage, key, key, cap).await?,
            None => return Err(EngineError::fatal("bad_input", "an input has no source")),
        };
        used += spooled.input.len();
        fetched.push(spooled.input);
    }
    Ok(fetched)
}

/// The record of a kept input; `None` for content that is no allowed media type (it is not
/// kept: the engine refuses it anyway). The dimensions come from the spooled head: a header
/// past it (a JPEG with more than 1 MiB of segments before its frame) records them as 0.
fn describe_kept(key: &str, url: &str, spooled: &Spooled) -> Option<Output> {
    let media = atelier_media::sniff(&spooled.head)?;
    let (width, height) = atelier_media::image_dimensions(media, &spooled.head).unwrap_or((0, 0));
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("input")
        .chars()
        .take(100)
        .collect();
    Some(Output {
        s3_key: key.to_owned(),
        content_type: media.mime().to_owned(),
        size: spooled.input.len(),
        sha256: spooled.sha256.clone(),
        width,
        height,
        name,
    })
}

/// Stores a fetched input for later attempts, streamed from its file; a failure only costs
/// a refetch.
async fn keep(storage: &Storage, key: &str, record: &Output, input: &Input) {
    let body = match input.path() {
        Some(path) => ByteStream::from_path(path).await.map_err(|e| e.to_string()),
        None => input
            .read()
            .await
            .map(ByteStream::from)
            .map_err(|e| e.to_string()),
    };
    let stored = match body {
        Ok(body) => storage
            .client
            .put_object()
            .bucket(&storage.bucket)
            .key(key)
            .content_type(&record.content_type)
            .body(body)
            .send()
            .await
            .map_err(|err| aws_sdk_s3::error::DisplayErrorContext(&err).to_string()),
        Err(err) => Err(err),
    };
    if let Err(error) = stored {
        tracing::warn!(key, %error, "fetched input not kept");
    }
}

/// Reads a kept input, or `None` when there is none yet.
async fn try_read_object(
    storage: &Storage,
    key: &str,
    url: &str,
    cap: Cap,
) -> Result<Option<Spooled>, EngineError> {
    match read_object(storage, key, url, cap).await {
        Ok(spooled) => Ok(Some(spooled)),
        Err(err) if err.code == "input_missing" => Ok(None),
        Err(err) => Err(err),
    }
}

async fn fetch_url(guard: &GuardedClient, url: &str, cap: Cap) -> Result<Spooled, EngineError> {
    let too_large = |err: &FetchError| match err {
        FetchError::TooLarge { .. } => cap.job_exceeded(url),
        _ => None,
    };
    let fail = |err: FetchError| too_large(&err).unwrap_or_else(|| classify_fetch(url, &err));
    let mut download = guard.open(url, cap.bytes).await.map_err(fail)?;
    let mut spool = Spool::create().map_err(spool_failed)?;
    while let Some(chunk) = download.chunk().await.map_err(fail)? {
        spool.write(&chunk).await.map_err(spool_failed)?;
    }
    spool.finish(url).await.map_err(spool_failed)
}

/// The worker's own disk (full, unwritable): not the job's fault, so worth another attempt.
fn spool_failed(err: std::io::Error) -> EngineError {
    EngineError::retryable(
        "input_spool_failed",
        format!("writing an input to a temporary file: {err}"),
    )
}

/// Refused destinations, bad URLs, 4xx and oversize inputs will not change on retry;
/// timeouts, connection failures and 5xx may.
pub fn classify_fetch(url: &str, err: &FetchError) -> EngineError {
    let message = format!("fetching {url} failed: {err}");
    if err.is_retryable() {
        EngineError::retryable("input_fetch_failed", message)
    } else if err.is_blocked() {
        EngineError::fatal("input_url_blocked", message)
    } else {
        EngineError::fatal("input_fetch_failed", message)
    }
}

/// Streams the object at `key` to a temporary file; `source` names the input in errors that
/// are the job's (its budget).
async fn read_object(
    storage: &Storage,
    key: &str,
    source: &str,
    cap: Cap,
) -> Result<Spooled, EngineError> {
    let object = storage
        .client
        .get_object()
        .bucket(&storage.bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| {
            let missing = err.as_service_error().is_some_and(|e| e.is_no_such_key());
            let message = format!(
                "reading stored input {key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            );
            if missing {
                EngineError::fatal("input_missing", message)
            } else {
                EngineError::retryable("storage_unavailable", message)
            }
        })?;
    let too_large = || {
        cap.job_exceeded(source).unwrap_or_else(|| {
            EngineError::fatal(
                "input_too_large",
                format!("stored input {key} is larger than {} bytes", cap.bytes),
            )
        })
    };
    if object.content_length().unwrap_or(0) as u64 > cap.bytes {
        return Err(too_large());
    }
    let unavailable = |err: &dyn std::fmt::Display| {
        EngineError::retryable(
            "storage_unavailable",
            format!("reading stored input {key}: {err}"),
        )
    };
    let mut body = object.body;
    let mut spool = Spool::create().map_err(spool_failed)?;
    while let Some(chunk) = body.try_next().await.map_err(|err| unavailable(&err))? {
        if spool.len() + chunk.len() as u64 > cap.bytes {
            return Err(too_large());
        }
        spool.write(&chunk).await.map_err(spool_failed)?;
    }
    spool.finish(key).await.map_err(spool_failed)
}

/// Uploads outputs under the attempt's prefix; a storage failure is retryable.
pub async fn upload_outputs(
    storage: &Storage,
    spec: &JobSpec,
    files: Vec<OutputFile>,
) -> Result<Vec<Output>, EngineError> {
    let mut outputs = Vec::with_capacity(files.len());
    for (n, file) in files.into_iter().enumerate() {
        let name = format!("{n}.{}", file.extension);
        let key = format!("{}{name}", spec.output_prefix);
        let sha256 = hex::encode(Sha256::digest(&file.bytes));
        let size = file.bytes.len() as u64;
        storage
            .client
            .put_object()
            .bucket(&storage.bucket)
            .key(&key)
            .content_type(&file.content_type)
            .body(ByteStream::from(Bytes::from(file.bytes)))
            .send()
            .await
            .map_err(|err| {
                EngineError::retryable(
                    "storage_unavailable",
                    format!(
                        "uploading {key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&err)
                    ),
                )
            })?;
        outputs.push(Output {
            s3_key: key,
            content_type: file.content_type,
            size,
            sha256,
            width: file.width,
            height: file.height,
            name: format!("{}-{name}", spec.job_id),
        });
    }
    Ok(outputs)
}

/// Deletes whatever this attempt uploaded (a cancelled attempt leaves nothing behind). Failures
/// are logged: the bucket's retention removes what is left.
pub async fn delete_outputs(storage: &Storage, spec: &JobSpec) {
    let listed = storage
        .client
        .list_objects_v2()
        .bucket(&storage.bucket)
        .prefix(&spec.output_prefix)
        .send()
        .await;
    let objects = match listed {
        Ok(listed) => listed.contents.unwrap_or_default(),
        Err(err) => {
            let error = aws_sdk_s3::error::DisplayErrorContext(&err);
            tracing::warn!(%error, "listing a cancelled attempt's outputs");
            return;
        }
    };
    for key in objects.into_iter().filter_map(|o| o.key) {
        let deleted = storage
            .client
            .delete_object()
            .bucket(&storage.bucket)
            .key(&key)
            .send()
            .await;
        if let Err(err) = deleted {
            let error = aws_sdk_s3::error::DisplayErrorContext(&err);
            tracing::warn!(%key, %error, "deleting a cancelled attempt's output");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_budget_binds_once_it_is_the_smaller() {
        let budget = Budget {
            per_input: 50,
            per_job: 120,
        };
        let first = budget.cap(0);
        assert_eq!((first.bytes, first.job), (50, None));
        assert!(
            first.job_exceeded("a").is_none(),
            "the per-input error is the source's"
        );
        let third = budget.cap(100);
        assert_eq!((third.bytes, third.job), (20, Some(120)));
        let err = third.job_exceeded("https://example.com/c.png").unwrap();
        assert_eq!(err.code, "inputs_too_large");
        assert!(!err.retryable, "the same job is as large on every attempt");
        assert!(
            err.message.starts_with("https://example.com/c.png: "),
            "{}",
            err.message
        );
        assert_eq!(budget.cap(130).bytes, 0);
    }
}
