//! The event feed (issue #17): a client's job events in commit order, read from a cursor
//! (`GET /api/v1/events`) or followed live (`GET /api/v1/events/stream`, Server-Sent Events).
//!
//! PostgreSQL holds the feed (`job_events`, written by a trigger on `jobs` in the transaction
//! of every change, and by the projector for webhook attempts), so a partner that missed its
//! webhooks catches up exactly, from any api replica. Each replica runs one [`Pump`] that
//! notices new rows and wakes the streams of the clients they belong to; a stream then reads
//! its own client's rows from its own cursor, the same read as a catch-up, so a stream and a
//! catch-up can never disagree. Why not `LISTEN`/`NOTIFY` or NATS: docs/decisions.md.

mod pump;
pub mod routes;

use std::{fmt, str::FromStr, time::Duration};

use atelier_proto::jobs::v1::WebhookAttempt;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

pub use pump::Pump;

/// A place in the feed: the writing transaction and the row. The feed is ordered by both; a
/// cursor names the last event read (`0-0`, or no cursor, is the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    tx: u64,
    id: i64,
}

impl Cursor {
    /// A row's place, from its `tx::text` (an xid8's text is always its number) and id.
    fn at(tx: &str, id: i64) -> Self {
        Self {
            tx: tx.parse().unwrap_or_default(),
            id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.tx, self.id)
    }
}

/// What `after` and `Last-Event-ID` accept: nothing (the start), `now`, or a cursor.
pub const CURSOR_PATTERN: &str = "^(now|[0-9]{1,19}-[0-9]{1,18})?$";

impl FromStr for Cursor {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        let (tx, id) = raw.split_once('-').ok_or(())?;
        // As many digits as always fit (CURSOR_PATTERN says the same).
        let digits = |s: &str, most: usize| {
            (1..=most).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(tx, 19) || !digits(id, 18) {
            return Err(());
        }
        Ok(Self {
            tx: tx.parse().map_err(|_| ())?,
            id: id.parse().map_err(|_| ())?,
        })
    }
}

/// One event of a job, as the feed and the stream show it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event's cursor: give it as `after` (or `Last-Event-ID`) to read what follows.
    pub id: String,
    /// `job.created`, `job.running`, `job.progress`, `job.queued` (a retry or a requeue),
    /// `job.succeeded`, `job.failed`, `job.expired`, `job.cancelled` or `webhook.attempt`.
    #[serde(rename = "type")]
    pub kind: String,
    pub job_id: String,
    /// When the change was written.
    pub at: DateTime<Utc>,
    /// The job as the change left it: `status`, `capability`, `progressPct`, `currentStep`,
    /// `attempt`, and `error` (`code`, `message`) while it has one; on `webhook.attempt`, a
    /// `webhook` object (`eventId`, `attempt`, `statusCode` when an answer came, `latencyMs`,
    /// `error`, `outcome`). A terminal event does not carry outputs: read the job.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub data: Value,
}

/// What a read from a cursor returns.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub events: Vec<Event>,
    /// The cursor to read from next: the last event's, or the one given when none followed.
    pub next: String,
    /// More events follow at once (the page was full).
    pub has_more: bool,
}

type EventRow = (String, i64, String, String, Value, DateTime<Utc>);

/// Rows whose transaction is below this statement's snapshot xmin: every transaction that
/// could still commit an earlier row has ended, so nothing can appear behind the cursor.
const SETTLED: &str = "tx < pg_snapshot_xmin(pg_current_snapshot())";

/// Up to `limit` of `client`'s events after `after`, in order.
pub async fn read(
    pool: &PgPool,
    client: &str,
    after: Cursor,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tx::text, id, job_id, type, data, at FROM job_events
         WHERE client_id = $1 AND (tx, id) > ($2::text::xid8, $3) AND {SETTLED}
         ORDER BY tx, id LIMIT $4"
    )))
    .bind(client)
    .bind(after.tx.to_string())
    .bind(after.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(event).collect())
}

