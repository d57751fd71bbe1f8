//! A repository's push policy: which refs are protected and how, and limits on what any
//! update may bring. One JSON document per repository, set and read by RPC
//! (`set_push_policy`, `get_push_policy`, admin scope), and enforced by the landing
//! ([`crate::landing`]) for every writer: pushes, API commits, restores, snapshots, imports,
//! merges.
//!
//! ```json
//! {"rules": [{"refs": ["refs/heads/main", "refs/heads/release/*"], "no_force": true,
//!             "no_delete": true, "no_create": false, "pull_request_only": false,
//!             "required_approvals": 0, "bypass": ["release-bot"]}],
//!  "max_file_size": 10485760, "deny_paths": ["*.env", "secrets/**"], "max_deleted_files": 500}
//! ```
//!
//! A rule applies to the refs its globs match (`*` within one `/`-separated part, `**` across
//! parts, `?` one character). `bypass` names token subjects that may do what the rule forbids;
//! an admin token may always change the policy (nobody is locked out) but is held to it
//! unless named. `max_file_size` (bytes of a file outside Git LFS) and `deny_paths` (globs;
//! one without `/` matches a file's name in any folder) apply to every update of every ref, to
//! what it adds or changes; `max_deleted_files` to every update of a protected ref.
//!
//! This module is the language: the document, its validation, and the decision for one
//! update given what the update does ([`UpdateFacts`]). The landing gathers the facts.

use serde::{Deserialize, Serialize};

/// The largest policy document accepted.
pub const MAX_DOCUMENT: usize = 64 << 10;
/// Rules at most, and patterns (ref globs, paths, bypass subjects) per list.
const MAX_RULES: usize = 100;
const MAX_PATTERNS: usize = 1000;
/// The longest pattern.
const MAX_PATTERN: usize = 256;

/// The push policy document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushPolicy {
    /// Protected refs.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The largest file (outside Git LFS) an update may add or change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
    /// Paths no update may add or change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_paths: Vec<String>,
    /// The most files one update of a protected ref may delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deleted_files: Option<u64>,
}

/// What is forbidden on the refs a rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Ref globs (`refs/heads/main`, `refs/heads/release/*`, `refs/tags/*`).
    pub refs: Vec<String>,
    /// No non-fast-forward update.
    #[serde(default)]
    pub no_force: bool,
    /// No deletion.
    #[serde(default)]
    pub no_delete: bool,
    /// No creation.
    #[serde(default)]
    pub no_create: bool,
    /// Changed only by merging a pull request.
    #[serde(default)]
    pub pull_request_only: bool,
    /// Approvals a pull request needs before it may be merged into these refs.
    #[serde(default)]
    pub required_approvals: u32,
    /// Token subjects allowed to do what the rule forbids.
    #[serde(default)]
    pub bypass: Vec<String>,
}

/// Why a policy document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid push policy: {0}")]
pub struct InvalidPolicy(pub String);

impl PushPolicy {
    /// Parse and check a document.
    pub fn parse(data: &[u8]) -> Result<Self, InvalidPolicy> {
        if data.len() > MAX_DOCUMENT {
            return Err(InvalidPolicy(format!(
                "{} bytes, over the limit of {MAX_DOCUMENT}",
                data.len()
            )));
        }
        let policy: PushPolicy =
            serde_json::from_slice(data).map_err(|e| InvalidPolicy(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Check a document's sizes and patterns.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        if self.rules.len() > MAX_RULES {
            return Err(InvalidPolicy(format!("at most {MAX_RULES} rules")));
        }
        let check = |what: &str, list: &[String], refs: bool| -> Result<(), InvalidPolicy> {
            if list.len() > MAX_PATTERNS {
                return Err(InvalidPolicy(format!("{what}: at most {MAX_PATTERNS}")));
            }
            for p in list {
                if p.is_empty() || p.len() > MAX_PATTERN || p.contains(['\0', '\n']) {
                    return Err(InvalidPolicy(format!("{what}: invalid entry {p:?}")));
                }
                if refs && !p.starts_with("refs/") {
                    return Err(InvalidPolicy(format!(
                        "{what}: {p:?} is not a ref pattern (refs/...)"
                    )));
                }
            }
            Ok(())
        };
        for (n, rule) in self.rules.iter().enumerate() {
            if rule.refs.is_empty() {
                return Err(InvalidPolicy(format!("rule {n}: refs is empty")));
            }
            check(&format!("rule {n}: refs"), &rule.refs, true)?;
            check(&format!("rule {n}: bypass"), &rule.bypass, false)?;
        }
        check("deny_paths", &self.deny_paths, false)
    }

    /// Whether the policy says anything at all.
    pub fn is_empty(&self) -> bool {
        self == &PushPolicy::default()
    }

    /// The rules that apply to `name`.
    pub fn rules_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.refs.iter().any(|p| glob(p, name)))
    }

    /// Whether `name` is protected by some rule.
    pub fn protects(&self, name: &str) -> bool {
        self.rules_for(name).next().is_some()
    }

    /// Whether deciding on an update of `name` needs to know which files it changes.
    pub fn needs_changes(&self, name: &str) -> bool {
        self.max_file_size.is_some()
            || !self.deny_paths.is_empty()
            || (self.max_deleted_files.is_some() && self.protects(name))
    }
}

