//! git's object checks (`git fsck --strict`, `receive.fsckObjects`), applied to every object a
//! push brings.
//!
//! A repository whose objects break these rules makes every clone fail `git fsck`, and some of
//! them (a tree entry named `.git` in any case or HFS+/NTFS spelling, `..`, a `/` inside a name,
//! a `.gitmodules` whose URL is an option) are the shape of known attacks on clients. The
//! checks follow git's `fsck.c`: each finding carries git's message id ([`MsgId`]) and wording.
//! Under the [`Rules::Default`] rules, what git's `receive.fsckObjects` refuses is refused, and
//! so are the shapes of known attacks on clients (`.git` in any spelling, `.` and `..`, a `/`
//! in a name, an empty name, everything about `.gitmodules` and `.gitattributes`); git's other
//! warnings (`badFilemode` such as early git's `100664`, `zeroPaddedFilemode`, `nullSha1`,
//! `largePathname`, `nulInCommit`) are accepted, as git and the big hosts accept them: real
//! histories (git's own among them) have them. [`Rules::Strict`] refuses those too (git's
//! `--strict`). Informational messages (`badTagName`, `missingTaggerEntry`, `gitmodulesParse`,
//! `extraHeaderEntry`) are never refused.
//!
//! gix-object's parsers are lenient where fsck is strict (they accept a commit without an
//! author, a tree out of order), so the checks parse the raw bytes themselves.

mod gitmodules;
mod ident;
mod names;
mod tree;

use gix_hash::ObjectId;
use gix_object::Kind;

pub use names::{is_hfs_dotgit, is_ntfs_dotgit};
pub use tree::SpecialFile;

/// git's fsck message ids (`git help fsck`, "FSCK MESSAGES"), those refused here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum MsgId {
    NulInHeader,
    UnterminatedHeader,
    BadDate,
    BadDateOverflow,
    BadEmail,
    BadName,
    BadObjectSha1,
    BadParentSha1,
    BadTimezone,
    BadTree,
    BadTreeSha1,
    BadType,
    DuplicateEntries,
    GitattributesBlob,
    GitattributesLarge,
    GitattributesLineLength,
    GitmodulesBlob,
    GitmodulesLarge,
    GitmodulesName,
    GitmodulesPath,
    GitmodulesSymlink,
    GitmodulesUpdate,
    GitmodulesUrl,
    MissingAuthor,
    MissingCommitter,
    MissingEmail,
    MissingNameBeforeEmail,
    MissingObject,
    MissingSpaceBeforeDate,
    MissingSpaceBeforeEmail,
    MissingTag,
    MissingTagEntry,
    MissingTree,
    MissingType,
    MissingTypeEntry,
    MultipleAuthors,
    TreeNotSorted,
    ZeroPaddedDate,
    EmptyName,
    FullPathname,
    HasDot,
    HasDotdot,
    HasDotgit,
    LargePathname,
    NullSha1,
    ZeroPaddedFilemode,
    NulInCommit,
    BadFilemode,
}

impl MsgId {
    /// The id as git prints it (camelCase).
    pub fn as_str(self) -> &'static str {
        use MsgId::*;
        match self {
            NulInHeader => "nulInHeader",
            UnterminatedHeader => "unterminatedHeader",
            BadDate => "badDate",
            BadDateOverflow => "badDateOverflow",
            BadEmail => "badEmail",
            BadName => "badName",
            BadObjectSha1 => "badObjectSha1",
            BadParentSha1 => "badParentSha1",
            BadTimezone => "badTimezone",
            BadTree => "badTree",
            BadTreeSha1 => "badTreeSha1",
            BadType => "badType",
            DuplicateEntries => "duplicateEntries",
            GitattributesBlob => "gitattributesBlob",
            GitattributesLarge => "gitattributesLarge",
            GitattributesLineLength => "gitattributesLineLength",
            GitmodulesBlob => "gitmodulesBlob",
            GitmodulesLarge => "gitmodulesLarge",
            GitmodulesName => "gitmodulesName",
            GitmodulesPath => "gitmodulesPath",
            GitmodulesSymlink => "gitmodulesSymlink",
            GitmodulesUpdate => "gitmodulesUpdate",
            GitmodulesUrl => "gitmodulesUrl",
            MissingAuthor => "missingAuthor",
            MissingCommitter => "missingCommitter",
            MissingEmail => "missingEmail",
            MissingNameBeforeEmail => "missingNameBeforeEmail",
            MissingObject => "missingObject",
            MissingSpaceBeforeDate => "missingSpaceBeforeDate",
            MissingSpaceBeforeEmail => "missingSpaceBeforeEmail",
            MissingTag => "missingTag",
            MissingTagEntry => "missingTagEntry",
            MissingTree => "missingTree",
            MissingType => "missingType",
            MissingTypeEntry => "missingTypeEntry",
            MultipleAuthors => "multipleAuthors",
            TreeNotSorted => "treeNotSorted",
            ZeroPaddedDate => "zeroPaddedDate",
            EmptyName => "emptyName",
            FullPathname => "fullPathname",
            HasDot => "hasDot",
            HasDotdot => "hasDotdot",
            HasDotgit => "hasDotgit",
            LargePathname => "largePathname",
            NullSha1 => "nullSha1",
            ZeroPaddedFilemode => "zeroPaddedFilemode",
            NulInCommit => "nulInCommit",
            BadFilemode => "badFilemode",
        }
    }
}

