//! Polling an async provider task: the upstream's status is the truth, and a callback only
//! wakes the poller early. Delays grow exponentially with jitter, never undercut the
//! provider's `Retry-After`, and stop at a deadline.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::ProviderError;

/// The schedule, as data (providers.md §8.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Growth per poll.
    pub factor: f64,
    /// Fraction of each delay drawn at random either way (0.25 = ±25%), so many workers
    /// polling one provider do not move in step.
    pub jitter: f64,
}

impl PollPolicy {
    /// Images: about 2 s at first, settling at 5 s.
    pub fn image() -> Self {
        Self {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(5),
            factor: 1.5,
            jitter: 0.25,
        }
    }

    /// Video: 10 s at first, up to 30 s.
    pub fn video() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(30),
            factor: 1.5,
            jitter: 0.25,
        }
    }

    /// The delay before poll number `attempt` (0-based), given a jitter sample in [-1, 1] and
    /// the provider's `Retry-After`, which is a floor: we never come back sooner than asked.
    pub fn delay(&self, attempt: u32, sample: f64, retry_after: Option<Duration>) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.max(1.0).powi(attempt.min(64) as i32);
        let base = grown.min(self.max.as_secs_f64());
        let jittered = base * (1.0 + self.jitter.clamp(0.0, 1.0) * sample.clamp(-1.0, 1.0));
        let delay = Duration::from_secs_f64(jittered.max(0.0));
        retry_after.map_or(delay, |floor| delay.max(floor))
    }
}

/// One look at the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<T> {
    Pending,
    Ready(T),
}

/// Why polling stopped without a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// A failure that retrying the read will not fix (the task failed, the key was revoked...).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Our deadline passed first; the caller cancels upstream where it can and fails the job
    /// `timed_out`. `last_error` is the last retryable failure, if the provider was failing.
    #[error("the deadline passed before the upstream task finished")]
    Deadline { last_error: Option<ProviderError> },
}

/// The worker's view: a classified failure keeps its class; our deadline is `timed_out`, final
/// (the caller cancels upstream first where the provider allows it).
impl From<PollError> for atelier_worker::EngineError {
    fn from(err: PollError) -> Self {
        match err {
            PollError::Provider(err) => err.into(),
            PollError::Deadline { .. } => atelier_worker::EngineError::fatal(
                "timed_out",
                "the upstream task did not finish before the job's deadline",
            ),
        }
    }
}

/// Calls `check` until it is ready, a non-retryable error or the deadline. Retryable errors
/// (429, 5xx, network) are waited out like a pending status, honouring their `Retry-After`.
/// `wake` (a callback arrived) cuts the current wait short. Drop the future to stop early.
pub async fn poll_until<T, F, Fut>(
    policy: &PollPolicy,
    deadline: Instant,
    wake: &Notify,
    mut check: F,
) -> Result<T, PollError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, ProviderError>>,
{
    let mut attempt = 0u32;
    let mut last_error = None;
    loop {
        if Instant::now() >= deadline {
            return Err(PollError::Deadline { last_error });
        }
        let retry_after = match check().await {
            Ok(Poll::Ready(value)) => return Ok(value),
            Ok(Poll::Pending) => None,
            Err(err) if err.is_retryable() => {
                let after = err.retry_after();
                last_error = Some(err);
                after
            }
            Err(err) => return Err(PollError::Provider(err)),
        };
        let sample = rand::rng().random_range(-1.0..=1.0);
        let delay = policy.delay(attempt, sample, retry_after);
        attempt = attempt.saturating_add(1);
        let wake_at = (Instant::now() + delay).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(wake_at) => {}
            // A callback is only a hint to look now; what it said is not trusted.
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::ErrorClass;
    use crate::provider::Provider;

    fn policy() -> PollPolicy {
        PollPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.25,
        }
    }

    #[test]
    fn delays_grow_cap_jitter_and_respect_retry_after() {
        let p = policy();
        assert_eq!(p.delay(0, 0.0, None), Duration::from_secs(2));
        assert_eq!(p.delay(1, 0.0, None), Duration::from_secs(4));
        assert_eq!(p.delay(10, 0.0, None), Duration::from_secs(10));
        assert_eq!(p.delay(0, 1.0, None), Duration::from_millis(2500));
        assert_eq!(p.delay(0, -1.0, None), Duration::from_millis(1500));
        assert_eq!(
            p.delay(0, 0.0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay(3, 0.0, Some(Duration::from_secs(1))),
            Duration::from_secs(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_wait_for_retry_after_then_succeed() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let wake = Notify::new();
        let result = poll_until(
            &policy(),
            started + Duration::from_secs(600),
            &wake,
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(ProviderError::new(
                        Provider::Ark,
                        ErrorClass::Retryable {
                            retry_after: Some(Duration::from_secs(42)),
                        },
                        "slow down",
                    )),
                    1 => Ok(Poll::Pending),
                    _ => Ok(Poll::Ready("done")),
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_secs(42));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_and_fatal_errors_stop_polling() {
        let wake = Notify::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let result: Result<(), _> =
            poll_until(&policy(), deadline, &wake, || async { Ok(Poll::Pending) }).await;
        assert_eq!(
            result.unwrap_err(),
            PollError::Deadline { last_error: None }
        );
        assert!(Instant::now() >= deadline);

        let fatal = ProviderError::new(Provider::Ark, ErrorClass::ContentRejected, "no");
        let result: Result<(), _> =
            poll_until(&policy(), deadline + Duration::from_secs(60), &wake, || {
                let fatal = fatal.clone();
                async move { Err(fatal) }
            })
            .await;
        assert_eq!(result.unwrap_err(), PollError::Provider(fatal));
    }

    #[tokio::test(start_paused = true)]
    async fn a_callback_wakes_the_poller_early() {
        let wake = Notify::new();
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let slow = PollPolicy {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
            ..policy()
        };
        let poller = poll_until(
            &slow,
            started + Duration::from_secs(7200),
            &wake,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Ok(Poll::Pending)
                } else {
                    Ok(Poll::Ready(()))
                }
            },
        );
        // notify_one stores a permit, so the wake is not lost if it lands before the wait.
        wake.notify_one();
        poller.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
