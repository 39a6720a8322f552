//! An independent check of webhook signatures, written from the two specifications
//! rather than shared with the webhook-service, so a bug there cannot hide here.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Zhinian-Signature: sha256=<hex>` over the raw body.
pub fn zhinian(key: &[u8], body: &[u8], header: &str) -> bool {
    header == format!("sha256={}", hex::encode(hmac(key, &[body])))
}

/// Standard Webhooks: any of the space-separated `v1,<b64>` signatures over
/// `id.timestamp.body` matches.
pub fn standard(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let expected = STANDARD.encode(hmac(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    ));
    header
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .any(|sig| !sig.is_empty() && sig == expected)
}
