//! SSRF-guarded HTTP: the one client Atelier uses for every user-supplied URL.
//!
//! Addresses are checked where the connection is made (the DNS resolver and the IP-literal
//! check in [`GuardedClient::check_url`]), so a name that resolves differently on a second
//! lookup cannot slip a private address past the guard.

pub mod classify;
mod client;
mod error;
mod resolver;

pub use classify::{AddressClass, BlockReason, NetPolicy, classify, permits};
pub use client::{Download, Fetched, GuardConfig, GuardedClient, Sent, check_url};
pub use error::{FetchError, GuardError, blocked_reason, guard_error, status_is_retryable};
