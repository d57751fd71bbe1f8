//! The answers every HTTP handler shares, and the one error type they return.
//!
//! A handler of a git route returns `Result<Response, HttpError>`; [`HttpError`] knows its
//! status and one-line reason and becomes the answer in one place ([`HttpError::into_response`]):
//! `401` with the challenges git and git-lfs look for, `503` with `Retry-After`, a storage
//! failure logged as such. The LFS and JSON-RPC surfaces render the same refusals in their own
//! shapes (see `lfs_http::Failure`, `rpc::RpcError`); an authorization refusal
//! ([`crate::auth::Denied`]) converts into each. A leaf module: it imports only `body`, `auth`
//! and `metrics`, never a handler.

use http::{header, Response, StatusCode};

use crate::body::{full, ResponseBody};

/// Why a request of a git route was not served.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No (usable) credentials where they are needed.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the permission.
    #[error("{0}")]
    Forbidden(String),
    /// The repository, or the route, does not exist (to this caller).
    #[error("{0}")]
    NotFound(String),
    /// The revision names nothing (to this caller).
    #[error("{0}")]
    RevisionNotFound(String),
    /// No file or folder at the path asked for.
    #[error("{0}")]
    EntryNotFound(String),
    /// The state changed meanwhile, or the thing to create exists.
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// The method is not one the route serves.
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    /// The body is over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// A write would pass the repository's hard limit.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A `Range` that starts past the end of what it asks of (the size).
    #[error("the range asked for lies outside the {0} bytes of the file")]
    RangeNotSatisfiable(u64),
    /// The client stalled.
    #[error("{0}")]
    TimedOut(String),
    /// Every slot is taken.
    #[error("the server is busy; retry in a few seconds")]
    Busy,
    /// The bucket failed: the request may succeed when tried again.
    #[error("cannot read the repository: {0}")]
    Storage(String),
    /// Something this server got wrong.
    #[error("{0}")]
    Internal(String),
}

impl HttpError {
    /// The status the answer carries.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::NotFound(_)
            | HttpError::RevisionNotFound(_)
            | HttpError::EntryNotFound(_) => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::QuotaExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
            HttpError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            HttpError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Storage(_) | HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer: the status and the reason on one line, with the headers the status needs.
    pub fn into_response(self) -> Response<ResponseBody> {
        match &self {
            HttpError::Storage(_) | HttpError::Internal(_) => {
                tracing::error!(error = %self, "request failed")
            }
            HttpError::Busy => {
                tracing::warn!("too many concurrent clones and pushes: answering 503");
                crate::metrics::inc(crate::metrics::REJECTED_BUSY);
            }
            _ => {}
        }
        let mut resp = plain(self.status(), &self.to_string());
        let headers = resp.headers_mut();
        match self {
            HttpError::Unauthorized(_) => {
                let challenge = header::HeaderValue::from_static(
                    "Basic realm=\"artifact-git\", charset=\"UTF-8\"",
                );
                headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
                headers.insert("lfs-authenticate", challenge);
            }
            HttpError::Busy => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            }
            HttpError::RangeNotSatisfiable(size) => {
                let range = header::HeaderValue::from_str(&format!("bytes */{size}"));
                if let Ok(range) = range {
                    headers.insert(header::CONTENT_RANGE, range);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::auth::Denied> for HttpError {
    fn from(denied: crate::auth::Denied) -> Self {
        match denied {
            crate::auth::Denied::Unauthorized(reason) => HttpError::Unauthorized(reason),
            crate::auth::Denied::Forbidden(reason) => HttpError::Forbidden(reason),
            crate::auth::Denied::NotFound => HttpError::NotFound("repository not found".into()),
        }
    }
}

impl From<crate::body::BodyError> for HttpError {
    fn from(e: crate::body::BodyError) -> Self {
        match e {
            e @ crate::body::BodyError::TooLarge(_) => HttpError::TooLarge(e.to_string()),
            e @ crate::body::BodyError::TimedOut(_) => HttpError::TimedOut(e.to_string()),
            e => HttpError::BadRequest(e.to_string()),
        }
    }
}

impl From<refs::Error> for HttpError {
    fn from(e: refs::Error) -> Self {
        match e {
            refs::Error::NotFound => HttpError::NotFound("repository not found".into()),
            e => HttpError::Storage(e.to_string()),
        }
    }
}

impl From<objectstore::odb::Error> for HttpError {
    fn from(e: objectstore::odb::Error) -> Self {
        HttpError::Storage(e.to_string())
    }
}

impl From<objectstore::bucket::Error> for HttpError {
    fn from(e: objectstore::bucket::Error) -> Self {
        HttpError::Storage(e.to_string())
    }
}

/// A plain-text answer of one line.
pub fn plain(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// An answer of the git protocol: its content type, never cached.
pub fn git_response(content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    resp
}
