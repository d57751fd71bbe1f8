//! The command line: `serve` and `init`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use objectstore::PackCache;

use crate::app::{App, Limits, Timeouts};
use crate::storage::{RepoId, Storage, StorageUrl};

#[derive(Debug, Parser)]
#[command(
    name = "artifact-git",
    version,
    about = "A Git Smart HTTP server whose repositories live in S3 or a local directory"
)]
pub struct Cli {
    /// Log filter, in `RUST_LOG` syntax.
    #[arg(long, global = true, env = "ARTIFACT_GIT_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every repository of the storage over Smart HTTP.
    Serve(Box<ServeArgs>),
    /// Create an empty repository.
    Init(InitArgs),
    /// Mint a token with the configured (or the embedded default's) secret.
    Token(TokenArgs),
    /// Repack a repository into one pack now.
    Maintain(MaintainArgs),
}

/// How maintenance treats unreachable objects and replaced packs.
#[derive(Debug, Args, Clone)]
pub struct MaintenanceArgs {
    /// Unreachable objects are dropped only from packs older than this.
    #[arg(long, env = "ARTIFACT_GIT_PRUNE_AFTER", default_value = "1h", value_parser = parse_duration)]
    pub prune_after: std::time::Duration,
    /// Replaced packs are deleted this long after they were replaced (readers may still use them).
    #[arg(long, env = "ARTIFACT_GIT_DELETE_REPLACED_AFTER", default_value = "10m", value_parser = parse_duration)]
    pub delete_replaced_after: std::time::Duration,
}

impl MaintenanceArgs {
    fn options(&self) -> objectstore::odb::maintain::Options {
        objectstore::odb::maintain::Options {
            prune_after: self.prune_after,
            delete_after: self.delete_replaced_after,
        }
    }
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// `<workspace>/<alias>`.
    pub repository: RepoId,
    /// Merge only the smallest packs, geometrically, dropping nothing (what runs after
    /// pushes), instead of repacking everything into one pack.
    #[arg(long)]
    pub geometric: bool,
    /// Memory the run may use for indexing the packs it writes.
    #[arg(long, env = "ARTIFACT_GIT_MEMORY_BUDGET", default_value = "384MiB", value_parser = parse_size)]
    pub memory_budget: u64,
    #[command(flatten)]
    pub maintenance: MaintenanceArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// How tokens are verified.
#[derive(Debug, Args, Clone)]
pub struct AuthArgs {
    /// HS256 shared secret (at least 16 bytes). Without it and without a public key, the
    /// embedded filesystem default generates one and keeps it in its data directory.
    #[arg(long, env = "ARTIFACT_GIT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A PEM file with the RSA (RS256) or EC P-256 (ES256) public key that verifies tokens.
    #[arg(long, env = "ARTIFACT_GIT_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Require this `iss` claim.
    #[arg(long, env = "ARTIFACT_GIT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Require this `aud` claim.
    #[arg(long, env = "ARTIFACT_GIT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub workspace: String,
    /// Limit the token to one artifact of the workspace.
    #[arg(long)]
    pub artifact: Option<String>,
    /// `r` (clone, fetch), `rw` (and push) or `a` (and enable_git).
    #[arg(long, default_value = "rw")]
    pub scope: String,
    /// How long the token is valid: `90s`, `30m`, `1h`, `7d`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: std::time::Duration,
    /// The `sub` claim.
    #[arg(long)]
    pub subject: Option<String>,
    /// Print a `git config` command that sends the token to this server URL
    /// (`http.<url>.extraHeader`), instead of the bare token.
    #[arg(long, value_name = "SERVER_URL")]
    pub git_config: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Parse `90`, `90s`, `30m`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let millis: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?}: use ms, s, m, h or d"
            ))
        }
    };
    n.checked_mul(millis)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

