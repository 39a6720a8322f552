//! Which waiting jobs to release next: max-min fairness between clients, weighted.
//!
//! Every client with waiting work is ranked by its jobs in flight (in the work stream or
//! running) divided by its weight; the lowest-ranked client gets the next release, its count
//! goes up by one, and the ranking is taken again. A client with one job waiting and nothing
//! in flight is therefore served before another client's next job whatever that client's
//! backlog, and two clients with backlogs share the releases in proportion to their weights.
//! Ties go to the older job. A client at its concurrency cap is passed over.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap, VecDeque},
};

/// A job waiting in PostgreSQL for its dispatch; `order` sorts a client's jobs oldest first
/// and breaks ties between clients (creation time, then id).
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting<K> {
    pub id: String,
    pub client: String,
    pub order: K,
}

/// What the picker knows of a client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    /// Jobs in the work stream or running now.
    pub in_flight: u32,
    /// Most jobs in flight at once; `None`: no cap.
    pub cap: Option<u32>,
    /// Relative share of the capacity (at least 1).
    pub weight: u32,
}

/// A client in the ranking: the smallest `in_flight / weight`, then the oldest next job, first.
struct Turn<'a, K> {
    share: Share,
    next: &'a K,
    client: &'a str,
}

impl<K: Ord> Turn<'_, K> {
    /// `a/b < c/d` without division: `a*d < c*b`.
    fn rank(&self, other: &Self) -> Ordering {
        let mine = u64::from(self.share.in_flight) * u64::from(other.share.weight.max(1));
        let theirs = u64::from(other.share.in_flight) * u64::from(self.share.weight.max(1));
        mine.cmp(&theirs)
            .then_with(|| self.next.cmp(other.next))
            .then_with(|| self.client.cmp(other.client))
    }
}

impl<K: Ord> PartialEq for Turn<'_, K> {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Turn<'_, K> {}
impl<K: Ord> PartialOrd for Turn<'_, K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Turn<'_, K> {
    /// Reversed: `BinaryHeap` is a max-heap and the lowest rank goes first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank(self)
    }
}

/// Picks at most `budget` of `waiting` (each client's jobs oldest first), in release order.
pub fn pick<K: Ord>(
    budget: usize,
    waiting: &[Waiting<K>],
    share: impl Fn(&str) -> Share,
) -> Vec<&str> {
    let mut queues: HashMap<&str, VecDeque<&Waiting<K>>> = HashMap::new();
    for job in waiting {
        queues
            .entry(job.client.as_str())
            .or_default()
            .push_back(job);
    }
    let may_run = |share: &Share| share.cap.is_none_or(|cap| share.in_flight < cap);
    let mut ranking = BinaryHeap::new();
    for (client, queue) in &queues {
        let share = share(client);
        if may_run(&share) {
            ranking.push(Turn {
                share,
                next: &queue[0].order,
                client,
            });
        }
    }
    let mut picked = Vec::with_capacity(budget.min(waiting.len()));
    while picked.len() < budget {
        let Some(Turn {
            mut share, client, ..
        }) = ranking.pop()
        else {
            break;
        };
        let queue = queues.get_mut(client).expect("a ranked client has a queue");
        let job = queue
            .pop_front()
            .expect("a ranked client has a job waiting");
        picked.push(job.id.as_str());
        share.in_flight += 1;
        if let Some(next) = queue.front()
            && may_run(&share)
        {
            ranking.push(Turn {
                share,
                next: &next.order,
                client,
            });
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(client: &str, from: u32, count: u32) -> Vec<Waiting<u32>> {
        (from..from + count)
            .map(|n| Waiting {
                id: format!("{client}{n}"),
                client: client.to_owned(),
                order: n,
            })
            .collect()
    }

    fn share(in_flight: u32) -> Share {
        Share {
            in_flight,
            cap: None,
            weight: 1,
        }
    }

    #[test]
    fn a_single_job_goes_ahead_of_another_clients_backlog() {
        // a: 1000 old jobs, 8 in flight; b: one new job, nothing in flight.
        let mut waiting = jobs("a", 0, 1000);
        waiting.extend(jobs("b", 5000, 1));
        let picked = pick(1, &waiting, |c| share(if c == "a" { 8 } else { 0 }));
        assert_eq!(picked, ["b5000"]);
    }

    #[test]
    fn backlogs_alternate_and_the_older_job_breaks_ties() {
        let mut waiting = jobs("a", 0, 10);
        waiting.extend(jobs("b", 100, 10));
        let picked = pick(6, &waiting, |_| share(0));
        assert_eq!(picked, ["a0", "b100", "a1", "b101", "a2", "b102"]);
    }

    #[test]
    fn clients_catch_up_before_sharing() {
        // a has 4 in flight, b none: b gets the next 4, then they alternate.
        let mut waiting = jobs("a", 0, 10);
        waiting.extend(jobs("b", 100, 10));
        let picked = pick(6, &waiting, |c| share(if c == "a" { 4 } else { 0 }));
        assert_eq!(picked, ["b100", "b101", "b102", "b103", "a0", "b104"]);
    }

    #[test]
    fn weights_share_in_proportion() {
        let mut waiting = jobs("a", 0, 100);
        waiting.extend(jobs("b", 1000, 100));
        let picked = pick(30, &waiting, |c| Share {
            weight: if c == "a" { 2 } else { 1 },
            ..share(0)
        });
        let to_a = picked.iter().filter(|id| id.starts_with('a')).count();
        assert_eq!((to_a, picked.len() - to_a), (20, 10));
    }

    #[test]
    fn a_client_at_its_cap_is_passed_over() {
        let mut waiting = jobs("a", 0, 10);
        waiting.extend(jobs("b", 100, 2));
        let capped = |c: &str| Share {
            cap: (c == "a").then_some(3),
            ..share(if c == "a" { 1 } else { 0 })
        };
        let picked = pick(10, &waiting, capped);
        assert_eq!(picked, ["b100", "a0", "b101", "a1"]);
    }

    #[test]
    fn the_budget_and_the_waiting_bound_the_picks() {
        assert!(pick(5, &jobs("a", 0, 0), |_| share(0)).is_empty());
        assert_eq!(pick(0, &jobs("a", 0, 3), |_| share(0)).len(), 0);
        assert_eq!(pick(5, &jobs("a", 0, 3), |_| share(0)), ["a0", "a1", "a2"]);
    }
}
