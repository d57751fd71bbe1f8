//! Signing in to the web view: a visitor's token kept in a cookie that the server checks
//! exactly like a token in `Authorization`.
//!
//! - `POST /-/signin` (a pasted token) or `GET /-/signin/{code}` (a link from
//!   `create_signin_link` ([`crate::signin`]), which the artifact service obtains for its user) sets the
//!   session cookie: `HttpOnly` (no script reads it), `SameSite=Lax` (no other site's form
//!   or fetch carries it), `Secure` over HTTPS, living as long as the token.
//! - The context layer ([`crate::layers::ContextLayer`]) takes the caller from the cookie
//!   when a request has no `Authorization`: for reads anywhere (file downloads behind the
//!   pages need it) and for the web view's own forms, which also prove they come from these
//!   pages ([`check_form`]: same origin, and a token derived from the session that only
//!   pages of this origin know).
//! - `POST /-/signout` clears it.
//!
//! The token never appears in a URL, a page or a log; a sign-in link's code is single use,
//! expires after [`crate::signin::LINK_TTL`] and is not logged (see [`crate::layers::LogLayer`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use sha2::Digest;

use crate::app::App;
use crate::body::ResponseBody;
use crate::response::HttpError;

/// The cookie's name.
pub const COOKIE: &str = "artifact_git_session";

/// The largest sign-in or action form accepted.
pub const MAX_FORM: u64 = 64 << 10;

/// A visitor's session, as the context layer found it in the cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// What forms of this session carry to prove they came from its pages.
    pub csrf: String,
}

/// The value of the session cookie in `headers`, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a request may be authenticated by the cookie: reads anywhere, and the web view's
/// own forms (each checked by [`check_form`]). Writes of the API and of git never are: a
/// cookie is sent by the browser on its own, a token only when the client means it.
pub fn cookie_applies(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD => true,
        Method::POST => path.starts_with("/-/") || path.contains("/-/"),
        _ => false,
    }
}

/// The form token of the session whose cookie is `token`: a digest nobody can compute
/// without the cookie, which scripts of other origins cannot read.
pub fn csrf_of(token: &str) -> String {
    let digest = sha2::Sha256::digest(format!("artifact-git web form\0{token}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The origin (`scheme://host[:port]`) of a base URL.
fn origin_of(base_url: &str) -> &str {
    match base_url.find("://") {
        Some(i) => match base_url[i + 3..].find('/') {
            Some(j) => &base_url[..i + 3 + j],
            None => base_url,
        },
        None => base_url,
    }
}

/// Whether a form post comes from a page of this server: its `Origin` is ours, or (for
/// browsers that leave `Origin` out) `Sec-Fetch-Site` says same-origin. Neither header is
/// refused: every browser sends one on a form post.
pub fn same_origin(headers: &HeaderMap, base_url: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin.eq_ignore_ascii_case(origin_of(base_url));
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
}

/// Check a form post of a signed-in visitor: from this origin, carrying the session's form
/// token.
pub fn check_form(
    headers: &HeaderMap,
    base_url: &str,
    session: Option<&Session>,
    form: &[(String, String)],
) -> Result<(), HttpError> {
    if !same_origin(headers, base_url) {
        return Err(HttpError::Forbidden(
            "a cross-site request was refused".into(),
        ));
    }
    let sent = field(form, "csrf").unwrap_or("");
    match session {
        Some(s) if !sent.is_empty() && constant_time_eq(sent, &s.csrf) => Ok(()),
        Some(_) => Err(HttpError::Forbidden(
            "the form is stale: reload the page and try again".into(),
        )),
        None => Err(HttpError::Unauthorized("sign in first".into())),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A form body's fields.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The value of `name` in a form.
pub fn field<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_https(base_url: &str) -> bool {
    base_url.starts_with("https://")
}

/// A redirect to `to` that sets the session cookie to `token`, living until `expires`.
pub fn signed_in(token: &str, expires: u64, base_url: &str, to: &str) -> Response<ResponseBody> {
    let max_age = expires.saturating_sub(now());
    let secure = if is_https(base_url) { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    redirect_with_cookie(to, &cookie)
}

/// A redirect to `/` that clears the session cookie.
pub fn signed_out(base_url: &str) -> Response<ResponseBody> {
    let secure = if is_https(base_url) { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}");
    redirect_with_cookie("/", &cookie)
}

fn redirect_with_cookie(to: &str, cookie: &str) -> Response<ResponseBody> {
    let mut resp = super::respond::redirect(to);
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /-/signin/{code}`: use a sign-in link once.
pub async fn visit_link(
    app: &Arc<App>,
    code: &str,
    base_url: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    match crate::signin::consume(app, code).await {
        Ok(link) => Ok(signed_in(&link.token, link.expires, base_url, &link.next)),
        Err(crate::signin::SigninError::Storage(e)) => Err(HttpError::Storage(e.to_string())),
        Err(e) => Err(HttpError::NotFound(e.to_string())),
    }
}

/// `POST /-/signin`: a pasted token.
pub async fn sign_in(
    app: &Arc<App>,
    req: Request<hyper::body::Incoming>,
    base_url: &str,
    chrome: webview::view::Chrome,
) -> Result<Response<ResponseBody>, HttpError> {
    if !same_origin(req.headers(), base_url) {
        return Err(HttpError::Forbidden(
            "a cross-site request was refused".into(),
        ));
    }
    let body =
        crate::body::read_all(req.into_body(), MAX_FORM, app.config.timeouts.request_body).await?;
    let form = parse_form(&body);
    let next = crate::signin::safe_next(field(&form, "next"));
    let token = field(&form, "token").unwrap_or("").trim();
    match app.auth.verify_with_expiry(token) {
        Ok((_, expires)) => Ok(signed_in(token, expires, base_url, &next)),
        Err(e) => {
            let page = webview::pages::SignIn {
                chrome,
                next,
                message: Some(format!("That token is not valid: {e}.")),
            };
            Ok(super::respond::page(
                StatusCode::UNAUTHORIZED,
                webview::pages::render(&page),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; artifact_git_session=tok.en.x; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok.en.x"));
        assert!(cookie_applies(&Method::GET, "/ws/git/r/resolve/main/a"));
        assert!(cookie_applies(&Method::POST, "/-/signout"));
        assert!(cookie_applies(&Method::POST, "/ws/git/r/-/pull/1/merge"));
        assert!(!cookie_applies(&Method::POST, "/rpc"));
        assert!(!cookie_applies(&Method::POST, "/ws/git/r/git-receive-pack"));
        let mut o = HeaderMap::new();
        o.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&o, "http://127.0.0.1:8080"));
        assert!(same_origin(&o, "http://127.0.0.1:8080/prefix"));
        assert!(!same_origin(&o, "http://127.0.0.1:8081"));
        assert!(!same_origin(&HeaderMap::new(), "http://127.0.0.1:8080"));
        assert_eq!(crate::signin::safe_next(Some("//evil.org")), "/");
        assert_eq!(crate::signin::safe_next(Some("/\\evil.org")), "/");
        assert_eq!(crate::signin::safe_next(Some("https://evil.org")), "/");
        assert_eq!(crate::signin::safe_next(Some("/ws/git/r")), "/ws/git/r");
        assert_ne!(csrf_of("a"), csrf_of("b"));
    }
}
