//! Inputs in and outputs out: URLs through the SSRF-guarded client, stored assets
//! straight from the bucket, outputs to `outputs/<client>/<job>/<attempt>/<n>.<ext>`.

use atelier_kit::storage::Storage;
use atelier_netguard::{FetchError, GuardedClient};
use atelier_proto::jobs::v1::{JobSpec, Output, input_ref::Source};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::engine::{EngineError, Input, OutputFile};

/// Fetches every input in order; the first failure names its URL and the reason.
///
/// A URL is fetched once per job: its bytes are kept in the bucket at
/// `inputs/<client>/<job>/fetched-<n>` and later attempts read them from there. Every kept
/// input is added to `kept`, which the terminal event carries so the api records them as the
/// job's input assets (and retention removes them).
pub async fn fetch_inputs(
    guard: &GuardedClient,
    storage: &Storage,
    spec: &JobSpec,
    max_bytes: u64,
    kept: &mut Vec<Output>,
) -> Result<Vec<Input>, EngineError> {
    let mut fetched = Vec::with_capacity(spec.inputs.len());
    for (n, input) in spec.inputs.iter().enumerate() {
        let input = match &input.source {
            Some(Source::Url(url)) => {
                let key = format!("inputs/{}/{}/fetched-{n}", spec.client_id, spec.job_id);
                match try_read_object(storage, &key, max_bytes).await? {
                    Some(bytes) => {
                        kept.extend(describe_kept(&key, url, &bytes));
                        Input {
                            bytes,
                            source: url.clone(),
                        }
                    }
                    None => {
                        let input = fetch_url(guard, url, max_bytes).await?;
                        if let Some(record) = describe_kept(&key, url, &input.bytes) {
                            keep(storage, &key, &record, input.bytes.clone()).await;
                            kept.push(record);
                        }
                        input
                    }
                }
            }
            Some(Source::S3Key(key)) => read_object(storage, key, max_bytes).await?,
            None => return Err(EngineError::fatal("bad_input", "an input has no source")),
        };
        fetched.push(input);
    }
    Ok(fetched)
}

/// The record of a kept input; `None` for content that is no allowed media type (it is not
/// kept: the engine refuses it anyway).
fn describe_kept(key: &str, url: &str, bytes: &[u8]) -> Option<Output> {
    let media = atelier_media::sniff(bytes)?;
    let (width, height) = atelier_media::image_dimensions(media, bytes).unwrap_or((0, 0));
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
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        width,
        height,
        name,
    })
}

/// Stores a fetched input for later attempts; a failure only costs a refetch.
async fn keep(storage: &Storage, key: &str, record: &Output, bytes: Bytes) {
    let stored = storage
        .client
        .put_object()
        .bucket(&storage.bucket)
        .key(key)
        .content_type(&record.content_type)
        .body(ByteStream::from(bytes))
        .send()
        .await;
    if let Err(err) = stored {
        tracing::warn!(key, error = %aws_sdk_s3::error::DisplayErrorContext(&err), "fetched input not kept");
    }
}

/// Reads a kept input, or `None` when there is none yet.
async fn try_read_object(
    storage: &Storage,
    key: &str,
    max_bytes: u64,
) -> Result<Option<Bytes>, EngineError> {
    match read_object(storage, key, max_bytes).await {
        Ok(input) => Ok(Some(input.bytes)),
        Err(err) if err.code == "input_missing" => Ok(None),
        Err(err) => Err(err),
    }
}

async fn fetch_url(guard: &GuardedClient, url: &str, max_bytes: u64) -> Result<Input, EngineError> {
    match guard.fetch(url, max_bytes).await {
        Ok(fetched) => Ok(Input {
            bytes: fetched.bytes,
            source: url.to_owned(),
        }),
        Err(err) => Err(classify_fetch(url, &err)),
    }
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

async fn read_object(storage: &Storage, key: &str, max_bytes: u64) -> Result<Input, EngineError> {
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
    if object.content_length().unwrap_or(0) as u64 > max_bytes {
        return Err(EngineError::fatal(
            "input_too_large",
            format!("stored input {key} is larger than {max_bytes} bytes"),
        ));
    }
    let bytes = object.body.collect().await.map_err(|err| {
        EngineError::retryable(
            "storage_unavailable",
            format!("reading stored input {key}: {err}"),
        )
    })?;
    Ok(Input {
        bytes: bytes.into_bytes(),
        source: key.to_owned(),
    })
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
