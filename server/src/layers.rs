//! The tower layers around the request handler. Each is a plain `tower::Layer`, testable alone.
//! (The cap on heavy requests is not a layer: a slot is taken only once a request is known to
//! be valid, which only its handler knows; see [`crate::slots`].)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as Context2, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::ResponseBody;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Logs method, path, status and duration of every request. Never the query string or any
/// header: credentials travel there.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLayer;

impl<S> Layer<S> for LogLayer {
    type Service = Log<S>;
    fn layer(&self, inner: S) -> Log<S> {
        Log { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Log<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Log<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context2<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        let path = match req.uri().path() {
            // A sign-in link's code is a credential until used.
            p if p.starts_with("/-/signin/") => "/-/signin/…".to_owned(),
            p => p.to_owned(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            tracing::info!(%method, %path, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
            // Scrapes of the counter are not what it counts.
            Ok(match path.as_str() {
                "/metrics" => resp,
                _ => resp.map(count_sent),
            })
        })
    }
}

/// The body, counting its bytes into [`crate::metrics::SENT_BYTES`] as they go out.
fn count_sent(body: ResponseBody) -> ResponseBody {
    use http_body_util::BodyExt;
    body.map_frame(|frame| {
        if let Some(data) = frame.data_ref() {
            crate::metrics::add(crate::metrics::SENT_BYTES, data.len() as u64);
        }
        frame
    })
    .boxed()
}

/// The `token` of an LFS object URL (`…/info/lfs/objects/<oid>?token=…`) and the oid, or of
/// a bundle file's or a pack's URL (`…/bundles/<file>?token=…`, `…/packs/<file>?token=…`)
/// and what its token is bound to.
fn object_url_token<B>(req: &Request<B>) -> Option<(String, String)> {
    let path = req.uri().path();
    let bound = match path.rsplit_once("/info/lfs/objects/") {
        Some((_, oid)) if oid.len() == 64 && oid.bytes().all(|b| b.is_ascii_hexdigit()) => {
            oid.to_owned()
        }
        Some(_) => return None,
        None => match path.rsplit_once("/bundles/") {
            Some((_, file)) if crate::bundle_uri::valid_file(file) => {
                crate::bundle_uri::file_claim(file)
            }
            Some(_) => return None,
            None => {
                let (_, file) = path.rsplit_once("/packs/")?;
                if !crate::packfile_uris::valid_file(file) {
                    return None;
                }
                crate::packfile_uris::pack_claim(file)
            }
        },
    };
    let oid = bound;
    let query = req.uri().query()?;
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())?;
    Some((token, oid))
}

/// Works out, once per request, what every handler asks about it and puts it in the
/// request's extensions: the base URL for links ([`crate::request::BaseUrl`], from
/// `--public-url` or a trusted proxy) and the caller ([`crate::request::Caller`], from the
/// token in `Authorization`). Handlers read them instead of the headers.
#[derive(Debug, Clone)]
pub struct ContextLayer {
    app: std::sync::Arc<crate::app::App>,
}

impl ContextLayer {
    /// Context from `app`'s authenticator and public URL.
    pub fn new(app: std::sync::Arc<crate::app::App>) -> Self {
        ContextLayer { app }
    }
}

impl<S> Layer<S> for ContextLayer {
    type Service = Context<S>;
    fn layer(&self, inner: S) -> Context<S> {
        Context {
            inner,
            app: self.app.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Context<S> {
    inner: S,
    app: std::sync::Arc<crate::app::App>,
}

impl<S> Context<S> {
    /// The grants of the session cookie and its form token, when the request carries a
    /// valid one where cookies apply. An expired or forged cookie makes an anonymous
    /// visitor, not an error: the pages then offer to sign in again.
    fn session_caller<B>(&self, req: &Request<B>) -> Option<(crate::auth::Grants, String)> {
        if !crate::web::session::cookie_applies(req.method(), req.uri().path()) {
            return None;
        }
        let token = crate::web::session::cookie_token(req.headers())?;
        let grants = self.app.auth.verify(&token).ok()?;
        Some((grants, crate::web::session::csrf_of(&token)))
    }
}

impl<S, B> Service<Request<B>> for Context<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context2<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let base = crate::proxy::request_base_url(&self.app.config.public, &req);
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let mut session = None;
        let mut url_token = None;
        let caller = match crate::auth::token_from_header(header) {
            Ok(None) => match object_url_token(&req) {
                // The token of one object's URL, on that URL only.
                Some((token, bound)) => {
                    let verified = self.app.auth.verify_object_token(&token, &bound);
                    if verified.is_ok() {
                        url_token = Some(crate::request::UrlToken(bound));
                    }
                    verified.map(Some).map_err(|e| e.to_string())
                }
                // A browser's session: its cookie counts as its token where cookies apply.
                None => Ok(self.session_caller(&req).map(|(grants, csrf)| {
                    session = Some(crate::web::session::Session { csrf });
                    grants
                })),
            },
            Ok(Some(token)) => self
                .app
                .auth
                .verify(&token)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        req.extensions_mut().insert(crate::request::BaseUrl(base));
        req.extensions_mut().insert(crate::request::Caller(caller));
        if let Some(session) = session {
            req.extensions_mut().insert(session);
        }
        if let Some(bound) = url_token {
            req.extensions_mut().insert(bound);
        }
        self.inner.call(req)
    }
}
