//! Whether the platform has settled after the faults, read the way the checker reads: every
//! job ended, the outbox and the webhook deliveries drained, the work queues empty, and no
//! output object left without its row.

use std::collections::HashSet;

use super::checker::Views;

/// Whether the platform has settled: every job ended, the outbox and webhook intake drained,
/// every delivery decided, every stream empty and no output object left unaccounted for.
/// Answers what is still unsettled, empty when nothing is.
pub async fn unsettled(views: &Views<'_>) -> anyhow::Result<Vec<String>> {
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE status NOT IN
                    ('succeeded', 'failed', 'cancelled', 'expired')),
                (SELECT count(*) FROM outbox WHERE published_at IS NULL),
                (SELECT count(*) FROM webhook.deliveries WHERE status = 'pending')",
    )
    .fetch_one(views.pool)
    .await?;
    let mut waiting = Vec::new();
    if counts.0 > 0 {
        waiting.push(format!("{} jobs not ended", counts.0));
    }
    if counts.1 > 0 {
        waiting.push(format!("{} outbox rows unpublished", counts.1));
    }
    if counts.2 > 0 {
        waiting.push(format!("{} webhook deliveries pending", counts.2));
    }
    let left = stream_leftovers(views).await?;
    if !left.is_empty() {
        waiting.push(format!("{} messages in work queues", left.len()));
    }
    let orphans = orphan_objects(views).await?;
    if !orphans.is_empty() {
        waiting.push(format!("{} output objects without a row", orphans.len()));
    }
    Ok(waiting)
}

/// Messages still in a work queue (not acknowledged), by `Nats-Msg-Id`.
pub(super) async fn stream_leftovers(views: &Views<'_>) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for name in &views.streams {
        let mut stream = views.jetstream.get_stream(name).await?;
        let state = stream.info().await?.state.clone();
        if state.messages == 0 {
            continue;
        }
        for seq in state.first_sequence..=state.last_sequence {
            // Only the message at this very sequence: a deleted one is not counted again
            // under a neighbour's number.
            if let Ok(message) = stream.get_raw_message(seq).await
                && message.sequence == seq
            {
                let id = message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_else(|| format!("{name}#{seq}"));
                left.push(format!("{name}: {id}"));
            }
        }
    }
    Ok(left)
}

/// Output objects in the bucket that no live asset row accounts for.
async fn orphan_objects(views: &Views<'_>) -> anyhow::Result<Vec<String>> {
    let keys = output_objects(views).await?;
    let live: HashSet<String> = sqlx::query_scalar(
        "SELECT s3_key FROM assets WHERE role = 'output' AND deleted_at IS NULL",
    )
    .fetch_all(views.pool)
    .await?
    .into_iter()
    .collect();
    Ok(keys
        .into_iter()
        .filter(|(k, _)| !live.contains(k))
        .map(|(k, _)| k)
        .collect())
}

/// Every object under `outputs/`, with its size.
pub(super) async fn output_objects(views: &Views<'_>) -> anyhow::Result<Vec<(String, i64)>> {
    let mut pages = views
        .storage
        .client
        .list_objects_v2()
        .bucket(&views.storage.bucket)
        .prefix("outputs/")
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            if let Some(key) = object.key() {
                keys.push((key.to_owned(), object.size().unwrap_or(-1)));
            }
        }
    }
    Ok(keys)
}