/// The token verification settings, and whether they are the embedded default's own secret.
fn auth_config(
    auth: &AuthArgs,
    storage: &StorageUrl,
) -> anyhow::Result<(crate::auth::AuthConfig, bool)> {
    let public_key_pem = match &auth.jwt_public_key {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut config = crate::auth::AuthConfig {
        secret: auth.jwt_secret.clone(),
        public_key_pem,
        issuer: auth.jwt_issuer.clone(),
        audience: auth.jwt_audience.clone(),
    };
    if config.secret.is_some() || config.public_key_pem.is_some() {
        return Ok((config, false));
    }
    let StorageUrl::Dir(dir) = storage else {
        anyhow::bail!("S3 storage needs --jwt-secret or --jwt-public-key (every replica must verify the same tokens)");
    };
    let path = objectstore::layout::local::jwt_secret(dir);
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let secret = crate::auth::random_secret()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(&mut options.open(&path)?, secret.as_bytes())?;
            secret
        }
        Err(e) => return Err(e.into()),
    };
    config.secret = Some(secret);
    Ok((config, true))
}

/// Where repositories are stored, shared by every command.
#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// `file://DIR` (or a plain directory) or `s3://BUCKET/PREFIX`.
    #[arg(
        long,
        env = "ARTIFACT_GIT_STORAGE",
        default_value = "file://./artifact-git-data"
    )]
    pub storage: StorageUrl,
    /// Local directory for cached packs and for received packs being indexed.
    #[arg(long, env = "ARTIFACT_GIT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The most bytes of packs kept in the local cache (S3 storage), e.g. `10GiB`.
    #[arg(long, env = "ARTIFACT_GIT_CACHE_SIZE", default_value = "10GiB", value_parser = parse_size)]
    pub cache_size: u64,
    /// Address S3 objects as `endpoint/bucket/key` (MinIO and most local S3 servers need it).
    #[arg(long, env = "ARTIFACT_GIT_S3_PATH_STYLE")]
    pub s3_path_style: bool,
}

