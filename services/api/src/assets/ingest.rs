//! Streaming a file into the bucket: the type from the magic bytes, image dimensions from
//! the header, the size cap and the SHA-256 — all decided while the bytes stream through,
//! with at most one multipart part (8 MiB) in memory. Nothing reaches S3 before the type
//! and (for images) the dimensions are accepted, and a refused or broken upload leaves no
//! object behind.

use atelier_kit::storage::Storage;
use atelier_media::{Kind, MediaType};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

/// S3's minimum part size is 5 MiB; 8 MiB keeps the part count low for large files.
const PART: usize = 8 * 1024 * 1024;
/// How far into a file an image header (e.g. a JPEG frame header after EXIF) may sit.
const HEAD_MAX: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct IngestLimits {
    pub max_bytes: u64,
    pub max_dimension: u32,
    pub max_pixels: u64,
}

/// What was stored.
#[derive(Clone, Debug)]
pub struct Stored {
    pub key: String,
    pub media: MediaType,
    pub size: u64,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The content itself is refused (type, dimensions, malformed header).
    #[error("{0}")]
    Refused(String),
    #[error("the file is larger than the {0} byte limit")]
    TooLarge(u64),
    /// The bytes could not be read from their source (client hung up, fetch failed).
    #[error("{0}")]
    Source(String),
    #[error("storage error")]
    Storage(#[source] anyhow::Error),
}

/// A type accepted from the first bytes, with an image's header dimensions.
type Accepted = (MediaType, Option<(u32, u32)>);

/// Decides from the first bytes; `Ok(None)` while more are needed.
fn judge(
    head: &[u8],
    complete: bool,
    limits: &IngestLimits,
) -> Result<Option<Accepted>, IngestError> {
    if head.len() < atelier_media::SNIFF_LEN && !complete {
        return Ok(None);
    }
    let media = atelier_media::sniff(head).ok_or_else(|| {
        IngestError::Refused(format!(
            "unsupported content: {} (allowed: images, videos and audio by their magic bytes)",
            atelier_media::describe(head)
        ))
    })?;
    if !matches!(media.kind(), Kind::Image) {
        return Ok(Some((media, None)));
    }
    let Some((width, height)) = atelier_media::image_dimensions(media, head) else {
        if complete || head.len() >= HEAD_MAX {
            return Err(IngestError::Refused(format!(
                "the {} header is truncated or malformed",
                media.extension()
            )));
        }
        return Ok(None);
    };
    if width == 0 || height == 0 {
        return Err(IngestError::Refused(
            "the image declares a zero dimension".into(),
        ));
    }
    if width.max(height) > limits.max_dimension
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(IngestError::Refused(format!(
            "the image declares {width}x{height}; the limits are {} pixels per side and {} pixels in all",
            limits.max_dimension, limits.max_pixels
        )));
    }
    Ok(Some((media, Some((width, height)))))
}

fn storage_error<E>(what: &'static str) -> impl FnOnce(E) -> IngestError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |err| IngestError::Storage(anyhow::Error::new(err).context(what))
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

/// A multipart upload begun and not yet completed. Dropped while it holds one — the ingest's
/// future dropped mid-way (a server shutting down, any cancellation), where no error path
/// runs — it spawns the abort, since a drop cannot wait; the task is detached, bounded by the
/// S3 client's timeouts. An abort that never runs leaves the upload to the orphan sweep.
struct Unfinished<'a> {
    storage: &'a Storage,
    key: &'a str,
    multipart: Option<Multipart>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let Some(upload) = self.multipart.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (storage, key) = (self.storage.clone(), self.key.to_owned());
        runtime.spawn(async move { abort(&storage, &key, &upload.upload_id).await });
    }
}

async fn abort(storage: &Storage, key: &str, upload_id: &str) {
    let aborted = storage
        .client
        .abort_multipart_upload()
        .bucket(&storage.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(err) = aborted {
        let error = aws_sdk_s3::error::DisplayErrorContext(&err);
        tracing::warn!(%key, %error, "multipart upload not aborted; left to the orphan sweep");
    }
}

/// Streams `chunks` to `key`. On any error, or if this future is dropped, the multipart
/// upload is aborted.
pub async fn ingest<S, E>(
    storage: &Storage,
    key: &str,
    chunks: S,
    limits: &IngestLimits,
) -> Result<Stored, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut unfinished = Unfinished {
        storage,
        key,
        multipart: None,
    };
    let result = stream_to(storage, key, chunks, limits, &mut unfinished.multipart).await;
    match &result {
        // Completed: nothing to abort.
        Ok(_) => unfinished.multipart = None,
        Err(_) => {
            if let Some(upload) = &unfinished.multipart {
                abort(storage, key, &upload.upload_id).await;
            }
            unfinished.multipart = None;
        }
    }
    result
}

