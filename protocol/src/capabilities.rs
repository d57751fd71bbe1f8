//! Capability lists: what the server offers and what a client asked for.

/// The agent string the server announces.
pub fn agent() -> String {
    format!("agent=artifact-git/{}", env!("CARGO_PKG_VERSION"))
}

/// Capabilities of `git-upload-pack` in protocol v0/v1 (the symref and `object-format` are
/// added per repository).
pub const UPLOAD_PACK_V0: &[&str] = &[
    "multi_ack",
    "thin-pack",
    "side-band",
    "side-band-64k",
    "ofs-delta",
    "shallow",
    "deepen-since",
    "deepen-not",
    "deepen-relative",
    "no-progress",
    "include-tag",
    "multi_ack_detailed",
    "allow-tip-sha1-in-want",
    "allow-reachable-sha1-in-want",
    "no-done",
    "filter",
];

/// Capabilities of `git-receive-pack` (v0/v1 only: git has no v2 push; `object-format` is
/// added per repository).
pub const RECEIVE_PACK: &[&str] = &[
    "report-status",
    "report-status-v2",
    "delete-refs",
    "side-band-64k",
    "quiet",
    "atomic",
    "ofs-delta",
    "push-options",
];

/// The space-separated capability list a client sent after the first `want` or command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCapabilities(Vec<String>);

impl ClientCapabilities {
    /// Split a space-separated list (invalid UTF-8 is replaced, never refused).
    pub fn parse(list: &[u8]) -> Self {
        ClientCapabilities(
            String::from_utf8_lossy(list)
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Add one capability (v2 sends them one per line).
    pub fn push(&mut self, cap: &str) {
        self.0.push(cap.to_owned());
    }

    /// Whether `name` was sent, bare or as `name=value`.
    pub fn has(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|c| c == name || c.split_once('=').is_some_and(|(k, _)| k == name))
    }

    /// The value of `name=value`, if sent.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().find_map(|c| {
            c.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_values() {
        let caps = ClientCapabilities::parse(b" side-band-64k ofs-delta agent=git/2.47.3 ");
        assert!(caps.has("side-band-64k"));
        assert!(!caps.has("side-band"));
        assert!(caps.has("agent"));
        assert_eq!(caps.value("agent"), Some("git/2.47.3"));
    }
}
