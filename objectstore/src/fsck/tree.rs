//! Trees: entry format, names, modes and git's entry order (git's `fsck_tree`).

use std::collections::HashSet;

use gix_hash::ObjectId;

use super::names::{
    is_hfs_dotgit, is_hfs_dotgitattributes, is_hfs_dotgitmodules, is_ntfs_dotgit,
    is_ntfs_dotgitattributes, is_ntfs_dotgitmodules,
};
use super::{finding, Finding, MsgId};

/// A file whose content git checks too, because clients interpret it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialFile {
    /// `.gitmodules`: submodule URLs and paths a client acts on.
    Gitmodules,
    /// `.gitattributes`: parsed by every checkout.
    Gitattributes,
}

/// Names longer than this are refused (git's `max_tree_entry_len`).
const MAX_NAME: usize = 4096;

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// The modes git writes (not `100664`, which early git wrote: `badFilemode`).
fn is_standard_mode(mode: u32) -> bool {
    matches!(mode, 0o100755 | 0o100644 | 0o120000 | 0o040000 | 0o160000)
}

/// One parsed entry.
struct Entry<'a> {
    mode: u32,
    zero_padded: bool,
    name: &'a [u8],
    id: ObjectId,
}

fn bad_tree() -> Finding {
    finding(MsgId::BadTree, "cannot be parsed as a tree")
}

/// Split the next entry off `data`.
fn next_entry(data: &[u8], hash: gix_hash::Kind) -> Result<(Entry<'_>, &[u8]), Finding> {
    let space = data.iter().position(|b| *b == b' ').ok_or_else(bad_tree)?;
    let mode_text = &data[..space];
    if mode_text.is_empty()
        || mode_text.len() > 7
        || !mode_text.iter().all(|b| (b'0'..=b'7').contains(b))
    {
        return Err(bad_tree());
    }
    let mode = mode_text
        .iter()
        .fold(0u32, |m, d| (m << 3) | u32::from(d - b'0'));
    let rest = &data[space + 1..];
    let nul = rest.iter().position(|b| *b == 0).ok_or_else(bad_tree)?;
    let name = &rest[..nul];
    let id_end = nul + 1 + hash.len_in_bytes();
    let id_bytes = rest.get(nul + 1..id_end).ok_or_else(bad_tree)?;
    let id = ObjectId::try_from(id_bytes).map_err(|_| bad_tree())?;
    Ok((
        Entry {
            mode,
            zero_padded: mode_text[0] == b'0',
            name,
            id,
        },
        &rest[id_end..],
    ))
}

/// How two consecutive entries compare in git's tree order, where a directory sorts as if its
/// name ended in `/`.
#[derive(PartialEq, Eq)]
enum Order {
    Ordered,
    Unordered,
    Duplicate,
}

fn order(prev: &Entry<'_>, next: &Entry<'_>) -> Order {
    let len = prev.name.len().min(next.name.len());
    match prev.name[..len].cmp(&next.name[..len]) {
        std::cmp::Ordering::Less => return Order::Ordered,
        std::cmp::Ordering::Greater => return Order::Unordered,
        std::cmp::Ordering::Equal => {}
    }
    let end = |e: &Entry<'_>| match e.name.get(len) {
        Some(c) => *c,
        None if e.mode & S_IFMT == S_IFDIR => b'/',
        None => 0,
    };
    if prev.name.len() == next.name.len() {
        return Order::Duplicate;
    }
    if end(prev) < end(next) {
        Order::Ordered
    } else {
        Order::Unordered
    }
}

