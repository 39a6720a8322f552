//! When to try again: how a receiver's answer counts, and the retry schedule as data, each a
//! pure function.

use std::time::Duration;

/// At least this long after a 429 or a timeout: the receiver is overloaded.
pub const OVERLOAD_FLOOR: Duration = Duration::from_secs(60);
const JITTER: f64 = 0.2;

/// What an attempt's outcome means for the next one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Never retried: 410 Gone, a refused destination, a transport error retrying cannot
    /// fix. A redirect is not one of them (see [`judge_status`]).
    GiveUp,
    Retry {
        overloaded: bool,
        retry_after: Option<Duration>,
    },
}

/// How an HTTP answer counts: 2xx is delivered; 410 Gone gives up (the receiver says the
/// endpoint is gone for good); anything else is retried on the schedule, 429 as overload.
///
/// A redirect is retried, not followed and not given up on: following would let a receiver
/// point the sender somewhere else, and a 3xx is usually a receiver's misconfiguration
/// (http to https, a trailing slash, a login page) that its owner fixes within the schedule.
/// Giving up would drop the event over a fixable answer, as a 404 or a 500 would not. This is
/// what Svix and Hookdeck's Outpost do: a 3xx is a failed attempt, retried like any other.
pub fn judge_status(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::GiveUp,
        _ => Verdict::Retry {
            overloaded: status == 429,
            retry_after,
        },
    }
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
    fn a_receivers_answer_is_delivered_given_up_or_retried() {
        let retry = |overloaded| Verdict::Retry {
            overloaded,
            retry_after: None,
        };
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(judge_status(status, None), Verdict::Delivered, "{status}");
        }
        assert_eq!(judge_status(410, None), Verdict::GiveUp);
        // L2: redirects are failed attempts retried on the schedule, never followed.
        for status in [300, 301, 302, 303, 307, 308] {
            assert_eq!(judge_status(status, None), retry(false), "{status}");
        }
        for status in [100, 400, 401, 403, 404, 500, 502, 503, 504] {
            assert_eq!(judge_status(status, None), retry(false), "{status}");
        }
        assert_eq!(judge_status(429, None), retry(true));
        let asked = Some(Duration::from_secs(90));
        assert_eq!(
            judge_status(503, asked),
            Verdict::Retry {
                overloaded: false,
                retry_after: asked
            }
        );
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
