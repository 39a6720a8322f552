//! Builds the clients from configuration pointed at the fakes, as a service would from its
//! environment.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use atelier_netguard::{GuardConfig, GuardedClient};
use atelier_providers::{PollPolicy, Providers, ProvidersConfig};

pub fn providers(vars: &[(&str, String)]) -> Providers {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    map.entry("ATELIER_PROVIDER_REQUEST_TIMEOUT_SECS".into())
        .or_insert_with(|| "20".into());
    let config = ProvidersConfig::from_lookup(|name| map.get(name).cloned()).expect("config");
    // The fakes live on loopback, which the guard refuses in production.
    let guard = GuardedClient::new(GuardConfig {
        allow_private_networks: true,
        ..GuardConfig::default()
    })
    .expect("guard");
    Providers::new(&config, guard).expect("providers")
}

/// Polls without waiting in earnest: the tests' fakes advance per poll, not per second.
pub fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        factor: 2.0,
        jitter: 0.25,
    }
}

pub fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}

/// Waits for `predicate` to hold, checking every few milliseconds; panics after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, predicate: impl Fn() -> bool) {
    let give_up = tokio::time::Instant::now() + timeout;
    while !predicate() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
