//! What a request carries besides its body, read the same way by every handler: the
//! connection's peer and what the context layer ([`crate::layers::ContextLayer`]) learned
//! (the caller, the base URL for links), in the request's extensions; and the headers git
//! sends (`Git-Protocol`, `Content-Encoding`). A leaf module: it imports no other.

use std::net::SocketAddr;

use http::{header, Request};

/// The address a request's connection came from (set by the connection's service).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The base URL for links made while answering a request: `--public-url`, or what a trusted
/// proxy says the client used (see [`crate::proxy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

/// Who is calling: `Ok(None)` when anonymous, `Err(reason)` (answered 401) when credentials
/// were sent but are not valid.
#[derive(Debug, Clone)]
pub struct Caller(pub Result<Option<crate::auth::Grants>, String>);

/// What the URL's own token (`?token=`) is bound to, when the caller was authenticated by
/// one (an LFS object's id, `bundle:{file}`, `pack:{file}`): routes that serve only to
/// holders of such a URL check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlToken(pub String);

/// The base URL the context layer set (`fallback` for a request that did not pass it).
pub fn base_url<B>(req: &Request<B>, fallback: &str) -> String {
    req.extensions()
        .get::<BaseUrl>()
        .map_or_else(|| fallback.to_owned(), |b| b.0.clone())
}

/// The protocol version the client asked for in `Git-Protocol`.
pub fn protocol_version<B>(req: &Request<B>) -> u8 {
    req.headers()
        .get_all("git-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(':'))
        .filter_map(|kv| kv.strip_prefix("version="))
        .filter_map(|v| v.trim().parse::<u8>().ok())
        .max()
        .unwrap_or(0)
}

/// Whether the body is gzip-encoded.
pub fn is_gzip<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"))
}

/// The `service=` of a discovery request's query.
pub fn query_service<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
}
