//! Gauges read from PostgreSQL for `/metrics`: the outbox backlog, the age of the oldest queued
//! job per capability, and the connection pool. Every api replica samples them (the values are
//! the same everywhere; the alert rules take the max). The same tick deletes outbox rows
//! published over an hour ago, which nothing reads again.

use atelier_kit::metrics::{SAMPLE_EVERY, metrics};
use std::collections::HashSet;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A client's jobs of one capability in one status: the labels of `atelier_client_jobs`.
type ClientCount = (String, String, String);

/// Samples until cancelled. On error: keeps the last values and tries again next tick.
pub async fn sample(pool: PgPool, max_connections: u32, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    let mut seen = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {},
        }
        metrics().db_pool("api", pool.size(), pool.num_idle(), max_connections);
        if let Err(err) = sample_database(&pool).await {
            tracing::debug!(error = %err, "gauges not sampled");
        }
        if let Err(err) = sample_clients(&pool, &mut seen).await {
            tracing::debug!(error = %err, "client gauges not sampled");
        }
    }
}

async fn sample_database(pool: &PgPool) -> sqlx::Result<()> {
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    metrics().outbox_pending(pending);
    let oldest: Vec<(String, i64)> = sqlx::query_as(
        "SELECT capability, extract(epoch FROM now() - min(created_at))::bigint
         FROM jobs WHERE status = 'queued' GROUP BY capability",
    )
    .fetch_all(pool)
    .await?;
    for capability in atelier_kit::nats::CAPABILITIES {
        let age = oldest
            .iter()
            .find(|(c, _)| c == capability)
            .map_or(0, |(_, age)| *age);
        metrics().queued_oldest(capability, age);
    }
    sqlx::query(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE published_at < now() - interval '1 hour' LIMIT 1000)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Queued and running jobs per client and capability (issue #16). A count that fell to
/// nothing since the last tick is set to 0, not left at its last value.
async fn sample_clients(pool: &PgPool, seen: &mut HashSet<ClientCount>) -> sqlx::Result<()> {
    let counts: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT client_id, capability, status, count(*) FROM jobs
         WHERE status IN ('queued', 'running') GROUP BY client_id, capability, status",
    )
    .fetch_all(pool)
    .await?;
    let mut now = HashSet::new();
    for (client, capability, status, count) in counts {
        metrics().client_jobs(&client, &capability, &status, count);
        now.insert((client, capability, status));
    }
    for (client, capability, status) in seen.difference(&now) {
        metrics().client_jobs(client, capability, status, 0);
    }
    *seen = now;
    Ok(())
}
