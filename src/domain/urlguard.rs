//! Listener URLs must not become a way into the host's private network: a target
//! must resolve to global addresses only, unless the admin allowed its network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::Url;

use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct UrlGuard {
    pub allow: Vec<IpNet>,
}

impl UrlGuard {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_global(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Why an address is refused, phrased for the person registering the listener.
    pub fn refusal(&self, ip: IpAddr) -> String {
        format!(
            "{ip} is not a public address; add its network to --webhook-allow-net (WABRIDGE_WEBHOOK_ALLOW_NET) to allow it"
        )
    }
}

/// Syntax of a listener URL: http(s), a host, no credentials.
pub fn parse_listener_url(raw: &str) -> Result<Url, Error> {
    let url =
        Url::parse(raw).map_err(|e| Error::invalid("url", format!("not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid("url", "must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            "url",
            "must not carry a user name or password; authenticate with the webhook signature",
        ));
    }
    Ok(url)
}

pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches an IPv4 address: judge that one.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_global_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, deprecated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_global() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_global(ip(s)), "{s} must not count as global");
        }
    }

    #[test]
    fn public_addresses_are_global() {
        for s in [
            "8.8.8.8",
            "172.32.0.1",
            "157.240.1.1",
            "2a03:2880::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_global(ip(s)), "{s} is global");
        }
    }

    #[test]
    fn the_allow_list_opens_a_network() {
        let guard = UrlGuard {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(!guard.permits(ip("10.0.0.1")));
    }

    #[test]
    fn listener_url_syntax() {
        assert!(parse_listener_url("https://flows.example.com/hook").is_ok());
        assert!(parse_listener_url("ftp://flows.example.com/hook").is_err());
        assert!(parse_listener_url("https://user:pw@flows.example.com/").is_err());
        assert!(parse_listener_url("nonsense").is_err());
    }
}
