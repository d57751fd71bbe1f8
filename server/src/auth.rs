//! Per-request authentication with JWTs, and the permission model.
//!
//! Every request stands alone: the token is the password of HTTP Basic (any user name) or an
//! `Authorization: Bearer` token. Tokens are verified with a shared HS256 secret or an RS256 /
//! ES256 public key; `exp` is required, `nbf` is honoured, issuer and audience are checked
//! when configured. Permissions come from the `scope` claim: `ws:<workspace>#<r|rw|a>`
//! (Hypha's form) and `artifact:<workspace>/<alias>#<r|rw|a>`, space-separated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a request needs, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "r" => Some(Access::Read),
            "rw" => Some(Access::Write),
            "a" => Some(Access::Admin),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Access::Read => "r",
            Access::Write => "rw",
            Access::Admin => "a",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `ws:*`: every workspace (operators' tokens).
    AnyWorkspace,
    Workspace(String),
    Artifact(String, String),
}

/// The permissions a verified token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    grants: Vec<(Target, Access)>,
    pub subject: Option<String>,
}

impl Grants {
    /// Parse a `scope` claim. Unknown entries are ignored (tokens may carry other scopes).
    pub fn parse(scope: &str) -> Self {
        let mut grants = Vec::new();
        for entry in scope.split_ascii_whitespace() {
            let Some((target, level)) = entry.rsplit_once('#') else {
                continue;
            };
            let Some(level) = Access::parse(level) else {
                continue;
            };
            let target = if let Some(ws) = target.strip_prefix("ws:") {
                if ws == "*" {
                    Target::AnyWorkspace
                } else {
                    Target::Workspace(ws.to_owned())
                }
            } else if let Some(art) = target.strip_prefix("artifact:") {
                match art.split_once('/') {
                    Some((ws, alias)) if !alias.contains('/') => {
                        Target::Artifact(ws.to_owned(), alias.to_owned())
                    }
                    _ => continue,
                }
            } else {
                continue;
            };
            grants.push((target, level));
        }
        Grants {
            grants,
            subject: None,
        }
    }

    /// What the token names, as `ws`, `ws/alias` or `*`, each with its level.
    pub fn targets(&self) -> Vec<(String, Access)> {
        self.grants
            .iter()
            .map(|(t, l)| {
                let name = match t {
                    Target::AnyWorkspace => "*".to_owned(),
                    Target::Workspace(ws) => ws.clone(),
                    Target::Artifact(ws, a) => format!("{ws}/{a}"),
                };
                (name, *l)
            })
            .collect()
    }

    /// The highest access granted on all of `workspace` (artifact grants do not count).
    pub fn workspace_level(&self, workspace: &str) -> Option<Access> {
        self.grants
            .iter()
            .filter(|(t, _)| match t {
                Target::AnyWorkspace => true,
                Target::Workspace(ws) => ws == workspace,
                Target::Artifact(..) => false,
            })
            .map(|(_, l)| *l)
            .max()
    }

    /// The workspaces these grants name (each once, sorted); `ws:*` names none.
    pub fn workspaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .grants
            .iter()
            .filter_map(|(t, _)| match t {
                Target::AnyWorkspace => None,
                Target::Workspace(ws) | Target::Artifact(ws, _) => Some(ws.clone()),
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The highest access granted on the artifact `workspace/alias` (exact names only).
    pub fn level(&self, workspace: &str, alias: &str) -> Option<Access> {
        self.grants
            .iter()
            .filter(|(t, _)| match t {
                Target::AnyWorkspace => true,
                Target::Workspace(ws) => ws == workspace,
                Target::Artifact(ws, a) => ws == workspace && a == alias,
            })
            .map(|(_, l)| *l)
            .max()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(default)]
    scope: String,
    /// Set only in tokens of one Git LFS object's URL ([`Authenticator::mint_object_token`]):
    /// the object's id. Such a token is good for that URL alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    obj: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials: {0}")]
    Invalid(String),
    #[error("cannot configure token verification: {0}")]
    Config(String),
    #[error("minting tokens needs the shared secret (HS256)")]
    CannotMint,
}

/// Verifies (and, with a shared secret, mints) tokens.
pub struct Authenticator {
    decoding: DecodingKey,
    validation: Validation,
    encoding: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Token verification settings.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub secret: Option<String>,
    /// An RSA or EC public key in PEM.
    pub public_key_pem: Option<Vec<u8>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        let (decoding, algorithm, encoding) = match (&config.secret, &config.public_key_pem) {
            (Some(secret), None) => {
                if secret.len() < 16 {
                    return Err(AuthError::Config(
                        "the JWT secret must be at least 16 bytes".into(),
                    ));
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                )
            }
            (None, Some(pem)) => {
                if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    (key, Algorithm::RS256, None)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                    (key, Algorithm::ES256, None)
                } else {
                    return Err(AuthError::Config(
                        "the public key is neither an RSA nor an EC (P-256) PEM key".into(),
                    ));
                }
            }
            (Some(_), Some(_)) => {
                return Err(AuthError::Config(
                    "give either a JWT secret or a public key, not both".into(),
                ))
            }
            (None, None) => return Err(AuthError::Config("no JWT secret or public key".into())),
        };
        // Exactly one algorithm: a token signed any other way (`none`, HS256 against an RSA
        // key...) is refused before its signature is even looked at.
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator {
            decoding,
            validation,
            encoding,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// Verify a token; the reason of a refusal names the check, never the token.
    pub fn verify(&self, token: &str) -> Result<Grants, AuthError> {
        self.verify_with_expiry(token).map(|(grants, _)| grants)
    }

    /// [`Authenticator::verify`], with the token's expiry (seconds since the epoch): a web
    /// session's cookie lives exactly as long as its token.
    pub fn verify_with_expiry(&self, token: &str) -> Result<(Grants, u64), AuthError> {
        let claims = self.decode(token)?;
        if claims.obj.is_some() {
            return Err(AuthError::Invalid(
                "the token is good for one object's URL only".into(),
            ));
        }
        let mut grants = Grants::parse(&claims.scope);
        grants.subject = claims.sub;
        Ok((grants, claims.exp))
    }

    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(describe(&e)))
    }

