//! Which capabilities have a live worker: workers announce themselves on core NATS every
//! few seconds and this keeps the last time each worker was heard from.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// A worker not heard from for this long no longer counts.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);

#[derive(Clone, Default)]
pub struct Presence {
    /// capability token (`image_upscale`) -> worker id -> last heard.
    seen: Arc<Mutex<HashMap<String, HashMap<String, Instant>>>>,
}

impl Presence {
    pub fn record(&self, capability_token: &str, worker: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry(capability_token.to_owned())
            .or_default()
            .insert(worker.to_owned(), Instant::now());
    }

    /// Live workers for a capability such as `image.upscale`.
    pub fn live_workers(&self, capability: &str) -> usize {
        let token = capability.replace('.', "_");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Some(workers) = seen.get_mut(&token) else {
            return 0;
        };
        workers.retain(|_, at| at.elapsed() < PRESENCE_TTL);
        workers.len()
    }
}

/// Listens for announcements until cancelled. On error: the subscription ends and
/// capabilities show as unavailable, which is logged; nothing else depends on it.
pub async fn listen(
    nats: async_nats::Client,
    subject: String,
    presence: Presence,
    shutdown: CancellationToken,
) {
    let mut announcements = match nats.subscribe(subject).await {
        Ok(subscriber) => subscriber,
        Err(err) => {
            tracing::error!(error = %err, "cannot subscribe to worker presence");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = announcements.next() => message,
        };
        let Some(message) = message else { return };
        let token = message.subject.rsplit('.').next().unwrap_or_default();
        let worker = String::from_utf8_lossy(&message.payload);
        presence.record(token, &worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_count_per_capability() {
        let presence = Presence::default();
        presence.record("image_upscale", "w1");
        presence.record("image_upscale", "w2");
        presence.record("image_upscale", "w1");
        assert_eq!(presence.live_workers("image.upscale"), 2);
        assert_eq!(presence.live_workers("video.generate"), 0);
    }
}