/// Parse `1024`, `512MiB`, `10GiB`, `2GB`...
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("invalid size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// What a client may send, how much memory heavy work may take, and how long a peer may stall.
/// Size and count limits left unset take their default, or with `--trusted` a higher one.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Raise the size and count limits for deployments whose clients are trusted (objects of
    /// 2 GiB, 100 million objects per pack, a 4 GiB memory budget...).
    #[arg(long, env = "ARTIFACT_GIT_TRUSTED")]
    pub trusted: bool,
    /// The largest object (file) a push may hold; larger ones belong in Git LFS.
    #[arg(long, env = "ARTIFACT_GIT_MAX_OBJECT_SIZE", value_parser = parse_size)]
    pub max_object_size: Option<u64>,
    /// The most objects one pushed pack may hold.
    #[arg(long, env = "ARTIFACT_GIT_MAX_PACK_OBJECTS")]
    pub max_pack_objects: Option<u32>,
    /// The longest delta chain a pushed pack may hold.
    #[arg(long, env = "ARTIFACT_GIT_MAX_DELTA_DEPTH")]
    pub max_delta_depth: Option<u32>,
    /// The largest push (its pack is staged on local disk).
    #[arg(long, env = "ARTIFACT_GIT_MAX_PUSH_SIZE", value_parser = parse_size)]
    pub max_push_size: Option<u64>,
    /// The most content an archive (`/archive/{rev}.zip`) may hold; larger ones are refused
    /// before the first byte is sent.
    #[arg(long, env = "ARTIFACT_GIT_MAX_ARCHIVE_SIZE", value_parser = parse_size)]
    pub max_archive_size: Option<u64>,
    /// The most files and folders an archive may hold.
    #[arg(long, env = "ARTIFACT_GIT_MAX_ARCHIVE_ENTRIES")]
    pub max_archive_entries: Option<usize>,
    /// The largest commit the Hub API takes in one request (its files inline, base64).
    #[arg(long, env = "ARTIFACT_GIT_MAX_HUB_COMMIT_SIZE", value_parser = parse_size)]
    pub max_hub_commit_size: Option<u64>,
    /// The largest clone or fetch request (wants and haves), after decompression.
    #[arg(long, env = "ARTIFACT_GIT_MAX_REQUEST_SIZE", value_parser = parse_size)]
    pub max_request_size: Option<u64>,
    /// The most ref updates in one push.
    #[arg(long, env = "ARTIFACT_GIT_MAX_REF_UPDATES")]
    pub max_ref_updates: Option<usize>,
    /// Memory all clones, fetches and pushes together may reserve.
    #[arg(long, env = "ARTIFACT_GIT_MEMORY_BUDGET", value_parser = parse_size)]
    pub memory_budget: Option<u64>,
    /// Memory reserved for each clone or fetch.
    #[arg(long, env = "ARTIFACT_GIT_FETCH_MEMORY", default_value = "32MiB", value_parser = parse_size)]
    pub fetch_memory: u64,
    /// Memory (of the budget) for generated fetch answers kept for the next identical
    /// request, such as every clone of a fleet after bundle-uri; 0 keeps none.
    #[arg(long, env = "ARTIFACT_GIT_ANSWER_CACHE_SIZE", default_value = "32MiB", value_parser = parse_size)]
    pub answer_cache_size: u64,
    /// Threads resolving the deltas of one push.
    #[arg(long, env = "ARTIFACT_GIT_INDEX_THREADS", default_value_t = 2)]
    pub index_threads: usize,
    /// Clones, fetches and pushes worked on at once; beyond it clones and fetches get 503 and
    /// pushes wait (up to --queue-timeout).
    #[arg(long, env = "ARTIFACT_GIT_MAX_CONCURRENT", default_value_t = 32)]
    pub max_concurrent: usize,
    /// Open connections; beyond it the server stops accepting until one closes.
    #[arg(long, env = "ARTIFACT_GIT_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Time to send a request's head (also how long an idle connection stays open).
    #[arg(long, env = "ARTIFACT_GIT_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Time a request body may go without a byte.
    #[arg(long, env = "ARTIFACT_GIT_BODY_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_idle_timeout: std::time::Duration,
    /// Time for a whole clone, fetch or API request body.
    #[arg(long, env = "ARTIFACT_GIT_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Time a response may wait for a client that stopped reading.
    #[arg(long, env = "ARTIFACT_GIT_SEND_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub send_timeout: std::time::Duration,
    /// Time a received push waits for a slot, and heavy work for memory.
    #[arg(long, env = "ARTIFACT_GIT_QUEUE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub queue_timeout: std::time::Duration,
    /// Time requests in flight get to finish on shutdown (SIGTERM, Ctrl-C).
    #[arg(long, env = "ARTIFACT_GIT_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// For crash tests only: a pause between a push's refs commit and its reply, which widens
    /// that window so a kill can be aimed at it. Never set in production.
    #[arg(long, env = "ARTIFACT_GIT_TEST_REPLY_DELAY", default_value = "0s", value_parser = parse_duration, hide = true)]
    pub test_reply_delay: std::time::Duration,
}

impl LimitArgs {
    /// The limits and timeouts these flags describe.
    pub fn resolve(&self) -> (Limits, Timeouts) {
        let defaults = Limits::default();
        let pick = |explicit: Option<u64>, default: u64, trusted: u64| {
            explicit.unwrap_or(if self.trusted { trusted } else { default })
        };
        let pack = objectstore::odb::index::Limits {
            max_object_bytes: pick(
                self.max_object_size,
                defaults.pack.max_object_bytes,
                2 << 30,
            )
            .min(u64::from(u32::MAX)),
            max_objects: self.max_pack_objects.unwrap_or(if self.trusted {
                100_000_000
            } else {
                defaults.pack.max_objects
            }),
            max_delta_depth: self.max_delta_depth.unwrap_or(if self.trusted {
                u32::MAX
            } else {
                defaults.pack.max_delta_depth
            }),
            threads: self.index_threads.max(1),
            ..defaults.pack
        };
        let commands = protocol::receive_pack::Limits {
            max_commands: self.max_ref_updates.unwrap_or(if self.trusted {
                10_000_000
            } else {
                defaults.commands.max_commands
            }),
            ..defaults.commands
        };
        let limits = Limits {
            max_request_bytes: pick(self.max_request_size, defaults.max_request_bytes, 256 << 20),
            max_push_bytes: pick(self.max_push_size, defaults.max_push_bytes, 1 << 40),
            commands,
            pack,
            max_heavy_requests: self.max_concurrent,
            fetch_memory: self.fetch_memory,
            memory_budget: pick(self.memory_budget, defaults.memory_budget, 4 << 30),
            max_connections: self.max_connections,
            max_archive_bytes: self.max_archive_size.unwrap_or(defaults.max_archive_bytes),
            max_hub_commit_bytes: self
                .max_hub_commit_size
                .unwrap_or(defaults.max_hub_commit_bytes),
            max_archive_entries: self
                .max_archive_entries
                .unwrap_or(defaults.max_archive_entries),
        };
        let timeouts = Timeouts {
            header: self.header_timeout,
            body_idle: self.body_idle_timeout,
            request_body: self.request_timeout,
            send_stall: self.send_timeout,
            queue: self.queue_timeout,
            shutdown: self.shutdown_timeout,
            reply_delay: self.test_reply_delay,
        };
        (limits, timeouts)
    }
}

