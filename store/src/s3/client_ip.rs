//! Which address a request comes from, for the access log: the TCP peer, unless the peer is a
//! configured trusted proxy (`trusted_proxies`), in which case `X-Forwarded-For` says, read
//! from the right as nginx's `real_ip_recursive` does: the first address that is not itself a
//! trusted proxy is the client. Entries left of it were written by the client and prove
//! nothing, so they are never taken; a peer that is not trusted cannot name anyone.

use std::net::IpAddr;

pub use crate::access::IpNet;

/// The client's address: `peer`, or what trusted proxies say in `X-Forwarded-For` (all the
/// request's such headers, in order).
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        // Garbage where an address should be: the last trusted hop is all we know.
        let Some(ip) = parse_entry(entry) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(xff: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_may_name_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&["198.51.100.9"]);
        assert_eq!(
            client_ip(ip("203.0.113.5"), &h, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.0/24"]);
        // The client wrote "1.1.1.1" itself; 198.51.100.9 is who the proxies saw.
        let h = headers(&["1.1.1.1, 198.51.100.9", "192.0.2.4:4711, 10.0.0.7"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.9"));
        let all_trusted = headers(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &all_trusted, &trusted),
            ip("10.0.0.9")
        );
        let garbage = headers(&["198.51.100.9, nonsense, 10.0.0.8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &garbage, &trusted),
            ip("10.0.0.8")
        );
        let v6 = headers(&["[2001:db8::1]:80"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &v6, &trusted), ip("2001:db8::1"));
    }
}
