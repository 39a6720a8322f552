//! Each api replica's pump: while any event stream is open on the replica, it reads the
//! whole feed's new rows every [`POLL`] and tells the streams which clients have news. A
//! stream then reads its own client's rows from its own cursor (the pump carries no events),
//! so the pump may miss, repeat or lag without a stream losing or repeating anything; it only
//! decides how soon a stream looks.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::{Cursor, SETTLED, head};

/// How often an open stream's news is looked for: the live delay at most, beside commit.
const POLL: Duration = Duration::from_millis(100);
/// Rows read per look; a fuller feed is read again at once.
const BATCH: i64 = 1_000;
/// A client's open streams on one replica. A console needs one; a client holding more is
/// refused (429) rather than allowed to hold the replica's memory and wake-ups.
pub const MAX_STREAMS_PER_CLIENT: usize = 8;

/// News for the streams: these clients have new events, or (`None`) every stream should
/// look, as when the pump (re)starts and cannot know what happened while it was idle.
pub type News = Option<Arc<HashSet<String>>>;

#[derive(Clone)]
pub struct Pump {
    inner: Arc<Inner>,
}

struct Inner {
    news: broadcast::Sender<News>,
    opened: Notify,
    open: Mutex<HashMap<String, usize>>,
    /// Cancelled when the replica shuts down: open streams end (their partners reconnect,
    /// to another replica, with their last id), so the HTTP server's drain is not held open.
    closing: CancellationToken,
}

impl Default for Pump {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                news: broadcast::channel(64).0,
                opened: Notify::new(),
                open: Mutex::default(),
                closing: CancellationToken::new(),
            }),
        }
    }
}

/// An open stream's place at the pump; closes it when dropped.
pub struct Subscription {
    pub news: broadcast::Receiver<News>,
    client: String,
    pump: Pump,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut open = self.pump.inner.open.lock().expect("stream counts");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

impl Pump {
    /// Opens a stream for `client`; `None` when it already holds the most it may.
    ///
    /// Subscribe before the stream's first read: news published from then on reaches it, so
    /// nothing committed after that read goes unannounced.
    pub fn subscribe(&self, client: &str) -> Option<Subscription> {
        {
            let mut open = self.inner.open.lock().expect("stream counts");
            let count = open.entry(client.to_owned()).or_default();
            if *count >= MAX_STREAMS_PER_CLIENT {
                return None;
            }
            *count += 1;
        }
        let news = self.inner.news.subscribe();
        self.inner.opened.notify_one();
        Some(Subscription {
            news,
            client: client.to_owned(),
            pump: self.clone(),
        })
    }

    /// Resolves when the replica shuts down and its streams should end.
    pub async fn closing(&self) {
        self.inner.closing.cancelled().await;
    }

    fn listening(&self) -> bool {
        self.inner.news.receiver_count() > 0
    }

    /// Runs until cancelled: idle while no stream is open. Ends the open streams then.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        self.pump(&pool, &shutdown).await;
        self.inner.closing.cancel();
    }

    async fn pump(&self, pool: &PgPool, shutdown: &CancellationToken) {
        loop {
            while !self.listening() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.inner.opened.notified() => {},
                }
            }
            if let Err(err) = self.follow(pool, shutdown).await {
                tracing::warn!(error = format!("{err:#}"), "event pump restarting");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Follows the feed from its settled head while streams are open.
    async fn follow(&self, pool: &PgPool, shutdown: &CancellationToken) -> sqlx::Result<()> {
        let mut cursor = head(pool, None).await?;
        // Streams that opened while the pump was idle read after their subscription, but
        // perhaps before this head: they look again, and from here on nothing is missed.
        let _ = self.inner.news.send(None);
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while self.listening() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = ticks.tick() => {},
            }
            loop {
                let (clients, last, full) = news_after(pool, cursor).await?;
                cursor = last;
                if !clients.is_empty() {
                    let _ = self.inner.news.send(Some(Arc::new(clients)));
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The clients with settled events after `after`, the cursor of the last one read, and
/// whether the read was full.
async fn news_after(pool: &PgPool, after: Cursor) -> sqlx::Result<(HashSet<String>, Cursor, bool)> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tx::text, id, client_id FROM job_events
         WHERE (tx, id) > ($1::text::xid8, $2) AND {SETTLED}
         ORDER BY tx, id LIMIT $3"
    )))
    .bind(after.tx.to_string())
    .bind(after.id)
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let full = rows.len() as i64 == BATCH;
    let mut last = after;
    let mut clients = HashSet::new();
    for (tx, id, client) in rows {
        last = Cursor::at(&tx, id);
        clients.insert(client);
    }
    Ok((clients, last, full))
}
