//! The harness of the end-to-end tests: start `artifact-git serve` as a separate process on a
//! free port ([`server`]), drive the real `git` binaries against it ([`git`]), build test
//! histories ([`history`]) and hostile packs ([`packs`]), send raw requests ([`http`]), and
//! watch the server process ([`process`]), receive webhooks ([`receiver`]) and run C git's
//! `git http-backend` ([`http_backend`]). [`fixture`] is the usual start: a server with a
//! repository holding a pushed history.
//!
//! The server binary is taken from `ARTIFACT_GIT_BIN`, or from the `target/` directory these
//! tests were built into (`scripts/test` builds it first).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod fixture;
pub mod git;
pub mod history;
pub mod http;
pub mod http_backend;
pub mod packs;
pub mod process;
pub mod receiver;
pub mod server;
pub mod tls;

pub use browser::Browser;
pub use fixture::Fixture;
pub use git::*;
pub use history::*;
pub use http::*;
pub use http_backend::HttpBackend;
pub use process::*;
pub use receiver::{assert_signed, hmac, Received, Receiver, Reply};
pub use server::*;
pub use tempfile::TempDir;
pub use tls::{certificate, Certificate};

/// The object format of the repositories this test run creates and of its local git
/// repositories: `ARTIFACT_GIT_TEST_OBJECT_FORMAT` (`sha1`, the default, or `sha256`). Set for a
/// whole run (`scripts/test-sha256`), never by a test: the server and `artifact-git init` get
/// it as `ARTIFACT_GIT_OBJECT_FORMAT`, every git command as `GIT_DEFAULT_HASH`.
pub fn object_format() -> &'static str {
    static FORMAT: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FORMAT.get_or_init(
        || match std::env::var("ARTIFACT_GIT_TEST_OBJECT_FORMAT").as_deref() {
            Ok("sha256") => "sha256",
            Ok("sha1") | Ok("") | Err(_) => "sha1",
            Ok(other) => panic!("ARTIFACT_GIT_TEST_OBJECT_FORMAT={other:?}: use sha1 or sha256"),
        },
    )
}

/// Hex digits of an object id in this run's format (40 or 64).
pub fn hex_len() -> usize {
    match object_format() {
        "sha256" => 64,
        _ => 40,
    }
}

/// The null id of this run's format, in hex.
pub fn null_id() -> String {
    "0".repeat(hex_len())
}

/// What a raw request adds to name this run's object format, as git's clients do when the
/// server offers it: a v2 capability line (`object-format=sha256`); nothing for SHA-1, every
/// server's default.
pub fn v2_format_line() -> Vec<u8> {
    match object_format() {
        "sha1" => Vec::new(),
        other => http::pkt(&format!("object-format={other}\n")),
    }
}

/// The same for a v0 capability list (` object-format=sha256`, with its leading space).
pub fn v0_format_caps() -> String {
    match object_format() {
        "sha1" => String::new(),
        other => format!(" object-format={other}"),
    }
}

/// A benchmark's only argument, `--repo DIR`: the real repository it measures (git.git from
/// `/work/.mirror` when none is named). Anything else panics with `usage`.
pub fn repository_arg(usage: &str) -> std::path::PathBuf {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.as_slice() {
        [] => std::path::PathBuf::from("/work/.mirror/git+git/repo"),
        [flag, dir] if flag == "--repo" => std::path::PathBuf::from(dir),
        _ => panic!("{usage}"),
    }
}

/// The SHA-256 of `data` in hex (a Git LFS object id).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
