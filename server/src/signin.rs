//! Sign-in links of the web view: a code that signs a browser in once, within
//! [`LINK_TTL`], with a token the artifact service obtained for its user. The API hands them
//! out ([`create`], method `create_signin_link`); the web view consumes them ([`consume`]).
//! The code is 32 random bytes: the link never carries the token itself. The bucket holds
//! the token until the link is used or expires (`StorageKeys::signin_link`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::app::App;

/// How long a sign-in link stays good.
pub const LINK_TTL: Duration = Duration::from_secs(300);

/// Why a link could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// The token is not one this server accepts.
    #[error("the token is not valid: {0}")]
    InvalidToken(String),
    /// No such link, or it was used, or it expired.
    #[error("this sign-in link was used or has expired")]
    Gone,
    /// The bucket failed.
    #[error("cannot store the sign-in link: {0}")]
    Storage(#[from] objectstore::bucket::Error),
    /// No randomness.
    #[error("no randomness: {0}")]
    Random(#[from] std::io::Error),
}

/// A path on this server to return to: `/` unless `next` is a plain absolute path (never
/// `//host` or `/\host`, which browsers read as another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2048 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a sign-in link stores.
#[derive(Serialize, Deserialize)]
struct StoredLink {
    token: String,
    next: String,
    expires: u64,
}

/// Make a link for `token` that lands on `next`; answers its code. The token must be valid.
pub async fn create(app: &App, token: String, next: Option<&str>) -> Result<String, SigninError> {
    let (_, token_expires) = app
        .auth
        .verify_with_expiry(&token)
        .map_err(|e| SigninError::InvalidToken(e.to_string()))?;
    let code = random_code()?;
    let stored = StoredLink {
        token,
        next: safe_next(next),
        expires: (now() + LINK_TTL.as_secs()).min(token_expires),
    };
    let body = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
    let key = app.storage.keys().signin_link(&code);
    app.storage
        .bucket
        .put(
            &key,
            Bytes::from(body),
            objectstore::bucket::PutMode::Create,
        )
        .await?;
    Ok(code)
}

fn random_code() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A used link: the token, its expiry, and where to land.
pub struct Consumed {
    /// The session's token.
    pub token: String,
    /// When it expires (seconds since the epoch).
    pub expires: u64,
    /// Where to land.
    pub next: String,
}

/// Use the link `code` once. It is consumed by a compare-and-swap on its object, so of two
/// visits at once only one signs in; it is then deleted.
pub async fn consume(app: &App, code: &str) -> Result<Consumed, SigninError> {
    if code.len() != 64 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigninError::Gone);
    }
    let bucket = &app.storage.bucket;
    let key = app.storage.keys().signin_link(code);
    let got = match bucket.get(&key).await {
        Ok(got) => got,
        Err(e) if e.is_not_found() => return Err(SigninError::Gone),
        Err(e) => return Err(e.into()),
    };
    let link = serde_json::from_slice::<StoredLink>(&got.data).map_err(|_| SigninError::Gone)?;
    let used = bucket
        .put(
            &key,
            Bytes::from_static(b"{}"),
            objectstore::bucket::PutMode::Update(got.etag.clone()),
        )
        .await;
    let _ = bucket.delete(&key).await;
    if used.is_err() || link.expires <= now() {
        return Err(SigninError::Gone);
    }
    let (_, expires) = app
        .auth
        .verify_with_expiry(&link.token)
        .map_err(|_| SigninError::Gone)?;
    Ok(Consumed {
        token: link.token,
        expires,
        next: link.next,
    })
}
