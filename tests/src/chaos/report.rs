//! What a run found, and the tables it prints.

use std::{path::PathBuf, time::Duration};

use super::{Plan, checker, checker::Verdict, workload::Record};

/// What a run found.
pub struct Report {
    pub plan: Plan,
    pub record: Record,
    pub verdicts: Vec<Verdict>,
    pub injected: Vec<(&'static str, usize)>,
    pub elapsed: Duration,
    pub settled_in: Option<Duration>,
    pub dir: PathBuf,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.verdicts.iter().map(|v| v.violations.len()).sum()
    }

    pub fn print(&self) {
        let record = &self.record;
        println!();
        println!(
            "chaos: seed {}, {} jobs asked, {} accepted ({}), {} retries, {} cancels, {} tasks with an unknown outcome",
            self.plan.seed,
            self.plan.jobs,
            record.accepted.len(),
            checker::faces(record)
                .iter()
                .map(|(face, n)| format!("{face:?} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            record.retries,
            record.cancels,
            record.unknown.len(),
        );
        println!(
            "run {:.1} s; settled {}",
            self.elapsed.as_secs_f64(),
            self.settled_in
                .map_or("NOT within the deadline".to_owned(), |d| format!(
                    "{:.1} s after the last fault",
                    d.as_secs_f64()
                ))
        );
        println!();
        println!("| fault | injected |");
        println!("| --- | ---: |");
        for (label, n) in &self.injected {
            println!("| {label} | {n} |");
        }
        println!();
        println!("| invariant | checked | violations |");
        println!("| --- | ---: | ---: |");
        for v in &self.verdicts {
            println!("| {} | {} | {} |", v.name, v.checked, v.violations.len());
        }
        for v in self.verdicts.iter().filter(|v| !v.violations.is_empty()) {
            println!();
            println!("{}:", v.name);
            for line in v.violations.iter().take(20) {
                println!("  {line}");
            }
            if v.violations.len() > 20 {
                println!("  … and {} more", v.violations.len() - 20);
            }
        }
        if self.dir.exists() {
            println!();
            println!("every process's log is kept in {}", self.dir.display());
        }
    }
}
