//! A unified diff (as the history API answers it: one text for every file, in the order of its
//! file list) cut into each file's classified lines for display.

/// What a line of a diff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A hunk header (`@@ -1,3 +1,4 @@`).
    Hunk,
    /// An added line.
    Added,
    /// A removed line.
    Removed,
    /// Context.
    Context,
    /// Anything else (`Binary files … differ`, `\ No newline at end of file`).
    Note,
}

impl LineKind {
    /// The class the stylesheet knows the line by.
    pub fn class(self) -> &'static str {
        match self {
            LineKind::Hunk => "hunk",
            LineKind::Added => "add",
            LineKind::Removed => "del",
            LineKind::Context => "ctx",
            LineKind::Note => "note",
        }
    }
}

/// One line of a file's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What it is.
    pub kind: LineKind,
    /// Its text, without the newline.
    pub text: String,
}

/// The lines of each file's part of `patch`, in order: the part of file *n* starts at the
/// *n*-th `diff --git` header. Extended headers (`index`, `---`, `+++`, modes) are left out;
/// the page says what they say.
pub fn split_files(patch: &str) -> Vec<Vec<Line>> {
    let mut files: Vec<Vec<Line>> = Vec::new();
    let mut in_hunks = false;
    for text in patch.lines() {
        if text.starts_with("diff --git ") {
            files.push(Vec::new());
            in_hunks = false;
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        let kind = if text.starts_with("@@") {
            in_hunks = true;
            LineKind::Hunk
        } else if !in_hunks {
            if text.starts_with("Binary files") {
                LineKind::Note
            } else {
                continue;
            }
        } else if text.starts_with('+') {
            LineKind::Added
        } else if text.starts_with('-') {
            LineKind::Removed
        } else if text.starts_with(' ') {
            LineKind::Context
        } else {
            LineKind::Note
        };
        file.push(Line {
            kind,
            text: text.to_owned(),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_classifies() {
        let patch = "diff --git a/a b/a\nindex 1..2 100644\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n ctx\n\\ No newline at end of file\ndiff --git a/b.bin b/b.bin\nindex 1..2\nBinary files a/b.bin and b/b.bin differ\n";
        let files = split_files(patch);
        assert_eq!(files.len(), 2);
        let kinds: Vec<LineKind> = files[0].iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [
                LineKind::Hunk,
                LineKind::Removed,
                LineKind::Added,
                LineKind::Context,
                LineKind::Note
            ]
        );
        assert_eq!(files[1][0].kind, LineKind::Note);
    }

    #[test]
    fn a_removed_line_that_looks_like_a_header_stays_a_line() {
        let files =
            split_files("diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1 @@\n--- x\n+++ y\n");
        assert_eq!(files[0][1].kind, LineKind::Removed);
        assert_eq!(files[0][2].kind, LineKind::Added);
    }
}
