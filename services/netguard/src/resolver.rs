//! DNS resolver for reqwest that hands the connector only addresses the policy permits.
//!
//! Filtering here, rather than resolving once up front and checking, means the address checked
//! is the address connected to: a name that answers public first and private second (DNS
//! rebinding) is judged on the answer actually used.

use std::io;
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::classify::{NetPolicy, permits};
use crate::error::GuardError;

#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardResolver {
    pub(crate) policy: NetPolicy,
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_permitted(policy, &host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Resolves `host` and keeps the permitted addresses. Fails with [`GuardError::Blocked`] when
/// the name resolved but nothing survived, so callers can tell a refusal from a DNS failure.
pub(crate) async fn resolve_permitted(
    policy: NetPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    // Port 0: reqwest substitutes the URL's port (or the scheme default) afterwards.
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {host}: {e}")))?
        .collect();

    let mut permitted = Vec::with_capacity(resolved.len());
    let mut first_block = None;
    for addr in resolved {
        match permits(&policy, addr.ip()) {
            Ok(()) => permitted.push(addr),
            Err(reason) => {
                tracing::debug!(host, %reason, "dropping blocked address");
                first_block.get_or_insert(reason);
            }
        }
    }
    if !permitted.is_empty() {
        return Ok(permitted);
    }
    match first_block {
        Some(reason) => {
            tracing::warn!(host, %reason, "refusing destination");
            Err(Box::new(GuardError::Blocked {
                host: host.to_owned(),
                reason,
            }))
        }
        None => Err(Box::new(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {host}: no addresses"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::AddressClass;
    use crate::error::guard_error;

    #[tokio::test]
    async fn localhost_is_refused_by_default() {
        let err = GuardResolver {
            policy: NetPolicy::default(),
        }
        .resolve("localhost".parse().unwrap())
        .await
        .err()
        .expect("localhost must be refused");
        let guard = guard_error(err.as_ref()).expect("a guard error");
        let reason = guard.block_reason().unwrap();
        assert_eq!(reason.class, AddressClass::Loopback);
        assert!(
            guard
                .to_string()
                .starts_with("destination localhost is blocked: ")
        );
    }

    #[tokio::test]
    async fn localhost_is_allowed_when_opted_in() {
        let policy = NetPolicy {
            allow_private_networks: true,
        };
        let addrs = resolve_permitted(policy, "localhost").await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn ip_strings_reaching_the_resolver_are_checked_too() {
        for host in ["127.0.0.1", "::1", "0.0.0.0"] {
            let err = resolve_permitted(NetPolicy::default(), host)
                .await
                .expect_err(host);
            assert!(guard_error(err.as_ref()).is_some(), "{host}: {err}");
        }
        let local = NetPolicy {
            allow_private_networks: true,
        };
        let err = resolve_permitted(local, "0.0.0.0").await.unwrap_err();
        assert!(guard_error(err.as_ref()).is_some());
    }
}
