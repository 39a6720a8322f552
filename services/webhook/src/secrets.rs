//! Per-client signing secrets: created on first read, rotated on request with an overlap in
//! which the old secret still signs. A client without one is signed with the deployment's
//! `ATELIER_WEBHOOK_SECRET`.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::PgPool;

use crate::signing::SigningKey;

/// `whsec_` + base64 of 32 random bytes, as Standard Webhooks receivers expect.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The live secret and, during an overlap, the one it replaced.
#[derive(Clone, Debug)]
pub struct ClientSecrets {
    pub current: String,
    pub previous: Option<(String, DateTime<Utc>)>,
}

/// The live secret and the newest still-signing retired one, in one query (it runs for
/// every delivery attempt).
async fn load(db: impl sqlx::PgExecutor<'_>, client: &str) -> sqlx::Result<Option<ClientSecrets>> {
    /// Secret, retired at, signs until.
    type Row = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT secret, retired_at, expires_at FROM webhook.secrets
         WHERE client_id = $1 AND (retired_at IS NULL OR expires_at > now())
         ORDER BY retired_at DESC NULLS FIRST LIMIT 2",
    )
    .bind(client)
    .fetch_all(db)
    .await?;
    let mut rows = rows.into_iter();
    let Some((current, None, _)) = rows.next() else {
        return Ok(None);
    };
    let previous = rows
        .next()
        .and_then(|(secret, _, expires)| Some((secret, expires?)));
    Ok(Some(ClientSecrets { current, previous }))
}

/// Serializes every change to one client's secrets until the transaction ends: without it,
/// two rotations both retire the live row and both insert, and the second insert violates
/// `secrets_one_live_per_client` (a 500 for the partner). Keyed by a hash of the client id:
/// two clients that share a hash only wait for each other, never see each other's rows.
async fn lock_client(tx: &mut sqlx::PgConnection, client: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('webhook.secrets:' || $1, 0))")
        .bind(client)
        .execute(tx)
        .await
        .map(|_| ())
}

/// Reads a client's secrets, creating its first secret if it has none.
pub async fn read(pool: &PgPool, client: &str) -> sqlx::Result<ClientSecrets> {
    if let Some(secrets) = load(pool, client).await? {
        return Ok(secrets);
    }
    let mut tx = pool.begin().await?;
    lock_client(&mut tx, client).await?;
    // Another reader or a rotation may have made one while this one waited for the lock.
    sqlx::query(
        "INSERT INTO webhook.secrets (client_id, secret) VALUES ($1, $2)
         ON CONFLICT (client_id) WHERE retired_at IS NULL DO NOTHING",
    )
    .bind(client)
    .bind(generate())
    .execute(&mut *tx)
    .await?;
    let secrets = load(&mut *tx, client).await?;
    tx.commit().await?;
    // A live secret was just ensured under the lock.
    secrets.ok_or(sqlx::Error::RowNotFound)
}

/// Replaces the live secret (or makes the first); the old one keeps signing for `overlap`.
/// Concurrent rotations of one client run one after the other, each retiring the one before.
pub async fn rotate(pool: &PgPool, client: &str, overlap: Duration) -> sqlx::Result<ClientSecrets> {
    let mut tx = pool.begin().await?;
    lock_client(&mut tx, client).await?;
    sqlx::query(
        // The statement's time, not the transaction's: taken after the lock, so rotations that
        // waited for each other retire in the order they ran and the newest retired signs.
        "UPDATE webhook.secrets
         SET retired_at = statement_timestamp(), expires_at = statement_timestamp() + $2
         WHERE client_id = $1 AND retired_at IS NULL",
    )
    .bind(client)
    .bind(overlap)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO webhook.secrets (client_id, secret) VALUES ($1, $2)")
        .bind(client)
        .bind(generate())
        .execute(&mut *tx)
        .await?;
    // What this rotation made, even if another one follows as soon as it commits.
    let secrets = load(&mut *tx, client).await?;
    tx.commit().await?;
    secrets.ok_or(sqlx::Error::RowNotFound)
}

/// The keys that sign a client's deliveries now: its live secret first, then the previous
/// one during an overlap; the deployment secret for a client without its own.
pub async fn signing_keys(
    pool: &PgPool,
    client: &str,
    fallback: Option<&SigningKey>,
) -> anyhow::Result<Vec<SigningKey>> {
    match load(pool, client).await? {
        Some(secrets) => {
            let mut keys = vec![SigningKey::parse(&secrets.current)?];
            if let Some((previous, _)) = &secrets.previous {
                keys.push(SigningKey::parse(previous)?);
            }
            Ok(keys)
        }
        None => match fallback {
            Some(key) => Ok(vec![key.clone()]),
            // Never unsigned: without a deployment secret the client gets its own.
            None => Ok(vec![SigningKey::parse(&read(pool, client).await?.current)?]),
        },
    }
}
