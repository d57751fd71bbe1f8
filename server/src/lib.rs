//! artifact-git: a Git Smart HTTP server whose repositories live in a bucket.
//!
//! The server keeps no state but caches: every request reads the refs it needs from the
//! bucket, and pushes commit with one compare-and-swap, so any number of replicas can serve
//! one bucket. [`http`] routes requests to [`upload_pack`] (clone, fetch) and [`receive_pack`]
//! (push); [`cli`] is the command line.
#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod cli;
pub mod http;
pub mod layers;
pub mod maintenance;
pub mod metrics;
pub mod receive_pack;
pub mod repo;
pub mod rpc;
pub mod storage;
pub mod upload_pack;