/// Git LFS.
#[derive(Debug, Args, Clone)]
pub struct LfsArgs {
    /// How long LFS transfer URLs (presigned, or the server's own) are valid.
    #[arg(long, env = "ARTIFACT_GIT_LFS_URL_TTL", default_value = "1h", value_parser = parse_duration)]
    pub lfs_url_ttl: std::time::Duration,
    /// LFS uploads larger than this go through the server (streamed to S3 in parts, hashed on
    /// the way) rather than to a presigned URL; S3 takes at most 5 GiB in one PUT.
    #[arg(long, env = "ARTIFACT_GIT_LFS_PROXY_ABOVE", default_value = "5GiB", value_parser = parse_size)]
    pub lfs_proxy_above: u64,
    /// The largest LFS object accepted.
    #[arg(long, env = "ARTIFACT_GIT_LFS_MAX_OBJECT_SIZE", default_value = "100GiB", value_parser = parse_size)]
    pub lfs_max_object_size: u64,
    /// Refuse pushes whose LFS pointers name objects the store does not have.
    #[arg(long, env = "ARTIFACT_GIT_LFS_CHECK_POINTERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub lfs_check_pointers: bool,
    /// Files larger than this become LFS objects when `enable_git` imports a version.
    #[arg(long, env = "ARTIFACT_GIT_LFS_THRESHOLD", default_value = "1MiB", value_parser = parse_size)]
    pub lfs_threshold: u64,
}