/// Which findings refuse an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rules {
    /// Errors and the shapes of attacks on clients; git's other warnings pass.
    #[default]
    Default,
    /// Every error and warning (git's `--strict`).
    Strict,
}

impl Rules {
    /// Whether a finding of `id` refuses the object.
    pub fn refuses(self, id: MsgId) -> bool {
        self == Rules::Strict || !id.is_tolerated_warning()
    }
}

impl MsgId {
    /// A warning of git's that real histories have and that is no attack on a client: accepted
    /// under [`Rules::Default`].
    pub fn is_tolerated_warning(self) -> bool {
        matches!(
            self,
            MsgId::BadFilemode
                | MsgId::ZeroPaddedFilemode
                | MsgId::NullSha1
                | MsgId::LargePathname
                | MsgId::NulInCommit
        )
    }
}

/// One broken rule: git's message id and its explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", id.as_str())]
pub struct Finding {
    /// The rule.
    pub id: MsgId,
    /// git's wording (with the offending value where git shows it).
    pub message: String,
}

fn finding(id: MsgId, message: impl Into<String>) -> Finding {
    Finding {
        id,
        message: message.into(),
    }
}

/// A finding about one object: what `git fsck` prints as `error in <kind> <id>: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object {id}: {finding}")]
pub struct ObjectError {
    /// The object.
    pub id: ObjectId,
    /// What is wrong with it.
    pub finding: Finding,
}

/// Check one object's content. Blobs are only checked when a tree names them `.gitmodules` or
/// `.gitattributes` (see [`check_special_blob`]); `special` is called for each such name a
/// tree holds, so the caller can check those blobs once every object is known.
/// `hash` is the repository's object format: the length of the ids the object names.
pub fn check(
    kind: Kind,
    data: &[u8],
    rules: Rules,
    hash: gix_hash::Kind,
    special: &mut dyn FnMut(SpecialFile, ObjectId),
) -> Result<(), Finding> {
    match kind {
        Kind::Commit => check_commit(data, rules, hash),
        Kind::Tag => check_tag(data, hash),
        Kind::Tree => tree::check_tree(data, rules, hash, special),
        Kind::Blob => Ok(()),
    }
}

/// The limits git applies to `.gitattributes` blobs (`attr.h`).
const MAX_ATTRIBUTES_FILE: usize = 100 << 20;
const MAX_ATTRIBUTES_LINE: usize = 2048;

/// Check an object a tree names `.gitmodules` or `.gitattributes`.
pub fn check_special_blob(which: SpecialFile, kind: Kind, data: &[u8]) -> Result<(), Finding> {
    match which {
        SpecialFile::Gitmodules => {
            if kind != Kind::Blob {
                return Err(finding(
                    MsgId::GitmodulesBlob,
                    "non-blob found at .gitmodules",
                ));
            }
            gitmodules::check(data)
        }
        SpecialFile::Gitattributes => {
            if kind != Kind::Blob {
                return Err(finding(
                    MsgId::GitattributesBlob,
                    "non-blob found at .gitattributes",
                ));
            }
            if data.len() > MAX_ATTRIBUTES_FILE {
                return Err(finding(
                    MsgId::GitattributesLarge,
                    ".gitattributes too large to parse",
                ));
            }
            if data
                .split(|b| *b == b'\n')
                .any(|line| line.len() >= MAX_ATTRIBUTES_LINE)
            {
                return Err(finding(
                    MsgId::GitattributesLineLength,
                    ".gitattributes has too long lines to parse",
                ));
            }
            Ok(())
        }
    }
}

/// The object's header ends in a blank line (or at the end of the object after a newline) and
/// holds no NUL byte.
fn verify_headers(data: &[u8]) -> Result<(), Finding> {
    for (i, b) in data.iter().enumerate() {
        match b {
            0 => {
                return Err(finding(
                    MsgId::NulInHeader,
                    format!("unterminated header: NUL at offset {i}"),
                ))
            }
            b'\n' if data.get(i + 1) == Some(&b'\n') => return Ok(()),
            _ => {}
        }
    }
    // A header may end at the end of the object, after a newline (no message).
    if data.last() == Some(&b'\n') {
        return Ok(());
    }
    Err(finding(MsgId::UnterminatedHeader, "unterminated header"))
}

