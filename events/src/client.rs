//! The HTTP client webhooks and mirrors go out through: HTTPS with the system's roots, no
//! redirects followed, a timeout on every request, bounded response bodies, and an address
//! policy checked on the addresses actually connected to (after DNS, so a name that resolves
//! to a private address is refused too).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why a request went nowhere or came back unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an `http`/`https` URL with a host.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The target is on a loopback, link-local, private or otherwise internal address.
    #[error("{host} is on a private or internal address ({addr}); the server refuses such targets unless started with --webhook-allow-private")]
    Private {
        /// The host as written in the URL.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
    },
    /// The target's name resolved only to addresses the policy refuses.
    #[error("{0}")]
    Refused(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS or the exchange failed.
    #[error("the request failed: {0}")]
    Failed(String),
    /// The answer's body is larger than the caller accepts.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// Whether `ip` is a public unicast address (what an outgoing request may reach by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Carrier-grade NAT (100.64/10) and benchmarking (198.18/15).
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A resolver that drops addresses the policy refuses; a name left without any fails.
#[derive(Clone)]
struct Resolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                let addr = found.first().map(|a| a.ip());
                return Err(std::io::Error::other(match addr {
                    Some(addr) => ClientError::Private { host, addr }.to_string(),
                    None => format!("{host} does not resolve"),
                }));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// A request body: whole, or streamed (a pack from a file).
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An answer, its body read whole (within the caller's limit).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: http::StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// The outgoing HTTP client.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<HttpConnector<Resolver>>,
        Body,
    >,
    allow_private: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Client {
    /// A client; `allow_private` lets requests reach loopback and private addresses.
    pub fn new(allow_private: bool) -> Result<Self, ClientError> {
        let mut http = HttpConnector::new_with_resolver(Resolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ClientError::Failed(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Client {
            inner,
            allow_private,
        })
    }

    /// Check that `url` is one this client may send to: `http(s)://host[:port]/...`, no
    /// credentials in it, and (when the host is an address) a public one.
    pub fn check_url(&self, url: &str) -> Result<http::Uri, ClientError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| ClientError::InvalidUrl("not a URL".into()))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(ClientError::InvalidUrl(
                    "only http and https URLs are supported".into(),
                ))
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::InvalidUrl("the URL has no host".into()))?;
        if authority.as_str().contains('@') {
            return Err(ClientError::InvalidUrl(
                "credentials do not belong in the URL; pass them separately".into(),
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(addr) = host.parse::<IpAddr>() {
            if !self.allow_private && !is_public(addr) {
                return Err(ClientError::Private {
                    host: host.to_owned(),
                    addr,
                });
            }
        }
        Ok(uri)
    }

    /// Send `req` and read the answer's body up to `max_body` bytes, all within `timeout`.
    pub async fn send(
        &self,
        req: Request<Body>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Answer, ClientError> {
        self.check_host(req.uri())?;
        let exchange = async {
            let resp: Response<hyper::body::Incoming> = self
                .inner
                .request(req)
                .await
                .map_err(|e| request_failed(&e))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        ClientError::TooLarge(max_body)
                    } else {
                        ClientError::Failed(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

impl Client {
    /// Send `req` and wait at most `timeout` for the answer's head: its status and body,
    /// which the caller streams (bounding each read itself).
    pub async fn open(
        &self,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, hyper::body::Incoming), ClientError> {
        self.check_host(req.uri())?;
        let resp = tokio::time::timeout(timeout, self.inner.request(req))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|e| request_failed(&e))?;
        let (parts, body) = resp.into_parts();
        Ok((parts.status, body))
    }
}

impl Client {
    /// Refuse a request to a private or internal address given as such (names are checked
    /// when they resolve).
    fn check_host(&self, uri: &http::Uri) -> Result<(), ClientError> {
        let host = (uri.host().unwrap_or_default())
            .trim_start_matches('[')
            .trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(addr) if !self.allow_private && !is_public(addr) => Err(ClientError::Private {
                host: host.to_owned(),
                addr,
            }),
            _ => Ok(()),
        }
    }
}

/// A request that failed: refused by the address policy, or failed otherwise.
fn request_failed(e: &(dyn std::error::Error + 'static)) -> ClientError {
    let message = describe(e);
    if message.contains("--webhook-allow-private") {
        ClientError::Refused(message)
    } else {
        ClientError::Failed(message)
    }
}

/// The innermost cause of a client error (hyper's outer message is "client error (Connect)").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(
                !is_public(internal.parse().unwrap_or_else(|_| panic!("{internal}"))),
                "{internal}"
            );
        }
        for public in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(
                is_public(public.parse().unwrap_or_else(|_| panic!("{public}"))),
                "{public}"
            );
        }
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_sent() -> Result<(), ClientError> {
        let strict = Client::new(false)?;
        assert!(matches!(
            strict.check_url("http://127.0.0.1:9/hook"),
            Err(ClientError::Private { .. })
        ));
        assert!(matches!(
            strict.check_url("http://[::1]/hook"),
            Err(ClientError::Private { .. })
        ));
        assert!(matches!(
            strict.check_url("ftp://example.com/"),
            Err(ClientError::InvalidUrl(_))
        ));
        assert!(matches!(
            strict.check_url("https://user:pw@example.com/"),
            Err(ClientError::InvalidUrl(_))
        ));
        assert!(strict.check_url("https://example.com/hook").is_ok());
        // A name that resolves to loopback is refused at connection time.
        let req = Request::post("http://localhost:9/hook")
            .body(full(""))
            .map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
        let err = strict
            .send(req, Duration::from_secs(5), 1024)
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("private or internal")),
            "{err:?}"
        );
        let open = Client::new(true)?;
        assert!(open.check_url("http://127.0.0.1:9/hook").is_ok());
        Ok(())
    }
}
