//! A repository's webhooks and push mirrors, one object in the bucket changed by
//! compare-and-swap. Secrets live here and nowhere else; [`WebhookView`] and [`MirrorView`]
//! are what the API shows.

use std::sync::Arc;

use bytes::Bytes;
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::RepoKeys;
use serde::{Deserialize, Serialize};

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its id (`hook-` and 16 hex digits).
    pub id: String,
    /// Where payloads are POSTed.
    pub url: String,
    /// The signing secret (`whsec_...` adds the Standard Webhooks headers).
    pub secret: String,
    /// Which events it gets: `push`, `ping`, or `*`.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub active: bool,
    /// Why it was turned off by the server (a `410 Gone`).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// When it was added, seconds since the epoch.
    pub created: i64,
}

impl Webhook {
    /// Whether it wants events of kind `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event || e == "*")
    }
}

/// A push mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// Its id (`mirror-` and 16 hex digits).
    pub id: String,
    /// The remote's Smart HTTP URL.
    pub url: String,
    /// The user name sent with the password (`git` when none was given).
    #[serde(default)]
    pub username: Option<String>,
    /// The password or token.
    #[serde(default)]
    pub password: Option<String>,
    /// Overwrite refs that moved on the remote.
    #[serde(default)]
    pub force: bool,
    /// When it was added, seconds since the epoch.
    pub created: i64,
}

/// What the API shows of a webhook: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookView<'a> {
    /// Its id.
    pub id: &'a str,
    /// Where payloads go.
    pub url: &'a str,
    /// Which events.
    pub events: &'a [String],
    /// Whether deliveries are made.
    pub active: bool,
    /// Why the server turned it off.
    pub disabled_reason: Option<&'a str>,
    /// Whether the secret is in the Standard Webhooks form.
    pub standard_webhooks: bool,
    /// When it was added.
    pub created: i64,
}

impl Webhook {
    /// The view the API shows.
    pub fn view(&self) -> WebhookView<'_> {
        WebhookView {
            id: &self.id,
            url: &self.url,
            events: &self.events,
            active: self.active,
            disabled_reason: self.disabled_reason.as_deref(),
            standard_webhooks: self.secret.starts_with("whsec_"),
            created: self.created,
        }
    }
}

/// What the API shows of a mirror: no password.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorView<'a> {
    /// Its id.
    pub id: &'a str,
    /// The remote.
    pub url: &'a str,
    /// The user name, if one was given.
    pub username: Option<&'a str>,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether remote changes are overwritten.
    pub force: bool,
    /// When it was added.
    pub created: i64,
}

impl Mirror {
    /// The view the API shows.
    pub fn view(&self) -> MirrorView<'_> {
        MirrorView {
            id: &self.id,
            url: &self.url,
            username: self.username.as_deref(),
            has_password: self.password.is_some(),
            force: self.force,
            created: self.created,
        }
    }
}

/// An upstream: another host's repository whose refs this one follows (the client side of a
/// fetch). Its credentials and webhook secret live here, with the mirrors' passwords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Its id (`upstream-` and 16 hex digits).
    pub id: String,
    /// The remote's Smart HTTP URL (credentials never in it).
    pub url: String,
    /// The user name sent with the password (`git` when none was given).
    #[serde(default)]
    pub username: Option<String>,
    /// The password or token.
    #[serde(default)]
    pub password: Option<String>,
    /// The refs followed: full names or globs (`refs/heads/*`); empty: the remote's default
    /// branch.
    #[serde(default)]
    pub refs: Vec<String>,
    /// Move refs that diverged to the remote's value (where the push policy allows it).
    #[serde(default)]
    pub overwrite: bool,
    /// Seconds between syncs on a timer (0: only on webhooks and requests).
    #[serde(default)]
    pub interval: u64,
    /// Whether the LFS objects new commits point to are fetched too.
    #[serde(default)]
    pub lfs: bool,
    /// What the remote signs its webhooks with (none: the webhook URL is refused).
    #[serde(default)]
    pub secret: Option<String>,
    /// Made by `import_repository`: every branch and tag, overwritten, once.
    #[serde(default)]
    pub import: bool,
    /// When it was added, seconds since the epoch.
    pub created: i64,
}

