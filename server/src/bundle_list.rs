//! The answer to the protocol v2 `bundle-uri` command: the bundles maintenance keeps
//! ([`crate::bundle_uri`]) that are still fresh, each with a URL a client downloads it from.

use std::sync::Arc;

use protocol::pktline::{write_flush, write_line};
use refs::Snapshot;

use crate::bundle_uri::{file_claim, fresh_prefix, load, stored_prefix, BundleUriError, URI_TTL};
use crate::repo::Repo;

/// Where a client downloads a bundle file: a presigned URL on S3, else this server's route
/// with a token good for that file alone (when the server can mint one).
async fn uri(
    app: &crate::app::App,
    repo: &Repo,
    base_url: &str,
    file: &str,
) -> Result<String, BundleUriError> {
    let key = repo.keys.bundle_file(file);
    if let Some(p) = repo.storage().bucket.presign_get(&key, URI_TTL).await? {
        if p.headers.is_empty() {
            return Ok(p.url);
        }
    }
    let (ws, alias) = (&repo.id.workspace, &repo.id.alias);
    let url = format!("{base_url}/{ws}/git/{alias}/bundles/{file}");
    Ok(
        match app
            .auth
            .mint_object_token(ws, alias, &file_claim(file), false, URI_TTL)
        {
            Some(token) => format!("{url}?token={token}"),
            None => url,
        },
    )
}

/// The answer to a `bundle-uri` command: the fresh part of the chain, each bundle with a URL
/// good for [`URI_TTL`] (secrets: never logged).
pub async fn answer(
    app: &Arc<crate::app::App>,
    repo: &Repo,
    snapshot: &Snapshot,
    base_url: &str,
) -> Result<Vec<u8>, BundleUriError> {
    let list = load(repo).await?;
    let mut out = Vec::new();
    write_line(&mut out, "bundle.version=1");
    write_line(&mut out, "bundle.mode=all");
    write_line(&mut out, "bundle.heuristic=creationToken");
    if !list.bundles.is_empty() {
        // Only bundles whose refs moved on need the set of what the refs reach (worked out
        // once per refs state and cached): right after maintenance, none do.
        let mut moved = false;
        let unmoved = fresh_prefix(&list, snapshot, |_| {
            moved = true;
            false
        });
        let fresh = match moved {
            false => unmoved,
            true => {
                let db = repo
                    .objects_having(
                        &app.cache,
                        snapshot.object_hash,
                        snapshot.refs.values().map(|v| &v.target),
                    )
                    .await?;
                let visible = app
                    .visible
                    .get(repo, snapshot, &db)
                    .await
                    .map_err(|e| BundleUriError::Pack(e.to_string()))?;
                fresh_prefix(&list, snapshot, |ids| {
                    ids.iter().all(|id| visible.has_commit(id))
                })
            }
        };
        // A bundle whose file is gone (removed by hand, lost) ends the chain too.
        let present = stored_prefix(repo, &list.bundles[..fresh]).await?;
        if present < list.bundles.len() {
            tracing::info!(repo = %repo.id, listed = present, left_out = list.bundles.len() - present, "stale or missing bundles left out of the list");
        }
        let fresh = present;
        for (i, b) in list.bundles[..fresh].iter().enumerate() {
            let url = uri(app, repo, base_url, &b.file).await?;
            write_line(&mut out, &format!("bundle.b{i}.uri={url}"));
            // Keys go over the wire as git's config would print them: lower case.
            write_line(
                &mut out,
                &format!("bundle.b{i}.creationtoken={}", b.creation_token),
            );
        }
    }
    write_flush(&mut out);
    Ok(out)
}
