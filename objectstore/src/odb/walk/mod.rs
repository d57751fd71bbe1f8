//! History walks: what a fetch must send ([`select`]), where a shallow history is cut
//! ([`shallow_update`]), whether a pushed pack connects to what the repository has
//! ([`Connectivity`]), and whether the refs still reach what a pack records
//! ([`all_reachable`]).

use std::collections::HashSet;

use gix_hash::ObjectId;
use gix_object::Kind;

mod connectivity;
mod select;
mod shallow;

pub use connectivity::{all_reachable, Connectivity};
pub use select::select;
pub use shallow::{shallow_update, Deepen, ShallowUpdate};

/// The depth git sends for `--unshallow`: "all of it".
pub const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// The objects a fetch must send.
#[derive(Debug, Default)]
pub struct Selection {
    /// Every object to send, each once.
    pub objects: Vec<ObjectId>,
    /// Objects the client is known to have: bases a thin pack may refer to.
    pub client_has: HashSet<ObjectId>,
    /// How many of `objects` are commits.
    pub commits: usize,
}

/// An object filter of a partial clone (`--filter=<spec>`), as git's `list-objects-filter`
/// applies it: objects the client names in a want are always sent; the filter drops the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`: no blobs.
    BlobNone,
    /// `blob:limit=<n>[kmg]`: blobs smaller than `n` bytes.
    BlobLimit(u64),
    /// `tree:<depth>`: trees and blobs less than `depth` levels below a commit's root tree
    /// (`tree:0` sends commits and tags only).
    TreeDepth(u64),
    /// `object:type=<type>`: objects of that type only.
    ObjectType(Kind),
}

impl Filter {
    /// Parse a filter spec as git sends it; `Err` names what is not supported.
    pub fn parse(spec: &str) -> std::result::Result<Filter, String> {
        let unsupported = || format!("unsupported filter spec '{spec}'");
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(limit) = spec.strip_prefix("blob:limit=") {
            return parse_size(limit)
                .map(Filter::BlobLimit)
                .ok_or_else(unsupported);
        }
        if let Some(depth) = spec.strip_prefix("tree:") {
            return depth
                .parse()
                .map(Filter::TreeDepth)
                .map_err(|_| unsupported());
        }
        if let Some(kind) = spec.strip_prefix("object:type=") {
            return Kind::from_bytes(kind.as_bytes())
                .map(Filter::ObjectType)
                .map_err(|_| unsupported());
        }
        Err(unsupported())
    }

    /// Whether commits and tags that no want names go.
    fn keeps_kind(self, kind: Kind) -> bool {
        match self {
            Filter::ObjectType(k) => k == kind,
            _ => true,
        }
    }
}

/// `<n>[kmg]`, as git's `git_parse_ulong` reads it.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, ' '),
    };
    let scale: u64 = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specs_parse_as_git_writes_them() {
        assert_eq!(Filter::parse("blob:none"), Ok(Filter::BlobNone));
        assert_eq!(Filter::parse("blob:limit=0"), Ok(Filter::BlobLimit(0)));
        assert_eq!(
            Filter::parse("blob:limit=1024"),
            Ok(Filter::BlobLimit(1024))
        );
        assert_eq!(Filter::parse("blob:limit=2k"), Ok(Filter::BlobLimit(2048)));
        assert_eq!(
            Filter::parse("blob:limit=3M"),
            Ok(Filter::BlobLimit(3 << 20))
        );
        assert_eq!(
            Filter::parse("blob:limit=1g"),
            Ok(Filter::BlobLimit(1 << 30))
        );
        assert_eq!(Filter::parse("tree:0"), Ok(Filter::TreeDepth(0)));
        assert_eq!(Filter::parse("tree:3"), Ok(Filter::TreeDepth(3)));
        assert_eq!(
            Filter::parse("object:type=blob"),
            Ok(Filter::ObjectType(Kind::Blob))
        );
        for bad in [
            "",
            "blob:some",
            "blob:limit=",
            "blob:limit=1x",
            "blob:limit=k",
            "blob:limit=99999999999999999999g",
            "tree:-1",
            "tree:",
            "object:type=file",
            "sparse:oid=main:x",
            "combine:blob:none+tree:0",
        ] {
            let err = Filter::parse(bad).unwrap_err();
            assert!(err.contains("unsupported filter spec"), "{bad}: {err}");
        }
    }
}
