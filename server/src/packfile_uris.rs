//! `packfile-uris` (`gitprotocol-v2`): a clone of everything gets the stored packs as URLs it
//! downloads itself (on S3 presigned URLs straight to the bucket; on the filesystem this
//! server's `GET {clone URL}/packs/pack-<checksum>.pack` with a token good for that pack
//! alone) and an empty pack in-band. The client checks each downloaded pack against the
//! checksum the answer names. Which packs may go this way is decided where the fetch is
//! answered ([`crate::upload_pack`]): only packs whose `.tips` prove they hold nothing but
//! what the refs reach, and only over the schemes the client named (a client that accepts
//! only `https` from a server whose URLs are `http` gets the whole pack in-band).

use std::time::Duration;

use objectstore::odb::ObjectDb;

use crate::app::App;
use crate::repo::Repo;

/// Packs smaller than this together are sent in-band: a second request would cost more.
pub const MIN_OFFLOADED_BYTES: u64 = 1 << 20;

/// At most this many URLs in one answer.
pub const MAX_URIS: usize = 16;

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
    for pack in db.packs().iter().take(MAX_URIS) {
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

/// A pack with no objects (what goes in-band when every object is sent by URL).
pub fn empty_pack(hash: gix_hash::Kind) -> Vec<u8> {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
    let mut hasher = gix_hash::hasher(hash);
    hasher.update(&pack);
    match hasher.try_finalize() {
        Ok(id) => pack.extend_from_slice(id.as_bytes()),
        // A collision cannot come from these twelve fixed bytes.
        Err(_) => pack.extend_from_slice(&vec![0; hash.len_in_bytes()]),
    }
    pack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_empty_pack() {
        assert!(valid_file(&format!("pack-{}.pack", "a".repeat(40))));
        assert!(!valid_file(&format!("pack-{}.idx", "a".repeat(40))));
        assert!(!valid_file("pack-../x.pack"));
        assert!(!valid_file(&format!("pack-{}.pack", "A".repeat(40))));
        let pack = empty_pack(gix_hash::Kind::Sha1);
        assert_eq!(pack.len(), 32);
        // git's own empty pack.
        assert_eq!(hex(&pack[12..]), "029d08823bd8a8eab510ad6ac75c823cfd3ed31e");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
