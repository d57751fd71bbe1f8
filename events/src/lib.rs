//! Push events of artifact-git: a durable record of every accepted push, and what is done
//! because of it, by any replica, after the push answered.
//!
//! A push records its [`log::Event`] through a [`log::Recorder`] (the refs' journal) before
//! its refs are committed, and a pending marker names the repository. The
//! [`dispatcher::Dispatcher`] each replica runs finds those markers and, for each endpoint of
//! the repository, takes a lease by compare-and-swap ([`state`]), sends what the endpoint has
//! not had yet, in order, and moves its cursor: [`webhook`]s get GitHub-shaped [`payload`]s
//! signed both ways ([`sign`]); [`mirror`]s get the changed refs pushed over Smart HTTP with
//! the LFS objects they need. Endpoints are configured in one object per repository
//! ([`config`]); every webhook attempt is kept in its [`deliveries`] log. Outgoing requests
//! go through one [`client`] that refuses internal addresses unless allowed.
//!
//! The crate depends on `history` (commits and changed paths for payloads, ancestry for
//! mirrors) and `lfs` (pointers and objects for mirrors) besides the storage crates.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod config;
pub mod deliveries;
pub mod dispatcher;
pub mod hex_id;
pub mod log;
pub mod metrics;
pub mod mirror;
pub mod payload;
pub mod pull;
pub mod sign;
pub mod state;
pub mod upstream;
pub mod webhook;
