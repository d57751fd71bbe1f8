//! git's ref-name rules (`git check-ref-format`), for names a client pushes.

/// Why a name is refused: the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub &'static str);

/// Where pull requests' heads are kept (`refs/pull/{n}/head`): written only by the pull
/// request machinery, fetchable by name, never pushed by clients nor mirrored.
pub const PULL_REQUEST_REFS: &str = "refs/pull/";

/// Whether `name` is a pull request's ref.
pub fn is_pull_request_ref(name: &str) -> bool {
    name.starts_with(PULL_REQUEST_REFS)
}

/// The head ref of pull request `number`.
pub fn pull_request_head(number: u64) -> String {
    format!("{PULL_REQUEST_REFS}{number}/head")
}

/// The number of the pull request whose head `name` is.
pub fn parse_pull_request_head(name: &str) -> Option<u64> {
    let n = name
        .strip_prefix(PULL_REQUEST_REFS)?
        .strip_suffix("/head")?;
    match n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') {
        true => n.parse().ok(),
        false => None,
    }
}

/// Accept a branch's short name as `git check-ref-format --branch` does: `refs/heads/<name>`
/// is a valid ref name, and the name is neither `HEAD` nor an option (`-x`).
pub fn validate_branch_name(name: &str) -> Result<(), InvalidName> {
    if name == "HEAD" {
        return Err(InvalidName("HEAD is not a valid branch name"));
    }
    if name.starts_with('-') {
        return Err(InvalidName("a branch name may not start with -"));
    }
    validate_ref_name(&format!("refs/heads/{name}"))
}

/// Accept only full names under `refs/` that `git check-ref-format` accepts.
pub fn validate_ref_name(name: &str) -> Result<(), InvalidName> {
    if !name.starts_with("refs/") {
        return Err(InvalidName("must start with refs/"));
    }
    if name.len() > 1024 {
        return Err(InvalidName("longer than 1024 bytes"));
    }
    if name.ends_with('/') || name.ends_with('.') {
        return Err(InvalidName("must not end with / or ."));
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Err(InvalidName("must not contain .., @{ or //"));
    }
    if name
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
    {
        return Err(InvalidName(
            "must not contain control characters, space or any of ~^:?*[\\",
        ));
    }
    for component in name.split('/') {
        if component.starts_with('.') || component.ends_with(".lock") {
            return Err(InvalidName(
                "a component must not start with . or end with .lock",
            ));
        }
    }
    if name == "refs/heads" || name == "refs/tags" {
        return Err(InvalidName(
            "must name a ref below refs/heads/ or refs/tags/",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_check_ref_format() {
        for ok in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/x-y_z",
            "refs/notes/commits",
        ] {
            assert!(validate_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "main",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads/a@{1}",
            "refs/heads/",
            "refs/heads//x",
            "refs/heads/x.",
            "refs/heads/\u{7}",
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branch_names_follow_check_ref_format_branch() {
        for ok in ["main", "feature/x", "HEADS", "v1.0"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in ["HEAD", "-x", "--all", "a..b", "", "x.lock", "a b"] {
            assert!(validate_branch_name(bad).is_err(), "{bad}");
        }
    }
}
