//! Start-up steps that need a dependency — the database, the NATS cluster, the bucket — are
//! retried until it answers, as the NATS client already does for its first connection. A role
//! started while PostgreSQL restarts or a NATS node is down (a deploy during an incident, a
//! pod rescheduled) waits, unready, instead of exiting into a crash loop's growing back-off.

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds, waiting 100 ms, then twice as long each time up to
/// [`MAX_DELAY`], and logging every failure. Gives up only when `shutdown` fires, with the
/// last error. Only steps whose failure is transient belong here: settings are parsed
/// before, so that a bad one still stops the role at once.
pub async fn retry<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut step: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        let err = match step().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        tracing::warn!(
            error = format!("{err:#}"),
            retry_in_ms = delay.as_millis() as u64,
            "{what}: failed, retrying"
        );
        tokio::select! {
            _ = shutdown.cancelled() => {
                return Err(err.context(format!("{what}: shut down before it succeeded")));
            }
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_step_is_tried_again_until_it_succeeds() {
        let tries = AtomicU32::new(0);
        let value = retry("a step", &CancellationToken::new(), || async {
            match tries.fetch_add(1, Ordering::Relaxed) {
                0..3 => anyhow::bail!("not yet"),
                n => Ok(n),
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn shutdown_ends_the_waiting_with_the_last_error() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let err = retry("a step", &shutdown, || async {
            Err::<(), _>(anyhow::anyhow!("down"))
        })
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("down"), "{err:#}");
    }
}
