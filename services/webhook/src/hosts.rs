//! Per-destination delivery slots: each destination (host and port) may have only its share
//! of the attempts in flight, and only destinations with an attempt in flight are remembered.

use std::{collections::HashMap, sync::Arc};

use tokio::sync::Semaphore;

/// The per-destination semaphores, keyed by [`host_key`]. Only destinations with an attempt
/// in flight keep an entry: idle ones are dropped when a new one is added, so the map holds
/// at most one entry per attempt in flight and the newcomer, whatever names partners use.
#[derive(Default)]
pub struct Hosts(HashMap<String, Arc<Semaphore>>);

impl Hosts {
    /// The semaphore of `key`, made with `per_host` permits if the destination has none.
    pub fn slots(&mut self, key: String, per_host: usize) -> Arc<Semaphore> {
        if !self.0.contains_key(&key) {
            // A held permit owns a clone of its semaphore (`acquire_owned`), so a count of 1
            // means only the map holds it: no attempt in flight, nothing to remember.
            self.0.retain(|_, slots| Arc::strong_count(slots) > 1);
        }
        self.0
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(per_host.max(1))))
            .clone()
    }
}

/// The destination a delivery counts against: host and port (two partners' receivers on one
/// host but on different ports are different destinations). Not the resolved address: the
/// guarded client resolves at connect time, inside the HTTP client, so the sender cannot see
/// it without a second lookup that may answer differently.
pub fn host_key(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_host_and_port() {
        assert_eq!(host_key("https://Example.com/hook"), "example.com:443");
        assert_eq!(host_key("http://example.com/hook"), "example.com:80");
        assert_eq!(host_key("http://example.com:8080/a"), "example.com:8080");
        assert_eq!(host_key("http://127.0.0.1:9999/"), "127.0.0.1:9999");
        assert_eq!(host_key("http://[::1]:9/"), "[::1]:9");
        assert_ne!(
            host_key("http://a.example.com/"),
            host_key("http://b.example.com/")
        );
        assert_eq!(host_key("not a url"), "");
    }

    /// L7: 10 000 random subdomains, one delivery each, 8 in flight at a time: the map holds
    /// the destinations with an attempt in flight and one more, never every name ever seen.
    #[test]
    fn the_per_host_map_holds_only_destinations_in_flight() {
        let mut hosts = Hosts::default();
        let mut in_flight = std::collections::VecDeque::new();
        let mut largest = 0;
        for n in 0..10_000 {
            let key = host_key(&format!("https://r{n:05}.tarpit.example/hook"));
            let permit = hosts
                .slots(key, 2)
                .try_acquire_owned()
                .expect("a new destination has a free slot");
            in_flight.push_back(permit);
            if in_flight.len() > 8 {
                in_flight.pop_front();
            }
            largest = largest.max(hosts.0.len());
        }
        assert!(largest <= 9, "the map grew to {largest} destinations");
        drop(in_flight);
        hosts.slots(host_key("https://partner.example/hook"), 2);
        assert_eq!(hosts.0.len(), 1, "idle destinations are forgotten");
    }

    #[test]
    fn a_busy_destination_keeps_its_count() {
        let mut hosts = Hosts::default();
        let key = host_key("https://slow.example/hook");
        let held: Vec<_> = (0..2)
            .map(|_| hosts.slots(key.clone(), 2).try_acquire_owned().unwrap())
            .collect();
        // Other destinations come and go; the busy one's share stays taken.
        for n in 0..100 {
            hosts.slots(format!("other{n}:443"), 2);
        }
        assert!(hosts.slots(key.clone(), 2).try_acquire_owned().is_err());
        drop(held);
        assert!(hosts.slots(key, 2).try_acquire_owned().is_ok());
    }
}
