//! The fault schedule: drawn from the seed before the run starts and printed, so a failing
//! run can be replayed with the same faults at the same points of the workload. A fault is
//! triggered by the workload's progress (jobs created and followed to their end), never by
//! the clock; only how long a fault lasts is a duration.

use std::{fmt, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::proxy::Mode;

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL of one role replica (index into the topology's replicas), started again after.
    KillReplica(usize),
    /// SIGSTOP of one role replica, SIGCONT after: a stalled VM or a long pause, after which
    /// the replica carries on with what it held (a worker reports a result of an attempt the
    /// platform has given to another).
    PauseReplica(usize),
    /// SIGKILL of one NATS node, started again on its store after.
    KillNats(usize),
    /// SIGKILL of PostgreSQL's postmaster and every backend, then crash recovery.
    KillPostgres,
    /// The S3 server refuses or hangs every connection.
    S3(Mode),
    /// One replica can reach no NATS node: its connections stay open and carry nothing.
    PartitionNats(usize),
    /// Every PostgreSQL round trip waits this long, both ways.
    SlowPostgres(Duration),
}

/// The short names `--kinds` takes, one per kind of fault.
pub const KINDS: [&str; 8] = [
    "kill",
    "pause",
    "nats",
    "postgres",
    "s3-refuse",
    "s3-hang",
    "partition",
    "slow-postgres",
];

impl Kind {
    /// Its name in [`KINDS`].
    pub fn short(&self) -> &'static str {
        match self {
            Kind::KillReplica(_) => "kill",
            Kind::PauseReplica(_) => "pause",
            Kind::KillNats(_) => "nats",
            Kind::KillPostgres => "postgres",
            Kind::S3(Mode::Refuse) => "s3-refuse",
            Kind::S3(_) => "s3-hang",
            Kind::PartitionNats(_) => "partition",
            Kind::SlowPostgres(_) => "slow-postgres",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Kind::KillReplica(_) => "kill -9 role replica",
            Kind::PauseReplica(_) => "pause role replica (STOP/CONT)",
            Kind::KillNats(_) => "kill -9 nats node",
            Kind::KillPostgres => "kill -9 postgresql",
            Kind::S3(Mode::Refuse) => "s3 refusing",
            Kind::S3(_) => "s3 hanging",
            Kind::PartitionNats(_) => "replica partitioned from nats",
            Kind::SlowPostgres(_) => "postgresql slow",
        }
    }
}

/// One fault: when (after this many jobs of the workload ended), what, and for how long.
#[derive(Clone, Debug)]
pub struct Fault {
    pub after: usize,
    pub kind: Kind,
    pub hold: Duration,
}

/// Names the replica a fault targets, for the printed schedule.
pub struct Described<'a> {
    pub fault: &'a Fault,
    pub replicas: &'a [String],
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.fault.kind {
            Kind::KillReplica(r) | Kind::PauseReplica(r) | Kind::PartitionNats(r) => {
                self.replicas[*r].clone()
            }
            Kind::KillNats(n) => format!("n{}", n + 1),
            Kind::SlowPostgres(d) => format!("+{} ms", d.as_millis()),
            Kind::KillPostgres | Kind::S3(_) => String::new(),
        };
        write!(
            f,
            "after {:>6} jobs: {:<30} {:<18} for {:.1} s",
            self.fault.after,
            self.fault.kind.label(),
            target,
            self.fault.hold.as_secs_f64()
        )
    }
}

/// `faults` faults spread over `jobs` jobs, from `seed`, on `replicas` role replicas; only
/// faults whose short name is in `kinds`, unless it is empty (every kind).
pub fn schedule(
    seed: u64,
    jobs: usize,
    faults: usize,
    replicas: usize,
    kinds: &[String],
) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let step = jobs / (faults + 1).max(1);
    (0..faults)
        .map(|i| {
            let jitter = rng.random_range(0..=step / 2);
            let after = (step * (i + 1) + jitter).min(jobs.saturating_sub(1));
            loop {
                let (kind, hold) = draw(&mut rng, replicas);
                if kinds.is_empty() || kinds.iter().any(|k| k == kind.short()) {
                    return Fault { after, kind, hold };
                }
            }
        })
        .collect()
}

/// One fault of any kind, and how long it lasts.
fn draw(rng: &mut StdRng, replicas: usize) -> (Kind, Duration) {
    let secs =
        |lo: f64, hi: f64, rng: &mut StdRng| Duration::from_secs_f64(rng.random_range(lo..hi));
    match rng.random_range(0..100) {
        0..28 => (
            Kind::KillReplica(rng.random_range(0..replicas)),
            secs(0.2, 3.0, rng),
        ),
        // Mostly longer than the sweeper lets a lease go without heartbeats (twice
        // `ATELIER_LEASE_STALE_AFTER`, 6 s in the suite), so its attempt is given to
        // another worker while it sleeps.
        28..38 => (
            Kind::PauseReplica(rng.random_range(0..replicas)),
            secs(4.0, 12.0, rng),
        ),
        38..50 => (Kind::KillNats(rng.random_range(0..3)), secs(1.0, 6.0, rng)),
        50..60 => (Kind::KillPostgres, secs(0.5, 4.0, rng)),
        60..68 => (Kind::S3(Mode::Refuse), secs(1.0, 6.0, rng)),
        68..76 => (Kind::S3(Mode::Partition), secs(1.0, 6.0, rng)),
        76..90 => (
            Kind::PartitionNats(rng.random_range(0..replicas)),
            secs(1.0, 8.0, rng),
        ),
        _ => (
            Kind::SlowPostgres(Duration::from_millis(rng.random_range(5..60))),
            secs(1.0, 5.0, rng),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_in_workload_order() {
        let a = schedule(42, 20_000, 200, 10, &[]);
        let b = schedule(42, 20_000, 200, 10, &[]);
        assert_eq!(a.len(), 200);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.after == y.after && x.kind == y.kind && x.hold == y.hold)
        );
        assert!(a.windows(2).all(|w| w[0].after <= w[1].after));
        assert!(a.iter().all(|f| f.after < 20_000));
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|f| f.kind.label()).collect();
        assert_eq!(kinds.len(), 8, "every kind of fault is drawn: {kinds:?}");
        assert_ne!(
            schedule(43, 20_000, 200, 10, &[])
                .iter()
                .map(|f| f.after)
                .collect::<Vec<_>>(),
            a.iter().map(|f| f.after).collect::<Vec<_>>()
        );
    }

    #[test]
    fn kinds_narrow_the_schedule_and_every_kind_has_a_short_name() {
        let only = ["pause".to_owned(), "nats".to_owned()];
        let narrowed = schedule(42, 1000, 50, 10, &only);
        assert_eq!(narrowed.len(), 50);
        assert!(
            narrowed
                .iter()
                .all(|f| only.iter().any(|k| k == f.kind.short()))
        );
        let all = schedule(42, 20_000, 200, 10, &[]);
        assert!(all.iter().all(|f| KINDS.contains(&f.kind.short())));
    }
}
