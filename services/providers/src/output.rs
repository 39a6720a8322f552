//! What providers hand back, made safe to keep: base64 decoded under a size cap, URLs fetched
//! through the SSRF guard under a size cap, and every file named by its magic bytes, never by
//! what the provider claimed.

use atelier_media::gate::{self, ImageLimits};
use atelier_media::{Kind, MediaType};
use atelier_netguard::{FetchError, GuardedClient};
use atelier_worker::OutputFile;
use base64::Engine as _;
use bytes::Bytes;

use crate::error::{ErrorClass, ProviderError};
use crate::http::too_large;
use crate::provider::Provider;

/// One checked output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub bytes: Bytes,
    pub media: MediaType,
    /// From the header for images; 0 for video and audio (no demuxer here).
    pub width: u32,
    pub height: u32,
}

impl Artifact {
    /// The worker runtime's view, ready to upload.
    pub fn into_output_file(self) -> OutputFile {
        OutputFile {
            content_type: self.media.mime().to_owned(),
            extension: self.media.extension().to_owned(),
            width: self.width,
            height: self.height,
            bytes: self.bytes.to_vec(),
        }
    }
}

/// The images an image call returned. Fewer than `requested` is a partial success, to be
/// charged for what was delivered.
#[derive(Debug, Clone)]
pub struct Images {
    pub images: Vec<Artifact>,
    pub requested: u32,
    /// The provider's `usage` object, as reported.
    pub usage: Option<serde_json::Value>,
}

/// Decodes standard base64 (padding optional, whitespace tolerated), refusing before decoding
/// anything whose decoded size would pass the cap.
pub fn decode_base64(
    provider: Provider,
    encoded: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, ProviderError> {
    let encoded = encoded.trim();
    // A data URL is a base64 payload with a prefix; some relays send one.
    let encoded = match encoded.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => encoded,
    };
    // Line breaks (MIME-style base64) are dropped first, so the size check counts only data.
    let compact: String;
    let encoded = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = encoded
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        compact.as_str()
    } else {
        encoded
    };
    if encoded.len() / 4 * 3 > max_bytes.saturating_add(3) {
        return Err(too_large(provider, max_bytes));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(encoded)
        .map_err(|err| crate::http::malformed(provider, format!("base64: {err}")))?;
    if bytes.len() > max_bytes {
        return Err(too_large(provider, max_bytes));
    }
    Ok(bytes)
}

/// Accepts an image only if its magic bytes and header say PNG, JPEG or WebP of a sane size.
pub fn admit_image(
    provider: Provider,
    bytes: Vec<u8>,
    max_bytes: usize,
) -> Result<Artifact, ProviderError> {
    let limits = ImageLimits {
        max_bytes,
        ..ImageLimits::default()
    };
    let admitted = gate::admit_within(&bytes, &limits).map_err(|refusal| {
        crate::http::malformed(provider, format!("the output image was refused: {refusal}"))
    })?;
    Ok(Artifact {
        bytes: Bytes::from(bytes),
        media: admitted.media,
        width: admitted.width,
        height: admitted.height,
    })
}

/// Accepts a file whose magic bytes name a media type of the expected kind.
pub fn admit_media(
    provider: Provider,
    bytes: Vec<u8>,
    kind: Kind,
) -> Result<Artifact, ProviderError> {
    match atelier_media::sniff(&bytes) {
        Some(media) if media.kind() == kind => Ok(Artifact {
            bytes: Bytes::from(bytes),
            media,
            width: 0,
            height: 0,
        }),
        _ => Err(crate::http::malformed(
            provider,
            format!(
                "expected {} output, got {}",
                kind.as_str(),
                atelier_media::describe(&bytes)
            ),
        )),
    }
}

/// Fetches provider output URLs through the SSRF guard: a provider (or a relay) is not trusted
/// to point us only at its own storage.
#[derive(Debug, Clone)]
pub struct Downloader {
    guard: GuardedClient,
}

impl Downloader {
    pub fn new(guard: GuardedClient) -> Self {
        Self { guard }
    }

    pub async fn fetch(
        &self,
        provider: Provider,
        url: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, ProviderError> {
        let fetched = self
            .guard
            .fetch(url, max_bytes as u64)
            .await
            .map_err(|err| fetch_error(provider, &err, max_bytes))?;
        Ok(fetched.bytes.to_vec())
    }
}

fn fetch_error(provider: Provider, err: &FetchError, max_bytes: usize) -> ProviderError {
    let message = format!("fetching the output: {err}");
    match err {
        FetchError::TooLarge { .. } => too_large(provider, max_bytes),
        // An expired link (403/404/410 after the TTL) will not come back: the result is gone.
        FetchError::Status { status } if !err.is_retryable() => {
            ProviderError::new(provider, ErrorClass::ProviderUnavailable, message)
                .with_code("output_expired")
                .with_status(status.as_u16())
        }
        _ if err.is_retryable() => ProviderError::retryable(provider, message),
        _ => ProviderError::new(provider, ErrorClass::ProviderUnavailable, message)
            .with_code("output_blocked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_capped_before_decoding() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 300]);
        assert_eq!(
            decode_base64(Provider::OpenAi, &encoded, 300)
                .unwrap()
                .len(),
            300
        );
        let err = decode_base64(Provider::OpenAi, &encoded, 100).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("output_too_large"));
        let url = format!("data:image/png;base64,{encoded}");
        assert_eq!(
            decode_base64(Provider::OpenAi, &url, 300).unwrap().len(),
            300
        );
        let err = decode_base64(Provider::OpenAi, "!!!", 300).unwrap_err();
        assert!(err.is_retryable());
    }

    #[test]
    fn outputs_are_named_by_magic_bytes() {
        let err = admit_image(Provider::Gemini, b"<html>no</html>".to_vec(), 1000).unwrap_err();
        assert!(err.message.contains("html"), "{err}");
        let mp4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
        assert_eq!(
            admit_media(Provider::Ark, mp4.clone(), Kind::Video)
                .unwrap()
                .media,
            MediaType::Mp4
        );
        assert!(admit_media(Provider::Ark, mp4, Kind::Audio).is_err());
    }
}
