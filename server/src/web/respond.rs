//! How pages are answered: the HTML with the headers every page carries, redirects, and
//! errors as pages.

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{full, ResponseBody};
use crate::response::HttpError;

/// A page: HTML, never cached by shared caches, never framed, no sniffing, and the policy
/// that lets only this origin's embedded script and stylesheet run.
pub fn page(status: StatusCode, html: String) -> Response<ResponseBody> {
    let mut resp = Response::new(full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(h, webview::CONTENT_SECURITY_POLICY);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Cookie"));
    resp
}

/// The headers that keep a response of this origin from being abused by another: `policy`
/// as its Content-Security-Policy, no sniffing, no framing, no referrer to other sites.
pub fn protect(h: &mut http::HeaderMap, policy: &'static str) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A `303 See Other` to `to` (a path on this server, or a URL already checked).
pub fn redirect(to: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(Vec::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An error as a page of its own, with the status it would have had anywhere else.
pub fn error(e: HttpError, chrome: webview::view::Chrome) -> Response<ResponseBody> {
    let status = e.status();
    let sign_in = chrome.signed_in.is_none()
        && matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
        );
    let message = match &e {
        // Anonymous visitors learn no more than that there is nothing they may see.
        HttpError::Unauthorized(_) if sign_in => {
            "Not found, or you need to sign in to see it.".into()
        }
        e => e.to_string(),
    };
    let status = match (&e, sign_in) {
        (HttpError::Unauthorized(_), true) => StatusCode::NOT_FOUND,
        _ => status,
    };
    let html = webview::pages::render(&webview::pages::Error {
        chrome: webview::view::Chrome {
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            ..chrome
        },
        status: status.as_u16(),
        message,
        sign_in,
    });
    page(status, html)
}
