//! The api's HTTP server: each connection is served by hyper's HTTP/1 with a timer, so a
//! connection that does not send a whole request head in time is closed (idle and slowloris
//! connections cannot pile up — axum::serve sets no timer, so hyper's deadline never
//! applied). On shutdown it stops accepting, lets requests in flight finish and closes idle
//! connections, as axum's graceful shutdown did.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Serves `router` on `listener` until `shutdown`, then drains the open connections.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = TaskTracker::new();
    loop {
        // axum's accept: a failed accept (out of file descriptors) is logged and retried
        // after a second instead of ending the server.
        let (stream, _peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = shutdown.cancelled() => break,
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // A peer that hangs up or misses the head's deadline is the peer's business.
            if let Err(err) = served {
                tracing::debug!(error = %err, "connection ended");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}
