//! The URL clients reach the server at, for the URLs it hands out (clone URLs, LFS actions,
//! bundle URLs).
//!
//! `--public-url` wins. Without it, a request that came through a trusted proxy
//! (`--trusted-proxy CIDR`: the connection's peer address is in one of the ranges) is answered
//! with the scheme and host the proxy saw (`X-Forwarded-Proto`, `X-Forwarded-Host`); any other
//! request gets the listen address. Forwarded headers from anyone else are ignored, so a client
//! cannot make the server hand out links to a host of its choosing.
//!
//! The URL is set for the duration of one request ([`with_base_url`]) and read where links
//! are made ([`base_url`]); push-event payloads, made with no request, use the fixed URL.

use std::net::IpAddr;

use http::Request;

use crate::app::App;

tokio::task_local! {
    static BASE_URL: String;
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
pub fn request_base_url<B>(app: &App, req: &Request<B>) -> String {
    if app.public_url_fixed || app.trusted_proxies.is_empty() {
        return app.public_url.clone();
    }
    let Some(crate::serve::Peer(peer)) = req.extensions().get::<crate::serve::Peer>() else {
        return app.public_url.clone();
    };
    if !app.trusted_proxies.iter().any(|c| c.contains(peer.ip())) {
        return app.public_url.clone();
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
        (Some(proto), None) => match app.public_url.split_once("://") {
            Some((_, rest)) => format!("{proto}://{rest}"),
            None => app.public_url.clone(),
        },
        (None, None) => app.public_url.clone(),
    }
}

/// Run `f` with `url` as the base URL of the links it makes.
pub async fn with_base_url<F: std::future::Future>(url: String, f: F) -> F::Output {
    BASE_URL.scope(url, f).await
}

/// The base URL for links: the request's (see [`request_base_url`]) inside
/// [`with_base_url`], the fixed public URL elsewhere.
pub fn base_url(app: &App) -> String {
    BASE_URL
        .try_with(Clone::clone)
        .unwrap_or_else(|_| app.public_url.clone())
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
