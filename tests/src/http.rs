//! Raw HTTP with curl, for requests stock git would never send.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

pub fn curl_post(url: &str, content_type: &str, body: &[u8], extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("body");
    std::fs::write(&input, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .args(extra)
        .arg("--data-binary")
        .arg(format!("@{}", input.display()))
        .arg(url)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (status, body)
}

/// A pkt-line.
pub fn pkt(line: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", line.len() + 4).into_bytes();
    v.extend_from_slice(line.as_bytes());
    v
}

/// The HTTP status of a GET of `url` (the path sent as is), with `token` as Basic password.
pub fn http_status(url: &str, token: Option<&str>) -> u16 {
    http_get_to(url, token, Path::new("/dev/null"))
}

/// GET `url` (the path sent as is) with `token` as Basic password, the body into `dest`; the
/// HTTP status.
pub fn http_get_to(url: &str, token: Option<&str>, dest: &Path) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o"])
        .arg(dest)
        .args(["-w", "%{http_code}", "--path-as-is"]);
    if let Some(t) = token {
        cmd.args(["-u", &format!("git:{t}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// What a GET answered: status, headers (names lower-case) and body.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Fetched {
    /// The value of header `name` of the last response (after redirects), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GET (or with `-I`, HEAD) `url` with curl, the path sent as is; `extra` are more curl
/// arguments (`-H`, `-L`, `-u`).
pub fn curl_get(url: &str, extra: &[&str]) -> Fetched {
    let dir = TempDir::new().unwrap();
    let (head_file, body_file) = (dir.path().join("h"), dir.path().join("b"));
    let out = Command::new("curl")
        .args(["-s", "--path-as-is", "-D"])
        .arg(&head_file)
        .arg("-o")
        .arg(&body_file)
        .args(["-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let raw = std::fs::read_to_string(&head_file).unwrap_or_default();
    // With -L several responses' headers follow each other: keep the last response's.
    let last = raw.rsplit("HTTP/").next().unwrap_or("");
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Fetched {
        status,
        headers,
        body: std::fs::read(&body_file).unwrap_or_default(),
    }
}

/// Paths with what each is (see [`tree_listing`]).
pub type Listing = Vec<(String, String)>;

/// Every path under `dir` with what it is: `dir`, `link <target>`, or `file exec=<bool>
/// sha=<first bytes' hash>` (content compared by a hash, to keep failures readable).
pub fn tree_listing(dir: &Path) -> Listing {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                let exec = meta.permissions().mode() & 0o100 != 0;
                let data = std::fs::read(&path).unwrap();
                format!("file exec={exec} sha256={}", crate::sha256_hex(&data))
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

/// Extract a tar, tar.gz or zip archive (by its first bytes) with the system's tools and
/// list it as [`tree_listing`] does.
pub fn archive_listing(bytes: &[u8]) -> Listing {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("archive");
    std::fs::write(&file, bytes).unwrap();
    let into = dir.path().join("x");
    std::fs::create_dir(&into).unwrap();
    let status = if bytes.starts_with(b"PK") {
        Command::new("unzip")
            .arg("-q")
            .arg(&file)
            .arg("-d")
            .arg(&into)
            .status()
    } else {
        Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&into)
            .status()
    };
    assert!(status.unwrap().success(), "the archive extracts");
    tree_listing(&into)
}
