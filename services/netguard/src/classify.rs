//! Pure address classification: decides which IP addresses a user-supplied URL may reach.
//!
//! Everything here is a function of the address alone, so every encoding can be tested without
//! sending a packet. Anything not positively known to be globally routable unicast is non-public.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of destination an address is, after seeing through IPv6 forms that embed IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast.
    Public,
    /// `0.0.0.0/8`, `::`: Linux treats a connect to these as a connect to the local host.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT and often cluster-internal networks.
    SharedCgnat,
    /// `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7` (AWS metadata is `fd00:ec2::254`).
    UniqueLocal,
    /// `fec0::/10`, deprecated but still routed by some stacks.
    SiteLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`.
    Benchmarking,
    /// `192.0.0/24` and `2001::/23`: protocol assignments (NAT64 discovery, PCP, ORCHID…).
    ProtocolAssignment,
    /// Teredo `2001::/32`: the real endpoint is hidden behind a relay, so it cannot be checked.
    Tunnel,
    /// `240/4`, the deprecated 6to4 relay anycast, IPv6 outside `2000::/3`, discard-only, SRv6.
    Reserved,
}

impl AddressClass {
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// Destinations a local or test deployment may opt into: they are someone's own network.
    /// The rest (unspecified, multicast, broadcast, reserved…) never name a legitimate server.
    pub fn is_local_network(self) -> bool {
        matches!(
            self,
            AddressClass::Loopback
                | AddressClass::Private
                | AddressClass::SharedCgnat
                | AddressClass::LinkLocal
                | AddressClass::UniqueLocal
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedCgnat => "shared (cgnat)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::ProtocolAssignment => "protocol-assignment",
            AddressClass::Tunnel => "tunnel (teredo)",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies an address; IPv6 forms that carry an IPv4 address are judged by that address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

pub fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (10, _, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedCgnat,
        (127, _, _) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 0, 0) => AddressClass::ProtocolAssignment,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (192, 88, 99) => AddressClass::Reserved,
        (192, 168, _) => AddressClass::Private,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (224..=239, _, _) => AddressClass::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => AddressClass::Broadcast,
        (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

pub fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let seg = ip.segments();
    let bits = ip.to_bits();

    if ip == Ipv6Addr::UNSPECIFIED {
        return AddressClass::Unspecified;
    }
    if ip == Ipv6Addr::LOCALHOST {
        return AddressClass::Loopback;
    }
    // ::a.b.c.d (compatible, deprecated but still routed by some stacks), ::ffff:a.b.c.d (mapped)
    // and ::ffff:0:a.b.c.d (SIIT translated) all deliver to the embedded IPv4 address.
    if bits >> 32 == 0 || bits >> 32 == 0xffff || bits >> 32 == 0xffff_0000 {
        return classify_v4(low_v4(bits));
    }
    // NAT64 well-known prefix (RFC 6052): the translator forwards to the embedded address.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return classify_v4(low_v4(bits));
    }
    // Local-use NAT64 (RFC 8215): the operator picks the prefix length, so check every
    // RFC 6052 layout the IPv4 address could sit in; a slot in 0/8 is read as "not this layout"
    // since it spans the zero padding. A public target is still only reachable inside that
    // operator's network.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        let candidates: Vec<Ipv4Addr> = nat64_local_use_candidates(bits)
            .into_iter()
            .filter(|v4| v4.octets()[0] != 0)
            .collect();
        if candidates.is_empty() {
            return AddressClass::Unspecified;
        }
        return candidates
            .into_iter()
            .map(classify_v4)
            .find(|class| !class.is_public())
            .unwrap_or(AddressClass::Private);
    }
    // 6to4 (RFC 3056): the relay tunnels to the IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return classify_v4(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return AddressClass::Tunnel;
    }
    if seg[0] == 0x2001 && seg[1] & 0xfe00 == 0 {
        return AddressClass::ProtocolAssignment;
    }
    if (seg[0] == 0x2001 && seg[1] == 0x0db8) || (seg[0] == 0x3fff && seg[1] & 0xf000 == 0) {
        return AddressClass::Documentation;
    }
    if seg[0] & 0xff00 == 0xff00 {
        return AddressClass::Multicast;
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return AddressClass::LinkLocal;
    }
    if seg[0] & 0xffc0 == 0xfec0 {
        return AddressClass::SiteLocal;
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return AddressClass::UniqueLocal;
    }
    if seg[0] == 0x5f00 {
        return AddressClass::Reserved;
    }
    // Only 2000::/3 is allocated for global unicast; everything else left (100::/64 discard,
    // unassigned space) has no business being a webhook target.
    if seg[0] & 0xe000 == 0x2000 {
        AddressClass::Public
    } else {
        AddressClass::Reserved
    }
}

fn low_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from_bits(bits as u32)
}

/// The IPv4 addresses an RFC 6052 layout could carry for the prefix lengths that fit in a /48,
/// shortest prefix first. A layout only counts when its suffix is zero, as the RFC asks; octet
/// 8 (`u`) is always skipped.
fn nat64_local_use_candidates(bits: u128) -> Vec<Ipv4Addr> {
    let o = bits.to_be_bytes();
    let zero_from = |i: usize| o[i..].iter().all(|&b| b == 0);
    let mut out = Vec::with_capacity(4);
    if zero_from(11) {
        out.push(Ipv4Addr::new(o[6], o[7], o[9], o[10]));
    }
    if zero_from(12) {
        out.push(Ipv4Addr::new(o[7], o[9], o[10], o[11]));
    }
    if zero_from(13) {
        out.push(Ipv4Addr::new(o[9], o[10], o[11], o[12]));
    }
    out.push(low_v4(bits));
    out
}

/// Which destinations a client may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetPolicy {
    /// Lets loopback, private, CGNAT, link-local and unique-local addresses through. Only for
    /// local use and tests: in a cluster it exposes the metadata service and internal APIs.
    pub allow_private_networks: bool,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is a {class} address")]
pub struct BlockReason {
    pub ip: IpAddr,
    pub class: AddressClass,
}

/// Decides whether `policy` lets a connection to `ip` happen.
pub fn permits(policy: &NetPolicy, ip: IpAddr) -> Result<(), BlockReason> {
    let class = classify(ip);
    if class.is_public() || (policy.allow_private_networks && class.is_local_network()) {
        Ok(())
    } else {
        Err(BlockReason { ip, class })
    }
}

#[cfg(test)]
mod tests;
