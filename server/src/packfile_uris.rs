//! `packfile-uris` (`gitprotocol-v2`): a clone of everything gets the stored packs as URLs it
//! downloads itself (on S3 presigned URLs straight to the bucket; on the filesystem this
//! server's `GET {clone URL}/packs/pack-<checksum>.pack` with a token good for that pack
//! alone) and an empty pack in-band. The client checks each downloaded pack against the
//! checksum the answer names. Which packs may go this way is decided where the fetch is
//! answered ([`crate::fetch`]): only packs whose `.tips` prove they hold nothing but
//! what the refs reach, and only over the schemes the client named (a client that accepts
//! only `https` from a server whose URLs are `http` gets the whole pack in-band).

use std::time::Duration;

use objectstore::odb::ObjectDb;

use crate::app::App;
use crate::repo::Repo;

/// How long a pack's URL is good.
pub const URI_TTL: Duration = Duration::from_secs(300);

/// What a pack's URL token is bound to.
pub fn pack_claim(file: &str) -> String {
    format!("pack:{file}")
}

/// Whether `file` names a pack file (`pack-<hex>.pack`).
pub fn valid_file(file: &str) -> bool {
    file.strip_prefix("pack-")
        .and_then(|f| f.strip_suffix(".pack"))
        .is_some_and(|hex| {
            (hex.len() == 40 || hex.len() == 64)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// A URL for each stored pack of `db` (pack name, URL): secrets, never logged. Empty when
/// none can be made.
pub async fn uris(app: &App, repo: &Repo, db: &ObjectDb, base_url: &str) -> Vec<(String, String)> {
    let bucket = &repo.storage().bucket;
    let (ws, alias) = (&repo.id.workspace, &repo.id.alias);
    let mut out = Vec::new();
    for pack in db.packs().iter().take(crate::fetch::MAX_URIS) {
        let key = repo
            .keys
            .pack_file(&pack.name, objectstore::layout::PackFile::Pack);
        let presigned = match bucket.presign_get(&key, URI_TTL).await {
            Ok(p) => p.filter(|p| p.headers.is_empty()).map(|p| p.url),
            Err(e) => {
                tracing::warn!(repo = %repo.id, error = %e, "a pack URL could not be signed");
                return Vec::new();
            }
        };
        let url = match presigned {
            Some(url) => url,
            None => {
                let file = format!("{}.pack", pack.name);
                let url = format!("{base_url}/{ws}/git/{alias}/packs/{file}");
                match app
                    .auth
                    .mint_object_token(ws, alias, &pack_claim(&file), false, URI_TTL)
                {
                    Some(token) => format!("{url}?token={token}"),
                    None => url,
                }
            }
        };
        out.push((pack.name.clone(), url));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_file(&format!("pack-{}.pack", "a".repeat(40))));
        assert!(!valid_file(&format!("pack-{}.idx", "a".repeat(40))));
        assert!(!valid_file("pack-../x.pack"));
        assert!(!valid_file(&format!("pack-{}.pack", "A".repeat(40))));
    }
}