/// The last settled event of `client` (of every client when `None`): reading after it gives
/// only what happens from now on. Any row not yet settled has a transaction id at or above the
/// snapshot's xmin, above this one's.
pub async fn head(pool: &PgPool, client: Option<&str>) -> sqlx::Result<Cursor> {
    let whose = if client.is_some() {
        "client_id = $1 AND"
    } else {
        ""
    };
    let query = format!(
        "SELECT tx::text, id FROM job_events WHERE {whose} {SETTLED}
         ORDER BY tx DESC, id DESC LIMIT 1"
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(query));
    if let Some(client) = client {
        query = query.bind(client);
    }
    let row: Option<(String, i64)> = query.fetch_optional(pool).await?;
    Ok(row.map_or_else(Cursor::default, |(tx, id)| Cursor::at(&tx, id)))
}

fn event((tx, id, job_id, kind, data, at): EventRow) -> Event {
    let cursor = Cursor::at(&tx, id);
    Event {
        id: cursor.to_string(),
        kind,
        job_id,
        at,
        data,
    }
}

/// Records a webhook attempt reported by the webhook-service, once (a report may come twice).
/// The client is the job's, never the message's.
pub async fn record_attempt(
    pool: &PgPool,
    job_id: &str,
    attempt: &WebhookAttempt,
) -> sqlx::Result<bool> {
    let at = Utc
        .timestamp_millis_opt(attempt.started_unix_ms)
        .single()
        .unwrap_or_else(Utc::now);
    let webhook = serde_json::json!({
        "eventId": attempt.event_id,
        "attempt": attempt.attempt,
        "statusCode": (attempt.status_code > 0).then_some(attempt.status_code),
        "latencyMs": attempt.latency_ms,
        "error": (!attempt.error.is_empty()).then_some(&attempt.error),
        "outcome": attempt.outcome,
    });
    let done = sqlx::query(
        "INSERT INTO job_events (client_id, job_id, type, data, at, dedup_key)
         SELECT client_id, id, 'webhook.attempt',
                jsonb_build_object('status', status, 'capability', capability,
                                   'webhook', jsonb_strip_nulls($2::jsonb)),
                $3, $4
         FROM jobs WHERE id = $1
         ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING",
    )
    .bind(job_id)
    .bind(webhook)
    .bind(at)
    .bind(format!("{}:{}", attempt.event_id, attempt.attempt))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Rows deleted per statement by [`prune`].
const PRUNE_BATCH: i64 = 5_000;

/// Deletes events older than `keep`, oldest first, in bounded statements. A cursor into the
/// pruned part still reads on from there.
pub async fn prune(pool: &PgPool, keep: Duration) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM job_events WHERE id IN (
                 SELECT id FROM job_events ORDER BY id LIMIT $1)
             AND at < now() - $2",
        )
        .bind(PRUNE_BATCH)
        .bind(keep)
        .execute(pool)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_orders_by_transaction_first() {
        let c = Cursor { tx: 7613, id: 42 };
        assert_eq!(c.to_string(), "7613-42");
        assert_eq!("7613-42".parse::<Cursor>(), Ok(c));
        assert!(Cursor { tx: 7612, id: 99 } < c);
        assert_eq!("0-0".parse::<Cursor>(), Ok(Cursor::default()));
        // The longest CURSOR_PATTERN allows always fit.
        assert!(
            "9999999999999999999-999999999999999999"
                .parse::<Cursor>()
                .is_ok()
        );
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        for raw in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "+1-2",
            "1 -2",
            "99999999999999999999-1",
            // Within range, but longer than CURSOR_PATTERN allows.
            "00000000000000000001-1",
            "1-0000000000000000001",
        ] {
            assert!(raw.parse::<Cursor>().is_err(), "{raw:?}");
        }
    }
}
