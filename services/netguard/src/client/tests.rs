//! `check_url` and header parsing: pure functions, no traffic.

use super::*;

fn deny() -> NetPolicy {
    NetPolicy::default()
}

fn local() -> NetPolicy {
    NetPolicy {
        allow_private_networks: true,
    }
}

fn check(policy: NetPolicy, url: &str) -> Result<(), GuardError> {
    check_url(
        &policy,
        &Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}")),
    )
}

#[test]
fn literal_addresses_are_checked() {
    let blocked = [
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://017700000001/",
        "http://0/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1:8080/",
        "https://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://255.255.255.255/",
        "http://[2001:db8::1]/",
    ];
    for url in blocked {
        match check(deny(), url) {
            Err(GuardError::Blocked { reason, .. }) => assert!(!reason.class.is_public(), "{url}"),
            other => panic!("{url}: expected a block, got {other:?}"),
        }
    }
    for url in ["http://8.8.8.8/", "https://[2606:4700:4700::1111]:8443/x"] {
        assert_eq!(check(deny(), url), Ok(()), "{url}");
    }
}

#[test]
fn local_policy_lets_loopback_literals_through_but_not_unspecified() {
    for url in [
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://10.0.0.1/",
    ] {
        assert_eq!(check(local(), url), Ok(()), "{url}");
    }
    for url in ["http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/"] {
        assert!(
            matches!(check(local(), url), Err(GuardError::Blocked { .. })),
            "{url}"
        );
    }
}

#[test]
fn names_are_left_to_the_resolver() {
    for url in [
        "http://localhost/",
        "https://example.com/hook",
        "http://metadata.google.internal/",
    ] {
        assert_eq!(check(deny(), url), Ok(()), "{url}");
    }
}

#[test]
fn schemes_and_credentials() {
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://example.com/",
        "data:text/plain,hi",
        "ws://example.com/",
        "unix:/var/run/docker.sock",
    ] {
        assert!(
            matches!(check(local(), url), Err(GuardError::Scheme(_))),
            "{url}"
        );
    }
    for url in [
        "http://user@example.com/",
        "http://user:pw@example.com/",
        "http://:pw@example.com/",
    ] {
        assert_eq!(check(local(), url), Err(GuardError::Credentials), "{url}");
    }
}

#[test]
fn parse_url_reports_bad_input() {
    let client = GuardedClient::new(GuardConfig::default()).unwrap();
    assert!(matches!(
        client.parse_url("not a url"),
        Err(GuardError::InvalidUrl(_))
    ));
    assert!(matches!(
        client.parse_url("http://[fe80::1%25eth0]/"),
        Err(GuardError::InvalidUrl(_))
    ));
    assert!(matches!(
        client.parse_url("http://[::1]/"),
        Err(GuardError::Blocked { .. })
    ));
    assert_eq!(
        client.parse_url("https://example.com/a").unwrap().as_str(),
        "https://example.com/a"
    );
}

#[test]
fn default_config() {
    let config = GuardConfig::default();
    assert!(!config.allow_private_networks);
    assert_eq!(config.connect_timeout, Duration::from_secs(10));
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(
        config.user_agent,
        format!("Atelier/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn retry_after_forms() {
    let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("-5", now), None);
    assert_eq!(parse_retry_after("soon", now), None);
}
