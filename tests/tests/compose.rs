#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! docker-compose cannot run here (no engine), so check what can be checked without one: the
//! file is valid for docker-compose, the server accepts every setting it passes, and the
//! settings agree with the MinIO initialisation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use artifact_git_e2e::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `environment` mapping of one service in `docker-compose config`'s normalised output.
fn environment(config: &str, service: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut in_service = false;
    let mut in_env = false;
    for line in config.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 2 {
            in_service = line.trim() == format!("{service}:");
            in_env = false;
        } else if in_service && indent == 4 {
            in_env = line.trim() == "environment:";
        } else if in_service && in_env && indent == 6 {
            let (k, v) = line.trim().split_once(": ").unwrap();
            env.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
    }
    env
}

#[test]
fn compose_file_is_valid_and_matches_the_server() {
    let config = match Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config"])
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "docker-compose config: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must check docker-compose.yml: install docker-compose"
            );
            eprintln!("skipping: docker-compose is not installed");
            return;
        }
    };
    let server = environment(&config, "artifact-git");
    let init = environment(&config, "minio-init");
    let minio = environment(&config, "minio");
    assert!(
        !server.is_empty() && !init.is_empty() && !minio.is_empty(),
        "{config}"
    );

    // Every ARTIFACT_GIT_* variable is one the server reads.
    let help = Command::new(server_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    // clap wraps long lines: compare with whitespace collapsed.
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for key in server.keys().filter(|k| k.starts_with("ARTIFACT_GIT_")) {
        assert!(
            help.contains(&format!("[env: {key}")),
            "the server does not read {key}"
        );
    }
    for key in server.keys().filter(|k| !k.starts_with("ARTIFACT_GIT_")) {
        assert!(
            [
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION"
            ]
            .contains(&key.as_str()),
            "unexpected variable {key}"
        );
    }
    // The settings agree with MinIO and its initialisation.
    let bucket = server["ARTIFACT_GIT_STORAGE"]
        .strip_prefix("s3://")
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert_eq!(bucket, init["BUCKET"]);
    assert_eq!(server["AWS_ACCESS_KEY_ID"], minio["MINIO_ROOT_USER"]);
    assert_eq!(
        server["AWS_SECRET_ACCESS_KEY"],
        minio["MINIO_ROOT_PASSWORD"]
    );
    assert!(server["AWS_ENDPOINT_URL"].starts_with("http://minio:"));
    let script = std::fs::read_to_string(root().join("minio/init.sh")).unwrap();
    assert!(script.contains("mc mb") && script.contains("$BUCKET"));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("--bin artifact-git")
            && dockerfile.contains("ENTRYPOINT [\"artifact-git\"]")
    );

    // The server starts with exactly this environment (on a loopback port).
    let mut cmd = Command::new(server_bin());
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let cache = TempDir::new().unwrap();
    for (k, v) in &server {
        let v = match k.as_str() {
            "ARTIFACT_GIT_LISTEN" => "127.0.0.1:0".to_owned(),
            "ARTIFACT_GIT_CACHE_DIR" => cache.path().display().to_string(),
            _ => v.clone(),
        };
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.contains("listening on") && first.contains("s3://artifacts/git"),
        "{first}"
    );
}
