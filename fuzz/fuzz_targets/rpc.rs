//! The JSON-RPC API, whole: any request body, from a caller with every right, against a
//! repository with a short history (restored before each input, so inputs do not pile up). It must
//! answer a JSON-RPC object and never panic, and `mirror`/`webhook` delivery is not started.
#![no_main]

use std::sync::{Arc, OnceLock};

use artifact_git::auth::Grants;
use artifact_git::cli::{Cli, Command, ServeArgs};
use artifact_git::storage::Storage;
use clap::Parser;
use libfuzzer_sys::fuzz_target;
use objectstore::bucket::MemoryBucket;
use serde_json::{json, Value};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Arc<artifact_git::app::App>,
    /// What the app's bucket holds before each input.
    seeded: MemoryBucket,
    bucket: Arc<MemoryBucket>,
    _dir: tempfile::TempDir,
}

fn admin() -> Grants {
    Grants::parse("ws:*#a")
}

fn app(args: &ServeArgs, bucket: Arc<MemoryBucket>) -> Arc<artifact_git::app::App> {
    let storage = Storage::new(bucket, String::new());
    let local = "127.0.0.1:1".parse().expect("an address");
    artifact_git::cli::build(args, storage, local, false)
        .expect("the app builds")
        .app
}

/// What links in answers start with.
const BASE_URL: &str = "http://127.0.0.1:1";

async fn call(app: &Arc<artifact_git::app::App>, body: Value) -> Value {
    let body = serde_json::to_vec(&body).expect("json");
    artifact_git::rpc::handle(app.clone(), Some(admin()), BASE_URL, &body)
        .await
        .json
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = dir.path().join("storage");
        let cli = Cli::try_parse_from([
            "artifact-git",
            "serve",
            "--storage",
            storage.to_str().expect("a utf-8 path"),
            "--jwt-secret",
            "fuzzing-secret-0123456789",
        ])
        .expect("valid arguments");
        let Command::Serve(args) = cli.command else {
            unreachable!("parsed as serve")
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let bucket = Arc::new(MemoryBucket::new());
        let seeding = app(&args, bucket.clone());
        runtime.block_on(async {
            let rpc = |method: &str, params: Value| {
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            };
            let answer = call(&seeding, rpc("enable_git", json!({"artifact_id": "ws/data"}))).await;
            assert!(answer.get("result").is_some(), "{answer}");
            let mut head: Option<String> = None;
            for (i, path) in ["a.txt", "dir/b.txt", "dir/sub/c.bin", "a.txt"].iter().enumerate() {
                let answer = call(&seeding, rpc("commit_files", json!({
                    "artifact_id": "ws/data", "branch": "main", "expected_head": head,
                    "message": format!("commit {i}"),
                    "changes": [{"op": "put", "path": path, "content": format!("line {i}\n")}],
                }))).await;
                head = answer["result"]["commit"].as_str().map(str::to_owned);
                assert!(head.is_some(), "{answer}");
            }
        });
        Fixture {
            runtime,
            app: seeding,
            seeded: bucket.duplicate(),
            bucket,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // Outgoing deliveries are the dispatcher's job, not the API's; a sync asks for one.
    if let Ok(request) = serde_json::from_slice::<Value>(data) {
        if request.get("method").and_then(Value::as_str) == Some("sync_mirror") {
            return;
        }
    }
    let fixture = fixture();
    fixture.bucket.restore(&fixture.seeded);
    let answer = fixture
        .runtime
        .block_on(artifact_git::rpc::handle(
            fixture.app.clone(),
            Some(admin()),
            BASE_URL,
            data,
        ))
        .json;
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert!(
        answer.get("result").is_some() != answer.get("error").is_some(),
        "{answer}"
    );
});