/// What an update does, as far as the policy asks.
#[derive(Debug, Clone, Default)]
pub struct UpdateFacts {
    /// The ref.
    pub name: String,
    /// It exists before the update.
    pub exists: bool,
    /// It exists after the update.
    pub remains: bool,
    /// The new commit descends from the old one (`None`: not known, or not a move).
    pub fast_forward: Option<bool>,
    /// The update is a pull request's merge.
    pub via_pull_request: bool,
    /// Files added or changed (path, size, is a Git LFS pointer), when asked for.
    pub changed: Vec<(String, u64, bool)>,
    /// Files deleted.
    pub deleted: u64,
}

/// Why the policy refuses an update, in the words git shows after `ng <ref>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A non-fast-forward update of a protected ref.
    #[error("protected branch: non-fast-forward updates are not allowed")]
    Force,
    /// The deletion of a protected ref.
    #[error("protected branch: deletion is not allowed")]
    Delete,
    /// The creation of a protected ref.
    #[error("protected branch: creation is not allowed")]
    Create,
    /// A direct update of a ref only pull requests may change.
    #[error("protected branch: changes must be made through a pull request")]
    PullRequestOnly,
    /// A file over the size limit.
    #[error(
        "push policy: {path} has {size} bytes, over the limit of {limit} (store it with Git LFS)"
    )]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file at a denied path.
    #[error("push policy: {path} matches the denied path {pattern}")]
    DeniedPath {
        /// The file.
        path: String,
        /// The pattern.
        pattern: String,
    },
    /// Too many files deleted at once.
    #[error("push policy: the update deletes {count} files, over the limit of {limit}")]
    TooManyDeletions {
        /// Files deleted.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The facts could not be established (a history walk over its bound).
    #[error("push policy: {0}")]
    Undecided(String),
}

/// The decision for one update by `subject` (a token's subject).
pub fn check(
    policy: &PushPolicy,
    facts: &UpdateFacts,
    subject: Option<&str>,
) -> Result<(), Violation> {
    for rule in policy.rules_for(&facts.name) {
        if subject.is_some_and(|s| rule.bypass.iter().any(|b| b == s)) {
            continue;
        }
        if rule.pull_request_only && !facts.via_pull_request {
            return Err(Violation::PullRequestOnly);
        }
        match (facts.exists, facts.remains) {
            (true, false) if rule.no_delete => return Err(Violation::Delete),
            (false, true) if rule.no_create => return Err(Violation::Create),
            (true, true) if rule.no_force => match facts.fast_forward {
                Some(true) => {}
                Some(false) => return Err(Violation::Force),
                None => {
                    return Err(Violation::Undecided(
                        "cannot tell whether the update is a fast-forward".into(),
                    ))
                }
            },
            _ => {}
        }
    }
    for (path, size, lfs) in &facts.changed {
        if let Some(limit) = policy.max_file_size {
            if *size > limit && !lfs {
                return Err(Violation::FileTooLarge {
                    path: path.clone(),
                    size: *size,
                    limit,
                });
            }
        }
        if let Some(pattern) = policy.deny_paths.iter().find(|p| path_matches(p, path)) {
            return Err(Violation::DeniedPath {
                path: path.clone(),
                pattern: pattern.clone(),
            });
        }
    }
    if let Some(limit) = policy.max_deleted_files {
        if facts.deleted > limit && policy.protects(&facts.name) {
            let exempt = subject.is_some_and(|s| {
                policy
                    .rules_for(&facts.name)
                    .all(|r| r.bypass.iter().any(|b| b == s))
            });
            if !exempt {
                return Err(Violation::TooManyDeletions {
                    count: facts.deleted,
                    limit,
                });
            }
        }
    }
    Ok(())
}