/// Push events: webhooks and push mirrors.
#[derive(Debug, Args, Clone)]
pub struct EventArgs {
    /// Let webhooks and mirrors reach loopback, link-local and private addresses (refused by
    /// default: a user could otherwise make the server call internal services).
    #[arg(long, env = "ARTIFACT_GIT_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Time for one request to a webhook or mirror.
    #[arg(long, env = "ARTIFACT_GIT_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: std::time::Duration,
    /// How long a failing webhook delivery is retried (exponential backoff with jitter) before
    /// it is given up.
    #[arg(long, env = "ARTIFACT_GIT_WEBHOOK_RETRY_FOR", default_value = "1h", value_parser = parse_duration)]
    pub webhook_retry_for: std::time::Duration,
    /// The first retry's delay; each next one doubles.
    #[arg(long, env = "ARTIFACT_GIT_EVENTS_BACKOFF", default_value = "2s", value_parser = parse_duration)]
    pub events_backoff: std::time::Duration,
    /// The longest delay between retries.
    #[arg(long, env = "ARTIFACT_GIT_EVENTS_BACKOFF_MAX", default_value = "5m", value_parser = parse_duration)]
    pub events_backoff_max: std::time::Duration,
    /// How often each replica looks for undelivered events (pushes on the same replica wake it
    /// at once).
    #[arg(long, env = "ARTIFACT_GIT_EVENTS_POLL", default_value = "5s", value_parser = parse_duration)]
    pub events_poll: std::time::Duration,
    /// How long a replica's claim on an endpoint lasts before another may take over.
    #[arg(long, env = "ARTIFACT_GIT_EVENTS_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub events_lease: std::time::Duration,
    /// This replica's name in the leases it takes (default: a random one per process). Give
    /// each replica a stable one (a StatefulSet pod's name, say): a replica that restarts
    /// then takes its own leases back at once instead of waiting for them to run out.
    #[arg(long, env = "ARTIFACT_GIT_REPLICA_ID", value_parser = parse_replica_id)]
    pub replica_id: Option<String>,
    /// Authentication failures in a row after which a mirror is paused.
    #[arg(long, env = "ARTIFACT_GIT_MIRROR_AUTH_FAILURES", default_value_t = 3)]
    pub mirror_auth_failures: u32,
    /// How long webhooks and version sync wait for push records that the bucket's listing
    /// does not show yet (listings that lag behind writes) before they go on without them.
    #[arg(long, env = "ARTIFACT_GIT_EVENTS_GAP_GRACE", default_value = "10m", value_parser = parse_duration)]
    pub events_gap_grace: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ARTIFACT_GIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub lfs: LfsArgs,
    #[command(flatten)]
    pub events: EventArgs,
    /// The URL clients reach this server at (shown in clone URLs); defaults to the listen address.
    #[arg(long, env = "ARTIFACT_GIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "ARTIFACT_GIT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ARTIFACT_GIT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (only behind a TLS proxy: tokens
    /// would otherwise cross the network in clear text).
    #[arg(long, env = "ARTIFACT_GIT_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Proxies (IP or CIDR, repeatable or comma-separated) whose `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` name the URL clients used; ignored when `--public-url` is given.
    #[arg(long, env = "ARTIFACT_GIT_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<crate::proxy::Cidr>,
    /// Let a push create a repository that does not exist: `admin` (a token with `a` on it),
    /// `write` (`rw` is enough) or `off`.
    #[arg(long, env = "ARTIFACT_GIT_CREATE_ON_PUSH", value_enum, default_value_t = crate::app::CreateOnPush::Off)]
    pub create_on_push: crate::app::CreateOnPush,
    /// The object format of repositories `enable_git` (without `object_format`) and the Hub
    /// API create: `sha1` or `sha256`. A push that creates a repository uses its client's.
    #[arg(long, env = "ARTIFACT_GIT_OBJECT_FORMAT", default_value = "sha1", value_parser = object_format)]
    pub object_format: gix_hash::Kind,
    /// Refuse every object git's `fsck --strict` would (its warnings too: `badFilemode`,
    /// `zeroPaddedFilemode`, ...). By default what `receive.fsckObjects` refuses is refused,
    /// and the shapes of attacks on clients; real histories with old warnings are accepted.
    #[arg(long, env = "ARTIFACT_GIT_FSCK_STRICT")]
    pub fsck_strict: bool,
    /// Repack a repository in the background after a push leaves more packs than this (0: never).
    #[arg(long, env = "ARTIFACT_GIT_MAINTAIN_AFTER_PACKS", default_value_t = 32)]
    pub maintain_after_packs: usize,
    /// How long a deleted repository can be restored before its keys are removed
    /// (`delete_repository` with `purge: true` removes them at once).
    #[arg(long, env = "ARTIFACT_GIT_DELETED_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub deleted_retention: std::time::Duration,
    /// Warn writes to a repository that stores more than this (packs and LFS objects), unless
    /// `set_quota` gave it its own limit.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_SOFT_LIMIT", value_parser = parse_size)]
    pub default_soft_limit: Option<u64>,
    /// Refuse writes that would make a repository store more than this, unless `set_quota`
    /// gave it its own limit.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_HARD_LIMIT", value_parser = parse_size)]
    pub default_hard_limit: Option<u64>,
    /// Warn writes to a workspace whose repositories store more than this together, unless
    /// `set_quota {workspace}` gave it its own limit.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_WORKSPACE_SOFT_LIMIT", value_parser = parse_size)]
    pub default_workspace_soft_limit: Option<u64>,
    /// Refuse writes that would make a workspace's repositories store more than this
    /// together, unless `set_quota {workspace}` gave it its own limit.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_WORKSPACE_HARD_LIMIT", value_parser = parse_size)]
    pub default_workspace_hard_limit: Option<u64>,
    #[command(flatten)]
    pub maintenance: MaintenanceArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// `<workspace>/<alias>`.
    pub repository: RepoId,
    /// The branch `HEAD` names.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_BRANCH", default_value = "main")]
    pub default_branch: String,
    /// Let anyone clone and fetch it (pushing always needs a token).
    #[arg(long)]
    pub public: bool,
    /// The hash that names its objects: `sha1` or `sha256` (as `git init --object-format`).
    #[arg(long, env = "ARTIFACT_GIT_OBJECT_FORMAT", default_value = "sha1", value_parser = object_format)]
    pub object_format: gix_hash::Kind,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// An object format by its git name.
fn object_format(name: &str) -> Result<gix_hash::Kind, String> {
    objectstore::format::by_name(name)
        .ok_or_else(|| format!("unknown object format {name:?}: use sha1 or sha256"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Init(args) => init(args).await,
            Command::Token(args) => token(args),
            Command::Maintain(args) => maintain(args).await,
        }
    });
    // Whatever is still running on blocking threads (a response to a client that went
    // quiet) does not hold the exit up for long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn local_dirs(args: &StorageArgs) -> anyhow::Result<(Option<PathBuf>, PathBuf)> {
    // Received packs are staged beside a filesystem bucket, so publishing is a hard link.
    let staging = match (&args.cache_dir, &args.storage) {
        (Some(dir), _) => dir.join("staging"),
        (None, StorageUrl::Dir(dir)) => objectstore::layout::local::staging(dir),
        // Shared by every process: each push stages in its own temporary directory inside.
        (None, StorageUrl::S3 { .. }) => std::env::temp_dir().join("artifact-git-staging"),
    };
    std::fs::create_dir_all(&staging)?;
    Ok((args.cache_dir.as_ref().map(|d| d.join("packs")), staging))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::metrics::install();
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::Tls::new(cert.clone(), key.clone())?),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() && !args.insecure_http {
        anyhow::bail!(
            "refusing to serve plain HTTP on {}: tokens would cross the network in clear text. Give --tls-cert and --tls-key, or --insecure-http when a TLS proxy is in front",
            args.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let Built { app, admin_token } = build(&args, storage, local, tls.is_some())?;
    let public_url = app.config.public.url.clone();
    let storage_desc = match &args.storage.storage {
        StorageUrl::Dir(d) => format!("file://{}", d.display()),
        StorageUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
    };
    println!(
        "artifact-git {} listening on {scheme}://{local} (storage: {storage_desc})",
        env!("CARGO_PKG_VERSION")
    );
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "artifact-git".into());
    println!("  create a repository:  {me} init demo/hello --storage {storage_desc}");
    match &admin_token {
        Some(token) => {
            println!("  admin token (30 days, every workspace; keep it secret): {token}");
            println!("  clone it:             git -c http.extraHeader=\"Authorization: Bearer $TOKEN\" clone {public_url}/demo/git/hello");
            println!("                        (TOKEN=<the admin token>; the token stays out of .git/config)");
            println!("  or once for all:      {me} token --workspace '*' --scope a --ttl 30d --git-config {public_url} --storage {storage_desc} | sh");
            println!("  push to it:           cd hello && git -c http.extraHeader=\"Authorization: Bearer $TOKEN\" push origin main");
            println!("  more tokens:          {me} token --workspace demo --scope rw --ttl 1h --storage {storage_desc}");
            println!("  browse it:            {public_url}/demo/git/hello   (sign in with a token at {public_url}/-/signin)");
        }
        None => {
            println!("  clone it:             git clone {public_url}/demo/git/hello   (password: a token)");
            println!("  push to it:           git push {public_url}/demo/git/hello main");
            println!("  browse it:            {public_url}/demo/git/hello");
        }
    }
    tracing::info!(%local, "listening");
    crate::serve::serve(app, listener, tls, shutdown_signal()).await?;
    Ok(())
}

