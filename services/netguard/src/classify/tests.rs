//! Classifier vectors: every address here is only parsed and judged, never contacted.

use super::*;
use AddressClass::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The address a URL's host names, as the `url` crate normalises it (WHATWG IPv4 forms).
fn url_ip(s: &str) -> IpAddr {
    let url = url::Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        other => panic!("{s}: host {other:?} is not an address"),
    }
}

const DENY: NetPolicy = NetPolicy {
    allow_private_networks: false,
};
const LOCAL: NetPolicy = NetPolicy {
    allow_private_networks: true,
};

#[test]
fn ipv4_vectors() {
    let cases = [
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("100.63.255.255", Public),
        ("100.64.0.0", SharedCgnat),
        ("100.127.255.255", SharedCgnat),
        ("100.128.0.0", Public),
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("169.254.169.254", LinkLocal),
        ("169.254.0.1", LinkLocal),
        ("169.253.255.255", Public),
        ("172.15.255.255", Public),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.32.0.0", Public),
        ("192.0.0.8", ProtocolAssignment),
        ("192.0.0.170", ProtocolAssignment),
        ("192.0.1.1", Public),
        ("192.0.2.1", Documentation),
        ("192.88.99.1", Reserved),
        ("192.167.255.255", Public),
        ("192.168.0.1", Private),
        ("192.168.255.255", Private),
        ("198.17.255.255", Public),
        ("198.18.0.1", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("198.20.0.0", Public),
        ("198.51.100.7", Documentation),
        ("203.0.113.9", Documentation),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("240.0.0.1", Reserved),
        ("254.255.255.255", Reserved),
        ("255.255.255.254", Reserved),
        ("255.255.255.255", Broadcast),
        ("1.1.1.1", Public),
        ("8.8.8.8", Public),
        ("93.184.216.34", Public),
        ("223.255.255.255", Public),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), want, "{addr}");
    }
}

#[test]
fn ipv6_vectors() {
    let cases = [
        ("::", Unspecified),
        ("::1", Loopback),
        ("fe80::1", LinkLocal),
        ("febf:ffff::1", LinkLocal),
        ("fec0::1", SiteLocal),
        ("feff::1", SiteLocal),
        ("fc00::1", UniqueLocal),
        ("fd00:ec2::254", UniqueLocal),
        ("fdff:ffff::1", UniqueLocal),
        ("ff02::1", Multicast),
        ("ff05::1:3", Multicast),
        ("2001:db8::1", Documentation),
        ("3fff::1", Documentation),
        ("3fff:0fff::1", Documentation),
        ("3fff:1000::1", Public),
        ("2001::1", Tunnel),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Tunnel),
        ("2001:10::1", ProtocolAssignment),
        ("2001:1ff::1", ProtocolAssignment),
        ("2001:200::1", Public),
        ("100::1", Reserved),
        ("5f00::1", Reserved),
        ("1::1", Reserved),
        ("4000::1", Reserved),
        ("2606:4700:4700::1111", Public),
        ("2a00:1450:4001::200e", Public),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), want, "{addr}");
    }
}

#[test]
fn embedded_ipv4_is_seen_through() {
    let cases = [
        // IPv4-mapped
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:7f00:1", Loopback),
        ("::ffff:169.254.169.254", LinkLocal),
        ("::ffff:10.0.0.1", Private),
        ("::ffff:0.0.0.0", Unspecified),
        ("::ffff:255.255.255.255", Broadcast),
        ("::ffff:8.8.8.8", Public),
        // IPv4-compatible
        ("::127.0.0.1", Loopback),
        ("::7f00:1", Loopback),
        ("::a9fe:a9fe", LinkLocal),
        ("::192.168.1.1", Private),
        ("::0.0.0.2", Unspecified),
        ("::8.8.8.8", Public),
        // SIIT IPv4-translated
        ("::ffff:0:127.0.0.1", Loopback),
        ("::ffff:0:8.8.8.8", Public),
        // NAT64 well-known prefix
        ("64:ff9b::127.0.0.1", Loopback),
        ("64:ff9b::a9fe:a9fe", LinkLocal),
        ("64:ff9b::10.1.2.3", Private),
        ("64:ff9b::100.64.0.1", SharedCgnat),
        ("64:ff9b::8.8.8.8", Public),
        // NAT64 local-use prefix, /96 and /48 layouts
        ("64:ff9b:1::127.0.0.1", Loopback),
        ("64:ff9b:1::a9fe:a9fe", LinkLocal),
        ("64:ff9b:1:a9fe:a9:fe00::", LinkLocal),
        ("64:ff9b:1:7f00:0:100::", Loopback),
        ("64:ff9b:1::8.8.8.8", Private),
        // 6to4
        ("2002:7f00:1::", Loopback),
        ("2002:a9fe:a9fe::", LinkLocal),
        ("2002:a9fe:a9fe:1:2:3:4:5", LinkLocal),
        ("2002:c0a8:101::1", Private),
        ("2002::", Unspecified),
        ("2002:e000:1::", Multicast),
        ("2002:808:808::1", Public),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), want, "{addr}");
    }
}

