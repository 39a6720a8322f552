//! `GET /api/v1/events` (a page from a cursor) and `GET /api/v1/events/stream` (Server-Sent
//! Events, resumed with `Last-Event-ID`).

use std::{convert::Infallible, time::Duration};

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
    response::sse::{self, KeepAlive, Sse},
};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::{Cursor, Event, Page, head, pump::MAX_STREAMS_PER_CLIENT, read};
use crate::{AppState, auth::Caller, error::ApiError, jobs::routes::check_limit};

/// Events a stream reads per statement.
const STREAM_BATCH: i64 = 200;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// Where a read starts: the beginning (absent), the client's latest event (`now`), or after
/// an event's id.
async fn start(
    state: &AppState,
    client: &str,
    raw: Option<&str>,
    name: &str,
) -> Result<Cursor, ApiError> {
    match raw {
        None | Some("") => Ok(Cursor::default()),
        Some("now") => Ok(head(&state.pool, Some(client)).await?),
        Some(raw) => raw.parse().map_err(|()| {
            ApiError::BadRequest(format!(
                "{name}: {raw:?} is not a cursor of this feed (an event's `id`, such as \
                 7613-42, or `now`)"
            ))
        }),
    }
}

/// The caller's job events after a cursor, oldest first: a partner that missed webhooks
/// reads from its last cursor until `hasMore` is false, and has seen every change once.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(("after" = Option<String>, Query,
            description = "the `id` of the last event read (`next` of the previous page); `now` to start at the latest event (`next` is then where reading from now on starts); the start when absent"),
           ("limit" = Option<i64>, Query, description = "events, 1–200 (default 50)")),
    responses((status = 200, body = Page), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<FeedQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = check_limit(query.limit.as_deref())?;
    let client = caller.client.as_str();
    let after = start(&state, client, query.after.as_deref(), "after").await?;
    let events = read(&state.pool, client, after, limit).await?;
    Ok(Json(Page {
        next: events
            .last()
            .map_or_else(|| after.to_string(), |e| e.id.clone()),
        has_more: events.len() as i64 == limit,
        events,
    }))
}

/// The caller's job events, live, as Server-Sent Events (`id` is the event's cursor, `event`
/// its type, `data` the event as `GET /api/v1/events` shows it). Reconnect with
/// `Last-Event-ID` (or `after`): the stream resumes after that event, losing and repeating
/// nothing. A comment line is sent every 15 s while nothing happens.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(("after" = Option<String>, Query, description = "as `Last-Event-ID` (which wins when both are sent), or `now`: only what happens from now on"),
           ("Last-Event-ID" = Option<String>, Header, description = "the `id` of the last event received")),
    responses((status = 200, description = "a stream of events", content_type = "text/event-stream"),
              (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 429, description = "the client holds the most streams it may on this replica",
               body = crate::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, ApiError> {
    let client = caller.client.as_str().to_owned();
    let after = match headers.get("last-event-id") {
        Some(value) => {
            let value = value.to_str().unwrap_or("?");
            start(&state, &client, Some(value), "Last-Event-ID").await?
        }
        None => start(&state, &client, query.after.as_deref(), "after").await?,
    };
    let subscription = state.feed.subscribe(&client).ok_or_else(|| {
        ApiError::TooMany(format!(
            "events: this client already holds {MAX_STREAMS_PER_CLIENT} open streams here; \
             close one or read GET /api/v1/events"
        ))
    })?;
    let (out, events) = mpsc::channel(STREAM_BATCH as usize);
    // A task of its own, not the response body's future: a query is never dropped half-way
    // when the partner goes away (sqlx issue #4393); the task ends at its next send.
    tokio::spawn(follow(state, client, after, subscription, out));
    let events = futures::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|event| (Ok(event), events))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

/// Sends `client`'s events after `cursor` as they settle, until the partner goes away or
/// the database fails (the partner reconnects with its last id).
async fn follow(
    state: AppState,
    client: String,
    mut cursor: Cursor,
    mut subscription: super::pump::Subscription,
    out: mpsc::Sender<sse::Event>,
) {
    loop {
        loop {
            let events = match read(&state.pool, &client, cursor, STREAM_BATCH).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::warn!(error = %err, %client, "event stream ended: the feed cannot be read");
                    return;
                }
            };
            let full = events.len() as i64 == STREAM_BATCH;
            for event in events {
                cursor = event.id.parse().unwrap_or(cursor);
                if out.send(message(&event)).await.is_err() {
                    return;
                }
            }
            if !full {
                break;
            }
        }
        loop {
            let news = tokio::select! {
                _ = out.closed() => return,
                _ = state.feed.closing() => return,
                news = subscription.news.recv() => news,
            };
            match news {
                Ok(Some(clients)) if !clients.contains(&client) => continue,
                // News for this client, a pump (re)start, or news dropped while this stream
                // was slow: read.
                Ok(_) | Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}

fn message(event: &Event) -> sse::Event {
    let data = serde_json::to_string(event).unwrap_or_default();
    sse::Event::default()
        .id(event.id.clone())
        .event(event.kind.clone())
        .data(data)
}
