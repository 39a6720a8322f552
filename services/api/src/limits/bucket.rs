//! The token bucket behind each client's create rate: `burst` tokens at most, refilled at
//! `rate` a second, one taken per accepted job. Pure arithmetic on a level and the seconds
//! since it was written; the level itself lives in PostgreSQL (`admission_buckets`), so
//! every api replica draws from the same bucket.

/// One client's bucket: how fast it refills and how much it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Tokens added per second.
    pub rate: f64,
    /// The most tokens the bucket holds: the burst a client may send at once.
    pub burst: u32,
}

/// What taking a token answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Take {
    /// A token was taken; `left` remain.
    Taken { left: f64 },
    /// The bucket holds less than a token: the next one is there in `retry_after` seconds.
    Empty { level: f64, retry_after: u64 },
}

impl Bucket {
    /// The level `elapsed` seconds after it was `level`, never above `burst`. A clock that
    /// went backwards (another replica's write) adds nothing.
    pub fn refill(&self, level: f64, elapsed: f64) -> f64 {
        (level + elapsed.max(0.0) * self.rate).min(f64::from(self.burst))
    }

    /// Takes one token from the refilled level.
    pub fn take(&self, level: f64, elapsed: f64) -> Take {
        let level = self.refill(level, elapsed);
        if level >= 1.0 {
            Take::Taken { left: level - 1.0 }
        } else {
            Take::Empty {
                level,
                retry_after: whole_seconds((1.0 - level) / self.rate),
            }
        }
    }

    /// Seconds until the bucket is full again from `level` (`RateLimit-Reset`).
    pub fn full_after(&self, level: f64) -> u64 {
        whole_seconds((f64::from(self.burst) - level).max(0.0) / self.rate)
    }
}

/// Seconds rounded up: a client told to wait 0 s while the bucket is empty would be refused
/// again.
fn whole_seconds(seconds: f64) -> u64 {
    seconds.ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_A_SECOND: Bucket = Bucket {
        rate: 10.0,
        burst: 20,
    };

    #[test]
    fn a_full_bucket_serves_its_burst_then_refuses() {
        let mut level = 20.0;
        for n in 0..20 {
            match TEN_A_SECOND.take(level, 0.0) {
                Take::Taken { left } => level = left,
                other => panic!("take {n}: {other:?}"),
            }
        }
        assert_eq!(
            TEN_A_SECOND.take(level, 0.0),
            Take::Empty {
                level: 0.0,
                retry_after: 1
            }
        );
    }

    #[test]
    fn it_refills_at_its_rate_up_to_its_burst() {
        assert_eq!(TEN_A_SECOND.refill(0.0, 0.5), 5.0);
        assert_eq!(TEN_A_SECOND.refill(0.0, 60.0), 20.0);
        assert_eq!(
            TEN_A_SECOND.refill(3.0, -2.0),
            3.0,
            "a clock going back adds nothing"
        );
        assert_eq!(
            TEN_A_SECOND.take(0.0, 0.1),
            Take::Taken { left: 0.0 },
            "a tenth of a second refills the one token"
        );
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        let slow = Bucket {
            rate: 0.25,
            burst: 2,
        };
        assert_eq!(
            slow.take(0.5, 0.0),
            Take::Empty {
                level: 0.5,
                retry_after: 2
            }
        );
        assert_eq!(slow.full_after(0.0), 8);
        assert_eq!(slow.full_after(2.0), 0);
        assert_eq!(TEN_A_SECOND.full_after(19.5), 1);
    }
}