#[test]
fn odd_url_spellings_resolve_to_their_real_class() {
    let cases = [
        ("http://2130706433/", Loopback),
        ("http://0x7f.0.0.1/", Loopback),
        ("http://0x7f000001/", Loopback),
        ("http://017700000001/", Loopback),
        ("http://0177.0.0.1/", Loopback),
        ("http://127.1/", Loopback),
        ("http://127.0.1/", Loopback),
        ("http://0/", Unspecified),
        ("http://0.0.0.0:8080/", Unspecified),
        ("http://[::]/", Unspecified),
        ("http://[::1]/", Loopback),
        ("http://[0:0:0:0:0:0:0:1]/", Loopback),
        ("http://[::ffff:127.0.0.1]/", Loopback),
        ("http://[::ffff:7f00:1]/", Loopback),
        ("http://[64:ff9b::a9fe:a9fe]/", LinkLocal),
        ("http://[64:ff9b::169.254.169.254]/", LinkLocal),
        ("http://[2002:a9fe:a9fe::]/", LinkLocal),
        ("http://169.254.169.254/latest/meta-data/", LinkLocal),
        ("http://0xa9fea9fe/", LinkLocal),
        ("http://2852039166/", LinkLocal),
        ("http://[fd00:ec2::254]/", UniqueLocal),
        ("http://[fe80::1]/", LinkLocal),
        ("http://10.0.0.1./", Private),
        ("http://0x0a.0.0.1/", Private),
        ("https://192.168.0.1:8443/", Private),
        ("http://100.100.100.200/", SharedCgnat),
        ("http://255.255.255.255/", Broadcast),
        ("http://4294967295/", Broadcast),
        ("http://[ff02::1]/", Multicast),
        ("http://8.8.8.8/", Public),
    ];
    for (url, want) in cases {
        assert_eq!(classify(url_ip(url)), want, "{url}");
    }
}

#[test]
fn zone_ids_are_not_a_way_around() {
    // The url crate rejects zone identifiers; if it ever accepts them the address must still be
    // judged link-local.
    for s in ["http://[fe80::1%25eth0]/", "http://[fe80::1%eth0]/"] {
        if let Ok(url) = url::Url::parse(s) {
            let class = match url.host() {
                Some(url::Host::Ipv6(v6)) => classify(IpAddr::V6(v6)),
                other => panic!("{s}: unexpected host {other:?}"),
            };
            assert_eq!(class, LinkLocal, "{s}");
        }
    }
}

#[test]
fn default_policy_allows_only_public() {
    for addr in [
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:1.1.1.1",
        "2002:808:808::",
    ] {
        assert_eq!(permits(&DENY, ip(addr)), Ok(()), "{addr}");
    }
    let blocked = [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "2001::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "2001:db8::1",
    ];
    for addr in blocked {
        let err = permits(&DENY, ip(addr)).expect_err(addr);
        assert_eq!(err.ip, ip(addr));
        assert!(!err.class.is_public());
    }
}

#[test]
fn local_policy_opens_own_networks_only() {
    let allowed = [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "fe80::1",
        "fd00:ec2::254",
        "8.8.8.8",
    ];
    for addr in allowed {
        assert_eq!(permits(&LOCAL, ip(addr)), Ok(()), "{addr}");
    }
    let never = [
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("::ffff:0.0.0.0", Unspecified),
        ("224.0.0.1", Multicast),
        ("ff02::1", Multicast),
        ("255.255.255.255", Broadcast),
        ("240.0.0.1", Reserved),
        ("192.0.2.1", Documentation),
        ("198.18.0.1", Benchmarking),
        ("2001::1", Tunnel),
    ];
    for (addr, class) in never {
        assert_eq!(
            permits(&LOCAL, ip(addr)),
            Err(BlockReason {
                ip: ip(addr),
                class
            }),
            "{addr}"
        );
    }
}

#[test]
fn block_reason_reads_well() {
    let err = permits(&DENY, ip("169.254.169.254")).unwrap_err();
    assert_eq!(err.to_string(), "169.254.169.254 is a link-local address");
    let err = permits(&DENY, ip("::ffff:127.0.0.1")).unwrap_err();
    assert_eq!(err.to_string(), "::ffff:127.0.0.1 is a loopback address");
}