/// The application `serve` runs: everything but the listener, over `storage` (whose bucket a
/// caller may have wrapped, as the simulations wrap it in a faulty link).
pub struct Built {
    /// The shared state every request handler gets.
    pub app: Arc<App>,
    /// A token for every workspace, when the embedded default secret is in use.
    pub admin_token: Option<String>,
}

/// Build the application of `serve` for a server listening on `local`.
pub fn build(
    args: &ServeArgs,
    storage: Storage,
    local: SocketAddr,
    tls: bool,
) -> anyhow::Result<Built> {
    crate::metrics::install();
    let (auth_config, embedded_secret) = auth_config(&args.auth, &args.storage.storage)?;
    let auth = crate::auth::Authenticator::new(&auth_config)?;
    let (cache_dir, staging) = local_dirs(&args.storage)?;
    let scheme = if tls { "https" } else { "http" };
    let public_url_fixed = args.public_url.is_some();
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{local}"))
        .trim_end_matches('/')
        .to_owned();
    let admin_token = if embedded_secret {
        Some(auth.mint(
            "ws:*#a",
            std::time::Duration::from_secs(30 * 86400),
            Some("admin"),
        )?)
    } else {
        None
    };
    let (limits, timeouts) = args.limits.resolve();
    let cache = Arc::new(PackCache::new(cache_dir, args.storage.cache_size));
    let events = Arc::new(
        events::dispatcher::Dispatcher::new(
            storage.bucket.clone(),
            objectstore::layout::StorageKeys::new(&storage.prefix),
            cache.clone(),
            events::client::Client::new(args.events.webhook_allow_private)?,
            events::dispatcher::Settings {
                replica: args
                    .events
                    .replica_id
                    .clone()
                    .unwrap_or_else(events::dispatcher::replica_name),
                poll: args.events.events_poll,
                lease: args.events.events_lease,
                timeout: args.events.webhook_timeout,
                retry_for: args.events.webhook_retry_for,
                backoff_base: args.events.events_backoff,
                backoff_max: args.events.events_backoff_max,
                auth_failures_before_pause: args.events.mirror_auth_failures,
                gap_grace: args.events.events_gap_grace,
                public_url: public_url.clone(),
                staging: staging.join("mirror"),
            },
        )
        .with_refs_cache(storage.refs_cache.clone()),
    );
    let budget = objectstore::budget::MemoryBudget::new(limits.memory_budget);
    let maintenance = Arc::new(crate::maintenance::AutoMaintenance::new(
        args.maintain_after_packs,
        args.maintenance.options(),
        cache.clone(),
        objectstore::odb::maintain::Workspace {
            staging: staging.clone(),
            budget: budget.clone(),
        },
    ));
    let config = crate::app::Config {
        staging,
        public: crate::proxy::PublicUrl {
            url: public_url,
            fixed: public_url_fixed,
            trusted_proxies: args.trusted_proxy.clone(),
        },
        create_on_push: args.create_on_push,
        object_format: args.object_format,
        limits,
        timeouts,
        lfs: lfs::Transfer {
            url_ttl: args.lfs.lfs_url_ttl,
            proxy_above: args.lfs.lfs_proxy_above,
            max_object: args.lfs.lfs_max_object_size,
        },
        lfs_check_pointers: args.lfs.lfs_check_pointers,
        lfs_threshold: args.lfs.lfs_threshold,
        deleted_retention: args.deleted_retention,
        default_quota: refs::Quota {
            soft: args.default_soft_limit,
            hard: args.default_hard_limit,
        },
        default_workspace_quota: refs::Quota {
            soft: args.default_workspace_soft_limit,
            hard: args.default_workspace_hard_limit,
        },
        fsck: match args.fsck_strict {
            true => objectstore::fsck::Rules::Strict,
            false => objectstore::fsck::Rules::Default,
        },
    };
    let answers =
        crate::answer_cache::AnswerCache::new(args.limits.answer_cache_size, budget.clone());
    let app = Arc::new(App {
        answers: Arc::new(answers),
        config,
        auth,
        storage,
        cache,
        events,
        slots: crate::slots::Slots::new(limits.max_heavy_requests),
        budget,
        maintenance,
        visible: Default::default(),
        workspaces: Default::default(),
    });
    Ok(Built { app, admin_token })
}

