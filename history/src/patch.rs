//! Unified diffs in git's format (`diff --git`, extended headers, hunks with three lines of
//! context), with per-file line counts, under byte and file budgets.
//!
//! Line matching is imara-diff's (Myers, as git's default); this module only lays the result
//! out the way `git apply` reads it. Files with a NUL in their first 8000 bytes are binary, as
//! git decides, and are reported as `Binary files ... differ`.

use std::ops::Range;

use gix_hash::ObjectId;
use imara_diff::intern::InternedInput;
use imara_diff::sources::byte_lines_with_terminator;
use objectstore::odb::Reader;

use crate::diff::{FileChange, FileChangeKind};
use crate::Result;

/// Lines of context around each change.
const CONTEXT: u32 = 3;

/// How much one diff may produce.
#[derive(Debug, Clone, Copy)]
pub struct PatchLimits {
    /// Bytes of patch text at most; files past it are listed without their hunks.
    pub max_bytes: usize,
    /// A blob larger than this is not diffed line by line (reported as too large).
    pub max_blob: u64,
}

impl Default for PatchLimits {
    fn default() -> Self {
        PatchLimits {
            max_bytes: 1 << 20,
            max_blob: 8 << 20,
        }
    }
}

/// One file of a diff with its statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// The change, as the tree diff found it.
    pub change: FileChange,
    /// Lines added (0 for binary files).
    pub additions: usize,
    /// Lines removed.
    pub deletions: usize,
    /// Either side is binary.
    pub binary: bool,
    /// Its hunks were left out of the patch (over a budget, or a blob over `max_blob`).
    pub omitted: bool,
}

/// A whole diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// Every file, in tree order (renames where the old path was).
    pub files: Vec<FilePatch>,
    /// The unified diff of the files whose hunks fit the budget.
    pub text: String,
    /// Something was left out.
    pub truncated: bool,
}

/// The patch of `changes` (from [`diff_trees`](crate::diff_trees)).
pub fn patch(reader: &Reader<'_>, changes: Vec<FileChange>, limits: PatchLimits) -> Result<Patch> {
    let mut out = Patch::default();
    for change in changes {
        let old = blob(reader, change.old.as_ref(), limits.max_blob)?;
        let new = blob(reader, change.new.as_ref(), limits.max_blob)?;
        let (old, new) = match (old, new) {
            (Some(old), Some(new)) => (old, new),
            _ => {
                out.truncated = true;
                out.files.push(FilePatch {
                    change,
                    additions: 0,
                    deletions: 0,
                    binary: false,
                    omitted: true,
                });
                continue;
            }
        };
        let binary = is_binary(&old) || is_binary(&new);
        let mut text = header(&change);
        let (mut additions, mut deletions) = (0, 0);
        let same_content = change.old == change.new;
        if binary {
            if !same_content {
                text.push_str(&format!(
                    "Binary files {} and {} differ\n",
                    side("a", change.old_path(), change.old.is_some()),
                    side("b", &change.path, change.new.is_some())
                ));
            }
        } else if !same_content {
            text.push_str(&format!(
                "--- {}\n+++ {}\n",
                side("a", change.old_path(), change.old.is_some()),
                side("b", &change.path, change.new.is_some())
            ));
            let (hunks, added, removed) = hunks(&old, &new);
            text.push_str(&hunks);
            additions = added;
            deletions = removed;
        }
        let omitted = out.text.len() + text.len() > limits.max_bytes;
        if omitted {
            out.truncated = true;
        } else {
            out.text.push_str(&text);
        }
        out.files.push(FilePatch {
            change,
            additions,
            deletions,
            binary,
            omitted,
        });
    }
    Ok(out)
}

/// The blob's bytes (empty for a side that does not exist); `None` when it is too large.
fn blob(reader: &Reader<'_>, id: Option<&ObjectId>, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(id) = id else {
        return Ok(Some(Vec::new()));
    };
    if reader.header(id)?.is_some_and(|(_, size)| size > max) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    // Submodule entries name commits of other repositories: no content here.
    match reader.try_read(id, &mut buf)? {
        Some(gix_object::Kind::Blob) => Ok(Some(buf)),
        _ => Ok(Some(Vec::new())),
    }
}

/// git's test: a NUL in the first 8000 bytes.
pub fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

fn side(prefix: &str, path: &str, exists: bool) -> String {
    if exists {
        quote(&format!("{prefix}/{path}"))
    } else {
        "/dev/null".to_owned()
    }
}

