//! Retry delays as a pure function: exponential from a base, capped, so a flapping
//! dependency is not hammered and a job still finishes within its attempt budget.

use std::time::Duration;

const CAP: Duration = Duration::from_secs(300);

/// Delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
pub fn delay_after(attempt: u32, base: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(CAP)
}

/// Pause before asking for an unanswered claim again (`tries` asked so far): 0.5 s, 1 s, …
/// capped at 4 s — long enough for a restarting api, short enough that a lost reply costs
/// seconds, not the reconciler's minute and a half.
pub fn claim_pause(tries: u32) -> Duration {
    delay_after(tries, Duration::from_millis(500)).min(Duration::from_secs(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let base = Duration::from_secs(5);
        assert_eq!(delay_after(1, base), Duration::from_secs(5));
        assert_eq!(delay_after(2, base), Duration::from_secs(10));
        assert_eq!(delay_after(4, base), Duration::from_secs(40));
        assert_eq!(delay_after(10, base), CAP);
        assert_eq!(delay_after(u32::MAX, base), CAP);
        assert_eq!(delay_after(0, base), base);
    }

    #[test]
    fn claim_pauses_are_short() {
        assert_eq!(claim_pause(1), Duration::from_millis(500));
        assert_eq!(claim_pause(2), Duration::from_secs(1));
        assert_eq!(claim_pause(9), Duration::from_secs(4));
    }
}
