//! API keys: random `sk-` keys stored only as SHA-256, looked up by hash, accepted from
//! any of the three faces' headers. Keys in query strings are never read.

use atelier_kit::{config::Secret, ids::ClientId};
use axum::{extract::FromRequestParts, http::request::Parts};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::{AppState, error::ApiError};

/// The authenticated partner behind a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub client: ClientId,
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A new key: `sk-` and 32 random bytes, URL-safe base64.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Whether an installed key can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Live,
    /// Revoked earlier (`atelier keys revoke`): installing it again does not bring it back.
    Revoked,
}

/// Stores a key's hash for a client; storing the same key again changes nothing. A revoked
/// key stays revoked: `ATELIER_API_KEYS` is installed at every start, and a leaked key an
/// operator revoked must not come back with the next deploy (issue #14, M4).
pub async fn install_key(
    pool: &PgPool,
    client: &ClientId,
    key: &Secret,
    label: &str,
) -> sqlx::Result<KeyState> {
    let revoked: bool = sqlx::query_scalar(
        "INSERT INTO api_keys (key_hash, client_id, label) VALUES ($1, $2, $3)
         ON CONFLICT (key_hash) DO UPDATE SET client_id = EXCLUDED.client_id
         RETURNING revoked_at IS NOT NULL",
    )
    .bind(hash_key(key.expose()))
    .bind(client.as_str())
    .bind(label)
    .fetch_one(pool)
    .await?;
    Ok(if revoked {
        KeyState::Revoked
    } else {
        KeyState::Live
    })
}

/// Marks every key of a client revoked; returns how many were live.
pub async fn revoke_client_keys(pool: &PgPool, client: &ClientId) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE client_id = $1 AND revoked_at IS NULL",
    )
    .bind(client.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The key a request presents, from whichever supported header carries it.
fn presented_key(parts: &Parts) -> Option<&str> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // Only a Bearer `Authorization` is ours: another scheme (a proxy's Basic auth in front of
    // the api) must not hide the key a partner sends in its face's own header.
    let bearer = header("authorization").and_then(|auth| {
        let (scheme, token) = auth.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    });
    bearer
        .or_else(|| header("x-zhinian-api-key"))
        .or_else(|| header("x-kgp-api-key"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(parts).ok_or(ApiError::Unauthorized("Missing API key."))?;
        let client: Option<String> = sqlx::query_scalar(
            "SELECT client_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash_key(key))
        .fetch_optional(&state.pool)
        .await?;
        let client = client.ok_or(ApiError::Unauthorized("Invalid API key."))?;
        Ok(Caller {
            client: ClientId::from_trusted(client),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri("/api/v1/jobs?api_key=sk-query");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn keys_are_read_from_every_supported_header_and_never_the_query() {
        assert_eq!(
            presented_key(&parts(&[("Authorization", "Bearer sk-a")])),
            Some("sk-a")
        );
        assert_eq!(
            presented_key(&parts(&[("authorization", "bearer  sk-a ")])),
            Some("sk-a")
        );
        assert_eq!(
            presented_key(&parts(&[("X-Zhinian-Api-Key", "sk-b")])),
            Some("sk-b")
        );
        assert_eq!(
            presented_key(&parts(&[("X-KGP-Api-Key", "sk-c")])),
            Some("sk-c")
        );
        assert_eq!(
            presented_key(&parts(&[("Authorization", "Basic abc")])),
            None
        );
        assert_eq!(presented_key(&parts(&[])), None);
    }

    /// L8 (issue #14): a proxy's Basic auth in front of the api used to hide the face's own
    /// key header, so the partner got a 401.
    #[test]
    fn another_authorization_scheme_does_not_hide_the_face_headers() {
        assert_eq!(
            presented_key(&parts(&[
                ("Authorization", "Basic cHJveHk6cHc="),
                ("X-KGP-Api-Key", "sk-c")
            ])),
            Some("sk-c")
        );
        assert_eq!(
            presented_key(&parts(&[
                ("Authorization", "Basic cHJveHk6cHc="),
                ("X-Zhinian-Api-Key", "sk-b")
            ])),
            Some("sk-b")
        );
        // A Bearer key still wins over the others, as before.
        assert_eq!(
            presented_key(&parts(&[
                ("Authorization", "Bearer sk-a"),
                ("X-KGP-Api-Key", "sk-c")
            ])),
            Some("sk-a")
        );
    }

    #[test]
    fn generated_keys_are_prefixed_and_distinct() {
        let (a, b) = (generate_key(), generate_key());
        assert!(a.starts_with("sk-") && a.len() > 40);
        assert_ne!(a, b);
        assert_eq!(hash_key(&a).len(), 32);
    }
}