/// Check a tree's entries; `special` is told about entries named like `.gitmodules` or
/// `.gitattributes` that are not symlinks, whose content must be checked too.
pub(super) fn check_tree(
    mut data: &[u8],
    rules: super::Rules,
    hash: gix_hash::Kind,
    special: &mut dyn FnMut(SpecialFile, ObjectId),
) -> Result<(), Finding> {
    let mut has_null_sha1 = false;
    let mut has_full_path = false;
    let mut has_empty_name = false;
    let mut has_dot = false;
    let mut has_dotdot = false;
    let mut has_dotgit = false;
    let mut has_zero_pad = false;
    let mut has_bad_modes = false;
    let mut has_dup_entries = false;
    let mut not_properly_sorted = false;
    let mut large_name = false;
    // A file `a` and a directory `a` are duplicates even when `a-b` sorts between them.
    let mut names: HashSet<&[u8]> = HashSet::new();
    let mut prev: Option<Entry<'_>> = None;
    while !data.is_empty() {
        let (entry, rest) = next_entry(data, hash)?;
        data = rest;
        let name = entry.name;
        has_null_sha1 |= entry.id.is_null();
        has_full_path |= name.contains(&b'/');
        has_empty_name |= name.is_empty();
        has_dot |= name == b".";
        has_dotdot |= name == b"..";
        has_dotgit |= is_hfs_dotgit(name) || is_ntfs_dotgit(name);
        has_zero_pad |= entry.zero_padded;
        large_name |= name.len() > MAX_NAME;
        let is_link = entry.mode & S_IFMT == S_IFLNK;
        for (which, hfs, ntfs) in [
            (
                SpecialFile::Gitmodules,
                is_hfs_dotgitmodules as fn(&[u8]) -> bool,
                is_ntfs_dotgitmodules as fn(&[u8]) -> bool,
            ),
            (
                SpecialFile::Gitattributes,
                is_hfs_dotgitattributes,
                is_ntfs_dotgitattributes,
            ),
        ] {
            // NTFS also reads the part after a backslash as a name.
            let named = hfs(name) || ntfs(name) || name.split(|b| *b == b'\\').skip(1).any(ntfs);
            if !named {
                continue;
            }
            match (which, is_link) {
                (SpecialFile::Gitmodules, true) => {
                    return Err(finding(
                        MsgId::GitmodulesSymlink,
                        ".gitmodules is a symbolic link",
                    ))
                }
                (_, true) => {}
                (_, false) => special(which, entry.id),
            }
        }
        has_dotgit |= name.split(|b| *b == b'\\').skip(1).any(is_ntfs_dotgit);
        has_bad_modes |= !is_standard_mode(entry.mode);
        if !names.insert(name) {
            has_dup_entries = true;
        }
        if let Some(p) = &prev {
            match order(p, &entry) {
                Order::Ordered => {}
                Order::Unordered => not_properly_sorted = true,
                Order::Duplicate => has_dup_entries = true,
            }
        }
        prev = Some(entry);
    }
    let checks = [
        (
            has_null_sha1,
            MsgId::NullSha1,
            "contains entries pointing to null sha1",
        ),
        (
            has_full_path,
            MsgId::FullPathname,
            "contains full pathnames",
        ),
        (has_empty_name, MsgId::EmptyName, "contains empty pathname"),
        (has_dot, MsgId::HasDot, "contains '.'"),
        (has_dotdot, MsgId::HasDotdot, "contains '..'"),
        (has_dotgit, MsgId::HasDotgit, "contains '.git'"),
        (
            large_name,
            MsgId::LargePathname,
            "contains excessively long pathname",
        ),
        (
            has_zero_pad,
            MsgId::ZeroPaddedFilemode,
            "contains zero-padded file modes",
        ),
        (has_bad_modes, MsgId::BadFilemode, "contains bad file modes"),
        (
            has_dup_entries,
            MsgId::DuplicateEntries,
            "contains duplicate file entries",
        ),
        (
            not_properly_sorted,
            MsgId::TreeNotSorted,
            "not properly sorted",
        ),
    ];
    match (checks.into_iter()).find(|(broken, id, _)| *broken && rules.refuses(*id)) {
        Some((_, id, message)) => Err(finding(id, message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rules;
    use super::*;

    fn tree(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(&[7u8; 20]);
        }
        out
    }

    /// The finding that refuses `entries` under `--strict`.
    fn check(entries: &[(&str, &[u8])]) -> Option<MsgId> {
        check_under(Rules::Strict, entries)
    }

    fn check_under(rules: Rules, entries: &[(&str, &[u8])]) -> Option<MsgId> {
        check_tree(&tree(entries), rules, gix_hash::Kind::Sha1, &mut |_, _| {})
            .err()
            .map(|f| f.id)
    }

    #[test]
    fn names_modes_and_order() {
        assert_eq!(
            check(&[
                ("100644", b"a"),
                ("100644", b"a-b"),
                ("40000", b"a"),
                ("100755", b"b.sh"),
                ("120000", b"link"),
                ("160000", b"sub"),
            ]),
            Some(MsgId::DuplicateEntries)
        );
        assert_eq!(
            check(&[
                ("100644", b"a.txt"),
                ("40000", b"a"),
                ("100755", b"b.sh"),
                ("120000", b"link"),
                ("160000", b"sub")
            ]),
            None
        );
        for (entries, want) in [
            (vec![("100644", &b".git"[..])], MsgId::HasDotgit),
            (vec![("40000", &b".GIT"[..])], MsgId::HasDotgit),
            (vec![("40000", &b"GIT~1"[..])], MsgId::HasDotgit),
            (vec![("40000", ".g\u{200c}it".as_bytes())], MsgId::HasDotgit),
            (vec![("100644", &b"x\\.git"[..])], MsgId::HasDotgit),
            (vec![("40000", &b".."[..])], MsgId::HasDotdot),
            (vec![("40000", &b"."[..])], MsgId::HasDot),
            (vec![("100644", &b"a/b"[..])], MsgId::FullPathname),
            (vec![("100644", &b""[..])], MsgId::EmptyName),
            (vec![("100664", &b"a"[..])], MsgId::BadFilemode),
            (vec![("100600", &b"a"[..])], MsgId::BadFilemode),
            (vec![("040000", &b"a"[..])], MsgId::ZeroPaddedFilemode),
            (
                vec![("100644", &b"b"[..]), ("100644", &b"a"[..])],
                MsgId::TreeNotSorted,
            ),
            (
                vec![("40000", &b"a"[..]), ("100644", &b"a.c"[..])],
                MsgId::TreeNotSorted,
            ),
            (
                vec![("100644", &b"a"[..]), ("100644", &b"a"[..])],
                MsgId::DuplicateEntries,
            ),
            (
                vec![("120000", &b".gitmodules"[..])],
                MsgId::GitmodulesSymlink,
            ),
            (vec![("1x0644", &b"a"[..])], MsgId::BadTree),
        ] {
            assert_eq!(check(&entries), Some(want), "{entries:?}");
        }
        assert_eq!(
            check_tree(
                b"100644 a\0short",
                Rules::Default,
                gix_hash::Kind::Sha1,
                &mut |_, _| {}
            )
            .err()
            .map(|f| f.id),
            Some(MsgId::BadTree)
        );
        let mut null = tree(&[("100644", b"a")]);
        let n = null.len();
        null[n - 20..].fill(0);
        assert_eq!(
            check_tree(&null, Rules::Strict, gix_hash::Kind::Sha1, &mut |_, _| {})
                .err()
                .map(|f| f.id),
            Some(MsgId::NullSha1)
        );
        let long = vec![b'x'; MAX_NAME + 1];
        assert_eq!(check(&[("100644", &long)]), Some(MsgId::LargePathname));
    }

    /// git's own history has `100664` modes and zero-padded ones: accepted by default (as
    /// `receive.fsckObjects` does), refused under `--strict`; the shapes of attacks on
    /// clients stay refused either way.
    #[test]
    fn historical_warnings_pass_by_default() {
        for entries in [
            vec![("100664", &b"a"[..])],
            vec![("040000", &b"a"[..])],
            vec![("100644", &b"a"[..]), ("040000", &b"b"[..])],
        ] {
            assert_eq!(check_under(Rules::Default, &entries), None, "{entries:?}");
            assert!(
                check_under(Rules::Strict, &entries).is_some(),
                "{entries:?}"
            );
        }
        for (entries, want) in [
            (vec![("100644", &b".git"[..])], MsgId::HasDotgit),
            (vec![("40000", &b".."[..])], MsgId::HasDotdot),
            (vec![("100644", &b"a/b"[..])], MsgId::FullPathname),
            (vec![("100664", &b".GIT"[..])], MsgId::HasDotgit),
            (
                vec![("120000", &b".gitmodules"[..])],
                MsgId::GitmodulesSymlink,
            ),
        ] {
            assert_eq!(
                check_under(Rules::Default, &entries),
                Some(want),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn special_files_are_reported() {
        let mut seen = Vec::new();
        check_tree(
            &tree(&[
                ("100644", b".gitattributes"),
                ("100644", b".gitmodules"),
                ("100644", b"gitmod~1"),
            ]),
            Rules::Default,
            gix_hash::Kind::Sha1,
            &mut |which, _| seen.push(which),
        )
        .ok();
        assert_eq!(
            seen,
            vec![
                SpecialFile::Gitattributes,
                SpecialFile::Gitmodules,
                SpecialFile::Gitmodules
            ]
        );
    }
}