async fn stream_to<S, E>(
    storage: &Storage,
    key: &str,
    mut chunks: S,
    limits: &IngestLimits,
    multipart: &mut Option<Multipart>,
) -> Result<Stored, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut head: Vec<u8> = Vec::new();
    let mut part: Vec<u8> = Vec::new();
    let mut accepted = None;
    let mut judged_at = 0usize;
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    loop {
        let chunk = match chunks.next().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(err)) => return Err(IngestError::Source(err.to_string())),
            None => None,
        };
        if let Some(chunk) = &chunk {
            size += chunk.len() as u64;
            if size > limits.max_bytes {
                return Err(IngestError::TooLarge(limits.max_bytes));
            }
            hasher.update(chunk);
            if head.len() < HEAD_MAX {
                let room = HEAD_MAX - head.len();
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            part.extend_from_slice(chunk);
        }
        if accepted.is_none() {
            let complete = chunk.is_none();
            // Judge once the first bytes are in, then only every further 4 KiB of header
            // (or at the end), so a stream of tiny chunks cannot make the walk quadratic.
            let due = judged_at == 0 || head.len() >= judged_at + 4096 || head.len() >= HEAD_MAX;
            if complete || (due && head.len() >= atelier_media::SNIFF_LEN) {
                judged_at = head.len();
                accepted = judge(&head, complete, limits)?;
            }
        }
        if let Some((media, _)) = accepted
            && part.len() >= PART
        {
            upload_part(storage, key, media, multipart, std::mem::take(&mut part)).await?;
        }
        if chunk.is_none() {
            break;
        }
    }
    let Some((media, dimensions)) = accepted else {
        return Err(IngestError::Refused("empty file".into()));
    };
    match multipart.as_mut() {
        None => {
            storage
                .client
                .put_object()
                .bucket(&storage.bucket)
                .key(key)
                .content_type(media.mime())
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|err| {
                    IngestError::Storage(anyhow::Error::new(err).context("put_object"))
                })?;
        }
        Some(_) => {
            if !part.is_empty() {
                upload_part(storage, key, media, multipart, part).await?;
            }
            let upload = multipart
                .as_ref()
                .ok_or_else(|| IngestError::Storage(anyhow::anyhow!("multipart state lost")))?;
            storage
                .client
                .complete_multipart_upload()
                .bucket(&storage.bucket)
                .key(key)
                .upload_id(&upload.upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(upload.parts.clone()))
                        .build(),
                )
                .send()
                .await
                .map_err(|err| {
                    IngestError::Storage(
                        anyhow::Error::new(err).context("complete_multipart_upload"),
                    )
                })?;
        }
    }
    Ok(Stored {
        key: key.to_owned(),
        media,
        size,
        sha256: hex::encode(hasher.finalize()),
        width: dimensions.map(|d| d.0),
        height: dimensions.map(|d| d.1),
    })
}

async fn upload_part(
    storage: &Storage,
    key: &str,
    media: MediaType,
    multipart: &mut Option<Multipart>,
    bytes: Vec<u8>,
) -> Result<(), IngestError> {
    if multipart.is_none() {
        let created = storage
            .client
            .create_multipart_upload()
            .bucket(&storage.bucket)
            .key(key)
            .content_type(media.mime())
            .send()
            .await
            .map_err(storage_error("create_multipart_upload"))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| IngestError::Storage(anyhow::anyhow!("no upload id")))?
            .to_owned();
        *multipart = Some(Multipart {
            upload_id,
            parts: Vec::new(),
        });
    }
    let Some(upload) = multipart.as_mut() else {
        return Err(IngestError::Storage(anyhow::anyhow!(
            "multipart state lost"
        )));
    };
    let number = upload.parts.len() as i32 + 1;
    let done = storage
        .client
        .upload_part()
        .bucket(&storage.bucket)
        .key(key)
        .upload_id(&upload.upload_id)
        .part_number(number)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(storage_error("upload_part"))?;
    upload.parts.push(
        CompletedPart::builder()
            .part_number(number)
            .set_e_tag(done.e_tag().map(str::to_owned))
            .build(),
    );
    Ok(())
}
