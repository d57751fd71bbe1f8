//! One commit in full.

use gix_hash::ObjectId;
use gix_object::bstr::ByteSlice;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// An author or committer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The name, as written (invalid UTF-8 replaced).
    pub name: String,
    /// The email, without the angle brackets.
    pub email: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// The author's time zone: seconds east of UTC.
    pub offset: i32,
}

impl Signature {
    /// The time as RFC 3339 in the signature's own zone (`2026-11-22T09:15:00+01:00`), as
    /// GitHub's payloads and `git log --date=iso-strict` show it.
    pub fn rfc3339(&self) -> String {
        let local = self.time + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let sign = if self.offset < 0 { '-' } else { '+' };
        let off = self.offset.unsigned_abs();
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            off / 3600,
            off / 60 % 60
        )
    }
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's algorithm; std has
/// no calendar and one conversion does not justify a date crate).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A commit as `git log` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Its id.
    pub id: ObjectId,
    /// Its tree.
    pub tree: ObjectId,
    /// Its parents, in order.
    pub parents: Vec<ObjectId>,
    /// Who wrote the change.
    pub author: Signature,
    /// Who committed it.
    pub committer: Signature,
    /// The whole message (invalid UTF-8 replaced).
    pub message: String,
}

/// Read and parse the commit `id`.
pub fn commit_info(reader: &Reader<'_>, id: &ObjectId) -> Result<CommitInfo> {
    let mut buf = Vec::new();
    reader.read_kind(id, gix_object::Kind::Commit, &mut buf)?;
    let commit =
        gix_object::CommitRef::from_bytes(&buf, id.kind()).map_err(|e| Error::Corrupt {
            id: *id,
            message: e.to_string(),
        })?;
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Corrupt {
        id: *id,
        message: format!("bad {what}: {e}"),
    };
    let author = commit.author().map_err(|e| bad("author", &e))?.trim();
    let committer = commit.committer().map_err(|e| bad("committer", &e))?.trim();
    let (author_time, committer_time) = (author.time(), committer.time());
    let author_time = author_time.map_err(|e| bad("author time", &e))?;
    let committer_time = committer_time.map_err(|e| bad("committer time", &e))?;
    Ok(CommitInfo {
        id: *id,
        tree: commit.tree(),
        parents: commit.parents().collect(),
        author: Signature {
            name: author.name.to_str_lossy().into_owned(),
            email: author.email.to_str_lossy().into_owned(),
            time: author_time.seconds,
            offset: author_time.offset,
        },
        committer: Signature {
            name: committer.name.to_str_lossy().into_owned(),
            email: committer.email.to_str_lossy().into_owned(),
            time: committer_time.seconds,
            offset: committer_time.offset,
        },
        message: commit.message.to_str_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_their_zone() {
        let at = |time, offset| Signature {
            name: String::new(),
            email: String::new(),
            time,
            offset,
        };
        assert_eq!(at(0, 0).rfc3339(), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            at(1_795_338_000, 3600).rfc3339(),
            "2026-11-22T10:00:00+01:00"
        );
        assert_eq!(
            at(951_782_400, -19_800).rfc3339(),
            "2000-02-28T18:30:00-05:30"
        );
        assert_eq!(at(-1, 0).rfc3339(), "1969-12-31T23:59:59+00:00");
    }
}
