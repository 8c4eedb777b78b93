//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a bare address for one host),
//! as `server.trusted_proxies` lists them.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Parses `addr/len` or a bare address. Host bits must be zero (`10.0.0.1/8` is refused, as
    /// it usually means a typo for a host or for another range).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            format!("{text:?} is not an address range like \"10.0.0.0/8\" or \"192.0.2.7\"")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= max && !len.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "{text:?}: the prefix length must be a number from 0 to {max}"
                    ))
                }
            },
        };
        let cidr = Cidr {
            network,
            prefix_len,
        };
        if masked(network, prefix_len) != bits(network) {
            return Err(format!(
                "{text:?} has bits set after the first {prefix_len} (did you mean {}/{prefix_len}?)",
                from_bits(masked(network, prefix_len), network.is_ipv4())
            ));
        }
        Ok(cidr)
    }

    /// Whether `addr` lies in this range. An IPv4 address seen as IPv6 (`::ffff:10.1.2.3`, as a
    /// dual-stack listener reports it) counts as the IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical_ip(addr);
        addr.is_ipv4() == self.network.is_ipv4()
            && masked(addr, self.prefix_len) == bits(self.network)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address as it is.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The address as a 128-bit number, left-aligned (an IPv4 address fills the top 32 bits), so one
/// mask works for both families.
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn masked(addr: IpAddr, prefix_len: u8) -> u128 {
    let mask = match prefix_len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n)),
    };
    bits(addr) & mask
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(((bits >> 96) as u32).into())
    } else {
        IpAddr::V6(bits.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("::a00:1")));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert_eq!(ten.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        for (bad, why) in [
            ("10.0.0.0/33", "from 0 to 32"),
            ("10.0.0.0/-1", "from 0 to 32"),
            ("10.0.0.0/+8", "from 0 to 32"),
            ("10.0.0.0/", "from 0 to 32"),
            ("::/129", "from 0 to 128"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
            ("10.0.0/8", "not an address range"),
            ("", "not an address range"),
            ("localhost", "not an address range"),
            (" 10.0.0.0/8", "not an address range"),
        ] {
            let err = Cidr::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
