//! Which paths `.gitattributes` sends to Git LFS (`filter=lfs`), for commits made without a
//! client: the forms `git lfs track` writes (an exact path, `*.ext`, `dir/**`), read from the
//! root `.gitattributes`, and the exact-path pattern written for one file.
//!
//! Not a full gitattributes matcher (no nested files, no `[...]` classes): the server only has
//! to agree with what `git lfs track` and its own import wrote.

/// The patterns of `attributes` whose files go to Git LFS, in file order.
pub fn lfs_patterns(attributes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(attributes)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let pattern = parts.next()?;
            (!pattern.starts_with('#') && parts.any(|a| a == "filter=lfs"))
                .then(|| pattern.to_owned())
        })
        .collect()
}

/// Whether one of `patterns` matches `path` (from the repository's root).
pub fn tracked_by_lfs(patterns: &[String], path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    patterns.iter().any(|p| {
        let anchored = p.starts_with('/');
        let p = unescape(p.trim_start_matches('/'));
        if let Some(ext) = p.strip_prefix('*') {
            !ext.contains(['*', '/']) && name.ends_with(ext)
        } else if let Some(dir) = p.strip_suffix("/**") {
            path.starts_with(&format!("{dir}/"))
        } else if anchored || p.contains('/') {
            p == path
        } else {
            p == name
        }
    })
}

/// The pattern that matches exactly `path` (from the root): anchored, with spaces and glob
/// characters escaped.
pub fn exact_pattern(path: &str) -> String {
    let mut out = String::from("/");
    for c in path.chars() {
        match c {
            ' ' => out.push_str("[[:space:]]"),
            '*' | '?' | '[' | ']' | '\\' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `attributes` (a `.gitattributes`, possibly empty) with a line sending each of `patterns`
/// to Git LFS, as `git lfs track` writes it.
pub fn with_lfs_lines(mut attributes: Vec<u8>, patterns: &[String]) -> Vec<u8> {
    if !attributes.is_empty() && !attributes.ends_with(b"\n") {
        attributes.push(b'\n');
    }
    for pattern in patterns {
        attributes.extend_from_slice(
            format!("{pattern} filter=lfs diff=lfs merge=lfs -text\n").as_bytes(),
        );
    }
    attributes
}

/// The path an [`exact_pattern`] stands for.
fn unescape(pattern: &str) -> String {
    let replaced = pattern.replace("[[:space:]]", " ");
    let mut out = String::with_capacity(replaced.len());
    let mut chars = replaced.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_what_git_lfs_track_writes() {
        let attrs = b"*.bin filter=lfs diff=lfs merge=lfs -text\n# *.txt filter=lfs\ndata/** filter=lfs\n/a[[:space:]]b/c\\*d filter=lfs\nnotes.md text\n";
        let p = lfs_patterns(attrs);
        assert_eq!(p.len(), 3);
        assert!(tracked_by_lfs(&p, "x/y/model.bin"));
        assert!(tracked_by_lfs(&p, "data/deep/file.txt"));
        assert!(tracked_by_lfs(&p, "a b/c*d"));
        assert!(!tracked_by_lfs(&p, "notes.md"));
        assert!(!tracked_by_lfs(&p, "x.txt"));
        assert!(!tracked_by_lfs(&p, "z/a b/c*d"));
    }

    #[test]
    fn exact_patterns_match_exactly_one_path() {
        assert_eq!(exact_pattern("data/model.bin"), "/data/model.bin");
        assert_eq!(
            exact_pattern("a b/c*d[1]#"),
            "/a[[:space:]]b/c\\*d\\[1\\]\\#"
        );
        for path in ["data/model.bin", "a b/c*d[1]#", "top"] {
            let p = vec![exact_pattern(path)];
            assert!(tracked_by_lfs(&p, path));
            assert!(!tracked_by_lfs(&p, &format!("other/{path}")));
        }
    }
}
