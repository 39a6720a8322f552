//! When to try again: the retry schedule as data and one pure function over it.

use std::time::Duration;

/// At least this long after a 429 or a timeout: the receiver is overloaded.
pub const OVERLOAD_FLOOR: Duration = Duration::from_secs(60);
const JITTER: f64 = 0.2;

/// What an attempt's outcome means for the next one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Never retried: 410 Gone, a refused destination, a redirect.
    GiveUp,
    Retry {
        overloaded: bool,
        retry_after: Option<Duration>,
    },
}

/// The delay before the next attempt after `attempts` attempts, or `None` when the
/// schedule is exhausted. `jitter` is a sample in [-1, 1] (random in production, fixed
/// in tests) scaled to ±20 %.
pub fn next_delay(
    schedule: &[Duration],
    attempts: u32,
    overloaded: bool,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let base = *schedule.get(attempts.checked_sub(1)? as usize)?;
    let mut delay = base.mul_f64(1.0 + JITTER * jitter.clamp(-1.0, 1.0));
    if overloaded {
        delay = delay.max(OVERLOAD_FLOOR);
    }
    if let Some(asked) = retry_after {
        // Honour the receiver's wish, within reason: never more than a day.
        delay = delay.max(asked.min(Duration::from_secs(86_400)));
    }
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_schedule() -> Vec<Duration> {
        atelier_kit::config::parse_duration_list("5s,5m,30m,2h,5h,10h,10h").unwrap()
    }

    #[test]
    fn follows_the_schedule_with_bounded_jitter() {
        let s = default_schedule();
        assert_eq!(
            next_delay(&s, 1, false, None, 0.0),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_delay(&s, 1, false, None, 1.0),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            next_delay(&s, 1, false, None, -1.0),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            next_delay(&s, 2, false, None, 0.0),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            next_delay(&s, 7, false, None, 0.0),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(next_delay(&s, 8, false, None, 0.0), None);
        assert_eq!(next_delay(&s, 0, false, None, 0.0), None);
    }

    #[test]
    fn overload_and_retry_after_push_the_next_attempt_out() {
        let s = default_schedule();
        assert_eq!(next_delay(&s, 1, true, None, 0.0), Some(OVERLOAD_FLOOR));
        assert_eq!(
            next_delay(&s, 1, false, Some(Duration::from_secs(120)), 0.0),
            Some(Duration::from_secs(120))
        );
        // A Retry-After shorter than the schedule does not hurry it.
        assert_eq!(
            next_delay(&s, 2, false, Some(Duration::from_secs(1)), 0.0),
            Some(Duration::from_secs(300))
        );
    }
}
