//! Retention: expired assets are marked deleted, then their objects removed; and, in the same
//! task, the orphan sweep reclaims what no live row accounts for, and the event feed is
//! trimmed to `ATELIER_EVENT_RETENTION`.

use anyhow::Context;
use aws_sdk_s3::error::DisplayErrorContext;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::orphans;
use crate::AppState;

const BATCH: i64 = 500;
const CONCURRENT_DELETES: usize = 8;

/// Expires assets and sweeps orphans every six reconcile intervals, until cancelled.
///
/// On cancel: stops between passes, or drops a pass's deletes in flight (their rows are
/// marked; the orphan sweep removes what is left). On error: logs; the next tick tries again.
/// Expiry needs no coordination between replicas (rows are claimed with `SKIP LOCKED`); the
/// orphan sweep runs on one replica at a time.
pub async fn retention(state: AppState, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(state.config.reconcile_interval * 6);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = orphans::Sweep::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {},
        }
        let passes = async {
            if let Err(err) = expire(&state).await {
                tracing::warn!(error = format!("{err:#}"), "retention pass failed");
            }
            if let Err(err) = sweep.tick(&state, &shutdown).await {
                tracing::warn!(error = format!("{err:#}"), "orphan sweep failed");
            }
            match crate::events::prune(&state.pool, state.config.event_retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "old feed events deleted"),
                Err(err) => tracing::warn!(error = %err, "feed retention failed"),
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = passes => {},
        }
    }
}

/// Marks a batch of expired assets deleted, then deletes their objects. Marking first means
/// no one is handed a link to an object about to vanish; a delete that fails leaves a marked
/// row whose object remains, which is an orphan the sweep reclaims. The first failed delete
/// ends the pass, so a hung S3 costs one call's timeout per tick, not one per asset.
async fn expire(state: &AppState) -> anyhow::Result<()> {
    let expired: Vec<(String, String)> = sqlx::query_as(
        "UPDATE assets SET deleted_at = now()
         WHERE id IN (SELECT id FROM assets WHERE deleted_at IS NULL AND expires_at < now()
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, s3_key",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await
    .context("marking expired assets deleted")?;
    let mut deletes = futures::stream::iter(expired)
        .map(|(id, key)| async move {
            let deleted = state
                .storage
                .client
                .delete_object()
                .bucket(&state.storage.bucket)
                .key(&key)
                .send()
                .await;
            (id, deleted)
        })
        .buffer_unordered(CONCURRENT_DELETES);
    while let Some((id, deleted)) = deletes.next().await {
        match deleted {
            Ok(_) => tracing::info!(asset.id = %id, "expired asset deleted"),
            Err(err) => anyhow::bail!(
                "deleting the object of expired asset {id} (left to the orphan sweep): {}",
                DisplayErrorContext(&err)
            ),
        }
    }
    Ok(())
}
