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

/// The SHA-256 of `data` in hex (a Git LFS object id).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