/// A replica's name: it names a key of the bucket (its heartbeat), so letters, digits, `-`,
/// `_` and `.`, at most 128.
fn parse_replica_id(s: &str) -> Result<String, String> {
    match crate::storage::valid_name(s) {
        true => Ok(s.to_owned()),
        false => Err("1 to 128 letters, digits, '-', '_' or '.', not starting with '.'".into()),
    }
}

/// Resolves on Ctrl-C or SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn init(args: InitArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let repo = crate::repo::Repo::new(&storage, args.repository.clone());
    if args.public {
        repo.write_settings(&crate::repo::Settings { public: true })
            .await?;
    }
    repo.refs
        .init(&args.default_branch, args.object_format)
        .await?;
    println!(
        "created {} (default branch {}, object format {})",
        args.repository, args.default_branch, args.object_format
    );
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    // `*` stands for every workspace: a token for operators.
    let any_workspace = args.workspace == "*" && args.artifact.is_none();
    if !(any_workspace || crate::storage::valid_name(&args.workspace))
        || args
            .artifact
            .as_deref()
            .is_some_and(|a| !crate::storage::valid_name(a))
    {
        anyhow::bail!("invalid workspace or artifact name");
    }
    if !["r", "rw", "a"].contains(&args.scope.as_str()) {
        anyhow::bail!("--scope must be r, rw or a");
    }
    let (config, _) = auth_config(&args.auth, &args.storage.storage)?;
    let auth = crate::auth::Authenticator::new(&config)?;
    let scope = match &args.artifact {
        Some(alias) => format!("artifact:{}/{alias}#{}", args.workspace, args.scope),
        None => format!("ws:{}#{}", args.workspace, args.scope),
    };
    let token = auth.mint(&scope, args.ttl, args.subject.as_deref())?;
    match args.git_config {
        Some(url) => {
            let url = url.trim_end_matches('/');
            // Printed into a shell command: only characters a server URL needs.
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || !url
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/.-_[]~%".contains(&b))
            {
                anyhow::bail!("--git-config takes the server's URL, like https://git.example.com");
            }
            println!(
                "git config --global http.{url}/.extraHeader \"Authorization: Bearer {token}\""
            );
        }
        None => println!("{token}"),
    }
    Ok(())
}

