//! The names that stand for `.git`, `.gitmodules` or `.gitattributes` on some filesystem.
//!
//! HFS+ ignores a set of invisible Unicode code points and folds case, so `.G\u{200c}it` is
//! `.git` on a Mac; NTFS drops trailing spaces and dots, stops at `:` (alternate data streams)
//! and answers to 8.3 short names (`git~1`, `gi7eba~1`). A tree entry spelled like any of these
//! writes into the repository's own metadata when a client on that filesystem checks it out:
//! the shape of CVE-2014-9390 and its successors. These are git's `is_hfs_dotgit`,
//! `is_ntfs_dotgit` and friends, from `utf8.c` and `path.c`.

/// The next character of an HFS+ name, skipping the code points HFS+ ignores; `None` at the
/// end.
fn next_hfs_char(chars: &mut std::str::Chars<'_>) -> Option<char> {
    loop {
        let c = chars.next()?;
        match c as u32 {
            0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff => continue,
            _ => return Some(c),
        }
    }
}

/// `.` + `needle` (ASCII, lower case) as HFS+ compares names.
fn is_hfs_dot_generic(name: &[u8], needle: &str) -> bool {
    // As in git, the name ends where it stops being UTF-8.
    let name = match std::str::from_utf8(name) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&name[..e.valid_up_to()]).unwrap_or_default(),
    };
    let mut chars = name.chars();
    if next_hfs_char(&mut chars) != Some('.') {
        return false;
    }
    for want in needle.chars() {
        match next_hfs_char(&mut chars) {
            Some(c) if c.is_ascii() && c.to_ascii_lowercase() == want => {}
            _ => return false,
        }
    }
    matches!(next_hfs_char(&mut chars), None | Some('/'))
}

/// Whether `name` is `.git` on HFS+.
pub fn is_hfs_dotgit(name: &[u8]) -> bool {
    is_hfs_dot_generic(name, "git")
}

pub(super) fn is_hfs_dotgitmodules(name: &[u8]) -> bool {
    is_hfs_dot_generic(name, "gitmodules")
}

pub(super) fn is_hfs_dotgitattributes(name: &[u8]) -> bool {
    is_hfs_dot_generic(name, "gitattributes")
}

/// Whether everything of `name[skip..len]` is spaces and dots (what NTFS drops).
fn only_spaces_and_periods(name: &[u8], len: usize, skip: usize) -> bool {
    len >= skip && name[skip..len].iter().all(|b| *b == b' ' || *b == b'.')
}

/// Whether `name` is `.git` (or its short name `git~1`) on NTFS.
pub fn is_ntfs_dotgit(name: &[u8]) -> bool {
    let len = name
        .iter()
        .position(|b| matches!(b, b'\\' | b'/' | b':'))
        .unwrap_or(name.len());
    (only_spaces_and_periods(name, len, 4) && name[..4].eq_ignore_ascii_case(b".git"))
        || (only_spaces_and_periods(name, len, 5) && name[..5].eq_ignore_ascii_case(b"git~1"))
}

/// `.` + `dotgit_name` on NTFS, including its 8.3 short names: the first six characters with
/// `~1`..`~4`, or the fallback `<shortname_prefix>~<digits>` NTFS makes when those are taken.
fn is_ntfs_dot_generic(name: &[u8], dotgit_name: &str, shortname_prefix: &str) -> bool {
    let rest_is_dropped = |from: usize| {
        for &c in name.get(from..).unwrap_or_default() {
            match c {
                b':' => return true,
                b' ' | b'.' => {}
                _ => return false,
            }
        }
        true
    };
    let long = dotgit_name.as_bytes();
    if name.first() == Some(&b'.')
        && name.len() > long.len()
        && name[1..=long.len()].eq_ignore_ascii_case(long)
    {
        return rest_is_dropped(long.len() + 1);
    }
    if name.len() >= 8
        && name[..6].eq_ignore_ascii_case(&long[..6])
        && name[6] == b'~'
        && (b'1'..=b'4').contains(&name[7])
    {
        return rest_is_dropped(8);
    }
    // The fallback short name: up to six characters of the prefix, `~`, then digits, eight
    // characters in all.
    let prefix = shortname_prefix.as_bytes();
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let Some(&c) = name.get(i) else {
            return false;
        };
        if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            match name.get(i) {
                Some(d) if (b'1'..=b'9').contains(d) => {}
                _ => return false,
            }
            saw_tilde = true;
        } else if i >= 6 || c & 0x80 != 0 || c.to_ascii_lowercase() != prefix[i] {
            return false;
        }
        i += 1;
    }
    rest_is_dropped(8)
}

pub(super) fn is_ntfs_dotgitmodules(name: &[u8]) -> bool {
    is_ntfs_dot_generic(name, "gitmodules", "gi7eba")
}

pub(super) fn is_ntfs_dotgitattributes(name: &[u8]) -> bool {
    is_ntfs_dot_generic(name, "gitattributes", "gi7d29")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotgit_spellings() {
        for yes in [
            ".git",
            ".GIT",
            ".Git",
            ".g\u{200c}it",
            "\u{feff}.git",
            ".git\u{200d}",
            ".git ",
            ".git.",
            ".git . .",
            "git~1",
            "GIT~1",
            ".git::$INDEX_ALLOCATION",
            ".git:stream",
        ] {
            let b = yes.as_bytes();
            assert!(is_hfs_dotgit(b) || is_ntfs_dotgit(b), "{yes:?}");
        }
        for no in [
            ".gitignore",
            ".git-x",
            "git",
            ".gi",
            "a.git",
            ".gitx",
            "git~2",
            ".g\u{e9}it",
        ] {
            let b = no.as_bytes();
            assert!(!is_hfs_dotgit(b) && !is_ntfs_dotgit(b), "{no:?}");
        }
    }

    #[test]
    fn a_name_ends_where_it_stops_being_utf8() {
        assert!(is_hfs_dotgit(b".git\xff"));
        assert!(!is_hfs_dotgit(b"\xff.git"));
    }

    #[test]
    fn dotgitmodules_spellings() {
        for yes in [
            ".gitmodules",
            ".GITMODULES",
            ".gitmodules ",
            ".gitmodules.:x",
            "gitmod~1",
            "GITMOD~4",
            "gi7eba~1",
            "gi7eba~9",
            ".git\u{200c}modules",
        ] {
            let b = yes.as_bytes();
            assert!(
                is_hfs_dotgitmodules(b) || is_ntfs_dotgitmodules(b),
                "{yes:?}"
            );
        }
        for no in [
            ".gitmodulesx",
            "gitmodules",
            "gitmod~5",
            "gi7eba~a",
            ".gitattributes",
        ] {
            let b = no.as_bytes();
            assert!(
                !is_hfs_dotgitmodules(b) && !is_ntfs_dotgitmodules(b),
                "{no:?}"
            );
        }
        assert!(is_ntfs_dotgitattributes(b".gitattributes"));
        assert!(is_ntfs_dotgitattributes(b"gitatt~1"));
        assert!(is_hfs_dotgitattributes(b".GitAttributes"));
    }
}
