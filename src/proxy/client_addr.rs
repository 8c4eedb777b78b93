//! Who the client is. The TCP peer, unless the peer is one of `server.trusted_proxies`: then the
//! peer passed on what `X-Forwarded-For` says, read from the right — each trusted address handed
//! the request on, and the first untrusted one is the client. Whatever stands left of it was
//! written by the client itself and is believed by nobody.
//!
//! The address decides the sign-in lockout's per-address count, so a client that could choose it
//! would guess without limit; and behind a load balancer without this, every client shares the
//! balancer's address and one guesser locks everyone out.

use std::net::{IpAddr, SocketAddr};

use crate::config::{canonical_ip, Cidr};

/// Hops read from `X-Forwarded-For` at most: a longer chain is a client padding the header.
const MAX_HOPS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client, as the lockout and the logs name it.
    pub ip: IpAddr,
    /// The `X-Forwarded-For` an upstream receives: the client, the trusted hops after it, and the
    /// peer — never what the client wrote, so an app reading the leftmost address is not fooled.
    pub forwarded_for: String,
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(ranges: &[Cidr]) -> Self {
        TrustedProxies(ranges.to_vec())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// `forwarded` is every `X-Forwarded-For` header value in the order they arrived.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl DoubleEndedIterator<Item = &'a str>,
    ) -> ClientAddr {
        let peer = canonical_ip(peer);
        if !self.trusts(peer) {
            // Nobody vouches for more: the peer is the client (the common case, without a list).
            return ClientAddr {
                ip: peer,
                forwarded_for: peer.to_string(),
            };
        }
        // From the gateway outwards: the peer, then each hop a trusted address vouches for.
        let mut chain = vec![peer];
        let hops = forwarded.rev().flat_map(|value| value.rsplit(','));
        for hop in hops.take(MAX_HOPS) {
            // An entry that is no address ends what can be believed: the client is the last
            // address read.
            let Some(ip) = parse_hop(hop.trim()) else {
                break;
            };
            chain.push(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        let ip = chain.last().copied().unwrap_or(peer);
        let forwarded_for = chain
            .iter()
            .rev()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        ClientAddr { ip, forwarded_for }
    }
}

/// An address as proxies write it: bare, or with a port (`192.0.2.1:4711`, `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(canonical_ip(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let ranges: Vec<Cidr> = list.iter().map(|c| Cidr::parse(c).unwrap()).collect();
        TrustedProxies::new(&ranges)
    }

    fn client(p: &TrustedProxies, peer: &str, headers: &[&str]) -> (String, String) {
        let c = p.client(peer.parse().unwrap(), headers.iter().copied());
        (c.ip.to_string(), c.forwarded_for)
    }

    fn pair(ip: &str, xff: &str) -> (String, String) {
        (ip.to_string(), xff.to_string())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"]);
        for headers in [&[][..], &["1.2.3.4"], &["10.0.0.1, 1.2.3.4"], &["garbage"]] {
            assert_eq!(
                client(&p, "203.0.113.5", headers),
                pair("203.0.113.5", "203.0.113.5")
            );
        }
        assert_eq!(
            client(&TrustedProxies::default(), "10.0.0.1", &["1.2.3.4"]),
            pair("10.0.0.1", "10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        assert_eq!(client(&p, "10.0.0.1", &[]), pair("10.0.0.1", "10.0.0.1"));
        assert_eq!(
            client(&p, "10.0.0.1", &["6.6.6.6, 198.51.100.7, 10.2.2.2"]),
            pair("198.51.100.7", "198.51.100.7, 10.2.2.2, 10.0.0.1")
        );
        // Several headers read as one list, in order.
        assert_eq!(
            client(&p, "10.0.0.1", &["6.6.6.6", "198.51.100.7", "10.2.2.2"]),
            pair("198.51.100.7", "198.51.100.7, 10.2.2.2, 10.0.0.1")
        );
        // Every hop trusted: the leftmost is as far as can be known.
        assert_eq!(
            client(&p, "127.0.0.1", &["10.3.3.3, 10.2.2.2"]),
            pair("10.3.3.3", "10.3.3.3, 10.2.2.2, 127.0.0.1")
        );
        // Ports, IPv6, mapped IPv4, odd spacing.
        assert_eq!(
            client(&p, "::ffff:10.0.0.1", &[" [2001:db8::1]:443 ,10.2.2.2:80"]),
            pair("2001:db8::1", "2001:db8::1, 10.2.2.2, 10.0.0.1")
        );
        // Not an address: nothing further left is believed.
        assert_eq!(
            client(&p, "10.0.0.1", &["198.51.100.7, unknown"]),
            pair("10.0.0.1", "10.0.0.1")
        );
        assert_eq!(
            client(&p, "10.0.0.1", &["unknown, 198.51.100.7"]),
            pair("198.51.100.7", "198.51.100.7, 10.0.0.1")
        );
        // A padded chain of trusted-looking hops is read only so far.
        let padded = vec!["10.9.9.9"; 100].join(",");
        let (ip, xff) = client(&p, "10.0.0.1", &[&padded]);
        assert_eq!(ip, "10.9.9.9");
        assert_eq!(xff.split(", ").count(), MAX_HOPS + 1);
    }
}
