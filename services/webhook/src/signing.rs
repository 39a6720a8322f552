//! Webhook signatures, as pure functions: the seed's `X-Zhinian-Signature` (hex
//! HMAC-SHA256 of the raw body) and Standard Webhooks (`v1,` + base64 HMAC-SHA256 of
//! `id.timestamp.body`). One key signs both.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signing key. `whsec_<base64>` means the decoded bytes (as Standard Webhooks
/// receivers expect); any other string is used as its UTF-8 bytes.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    pub fn parse(secret: &str) -> anyhow::Result<Self> {
        let bytes = match secret.strip_prefix("whsec_") {
            Some(encoded) => STANDARD
                .decode(encoded)
                .map_err(|err| anyhow::anyhow!("whsec_ secret is not valid base64: {err}"))?,
            None => secret.as_bytes().to_vec(),
        };
        anyhow::ensure!(!bytes.is_empty(), "the webhook secret is empty");
        Ok(Self(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// `sha256=<hex>` over the raw body.
    pub fn zhinian_signature(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// `v1,<base64>` over `id.timestamp.body`.
    pub fn standard_signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = key.standard_signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn zhinian_signature_is_hex_hmac_sha256_of_the_body() {
        let key = SigningKey::parse("Jefe").unwrap();
        assert_eq!(
            key.zhinian_signature(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(SigningKey::parse("whsec_***").is_err());
        assert!(SigningKey::parse("").is_err());
    }
}