/// `<hex id>\n` at the start of `data` (40 digits for SHA-1, 64 for SHA-256): the id and the
/// rest after the newline.
fn hex_line(data: &[u8], hash: gix_hash::Kind) -> Option<(ObjectId, &[u8])> {
    let len = hash.len_in_hex();
    let hex = data.get(..len)?;
    if data.get(len) != Some(&b'\n') || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some((ObjectId::from_hex(hex).ok()?, &data[len + 1..]))
}

/// git's `fsck_commit`.
pub fn check_commit(data: &[u8], rules: Rules, hash: gix_hash::Kind) -> Result<(), Finding> {
    verify_headers(data)?;
    let mut rest = data
        .strip_prefix(b"tree ")
        .ok_or_else(|| finding(MsgId::MissingTree, "invalid format - expected 'tree' line"))?;
    rest = hex_line(rest, hash)
        .ok_or_else(|| finding(MsgId::BadTreeSha1, "invalid 'tree' line format - bad sha1"))?
        .1;
    while let Some(after) = rest.strip_prefix(b"parent ") {
        rest = hex_line(after, hash)
            .ok_or_else(|| {
                finding(
                    MsgId::BadParentSha1,
                    "invalid 'parent' line format - bad sha1",
                )
            })?
            .1;
    }
    let mut authors = 0;
    while let Some(after) = rest.strip_prefix(b"author ") {
        authors += 1;
        rest = ident::check(after)?;
    }
    match authors {
        0 => {
            return Err(finding(
                MsgId::MissingAuthor,
                "invalid format - expected 'author' line",
            ))
        }
        1 => {}
        _ => {
            return Err(finding(
                MsgId::MultipleAuthors,
                "invalid format - multiple 'author' lines",
            ))
        }
    }
    let after = rest.strip_prefix(b"committer ").ok_or_else(|| {
        finding(
            MsgId::MissingCommitter,
            "invalid format - expected 'committer' line",
        )
    })?;
    ident::check(after)?;
    if rules.refuses(MsgId::NulInCommit) && data.contains(&0) {
        return Err(finding(
            MsgId::NulInCommit,
            "NUL byte in the commit object body",
        ));
    }
    Ok(())
}