/// A path as git writes it in a patch: in double quotes with C escapes when it holds
/// characters git quotes (control characters, `"`, `\`, bytes above 0x7f).
fn quote(path: &str) -> String {
    if !path
        .bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f)
    {
        return path.to_owned();
    }
    let mut out = String::from("\"");
    for b in path.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

fn short(id: Option<&ObjectId>) -> String {
    match id {
        Some(id) => id.to_hex_with_len(7).to_string(),
        None => "0000000".to_owned(),
    }
}

/// `diff --git` and the extended header lines.
fn header(change: &FileChange) -> String {
    let mut text = format!(
        "diff --git {} {}\n",
        quote(&format!("a/{}", change.old_path())),
        quote(&format!("b/{}", change.path))
    );
    match change.kind {
        FileChangeKind::Added => {
            text.push_str(&format!("new file mode {:06o}\n", change.new_mode));
        }
        FileChangeKind::Deleted => {
            text.push_str(&format!("deleted file mode {:06o}\n", change.old_mode));
        }
        FileChangeKind::Modified | FileChangeKind::Renamed => {
            if change.old_mode != change.new_mode {
                text.push_str(&format!(
                    "old mode {:06o}\nnew mode {:06o}\n",
                    change.old_mode, change.new_mode
                ));
            }
        }
    }
    if let Some(from) = &change.old_path {
        let similarity = if change.old == change.new { 100 } else { 50 };
        text.push_str(&format!(
            "similarity index {similarity}%\nrename from {}\nrename to {}\n",
            quote(from),
            quote(&change.path)
        ));
    }
    if change.old != change.new {
        text.push_str(&format!(
            "index {}..{}",
            short(change.old.as_ref()),
            short(change.new.as_ref())
        ));
        if change.kind != FileChangeKind::Added
            && change.kind != FileChangeKind::Deleted
            && change.old_mode == change.new_mode
        {
            text.push_str(&format!(" {:06o}", change.new_mode));
        }
        text.push('\n');
    }
    text
}

/// The hunks between two texts, and the lines added and removed.
fn hunks(old: &[u8], new: &[u8]) -> (String, usize, usize) {
    let input = InternedInput::new(
        byte_lines_with_terminator(old),
        byte_lines_with_terminator(new),
    );
    let mut changes: Vec<(Range<u32>, Range<u32>)> = Vec::new();
    imara_diff::diff(
        imara_diff::Algorithm::Myers,
        &input,
        |before: Range<u32>, after: Range<u32>| changes.push((before, after)),
    );
    let line = |token: imara_diff::intern::Token| -> &[u8] { input.interner[token] };
    let (old_len, new_len) = (input.before.len() as u32, input.after.len() as u32);
    let mut text = String::new();
    let (mut added, mut removed) = (0, 0);
    let mut i = 0;
    while i < changes.len() {
        // Changes closer than twice the context share a hunk.
        let mut j = i;
        while j + 1 < changes.len() && changes[j + 1].0.start - changes[j].0.end <= 2 * CONTEXT {
            j += 1;
        }
        let first = &changes[i];
        let last = &changes[j];
        let old_start = first.0.start.saturating_sub(CONTEXT);
        let new_start = first.1.start - (first.0.start - old_start);
        let old_end = (last.0.end + CONTEXT).min(old_len);
        let new_end = last.1.end + (old_end - last.0.end);
        let new_end = new_end.min(new_len);
        text.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_end - old_start),
            range(new_start, new_end - new_start)
        ));
        let mut at = old_start;
        for (before, after) in &changes[i..=j] {
            for k in at..before.start {
                push_line(&mut text, ' ', line(input.before[k as usize]));
            }
            for k in before.clone() {
                push_line(&mut text, '-', line(input.before[k as usize]));
                removed += 1;
            }
            for k in after.clone() {
                push_line(&mut text, '+', line(input.after[k as usize]));
                added += 1;
            }
            at = before.end;
        }
        for k in at..old_end {
            push_line(&mut text, ' ', line(input.before[k as usize]));
        }
        i = j + 1;
    }
    (text, added, removed)
}

/// `start,count` as git writes it: lines count from 1, `,1` is left out, and an empty range
/// names the line before it.
fn range(start: u32, count: u32) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

fn push_line(text: &mut String, prefix: char, line: &[u8]) {
    text.push(prefix);
    text.push_str(&String::from_utf8_lossy(line));
    if !line.ends_with(b"\n") {
        text.push_str("\n\\ No newline at end of file\n");
    }
}
