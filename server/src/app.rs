//! The shared state of a running server, and every limit and timeout it enforces.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use objectstore::budget::MemoryBudget;
use objectstore::odb::index;
use objectstore::PackCache;

use crate::slots::Slots;
use crate::storage::Storage;

/// Limits on what one request may send. The defaults keep the server within a 512 MiB
/// container at the default concurrency; the README's "Limits" table lists each with its flag.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// An upload-pack request (wants and haves), after decompression.
    pub max_request_bytes: u64,
    /// A push, pack included (it is staged on disk, not in memory).
    pub max_push_bytes: u64,
    /// What precedes the pack of a push: ref updates, shallow lines, push options.
    pub commands: protocol::receive_pack::Limits,
    /// What a pushed pack may hold.
    pub pack: index::Limits,
    /// Clones, fetches and pushes worked on at once.
    pub max_heavy_requests: usize,
    /// Memory reserved for each clone or fetch while its pack is built.
    pub fetch_memory: u64,
    /// Memory all heavy work together may reserve.
    pub memory_budget: u64,
    /// Open connections; beyond it the server stops accepting until one closes.
    pub max_connections: usize,
    /// The most content one archive may hold.
    pub max_archive_bytes: u64,
    /// The most entries one archive may hold.
    pub max_archive_entries: usize,
    /// The largest commit payload of the Hub API.
    pub max_hub_commit_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 16 << 20,
            max_push_bytes: 16 << 30,
            commands: protocol::receive_pack::Limits::default(),
            pack: index::Limits::default(),
            max_heavy_requests: 32,
            fetch_memory: 32 << 20,
            memory_budget: 384 << 20,
            max_connections: 1024,
            max_archive_bytes: 16 << 30,
            max_archive_entries: 1_000_000,
            max_hub_commit_bytes: 64 << 20,
        }
    }
}

/// How long a peer may stall before the server gives up on it.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Sending a request's head; also how long an idle keep-alive connection stays open.
    pub header: Duration,
    /// Between two reads of a request body that has not ended.
    pub body_idle: Duration,
    /// A whole upload-pack or API request body (they are small).
    pub request_body: Duration,
    /// Between two writes of a response the client is not reading.
    pub send_stall: Duration,
    /// How long a received push waits for a free slot, and heavy work for memory.
    pub queue: Duration,
    /// How long shutdown lets requests in flight finish.
    pub shutdown: Duration,
    /// A pause between a push's refs commit and its reply (crash tests only; zero).
    pub reply_delay: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(30),
            body_idle: Duration::from_secs(60),
            request_body: Duration::from_secs(60),
            send_stall: Duration::from_secs(120),
            queue: Duration::from_secs(30),
            shutdown: Duration::from_secs(30),
            reply_delay: Duration::ZERO,
        }
    }
}

/// Who may create a repository by pushing to it (`--create-on-push`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CreateOnPush {
    /// Nobody: a push to a repository that does not exist is refused.
    #[default]
    Off,
    /// Tokens with `a` on the repository (its workspace).
    Admin,
    /// Tokens with `rw` on it.
    Write,
}

/// What the server was started with: fixed for its life, read by every part.
#[derive(Debug)]
pub struct Config {
    /// Where received packs are indexed before upload.
    pub staging: PathBuf,
    /// The URL clients reach this server at, and who may say otherwise.
    pub public: crate::proxy::PublicUrl,
    /// Whether a push may create a repository that does not exist.
    pub create_on_push: CreateOnPush,
    /// The object format of repositories created without naming one.
    pub object_format: gix_hash::Kind,
    /// What a request may send.
    pub limits: Limits,
    /// How long a peer may stall.
    pub timeouts: Timeouts,
    /// How LFS objects move.
    pub lfs: lfs::Transfer,
    /// Refuse writes whose LFS pointers name objects the store does not have.
    pub lfs_check_pointers: bool,
    /// Files larger than this become LFS objects when a version is imported.
    pub lfs_threshold: u64,
    /// Which of git's fsck findings refuse what a writer sends.
    pub fsck: objectstore::fsck::Rules,
    /// How long a deleted repository can be restored before it is purged.
    pub deleted_retention: std::time::Duration,
    /// The limits of repositories that have none of their own.
    pub default_quota: refs::Quota,
    /// The limits of workspaces that have none of their own.
    pub default_workspace_quota: refs::Quota,
}

/// The running server: its fixed [`Config`] and the services every request uses (storage
/// and caches, nothing that must survive a restart).
#[derive(Debug)]
pub struct App {
    /// What it was started with.
    pub config: Config,
    /// Where repositories live.
    pub storage: Storage,
    /// Verifies tokens.
    pub auth: crate::auth::Authenticator,
    /// Packs and pack lists, shared by every request.
    pub cache: Arc<PackCache>,
    /// The cap on concurrent heavy requests.
    pub slots: Slots,
    /// Memory heavy work reserves before allocating.
    pub budget: Arc<MemoryBudget>,
    /// Background maintenance after pushes.
    pub maintenance: Arc<crate::maintenance::AutoMaintenance>,
    /// Delivers push events to webhooks and mirrors, in the background.
    pub events: Arc<events::dispatcher::Dispatcher>,
    /// What readers may see of recently read repositories.
    pub visible: crate::visible::VisibleCache,
    /// Workspaces' limits and usage, as this replica last counted them.
    pub workspaces: crate::quota::Workspaces,
    /// Generated fetch answers, for the next identical request.
    pub answers: Arc<crate::answer_cache::AnswerCache>,
}

impl App {
    /// Limits for indexing a pushed pack, waiting for memory as long as requests queue.
    pub fn pack_limits(&self) -> index::Limits {
        index::Limits {
            budget_wait: self.config.timeouts.queue,
            ..self.config.limits.pack
        }
    }
}
