//! The URL clients reach the server at, for the URLs it hands out (clone URLs, LFS actions,
//! bundle URLs).
//!
//! `--public-url` wins. Without it, a request that came through a trusted proxy
//! (`--trusted-proxy CIDR`: the connection's peer address is in one of the ranges) is answered
//! with the scheme and host the proxy saw (`X-Forwarded-Proto`, `X-Forwarded-Host`); any other
//! request gets the listen address. Forwarded headers from anyone else are ignored, so a client
//! cannot make the server hand out links to a host of its choosing.
//!
//! The context layer works it out once per request and puts it in the request's extensions
//! ([`crate::request::BaseUrl`]), where handlers that make links read it; push-event payloads,
//! made with no request, use the fixed URL.

use std::net::IpAddr;

use http::Request;

use crate::request::Peer;

/// Where links point: `--public-url` (or the listen address), and the proxies trusted to say
/// which URL the client used.
#[derive(Debug, Clone, Default)]
pub struct PublicUrl {
    /// The URL clients reach this server at.
    pub url: String,
    /// `url` was given (`--public-url`): forwarded headers are not consulted.
    pub fixed: bool,
    /// Proxies whose `X-Forwarded-Proto`/`X-Forwarded-Host` name the URL clients used.
    pub trusted_proxies: Vec<Cidr>,
}

/// An address range, `10.0.0.0/8` or `fd00::/8` (a plain address is one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A host as `X-Forwarded-Host` may name it: a name or address with an optional port.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// The base URL for links made while answering `req`.
pub fn request_base_url<B>(public: &PublicUrl, req: &Request<B>) -> String {
    if public.fixed || public.trusted_proxies.is_empty() {
        return public.url.clone();
    }
    let Some(Peer(peer)) = req.extensions().get::<Peer>() else {
        return public.url.clone();
    };
    if !public.trusted_proxies.iter().any(|c| c.contains(peer.ip())) {
        return public.url.clone();
    }
    // The first value: the one the client-facing proxy set.
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    let proto = header("x-forwarded-proto").filter(|p| p == "https" || p == "http");
    let host = header("x-forwarded-host").filter(|h| valid_host(h));
    match (proto, host) {
        (Some(proto), Some(host)) => format!("{proto}://{host}"),
        (None, Some(host)) => format!("https://{host}"),
        (Some(proto), None) => match public.url.split_once("://") {
            Some((_, rest)) => format!("{proto}://{rest}"),
            None => public.url.clone(),
        },
        (None, None) => public.url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_should() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_hosts_are_names_only() {
        assert!(valid_host("git.example.com:8443"));
        assert!(valid_host("[::1]:443"));
        assert!(!valid_host("evil.com/path"));
        assert!(!valid_host("a b"));
        assert!(!valid_host(""));
    }
}
