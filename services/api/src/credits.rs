//! Credits: prices, and the ledger operations every face shares. A charge is written in the
//! transaction that accepts its job; a refund in the transaction that commits the job's
//! failed, expired or cancelled state. Both are unique per job in the ledger, and the
//! balance only moves when a ledger row is actually inserted — so each happens at most once.

use std::collections::HashMap;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use utoipa::ToSchema;

/// `name=credits,...`, each price zero or more.
pub fn price_list(raw: &str) -> anyhow::Result<HashMap<String, i64>> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').context("expected name=credits")?;
            let value: i64 = value.trim().parse().with_context(|| format!("{pair:?}"))?;
            if value < 0 {
                bail!("{pair:?}: a price cannot be negative");
            }
            Ok((name.trim().to_owned(), value))
        })
        .collect()
}

/// Prices by model; video models are priced per second of output at a resolution.
#[derive(Clone, Debug)]
pub struct Prices {
    pub per_task: HashMap<String, i64>,
    pub video_per_second: HashMap<String, i64>,
}

impl Prices {
    /// `model=credits,...` and `resolution=credits-per-second,...`.
    pub fn parse(per_task: &str, video_per_second: &str) -> anyhow::Result<Self> {
        Ok(Self {
            per_task: price_list(per_task).context("ATELIER_MODEL_PRICES")?,
            video_per_second: price_list(video_per_second)
                .context("ATELIER_VIDEO_CREDITS_PER_SECOND")?,
        })
    }

    /// The price of one task, or `None` for a model without a price.
    pub fn price(&self, model: &str, video: Option<(u32, &str)>) -> Option<i64> {
        match video {
            Some((seconds, resolution)) => {
                let rate = self.video_per_second.get(resolution)?;
                Some(rate * i64::from(seconds))
            }
            None => self.per_task.get(model).copied(),
        }
    }
}

/// Why a charge was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error("insufficient credits: the task costs {price}, the balance is {balance}")]
    Insufficient { price: i64, balance: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Charges `amount` for `job` inside the accepting transaction.
pub async fn charge(
    tx: &mut Transaction<'_, Postgres>,
    client: &str,
    job: &str,
    amount: i64,
) -> Result<(), ChargeError> {
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE credit_accounts SET balance = balance - $2, updated_at = now()
         WHERE client_id = $1 AND balance >= $2 RETURNING balance",
    )
    .bind(client)
    .bind(amount)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(balance) = balance else {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE client_id = $1")
                .bind(client)
                .fetch_optional(&mut **tx)
                .await?;
        return Err(ChargeError::Insufficient {
            price: amount,
            balance: balance.unwrap_or(0),
        });
    };
    sqlx::query(
        "INSERT INTO credit_ledger (client_id, job_id, kind, amount, balance_after)
         VALUES ($1, $2, 'charge', $3, $4)",
    )
    .bind(client)
    .bind(job)
    .bind(-amount)
    .bind(balance)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Refunds a job's charge inside the transaction that ends it; a second call finds the
/// refund row already there and changes nothing.
pub async fn refund(tx: &mut Transaction<'_, Postgres>, job: &str) -> sqlx::Result<bool> {
    let charged: Option<(String, i64)> = sqlx::query_as(
        "SELECT client_id, -amount FROM credit_ledger WHERE job_id = $1 AND kind = 'charge'",
    )
    .bind(job)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((client, amount)) = charged else {
        return Ok(false);
    };
    // Lock the account first, so balance_after is computed from the balance we then move.
    sqlx::query("SELECT balance FROM credit_accounts WHERE client_id = $1 FOR UPDATE")
        .bind(&client)
        .fetch_optional(&mut **tx)
        .await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO credit_ledger (client_id, job_id, kind, amount, balance_after)
         VALUES ($1, $2, 'refund', $3,
                 (SELECT balance + $3 FROM credit_accounts WHERE client_id = $1))
         ON CONFLICT (job_id, kind) WHERE job_id IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(&client)
    .bind(job)
    .bind(amount)
    .fetch_optional(&mut **tx)
    .await?;
    if inserted.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE credit_accounts SET balance = balance + $2, updated_at = now() WHERE client_id = $1",
    )
    .bind(&client)
    .bind(amount)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// Adds credits to a client (the admin command).
pub async fn grant(pool: &PgPool, client: &str, amount: i64, note: &str) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let balance = add_grant(&mut tx, client, amount, note).await?;
    tx.commit().await?;
    Ok(balance)
}

/// Grants `amount` to `client` unless a grant with this `note` was ever made to it: start-up
/// grants (`ATELIER_BOOTSTRAP_CREDITS`) happen once per client, however many replicas start.
pub async fn grant_once(
    pool: &PgPool,
    client: &str,
    amount: i64,
    note: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('atelier.grant_once'))")
        .execute(&mut *tx)
        .await?;
    let granted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM credit_ledger
                        WHERE client_id = $1 AND kind = 'grant' AND note = $2)",
    )
    .bind(client)
    .bind(note)
    .fetch_one(&mut *tx)
    .await?;
    if granted {
        return Ok(false);
    }
    add_grant(&mut tx, client, amount, note).await?;
    tx.commit().await?;
    Ok(true)
}

/// The balance and the ledger row of a grant; returns the new balance.
async fn add_grant(
    tx: &mut Transaction<'_, Postgres>,
    client: &str,
    amount: i64,
    note: &str,
) -> sqlx::Result<i64> {
    let balance: i64 = sqlx::query_scalar(
        "INSERT INTO credit_accounts (client_id, balance) VALUES ($1, $2)
         ON CONFLICT (client_id) DO UPDATE
             SET balance = credit_accounts.balance + $2, updated_at = now()
         RETURNING balance",
    )
    .bind(client)
    .bind(amount)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO credit_ledger (client_id, kind, amount, balance_after, note)
         VALUES ($1, 'grant', $2, $3, $4)",
    )
    .bind(client)
    .bind(amount)
    .bind(balance)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(balance)
}

#[derive(Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// `grant`, `charge` or `refund`.
    pub kind: String,
    /// Signed: charges are negative.
    pub amount: i64,
    pub balance_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Credits {
    pub balance: i64,
    /// The most recent entries, newest first.
    pub entries: Vec<LedgerEntry>,
}

pub async fn statement(pool: &PgPool, client: &str, limit: i64) -> sqlx::Result<Credits> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance FROM credit_accounts WHERE client_id = $1")
            .bind(client)
            .fetch_optional(pool)
            .await?;
    let entries = sqlx::query_as(
        "SELECT kind, amount, balance_after, job_id, note, created_at FROM credit_ledger
         WHERE client_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(client)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(Credits {
        balance: balance.unwrap_or(0),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_price_video_by_duration_and_resolution() {
        let prices =
            Prices::parse("gpt-image-2=15, nano-banana-2=10", "480p=2,720p=3,1080p=5").unwrap();
        assert_eq!(prices.price("gpt-image-2", None), Some(15));
        assert_eq!(prices.price("seedance-2", Some((5, "720p"))), Some(15));
        assert_eq!(prices.price("seedance-2", Some((10, "1080p"))), Some(50));
        assert_eq!(prices.price("unknown", None), None);
        assert!(Prices::parse("a=-1", "").is_err());
        assert!(Prices::parse("a", "").is_err());
    }
}