/// A path glob: one without `/` matches a file's name in any folder; one with `/` the whole
/// path from the root (a leading `/` is dropped).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern.contains('/') {
        glob(pattern.trim_start_matches('/'), path)
    } else {
        glob(pattern, path.rsplit('/').next().unwrap_or(path))
    }
}

/// `*` matches within one `/`-separated part, `**` across parts (`a/**` also matches `a`'s
/// contents at any depth), `?` one character other than `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8], budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=t.len()).any(|i| go(rest, &t[i..], budget))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..], budget) {
                        return true;
                    }
                    if t.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some(b'?') => t.first().is_some_and(|c| *c != b'/') && go(&p[1..], &t[1..], budget),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..], budget),
        }
    }
    // A bound on the work of one match: patterns and names are short, hostile ones stop here.
    let mut budget = 100_000;
    go(pattern.as_bytes(), text.as_bytes(), &mut budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("refs/heads/main", "refs/heads/main"));
        assert!(!glob("refs/heads/main", "refs/heads/main2"));
        assert!(glob("refs/heads/release/*", "refs/heads/release/1.0"));
        assert!(!glob("refs/heads/release/*", "refs/heads/release/1/x"));
        assert!(glob("refs/heads/**", "refs/heads/a/b/c"));
        assert!(glob("refs/tags/v?", "refs/tags/v1"));
        assert!(path_matches("*.env", "config/prod.env"));
        assert!(path_matches("secrets/**", "secrets/a/b.txt"));
        assert!(!path_matches("secrets/**", "public/secrets.txt"));
        assert!(
            !glob(&"*".repeat(200), &"a".repeat(200)) || glob(&"*".repeat(200), &"a".repeat(200))
        );
    }

    #[test]
    fn documents() {
        let ok =
            br#"{"rules": [{"refs": ["refs/heads/main"], "no_force": true}], "max_file_size": 10}"#;
        assert!(PushPolicy::parse(ok).is_ok());
        for bad in [
            &br#"{"rules": [{"refs": ["main"]}]}"#[..],
            br#"{"rules": [{"refs": []}]}"#,
            br#"{"rules": [], "unknown": 1}"#,
            br#"not json"#,
        ] {
            assert!(
                PushPolicy::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(PushPolicy::parse(&vec![b' '; MAX_DOCUMENT + 1]).is_err());
    }

    #[test]
    fn decisions() {
        let policy = PushPolicy::parse(
            br#"{"rules": [{"refs": ["refs/heads/main"], "no_force": true, "no_delete": true, "bypass": ["bot"]}],
                 "max_file_size": 100, "deny_paths": ["*.env"], "max_deleted_files": 2}"#,
        )
        .unwrap();
        let facts = |exists, remains, ff| UpdateFacts {
            name: "refs/heads/main".into(),
            exists,
            remains,
            fast_forward: ff,
            ..UpdateFacts::default()
        };
        assert_eq!(
            check(&policy, &facts(true, true, Some(false)), None),
            Err(Violation::Force)
        );
        assert_eq!(
            check(&policy, &facts(true, true, Some(false)), Some("bot")),
            Ok(())
        );
        assert_eq!(
            check(&policy, &facts(true, false, None), Some("alice")),
            Err(Violation::Delete)
        );
        assert_eq!(check(&policy, &facts(true, true, Some(true)), None), Ok(()));
        let mut big = facts(true, true, Some(true));
        big.changed = vec![("w.bin".into(), 1000, false)];
        assert!(matches!(
            check(&policy, &big, None),
            Err(Violation::FileTooLarge { .. })
        ));
        big.changed = vec![("w.bin".into(), 1000, true)];
        assert_eq!(check(&policy, &big, None), Ok(()));
        big.changed = vec![("a/.env".into(), 1, false)];
        assert!(matches!(
            check(&policy, &big, None),
            Err(Violation::DeniedPath { .. })
        ));
        let mut gone = facts(true, true, Some(true));
        gone.deleted = 3;
        assert!(matches!(
            check(&policy, &gone, None),
            Err(Violation::TooManyDeletions { .. })
        ));
        gone.name = "refs/heads/feature".into();
        assert_eq!(check(&policy, &gone, None), Ok(()));
    }
}
