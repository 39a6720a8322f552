//! The chaos suite (issue #18): a replicated Atelier under a seeded schedule of faults, and an
//! independent check of the invariants once it has settled.
//!
//! ```sh
//! . .local/env   # written by deploy/local/deps.sh
//! cargo build -p atelier-cli -p atelier-tests --bin atelier --bin chaos
//! target/debug/chaos [--jobs 300] [--faults 8] [--seed N] [--concurrency 16] [--settle-secs 240]
//!                    [--kinds kill,pause,nats,postgres,s3-refuse,s3-hang,partition,slow-postgres]
//! ```
//!
//! Two api replicas, two webhook-services and two of each worker the workload uses
//! (`image`, `upscale`, `inpaint`) as real `atelier` processes; a three-node NATS cluster with
//! every stream at three replicas; a PostgreSQL cluster of its own; the local S3 server; a
//! TCP fault proxy between every role and every dependency. The seed decides the workload and
//! the fault schedule, which is printed before the run; the same seed replays both. It prints
//! a table of faults injected and violations per invariant, and exits 1 on any violation
//! (keeping every process's log under the printed folder).

use std::time::Duration;

use atelier_tests::chaos::{Plan, faults::KINDS, run};

fn plan() -> Plan {
    let mut plan = Plan {
        jobs: 300,
        faults: 8,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        concurrency: 16,
        settle: Duration::from_secs(240),
        kinds: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--jobs" => plan.jobs = value().parse().expect("--jobs N"),
            "--faults" => plan.faults = value().parse().expect("--faults N"),
            "--seed" => plan.seed = value().parse().expect("--seed N"),
            "--concurrency" => plan.concurrency = value().parse().expect("--concurrency N"),
            "--settle-secs" => {
                plan.settle = Duration::from_secs(value().parse().expect("--settle-secs S"));
            }
            "--kinds" => {
                plan.kinds = value().split(',').map(str::to_owned).collect();
                if let Some(bad) = plan.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                    panic!("--kinds: {bad:?} is not one of {}", KINDS.join(", "));
                }
            }
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    plan
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = run(plan()).await?;
    report.print();
    if report.violations() > 0 {
        eprintln!(
            "chaos: {} violations (replay with --seed {})",
            report.violations(),
            report.plan.seed
        );
        std::process::exit(1);
    }
    Ok(())
}
