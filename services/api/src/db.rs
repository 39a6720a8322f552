//! The PostgreSQL pool and the api's migrations.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// A pool sized explicitly; a session idle inside a transaction is killed by the server,
/// so a leaked transaction cannot hold locks forever.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<PgPool> {
    pool(options(url)?, size).await
}

/// The connection settings of `ATELIER_DATABASE_URL`; an error is a bad setting, not a
/// server that is down.
pub fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .context("ATELIER_DATABASE_URL is not a postgres url")?
        .options([("idle_in_transaction_session_timeout", "30s")]))
}

pub async fn pool(options: PgConnectOptions, size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to postgresql")
}

/// Applies the api's migrations; safe to run from several replicas at once
/// (sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("running api migrations")
}