/// What the API shows of an upstream: no password, no secret.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamView<'a> {
    /// Its id.
    pub id: &'a str,
    /// The remote.
    pub url: &'a str,
    /// The user name, if one was given.
    pub username: Option<&'a str>,
    /// Whether a password is set.
    pub has_password: bool,
    /// The refs followed.
    pub refs: &'a [String],
    /// `fast-forward` or `overwrite`.
    pub mode: &'static str,
    /// Seconds between timed syncs.
    pub interval: u64,
    /// Whether LFS objects follow.
    pub lfs: bool,
    /// Whether webhooks are accepted (a secret is set).
    pub has_secret: bool,
    /// Whether it is a one-shot import.
    pub import: bool,
    /// When it was added.
    pub created: i64,
}

impl Upstream {
    /// The view the API shows.
    pub fn view(&self) -> UpstreamView<'_> {
        UpstreamView {
            id: &self.id,
            url: &self.url,
            username: self.username.as_deref(),
            has_password: self.password.is_some(),
            refs: &self.refs,
            mode: if self.overwrite {
                "overwrite"
            } else {
                "fast-forward"
            },
            interval: self.interval,
            lfs: self.lfs,
            has_secret: self.secret.is_some(),
            import: self.import,
            created: self.created,
        }
    }
}

/// Every endpoint of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Its webhooks.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Its push mirrors.
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    /// Artifact versions in step with the default branch.
    #[serde(default)]
    pub versions: Option<VersionSync>,
    /// Repositories it follows.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
}

impl Endpoints {
    /// Whether there is nothing to deliver to.
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.mirrors.is_empty() && self.versions.is_none()
    }
}

/// Versions in step: every push that moves the default branch publishes an artifact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSync {
    /// When it was turned on, seconds since the epoch (pushes before are not published).
    pub since: i64,
}

/// The endpoint id of version sync in the state store.
pub const VERSIONS_ENDPOINT: &str = "versions";

/// The most endpoints of each kind one repository may have.
pub const MAX_ENDPOINTS: usize = 20;

/// Why endpoints could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// The stored object is not valid JSON of the expected shape.
    #[error("the endpoints object is unreadable: {0}")]
    Corrupt(String),
    /// The change was refused; the text says why.
    #[error("{0}")]
    Refused(String),
    /// Too many concurrent changes.
    #[error("the endpoints kept changing concurrently; try again")]
    Contention,
}

/// A random id with a prefix: `prefix-` and 16 hex digits.
pub fn new_id(prefix: &str) -> Result<String, ConfigError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ConfigError::Refused(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}-{}", hex::encode(bytes)))
}

/// A repository's endpoints in the bucket.
#[derive(Debug, Clone)]
pub struct EndpointStore {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
}

impl EndpointStore {
    /// The endpoints of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        EndpointStore { bucket, keys }
    }

    async fn read(&self) -> Result<(Endpoints, Option<objectstore::ETag>), ConfigError> {
        match self.bucket.get(&self.keys.event_endpoints()).await {
            Ok(got) => Ok((
                serde_json::from_slice(&got.data)
                    .map_err(|e| ConfigError::Corrupt(e.to_string()))?,
                Some(got.etag),
            )),
            Err(e) if e.is_not_found() => Ok((Endpoints::default(), None)),
            Err(e) => Err(e.into()),
        }
    }

    /// The endpoints now.
    pub async fn load(&self) -> Result<Endpoints, ConfigError> {
        Ok(self.read().await?.0)
    }

    /// Apply `change` by compare-and-swap, retrying on concurrent changes; what it returned.
    pub async fn update<T>(
        &self,
        mut change: impl FnMut(&mut Endpoints) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        for _ in 0..8 {
            let (mut endpoints, etag) = self.read().await?;
            let out = change(&mut endpoints)?;
            let mode = match etag {
                Some(tag) => PutMode::Update(tag),
                None => PutMode::Create,
            };
            let data = serde_json::to_vec_pretty(&endpoints)
                .map_err(|e| ConfigError::Corrupt(e.to_string()))?;
            match self
                .bucket
                .put(&self.keys.event_endpoints(), Bytes::from(data), mode)
                .await
            {
                Ok(_) => return Ok(out),
                Err(bucket::Error::PreconditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ConfigError::Contention)
    }
}
