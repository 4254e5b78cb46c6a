//! Who sent a request: the peer, or, when the peer is a reverse proxy named in
//! `--trusted-proxies`, the client that proxy names in `X-Forwarded-For`.
//! Anyone else's `X-Forwarded-For` is ignored: it would let a client pick the
//! address that throttling counts.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it saw: the rightmost one that is not a
    // trusted proxy is the client (what is left of it, the client could forge).
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
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
}