    /// A token for the URL of one Git LFS object of `workspace/alias` (reading it, or with
    /// `write` uploading it), valid for `ttl`: what a presigned URL is to the bucket, for the
    /// server's own object endpoint, so clients that add no credentials to an action's
    /// request (the Hugging Face Hub's) can follow it. `None` when this server cannot mint
    /// (it only holds a public key).
    pub fn mint_object_token(
        &self,
        workspace: &str,
        alias: &str,
        oid: &str,
        write: bool,
        ttl: Duration,
    ) -> Option<String> {
        let key = self.encoding.as_ref()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let level = if write { "rw" } else { "r" };
        let claims = Claims {
            exp: now + ttl.as_secs(),
            nbf: None,
            iat: Some(now),
            sub: Some("lfs-object-url".into()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            scope: format!("artifact:{workspace}/{alias}#{level}"),
            obj: Some(oid.to_owned()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ok()
    }

    /// Verify a token of the URL of the LFS object `oid` ([`Self::mint_object_token`]).
    pub fn verify_object_token(&self, token: &str, oid: &str) -> Result<Grants, AuthError> {
        let claims = self.decode(token)?;
        if claims.obj.as_deref() != Some(oid) {
            return Err(AuthError::Invalid("the token is for another object".into()));
        }
        let mut grants = Grants::parse(&claims.scope);
        grants.subject = claims.sub;
        Ok(grants)
    }

    /// Mint an HS256 token with `scope`, valid for `ttl`.
    pub fn mint(
        &self,
        scope: &str,
        ttl: Duration,
        subject: Option<&str>,
    ) -> Result<String, AuthError> {
        let key = self.encoding.as_ref().ok_or(AuthError::CannotMint)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            exp: now + ttl.as_secs(),
            nbf: None,
            iat: Some(now),
            sub: subject.map(str::to_owned),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            scope: scope.to_owned(),
            obj: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| AuthError::Invalid(describe(&e)))
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "the token has expired".into(),
        ImmatureSignature => "the token is not valid yet".into(),
        InvalidSignature => "the token's signature is invalid".into(),
        InvalidAlgorithm | InvalidAlgorithmName => {
            "the token is signed with an algorithm this server does not accept".into()
        }
        InvalidIssuer => "the token was issued by someone else".into(),
        InvalidAudience => "the token is meant for someone else".into(),
        MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        InvalidToken | Base64(_) | Json(_) | Utf8(_) => "the token is malformed".into(),
        _ => "the token was refused".into(),
    }
}

/// The token a request carries, if any.
pub fn token_from_header(authorization: Option<&str>) -> Result<Option<String>, AuthError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let value = value.trim();
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Invalid("malformed Basic credentials".into()))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| AuthError::Invalid("malformed Basic credentials".into()))?;
        let (_, password) = decoded
            .split_once(':')
            .ok_or_else(|| AuthError::Invalid("malformed Basic credentials".into()))?;
        if password.is_empty() {
            return Ok(None);
        }
        return Ok(Some(password.to_owned()));
    }
    Err(AuthError::Invalid(
        "unsupported authorization scheme".into(),
    ))
}

