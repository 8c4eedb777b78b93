//! `X-Forwarded-For` behind `server.trusted_proxies`: whatever the headers say, the client is the
//! peer or an address the headers name, never one a client could choose from an untrusted peer,
//! and the header passed upstream is a clean list of addresses ending in the peer.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use hubgate::config::{canonical_ip, Cidr};
use hubgate::proxy::client_addr::TrustedProxies;
use libfuzzer_sys::fuzz_target;

/// Whether one of the hops in `text` is `ip`, however it was written (`[v6]:port`, an IPv4-mapped
/// IPv6 address, a zero-compressed form).
fn names(text: &str, ip: IpAddr) -> bool {
    text.split(['\0', ',']).map(str::trim).any(|hop| {
        let parsed = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
            .or_else(|| {
                hop.strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .and_then(|h| h.parse().ok())
            });
        parsed.map(canonical_ip) == Some(ip)
    })
}

fuzz_target!(|data: &[u8]| {
    // First byte: which peer; the rest: header values separated by NUL.
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let trusted = TrustedProxies::new(&[
        Cidr::parse("10.0.0.0/8").unwrap(),
        Cidr::parse("127.0.0.1").unwrap(),
        Cidr::parse("2001:db8::/32").unwrap(),
    ]);
    let peer: IpAddr = match which % 3 {
        0 => "127.0.0.1".parse().unwrap(),
        1 => "10.1.2.3".parse().unwrap(),
        _ => "203.0.113.9".parse().unwrap(),
    };
    let values: Vec<&str> = text.split('\0').collect();
    let client = trusted.client(peer, values.iter().copied());
    if which % 3 == 2 {
        assert_eq!(client.ip, peer, "an untrusted peer chose its address");
        assert_eq!(client.forwarded_for, peer.to_string());
    } else if client.ip != peer {
        assert!(names(text, client.ip), "{client:?} not in {text:?}");
    }
    for hop in client.forwarded_for.split(", ") {
        assert!(hop.parse::<IpAddr>().is_ok(), "{hop:?} in {:?}", client.forwarded_for);
    }
    assert!(client.forwarded_for.ends_with(&peer.to_string()));
});
