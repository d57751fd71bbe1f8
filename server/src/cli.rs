//! The command line: `serve` and `init`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use objectstore::PackCache;

use crate::http::{App, Limits};
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
    Serve(ServeArgs),
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
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid duration unit in {s:?}: use s, m, h or d")),
    };
    n.checked_mul(secs)
        .map(std::time::Duration::from_secs)
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
    let path = dir.join(".artifact-git").join("jwt-secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir.join(".artifact-git"))?;
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ARTIFACT_GIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Clones, fetches and pushes served at once; beyond it clients get 503 and retry.
    #[arg(long, env = "ARTIFACT_GIT_MAX_CONCURRENT", default_value_t = 32)]
    pub max_concurrent: usize,
    /// The URL clients reach this server at (shown in clone URLs); defaults to the listen address.
    #[arg(long, env = "ARTIFACT_GIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Repack a repository in the background after a push leaves more packs than this (0: never).
    #[arg(long, env = "ARTIFACT_GIT_MAINTAIN_AFTER_PACKS", default_value_t = 32)]
    pub maintain_after_packs: usize,
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
    #[command(flatten)]
    pub storage: StorageArgs,
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
            Command::Serve(args) => serve(args).await,
            Command::Init(args) => init(args).await,
            Command::Token(args) => token(args),
            Command::Maintain(args) => maintain(args).await,
        }
    });
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
        (None, StorageUrl::Dir(dir)) => dir.join(".artifact-git").join("staging"),
        // Shared by every process: each push stages in its own temporary directory inside.
        (None, StorageUrl::S3 { .. }) => std::env::temp_dir().join("artifact-git-staging"),
    };
    std::fs::create_dir_all(&staging)?;
    Ok((args.cache_dir.as_ref().map(|d| d.join("packs")), staging))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (auth_config, embedded_secret) = auth_config(&args.auth, &args.storage.storage)?;
    let auth = crate::auth::Authenticator::new(&auth_config)?;
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let (cache_dir, staging) = local_dirs(&args.storage)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{local}"))
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
    let limits = Limits {
        max_heavy_requests: args.max_concurrent,
        ..Limits::default()
    };
    let app = Arc::new(App {
        auth,
        storage,
        cache: Arc::new(PackCache::new(cache_dir, args.storage.cache_size)),
        staging,
        public_url: public_url.clone(),
        limits,
        heavy: crate::layers::HeavyLimitLayer::new(limits.max_heavy_requests),
        maintenance: Arc::new(crate::maintenance::AutoMaintenance::new(
            args.maintain_after_packs,
            args.maintenance.options(),
        )),
    });
    let storage_desc = match &args.storage.storage {
        StorageUrl::Dir(d) => format!("file://{}", d.display()),
        StorageUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
    };
    println!(
        "artifact-git {} listening on http://{local} (storage: {storage_desc})",
        env!("CARGO_PKG_VERSION")
    );
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "artifact-git".into());
    println!("  create a repository:  {me} init demo/hello --storage {storage_desc}");
    match &admin_token {
        Some(token) => {
            let authed = public_url.replacen("://", &format!("://git:{token}@"), 1);
            println!("  admin token (30 days, every workspace; keep it secret): {token}");
            println!("  clone it:             git clone {authed}/demo/git/hello");
            println!("  push to it:           cd hello && git push origin main");
            println!("  more tokens:          {me} token --workspace demo --scope rw --ttl 1h --storage {storage_desc}");
        }
        None => {
            println!("  clone it:             git clone {public_url}/demo/git/hello   (password: a token)");
            println!("  push to it:           git push {public_url}/demo/git/hello main");
        }
    }
    tracing::info!(%local, "listening");
    crate::http::serve(app, listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}

async fn init(args: InitArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let repo = crate::repo::Repo::new(&storage, args.repository.clone());
    if args.public {
        repo.write_settings(&crate::repo::Settings { public: true })
            .await?;
    }
    repo.refs.init(&args.default_branch).await?;
    println!(
        "created {} (default branch {})",
        args.repository, args.default_branch
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
    println!("{}", auth.mint(&scope, args.ttl, args.subject.as_deref())?);
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
    let report =
        crate::maintenance::run(&repo, &cache, staging, args.maintenance.options(), kind).await?;
    println!(
        "{}: {} packs -> {}; {} objects kept, {} unreachable dropped, {} replaced packs deleted",
        args.repository,
        report.packs_before,
        report.new_pack.as_deref().unwrap_or("unchanged"),
        report.objects,
        report.dropped_unreachable,
        report.deleted_packs
    );
    Ok(())
}