async fn maintain(args: MaintainArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let (cache_dir, staging) = local_dirs(&args.storage)?;
    let cache = Arc::new(PackCache::new(cache_dir, args.storage.cache_size));
    let repo = crate::repo::Repo::new(&storage, args.repository.clone());
    let kind = if args.geometric {
        crate::maintenance::Kind::Geometric
    } else {
        crate::maintenance::Kind::Full
    };
    let workspace = objectstore::odb::maintain::Workspace {
        staging,
        budget: objectstore::budget::MemoryBudget::new(args.memory_budget),
    };
    let crate::maintenance::Report { report, lfs } =
        crate::maintenance::run(&repo, &cache, &workspace, args.maintenance.options(), kind)
            .await?;
    println!(
        "{}: {} packs -> {}; {} objects kept, {} unreachable dropped, {} replaced packs deleted, {} unreferenced LFS objects ({} bytes) removed{}",
        args.repository,
        report.packs_before,
        report.new_pack.as_deref().unwrap_or("unchanged"),
        report.objects,
        report.dropped_unreachable,
        report.deleted_packs,
        lfs.objects,
        lfs.bytes,
        report
            .unreachable_pack
            .as_deref()
            .map(|p| format!("; young unreachable objects kept apart in {p}"))
            .unwrap_or_default()
    );
    Ok(())
}
