//! Which requests may touch which repository: the caller's grants, the repository's
//! settings (public repositories are readable by anyone) and whether it exists, read in one
//! go and decided by the one [`authorize`]. The git routes, the file routes and the Hub API
//! all open repositories through here.

use crate::auth::{authorize, Access, Grants};
use crate::repo::Repo;
use crate::response::HttpError;
use crate::storage::RepoId;

/// The caller the context layer found: `Err` (a 401) when credentials were sent but are not
/// valid.
pub(crate) fn caller<B>(req: &http::Request<B>) -> Result<Option<Grants>, HttpError> {
    match req.extensions().get::<crate::request::Caller>() {
        Some(crate::request::Caller(caller)) => caller.clone().map_err(HttpError::Unauthorized),
        None => Ok(None),
    }
}

/// Anonymous callers may only read public repositories (git asks anonymously first, then
/// again with credentials): nothing but the settings is read before that is known.
pub(crate) async fn public_settings(
    repo: &Repo,
    need: Access,
) -> Result<crate::repo::Settings, HttpError> {
    let required = || HttpError::Unauthorized("authentication required".into());
    if need != Access::Read || repo.known_private(RECENTLY) {
        return Err(required());
    }
    match repo.settings().await? {
        s if s.public => Ok(s),
        _ => Err(required()),
    }
}

/// The refs and settings a request needs, read together; a token that grants the request
/// makes the settings irrelevant (`settings_irrelevant`).
pub(crate) async fn read_repository(
    repo: &Repo,
    known_settings: Option<crate::repo::Settings>,
    settings_irrelevant: bool,
) -> (
    Result<refs::Snapshot, refs::Error>,
    Result<crate::repo::Settings, objectstore::bucket::Error>,
) {
    // A v2 capability advertisement names the object format, which the refs say: they are
    // read with `HEAD` (concurrently; a revalidation when cached), unless known a moment
    // ago (see `crate::http`).
    let snapshot = repo.snapshot();
    let settings = async {
        match known_settings {
            Some(s) => Ok(s),
            None if settings_irrelevant => Ok(crate::repo::Settings::default()),
            None => repo.settings().await,
        }
    };
    tokio::join!(snapshot, settings)
}

/// How long a read stays good enough for answers that reveal nothing and move nothing: a v2
/// capability advertisement to an entitled caller, a refusal of an anonymous one.
pub(crate) const RECENTLY: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the caller's token grants `need` on `repo` by itself (the settings, which only
/// open reads to everyone, are then irrelevant to the decision).
pub(crate) fn granted(identity: Option<&Grants>, repo: &Repo, need: Access) -> bool {
    identity
        .and_then(|g| g.level(&repo.id.workspace, &repo.id.alias))
        .is_some_and(|level| level >= need)
}

/// The refs (`None`: no such repository) and settings a request for `need` reads, the
/// settings first for an anonymous caller (who may only read public repositories). LFS
/// answers depend on the settings even for a granted caller.
pub(crate) async fn read_for(
    repo: &Repo,
    identity: Option<&Grants>,
    need: Access,
    settings_matter: bool,
) -> Result<(Option<refs::Snapshot>, crate::repo::Settings), HttpError> {
    let known_settings = match identity {
        None => Some(public_settings(repo, need).await?),
        Some(_) => None,
    };
    let irrelevant = granted(identity, repo, need) && !settings_matter;
    let (snapshot, settings) = read_repository(repo, known_settings, irrelevant).await;
    let snapshot = match snapshot {
        Ok(s) => Some(s),
        Err(refs::Error::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    Ok((snapshot, settings?))
}

/// A repository opened for a request needing `need`: the caller authorized, its refs and
/// settings read. For every surface beside git's own (files, the Hub API).
pub async fn open_repository(
    app: &crate::app::App,
    identity: Option<&Grants>,
    id: RepoId,
    need: Access,
) -> Result<(Repo, refs::Snapshot, crate::repo::Settings), HttpError> {
    let repo = Repo::new(&app.storage, id);
    let (snapshot, settings) = read_for(&repo, identity, need, true).await?;
    authorize(
        identity,
        snapshot.is_some(),
        settings.public,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    )?;
    match snapshot {
        Some(snapshot) => Ok((repo, snapshot, settings)),
        None => Err(HttpError::NotFound("repository not found".into())),
    }
}
