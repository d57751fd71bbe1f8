//! The JSON of the Git LFS API (batch, basic transfer, locking), as the `git-lfs` client sends
//! and reads it. The media type is [`MEDIA_TYPE`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What requests and responses declare as their content type.
pub const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// The most objects one batch request may name (`git lfs` sends 100).
pub const MAX_BATCH_OBJECTS: usize = 10_000;

/// A batch request's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// The client wants objects.
    Download,
    /// The client has objects to store.
    Upload,
}

/// `POST .../info/lfs/objects/batch`.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchRequest {
    /// Download or upload.
    pub operation: Operation,
    /// Transfer adapters the client knows; `basic` is the only one served.
    #[serde(default)]
    pub transfers: Vec<String>,
    /// The objects, each checked on its own (a bad one gets an error, the others an answer).
    pub objects: Vec<serde_json::Value>,
    /// Only `sha256` is served.
    #[serde(default)]
    pub hash_algo: Option<String>,
}

/// One object of a batch response.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectResponse {
    /// As requested.
    pub oid: String,
    /// As stored (or requested).
    pub size: i64,
    /// The actions need no credentials of the client's (presigned URLs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    /// What to do; absent for an upload of an object the store already has.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub actions: BTreeMap<&'static str, ActionResponse>,
    /// Why this object cannot be transferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

/// One action: a request to make.
#[derive(Debug, Clone, Serialize)]
pub struct ActionResponse {
    /// Where.
    pub href: String,
    /// Headers to send.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, String>,
    /// Seconds the href stays valid.
    pub expires_in: u64,
}

/// A per-object error: `404` missing, `422` invalid oid or size.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectError {
    /// HTTP-like code.
    pub code: u16,
    /// Why.
    pub message: String,
}

/// The batch response.
#[derive(Debug, Clone, Serialize)]
pub struct BatchResponse {
    /// Always `basic`.
    pub transfer: &'static str,
    /// One per requested object, in order.
    pub objects: Vec<ObjectResponse>,
    /// Always `sha256`.
    pub hash_algo: &'static str,
    /// A warning for the user (the repository passed its soft limit); clients ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The body of a `verify` call.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifyRequest {
    /// The object.
    pub oid: String,
    /// Its size.
    pub size: i64,
}

/// A ref a lock request names.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RefName {
    /// `refs/heads/...`.
    #[serde(default)]
    pub name: String,
}

/// `POST .../locks`.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateLockRequest {
    /// The path to lock, relative to the repository's root.
    pub path: String,
    /// The ref the client works on (informative).
    #[serde(default, rename = "ref")]
    pub reference: Option<RefName>,
}

/// `POST .../locks/verify`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VerifyLocksRequest {
    /// Where the previous page ended.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
    /// The ref the client works on (informative).
    #[serde(default, rename = "ref")]
    pub reference: Option<RefName>,
}

/// `POST .../locks/:id/unlock`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UnlockRequest {
    /// Unlock another user's lock (admins only).
    #[serde(default)]
    pub force: bool,
    /// The ref the client works on (informative).
    #[serde(default, rename = "ref")]
    pub reference: Option<RefName>,
}

/// A lock's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Who.
    pub name: String,
}

/// A lock as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockJson {
    /// Its id.
    pub id: String,
    /// The locked path.
    pub path: String,
    /// When (RFC 3339).
    pub locked_at: String,
    /// Who holds it.
    pub owner: Owner,
}

/// An error answer of the API.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorResponse {
    /// Why.
    pub message: String,
}
