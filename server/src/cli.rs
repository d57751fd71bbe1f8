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
    /// The URL clients reach this server at (shown in clone URLs); defaults to the listen address.
    #[arg(long, env = "ARTIFACT_GIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// `<workspace>/<alias>`.
    pub repository: RepoId,
    /// The branch `HEAD` names.
    #[arg(long, env = "ARTIFACT_GIT_DEFAULT_BRANCH", default_value = "main")]
    pub default_branch: String,
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
        (None, StorageUrl::S3 { .. }) => {
            std::env::temp_dir().join(format!("artifact-git-staging-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&staging)?;
    Ok((args.cache_dir.as_ref().map(|d| d.join("packs")), staging))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&args.storage.storage, args.storage.s3_path_style).await?;
    let (cache_dir, staging) = local_dirs(&args.storage)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{local}"))
        .trim_end_matches('/')
        .to_owned();
    let app = Arc::new(App {
        storage,
        cache: Arc::new(PackCache::new(cache_dir, args.storage.cache_size)),
        staging,
        public_url: public_url.clone(),
        limits: Limits::default(),
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
    println!("  clone it:             git clone {public_url}/demo/git/hello");
    println!("  push to it:           git push {public_url}/demo/git/hello main");
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
    repo.refs.init(&args.default_branch).await?;
    println!(
        "created {} (default branch {})",
        args.repository, args.default_branch
    );
    Ok(())
}