/// Why a request is refused. The one authorization ([`authorize`]) decides for every surface
/// (git routes, LFS, bundles, JSON-RPC, and the routes to come); each renders the refusal in
/// its own shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No (usable) credentials where they are needed: 401, so git asks for them.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the permission: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The repository does not exist, and the caller may know that.
    #[error("repository not found")]
    NotFound,
}

/// Whether `identity` may do what needs `need` on `workspace/alias`, a repository that
/// `exists` (or not) and is `public` (or not). Existence is revealed only to callers with
/// some access to it.
pub fn authorize(
    identity: Option<&Grants>,
    exists: bool,
    public: bool,
    need: Access,
    workspace: &str,
    alias: &str,
) -> Result<(), Denied> {
    let level = identity.and_then(|g| g.level(workspace, alias));
    if !exists {
        return Err(match (identity, level) {
            (Some(_), Some(_)) => Denied::NotFound,
            (None, _) => Denied::Unauthorized("authentication required".into()),
            (Some(_), None) => Denied::Forbidden(format!("no access to {workspace}/{alias}")),
        });
    }
    if need == Access::Read && public {
        return Ok(());
    }
    match (identity, level) {
        (None, _) => Err(Denied::Unauthorized("authentication required".into())),
        (Some(_), Some(l)) if l >= need => Ok(()),
        (Some(_), _) => Err(Denied::Forbidden(format!(
            "the token does not grant {} on {workspace}/{alias}",
            match need {
                Access::Read => "read access",
                Access::Write => "write access (push)",
                Access::Admin => "admin access",
            }
        ))),
    }
}

/// A new random secret for the embedded default.
pub fn random_secret() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs() -> Authenticator {
        Authenticator::new(&AuthConfig {
            secret: Some("0123456789abcdef0123456789abcdef".into()),
            ..AuthConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn scopes_match_exact_names() {
        let g = Grants::parse("ws:a#rw artifact:b/data#r other:thing#a ws:c#x");
        assert_eq!(g.level("a", "x"), Some(Access::Write));
        assert_eq!(g.level("ab", "x"), None);
        assert_eq!(g.level("b", "data"), Some(Access::Read));
        assert_eq!(g.level("b", "data2"), None);
        assert_eq!(g.level("c", "x"), None);
        assert_eq!(
            Grants::parse("ws:*#a").level("anything", "x"),
            Some(Access::Admin)
        );
    }

    #[test]
    fn mint_and_verify() {
        let auth = hs();
        let token = auth
            .mint("ws:lab#rw", Duration::from_secs(60), Some("ada"))
            .unwrap();
        let g = auth.verify(&token).unwrap();
        assert_eq!(g.level("lab", "x"), Some(Access::Write));
        assert_eq!(g.subject.as_deref(), Some("ada"));
        let other = Authenticator::new(&AuthConfig {
            secret: Some("another-secret-of-32-bytes-long!".into()),
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn credentials_from_headers() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("git:tok")
        );
        assert_eq!(
            token_from_header(Some(&basic)).unwrap().as_deref(),
            Some("tok")
        );
        assert_eq!(
            token_from_header(Some("Bearer tok")).unwrap().as_deref(),
            Some("tok")
        );
        assert_eq!(token_from_header(None).unwrap(), None);
        assert!(token_from_header(Some("Digest x")).is_err());
    }

    #[test]
    fn decisions() {
        let rw = Grants::parse("ws:lab#rw");
        assert_eq!(
            authorize(None, true, true, Access::Read, "lab", "x"),
            Ok(())
        );
        assert!(matches!(
            authorize(None, true, true, Access::Write, "lab", "x"),
            Err(Denied::Unauthorized(_))
        ));
        assert!(matches!(
            authorize(None, true, false, Access::Read, "lab", "x"),
            Err(Denied::Unauthorized(_))
        ));
        assert_eq!(
            authorize(Some(&rw), true, false, Access::Write, "lab", "x"),
            Ok(())
        );
        assert!(matches!(
            authorize(Some(&rw), true, false, Access::Admin, "lab", "x"),
            Err(Denied::Forbidden(_))
        ));
        assert_eq!(
            authorize(Some(&rw), false, false, Access::Read, "lab", "x"),
            Err(Denied::NotFound)
        );
        assert!(matches!(
            authorize(Some(&rw), false, false, Access::Read, "other", "x"),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            authorize(None, false, false, Access::Read, "lab", "x"),
            Err(Denied::Unauthorized(_))
        ));
    }
}
