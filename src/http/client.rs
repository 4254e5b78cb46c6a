//! Who sent a request: the peer, or, when the peer is a reverse proxy named in
//! `--trusted-proxies`, the client that proxy names in `X-Forwarded-For`.
//! Anyone else's `X-Forwarded-For` is ignored: it would let a client pick the
//! address that throttling counts.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        if trusted.is_empty() && peer.is_loopback() && headers.contains_key("x-forwarded-for") {
            warn_once_untrusted_proxy(peer);
        }
        return peer;
    }
    // Each proxy appends the address it saw, so the list is read from the
    // right: trusted hops are skipped, the first other address is the
    // client. Everything left of it is the client's own words. An entry that
    // is not an address ends the walk at the last hop known good.
    let mut client = peer;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    for entry in entries.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Ok(hop) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = hop.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// A proxy on this host forwards clients' addresses that wabridge ignores:
/// every client then looks like the proxy to the login throttle. Said once.
fn warn_once_untrusted_proxy(peer: IpAddr) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(%peer, "X-Forwarded-For from a local peer is ignored: if a reverse proxy runs here, set --trusted-proxies (e.g. 127.0.0.1/32) so throttling counts each client, not the proxy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(
            client_ip(&forged, proxy, &[]),
            proxy,
            "nothing trusted by default"
        );
        let trusted: Vec<IpNet> = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let outsider: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(client_ip(&forged, outsider, &trusted), outsider);
        assert_eq!(
            client_ip(
                &headers(&["203.0.113.9, 198.51.100.7", "10.1.2.3"]),
                proxy,
                &trusted
            ),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the client's own entries on the left are not believed"
        );
        assert_eq!(client_ip(&headers(&[]), proxy, &trusted), proxy);
        assert_eq!(
            client_ip(&headers(&["10.0.0.5"]), proxy, &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn garbage_in_the_header_does_not_let_the_client_pick_its_address() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let seen_by_nginx: IpAddr = "198.51.100.7".parse().unwrap();
        for forged in [
            "1.2.3.4, x",
            "1.2.3.4, unknown",
            "1.2.3.4,, ",
            "1.2.3.4, 5.6.7.8:80",
        ] {
            let h = headers(&[&format!("{forged}, {seen_by_nginx}")]);
            assert_eq!(client_ip(&h, proxy, &trusted), seen_by_nginx, "{forged}");
        }
        let h = headers(&["198.51.100.7, garbage"]);
        assert_eq!(
            client_ip(&h, proxy, &trusted),
            proxy,
            "an unreadable last hop: the proxy"
        );
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(&headers(&[]), mapped, &[]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}
