//! Egress address classes: which IP addresses are public, and the
//! arithmetic of address blocks.
//!
//! Policy: an address is non-public when it is in one of the blocks of
//! [`non_public`] (loopback, private, link-local, shared/CGNAT, multicast,
//! unspecified, documentation, benchmarking and reserved ranges), in IPv4,
//! IPv6, or an IPv6 form that stands for an IPv4 address (IPv4-mapped,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), which is judged as that IPv4
//! address.
//!
//! Invariant: pure functions of their arguments; no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What decides whether a resolved address may be connected to. The
/// network checks **every** address a destination resolves to against it
/// before connecting to any (see [`Network::route`](crate::net::Network::route)).
pub trait Egress: Send + Sync {
    /// `Ok` when a connection to `addr` may be made; else why not.
    fn check(&self, addr: SocketAddr) -> Result<(), String>;
}

/// Every address may be reached: for the host's own connections to the
/// server its operator configured (the worker connection, the server API).
/// Never for a destination a guest chose.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unrestricted;

impl Egress for Unrestricted {
    fn check(&self, _: SocketAddr) -> Result<(), String> {
        Ok(())
    }
}

/// The prefix length that names exactly `ip`.
pub(crate) fn full_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Whether `ip` is in `net/prefix` (never across address families).
pub(crate) fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64 and
/// 6to4 forms), else the address itself.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if in_net(ip, IpAddr::V6(nat64), 96) {
        return IpAddr::V4(Ipv4Addr::from(bits as u32));
    }
    if v6.segments()[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32));
    }
    ip
}

/// What kind of non-public address `ip` is; `None` for a public one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    let v4_blocks: [(Ipv4Addr, u8, &str); 14] = [
        (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified"),
        (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
        (Ipv4Addr::new(100, 64, 0, 0), 10, "shared (CGNAT)"),
        (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
        (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
        (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
        (Ipv4Addr::new(192, 0, 0, 0), 24, "reserved"),
        (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
        (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
        (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
        (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
        (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
        (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
        (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
    ];
    let v6_blocks: [(Ipv6Addr, u8, &str); 8] = [
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
        (Ipv6Addr::LOCALHOST, 128, "loopback"),
        (Ipv6Addr::UNSPECIFIED, 96, "reserved (IPv4-compatible)"),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "reserved (discard)",
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation",
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "private (unique local)",
        ),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    ];
    match canonical(ip) {
        IpAddr::V4(v4) => v4_blocks
            .iter()
            .find(|(net, prefix, _)| in_net(IpAddr::V4(v4), IpAddr::V4(*net), *prefix))
            .map(|(_, _, kind)| *kind),
        IpAddr::V6(v6) => v6_blocks
            .iter()
            .find(|(net, prefix, _)| in_net(IpAddr::V6(v6), IpAddr::V6(*net), *prefix))
            .map(|(_, _, kind)| *kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every address in 127/8, 10/8 and fe80::/10 counts as non-public.
        #[test]
        fn private_ranges(a in 0u8.., b in 0u8.., c in 0u8.., seg in 0u16..) {
            proptest::prop_assert!(non_public(IpAddr::V4(Ipv4Addr::new(127, a, b, c))).is_some());
            proptest::prop_assert!(non_public(IpAddr::V4(Ipv4Addr::new(10, a, b, c))).is_some());
            proptest::prop_assert!(non_public(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, seg, 0, 0, 1))).is_some());
        }
    }
}