/// git's `fsck_tag_standalone`.
pub fn check_tag(data: &[u8], hash: gix_hash::Kind) -> Result<(), Finding> {
    verify_headers(data)?;
    let rest = data.strip_prefix(b"object ").ok_or_else(|| {
        finding(
            MsgId::MissingObject,
            "invalid format - expected 'object' line",
        )
    })?;
    let (_, rest) = hex_line(rest, hash).ok_or_else(|| {
        finding(
            MsgId::BadObjectSha1,
            "invalid 'object' line format - bad sha1",
        )
    })?;
    let rest = rest.strip_prefix(b"type ").ok_or_else(|| {
        finding(
            MsgId::MissingTypeEntry,
            "invalid format - expected 'type' line",
        )
    })?;
    let eol = rest.iter().position(|b| *b == b'\n').ok_or_else(|| {
        finding(
            MsgId::MissingType,
            "invalid format - unexpected end after 'type' line",
        )
    })?;
    if Kind::from_bytes(&rest[..eol]).is_err() {
        return Err(finding(MsgId::BadType, "invalid 'type' value"));
    }
    let rest = &rest[eol + 1..];
    let rest = rest.strip_prefix(b"tag ").ok_or_else(|| {
        finding(
            MsgId::MissingTagEntry,
            "invalid format - expected 'tag' line",
        )
    })?;
    let eol = rest.iter().position(|b| *b == b'\n').ok_or_else(|| {
        finding(
            MsgId::MissingTag,
            "invalid format - unexpected end after 'type' line",
        )
    })?;
    // A bad tag name and a missing tagger are informational in git: accepted.
    let rest = &rest[eol + 1..];
    if let Some(after) = rest.strip_prefix(b"tagger ") {
        ident::check(after)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    const SHA1: gix_hash::Kind = gix_hash::Kind::Sha1;
    use super::*;

    const T: &str = "1111111111111111111111111111111111111111";

    fn commit(body: &str) -> Result<(), Finding> {
        check_commit(body.as_bytes(), Rules::Strict, SHA1)
    }

    fn id_of(r: Result<(), Finding>) -> Option<MsgId> {
        r.err().map(|f| f.id)
    }

    #[test]
    fn commits() {
        let good = format!(
            "tree {T}\nparent {T}\nauthor A U Thor <a@example.com> 1700000000 +0100\ncommitter C <c@example.com> 1700000000 -0530\n\nmessage\n"
        );
        assert_eq!(commit(&good), Ok(()));
        // No message at all is fine too.
        assert_eq!(
            commit(&format!(
                "tree {T}\nauthor A <a> 1 +0000\ncommitter A <a> 1 +0000\n"
            )),
            Ok(())
        );
        let cases = [
            (format!("tree {T}\ncommitter C <c> 1 +0000\n\nm"), MsgId::MissingAuthor),
            ("author A <a> 1 +0000\n\nm".to_string(), MsgId::MissingTree),
            ("tree xyz\nauthor A <a> 1 +0000\ncommitter C <c> 1 +0000\n\n".to_string(), MsgId::BadTreeSha1),
            (format!("tree {T}\nparent 12\nauthor A <a> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadParentSha1),
            (format!("tree {T}\nauthor A <a> 1 +0000\nauthor B <b> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::MultipleAuthors),
            (format!("tree {T}\nauthor A <a> 1 +0000\n\nm"), MsgId::MissingCommitter),
            (format!("tree {T}\nauthor A <a> 1 +0000\ncommitter C <c> 1 +0000"), MsgId::UnterminatedHeader),
            (format!("tree {T}\nauthor A\0 <a> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::NulInHeader),
            (format!("tree {T}\nauthor A <a> 1 +0000\ncommitter C <c> 1 +0000\n\nbody\0x"), MsgId::NulInCommit),
            (format!("tree {T}\nauthor <a> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::MissingNameBeforeEmail),
            (format!("tree {T}\nauthor A a> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadName),
            (format!("tree {T}\nauthor A 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::MissingEmail),
            (format!("tree {T}\nauthor A<a> 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::MissingSpaceBeforeEmail),
            (format!("tree {T}\nauthor A <a 1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadEmail),
            (format!("tree {T}\nauthor A <a>1 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::MissingSpaceBeforeDate),
            (format!("tree {T}\nauthor A <a> 01 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::ZeroPaddedDate),
            (format!("tree {T}\nauthor A <a> x +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadDate),
            (format!("tree {T}\nauthor A <a> 99999999999999999999999 +0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadDateOverflow),
            (format!("tree {T}\nauthor A <a> 1 0000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadTimezone),
            (format!("tree {T}\nauthor A <a> 1 +00000\ncommitter C <c> 1 +0000\n\n"), MsgId::BadTimezone),
        ];
        for (body, want) in cases {
            assert_eq!(id_of(commit(&body)), Some(want), "{body:?}");
        }
    }

    #[test]
    fn tags() {
        let good = format!("object {T}\ntype commit\ntag v1\ntagger T <t@x> 1 +0000\n\nmsg\n");
        assert_eq!(check_tag(good.as_bytes(), SHA1), Ok(()));
        // Old tags without a tagger, and odd names, are accepted as git does.
        assert_eq!(
            check_tag(
                format!("object {T}\ntype commit\ntag v 1..\n\nmsg\n").as_bytes(),
                SHA1
            ),
            Ok(())
        );
        for (body, want) in [
            ("type commit\ntag v1\n\n".to_string(), MsgId::MissingObject),
            (format!("object {T}\ntag v1\n\n"), MsgId::MissingTypeEntry),
            (
                format!("object {T}\ntype spoon\ntag v1\n\n"),
                MsgId::BadType,
            ),
            (
                format!("object {T}\ntype commit\n\n"),
                MsgId::MissingTagEntry,
            ),
            (
                format!("object {T}\ntype commit\ntag v1\ntagger T <t 1 +0000\n\n"),
                MsgId::BadEmail,
            ),
        ] {
            assert_eq!(
                id_of(check_tag(body.as_bytes(), SHA1)),
                Some(want),
                "{body:?}"
            );
        }
    }

    #[test]
    fn special_blobs() {
        assert_eq!(
            check_special_blob(
                SpecialFile::Gitattributes,
                Kind::Blob,
                b"*.bin filter=lfs\n"
            ),
            Ok(())
        );
        let long = vec![b'a'; 3000];
        assert_eq!(
            id_of(check_special_blob(
                SpecialFile::Gitattributes,
                Kind::Blob,
                &long
            )),
            Some(MsgId::GitattributesLineLength)
        );
        assert_eq!(
            id_of(check_special_blob(SpecialFile::Gitmodules, Kind::Tree, b"")),
            Some(MsgId::GitmodulesBlob)
        );
    }
}
