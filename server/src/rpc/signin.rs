//! `create_signin_link {token, next?}`: a link that signs a browser in to the web view once,
//! within five minutes, with `token` (see [`crate::signin`]).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{params, RpcError};
use crate::app::App;
use crate::auth::Grants;
use crate::signin::{SigninError, LINK_TTL};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkParams {
    /// The token the visitor's session will carry (the service's token for its user).
    token: String,
    /// Where the link lands (a path on this server).
    #[serde(default)]
    next: Option<String>,
}

/// The longest token accepted.
const MAX_TOKEN: usize = 16 << 10;

pub(super) async fn create_signin_link(
    app: &Arc<App>,
    _identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: LinkParams = params(p)?;
    if p.token.len() > MAX_TOKEN {
        return Err(RpcError::InvalidParams("the token is too long".into()));
    }
    let code = crate::signin::create(app, p.token, p.next.as_deref())
        .await
        .map_err(|e| match e {
            e @ SigninError::InvalidToken(_) => RpcError::Unauthorized(e.to_string()),
            e => {
                tracing::error!(error = %e, "creating a sign-in link failed");
                RpcError::Internal(e.to_string())
            }
        })?;
    Ok(json!({
        "url": format!("{base_url}/-/signin/{code}"),
        "expires_in": LINK_TTL.as_secs(),
    }))
}
