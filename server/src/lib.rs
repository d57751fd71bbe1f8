//! artifact-git: a Git Smart HTTP server whose repositories live in a bucket.
//!
//! The server keeps no state but caches: every request reads the refs it needs from the
//! bucket, and pushes commit with one compare-and-swap, so any number of replicas can serve
//! one bucket. [`serve`] accepts connections, [`http`] routes requests to [`upload_pack`]
//! (clone, fetch), [`receive_pack`] (push), [`files`] (files, folders and archives over
//! plain HTTP) and [`rpc`] (the artifact API); [`app`] holds the
//! shared state with every limit and timeout; [`cli`] is the command line.
#![forbid(unsafe_code)]

pub mod admission;
pub mod answer_cache;
pub mod app;
pub mod auth;
pub mod body;
pub mod bridge;
pub mod bundle;
pub mod bundle_list;
pub mod bundle_uri;
pub mod cli;
pub mod fetch;
pub mod files;
pub mod http;
pub mod hub;
pub mod import;
pub mod landing;
pub mod layers;
pub mod lfs_http;
pub mod lifecycle;
pub mod maintenance;
pub mod metrics;
pub mod packfile_uris;
pub mod placement;
pub mod policy;
pub mod proxy;
pub mod quota;
pub mod receive_pack;
pub mod reclaim;
pub mod repo;
pub mod request;
pub mod response;
pub mod rpc;
pub mod serve;
pub mod signin;
pub mod slots;
pub mod storage;
pub mod tls;
pub mod upload_pack;
pub mod upstreams;
pub mod usage;
pub mod visible;
pub mod web;
